//! `images`, `inspect` and `history`, checked against what skopeo reports for the same images.

mod common;

use common::*;
use serde_json::json;

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

#[test]
fn inspect_matches_skopeo() {
    for repo in ["library/busybox:latest", "library/busybox:oci", "library/nginx:latest", "library/big:latest"] {
        let img = fixture(repo);
        let b = Berth::new();
        b.pull(&img);
        let info = skopeo_inspect(&img, &[]);
        let raw = skopeo_raw(&img);
        let cfg = skopeo_inspect(&img, &["--config"]);
        let v = b.inspect(&img);

        assert_eq!(v["Id"], raw["config"]["digest"], "{repo}: Id");
        assert_eq!(strings(&v["RepoTags"]), vec![img.clone()], "{repo}");
        let (name, _) = img.rsplit_once(':').expect("tag");
        let digest = info["Digest"].as_str().unwrap_or_default();
        assert_eq!(strings(&v["RepoDigests"]), vec![format!("{name}@{digest}")], "{repo}: RepoDigests");
        assert_eq!(v["RootFS"]["Type"], "layers");
        assert_eq!(v["RootFS"]["Layers"], cfg["rootfs"]["diff_ids"], "{repo}: diff IDs");
        assert_eq!(v["Architecture"], info["Architecture"], "{repo}");
        assert_eq!(v["Os"], info["Os"], "{repo}");
        assert_eq!(v["Created"], cfg["created"], "{repo}: Created");
        for key in ["Env", "Cmd", "ExposedPorts", "StopSignal", "Labels", "Entrypoint", "WorkingDir", "User"] {
            let ours = &v["Config"][key];
            let theirs = &cfg["config"][key];
            let empty = |x: &serde_json::Value| {
                x.is_null() || x.as_str() == Some("") || x.as_object().is_some_and(|o| o.is_empty())
            };
            if empty(theirs) {
                assert!(empty(ours), "{repo}: Config.{key} = {ours} but the image has none");
            } else {
                assert_eq!(ours, theirs, "{repo}: Config.{key}");
            }
        }
        // Size: the unpacked size, at least the sum of the compressed layers' content.
        let compressed: u64 =
            raw["layers"].as_array().map(|l| l.iter().filter_map(|d| d["size"].as_u64()).sum()).unwrap_or(0);
        let size = v["Size"].as_u64().unwrap_or(0);
        assert!(size >= compressed / 2 && size > 0, "{repo}: Size {size} vs compressed {compressed}");
        assert!(v["Metadata"]["LastTagTime"].is_string(), "{repo}: Metadata.LastTagTime");
        for key in ["Parent", "Comment"] {
            assert!(v.get(key).is_some(), "{repo}: inspect lacks {key}");
        }

        // --format
        let id = b.ok_args(["inspect", "--format", "{{.Id}}", &img]).stdout;
        assert_eq!(id.trim(), v["Id"].as_str().unwrap_or_default());
        let arch = b
            .ok_args(["image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}", &img])
            .stdout;
        assert_eq!(
            arch.trim(),
            format!("linux/{} {}", host_arch(), cfg["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len))
        );
        let j = b.ok_args(["inspect", "--format", "{{json .Config.Env}}", &img]).stdout;
        let env: serde_json::Value = serde_json::from_str(j.trim()).expect("json .Config.Env");
        assert_eq!(env, cfg["config"]["Env"]);
    }
}

#[test]
fn inspect_several_and_unknown() {
    let busybox = fixture("library/busybox:latest");
    let nginx = fixture("library/nginx:latest");
    let b = Berth::new();
    b.pull(&busybox);
    b.pull(&nginx);
    let v = b.ok_args(["inspect", &busybox, &nginx]).json();
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    // By short ID and full ID.
    let id = v[0]["Id"].as_str().unwrap_or_default().to_string();
    assert_eq!(b.inspect(&short(&id))["Id"], v[0]["Id"]);
    assert_eq!(b.inspect(&id)["Id"], v[0]["Id"]);
    // Unknown: docker prints [] on stdout, the error on stderr, exit 1.
    let r = b.run("inspect nosuchimage:atall").code(1);
    r.stderr_has("No such");
    r.stderr_has("nosuchimage:atall");
}

#[test]
fn history_matches_the_config() {
    for repo in ["library/nginx:latest", "library/busybox:latest"] {
        let img = fixture(repo);
        let b = Berth::new();
        b.pull(&img);
        let cfg = skopeo_inspect(&img, &["--config"]);
        let hist = cfg["history"].as_array().cloned().unwrap_or_default();
        assert!(!hist.is_empty(), "{repo}: fixture has history");

        let created_by = b.ok_args(["history", "--no-trunc", "--format", "{{.CreatedBy}}", &img]).lines();
        let want: Vec<String> =
            hist.iter().rev().map(|h| h["created_by"].as_str().unwrap_or_default().trim_end().to_string()).collect();
        assert_eq!(created_by, want, "{repo}: history is newest first");

        // The table: header and one row per entry; the top row is the image ID.
        let table = b.ok(&format!("history {img}")).lines();
        assert_eq!(table.len(), hist.len() + 1, "{repo}: {table:#?}");
        for col in ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"] {
            assert!(table[0].contains(col), "{repo}: header {:?} lacks {col}", table[0]);
        }
        let id = b.inspect(&img)["Id"].as_str().unwrap_or_default().to_string();
        assert!(table[1].starts_with(&short(&id)), "{repo}: first row {:?}", table[1]);
        assert!(table.iter().skip(2).any(|l| l.starts_with("<missing>")), "{repo}: lower rows are <missing>");

        let q = b.ok(&format!("history -q {img}")).lines();
        assert_eq!(q.len(), hist.len(), "{repo}: -q prints one line per entry");
        assert_eq!(q[0], short(&id));
        let full = b.ok(&format!("history -q --no-trunc {img}")).lines();
        assert_eq!(full[0], id);

        // -H=false: sizes in bytes, creation as RFC 3339; empty layers have size 0.
        let sizes = b.ok_args(["history", "-H=false", "--format", "{{.Size}}|{{.CreatedAt}}", &img]).lines();
        let mut nonempty = 0;
        for (line, h) in sizes.iter().zip(hist.iter().rev()) {
            let (size, at) = line.split_once('|').expect("two fields");
            let n: u64 = size.parse().unwrap_or_else(|_| panic!("{repo}: size {size:?} is not a byte count"));
            if h["empty_layer"].as_bool() == Some(true) {
                assert_eq!(n, 0, "{repo}: empty layer has size 0");
            } else {
                nonempty += 1;
                assert!(n > 0, "{repo}: layer row has size 0: {line}");
            }
            assert!(at.starts_with("2024-01-01T00:00:00"), "{repo}: CreatedAt {at:?}");
        }
        assert_eq!(nonempty, cfg["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len));
        let human = b.ok_args(["history", "--format", "{{.Size}}", &img]).lines();
        assert!(human.iter().any(|s| s.ends_with("MB") || s.ends_with("kB")), "{repo}: -H sizes {human:?}");
    }
}

#[test]
fn images_listing_formats_and_quiet() {
    let busybox = fixture("library/busybox:latest");
    let nginx = fixture("library/nginx:latest");
    let b = Berth::new();
    b.pull(&busybox);
    b.pull(&nginx);
    b.ok(&format!("tag {busybox} {}/library/busybox:second", registries().plain));
    let bid = b.inspect(&busybox)["Id"].as_str().unwrap_or_default().to_string();
    let nid = b.inspect(&nginx)["Id"].as_str().unwrap_or_default().to_string();
    let host = registries().plain.clone();

    let mut names = b.ok_args(["images", "--format", "{{.Repository}}:{{.Tag}}"]).lines();
    names.sort();
    assert_eq!(
        names,
        vec![
            format!("{host}/library/busybox:latest"),
            format!("{host}/library/busybox:second"),
            format!("{host}/library/nginx:latest")
        ]
    );

    // Default table.
    let t = b.ok("images").lines();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(t[0].contains(col), "header {:?} lacks {col}", t[0]);
    }
    assert_eq!(t.len(), 4);
    assert!(t.iter().any(|l| l.contains(&short(&bid)) && l.contains("second")));

    // table prefix: a header from the field names.
    let t = b.ok_args(["images", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}"]).lines();
    let header: Vec<&str> = t[0].split_whitespace().collect();
    assert_eq!(header, vec!["REPOSITORY", "TAG", "IMAGE", "ID"]);
    assert_eq!(t.len(), 4);

    // json: one object per line with docker's keys.
    let j = b.ok_args(["images", "--format", "json"]).lines();
    assert_eq!(j.len(), 3);
    for line in &j {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for k in ["Repository", "Tag", "ID", "Digest", "CreatedAt", "CreatedSince", "Size"] {
            assert!(v.get(k).is_some(), "json line lacks {k}: {line}");
        }
    }

    // -q: one short ID per row, as docker 20.10 prints them (checked against the CI dockerd:
    // an image with two tags is listed twice).
    let mut q = b.ok("images -q").lines();
    q.sort();
    let mut want = vec![short(&bid), short(&bid), short(&nid)];
    want.sort();
    assert_eq!(q, want);
    let nt = b.ok("images -q --no-trunc").lines();
    assert!(nt.contains(&bid) && nt.contains(&nid), "{nt:?}");

    // --digests adds a DIGEST column with the manifest digest.
    let digest = skopeo_inspect(&busybox, &[])["Digest"].as_str().unwrap_or_default().to_string();
    let t = b.ok("images --digests").lines();
    assert!(t[0].contains("DIGEST"), "{:?}", t[0]);
    assert!(t.iter().any(|l| l.contains("latest") && l.contains(&digest)), "{t:#?}");
    let d = b.ok_args(["images", "--digests", "--format", "{{.Tag}} {{.Digest}}"]).lines();
    assert!(d.contains(&format!("latest {digest}")) || d.iter().any(|l| l.ends_with(&digest)), "{d:?}");

    // A repository argument filters (docker: images [REPOSITORY[:TAG]]).
    let only = b.ok_args(["images", "--format", "{{.Repository}}:{{.Tag}}", &format!("{host}/library/nginx")]).lines();
    assert_eq!(only, vec![nginx.clone()]);
    let only = b
        .ok_args(["images", "--format", "{{.Repository}}:{{.Tag}}", &format!("{host}/library/busybox:second")])
        .lines();
    assert_eq!(only, vec![format!("{host}/library/busybox:second")]);
}

#[test]
fn images_filters() {
    let busybox = fixture("library/busybox:latest");
    let nginx = fixture("library/nginx:latest");
    let b = Berth::new();
    b.pull(&busybox);
    b.pull(&nginx);
    let host = registries().plain.clone();
    let bid = short(b.inspect(&busybox)["Id"].as_str().unwrap_or_default());
    let nid = short(b.inspect(&nginx)["Id"].as_str().unwrap_or_default());

    // A labelled image, loaded from an archive we build.
    let dir = tempdir("labels");
    let (archive, cfg_digest) = make_docker_archive(
        dir.path(),
        "labelled",
        Some("berth-it/labelled:v1"),
        &[("hello.txt", b"hello\n")],
        json!({"Labels": {"org.example.team": "infra", "flavour": "vanilla"}}),
        "2025-06-01T00:00:00Z",
    );
    b.ok(&format!("load -q -i {}", archive.display()));
    let lid = short(&cfg_digest);

    let ids = |filter: &str| -> Vec<String> {
        let mut v = b.ok_args(["images", "-q", "--filter", filter]).lines();
        v.sort();
        v
    };
    assert_eq!(ids("label=org.example.team"), vec![lid.clone()]);
    assert_eq!(ids("label=org.example.team=infra"), vec![lid.clone()]);
    assert!(ids("label=org.example.team=other").is_empty());
    assert_eq!(ids(&format!("reference={host}/library/busy*")), vec![bid.clone()]);
    assert_eq!(ids("reference=berth-it/labelled"), vec![lid.clone()]);
    assert_eq!(ids(&format!("reference={host}/library/nginx:latest")), vec![nid.clone()]);
    assert!(ids("dangling=true").is_empty(), "nothing is dangling yet");
    let mut all = vec![bid.clone(), nid.clone(), lid.clone()];
    all.sort();
    assert_eq!(ids("dangling=false"), all);
    // before/since compare creation times: busybox and nginx are from 2024, labelled from 2025.
    assert_eq!(ids("since=berth-it/labelled:v1"), Vec::<String>::new());
    let mut older = vec![bid.clone(), nid.clone()];
    older.sort();
    assert_eq!(ids("before=berth-it/labelled:v1"), older);

    // Moving the busybox tag onto nginx leaves busybox untagged: dangling.
    b.ok(&format!("tag {nginx} {busybox}"));
    assert_eq!(ids("dangling=true"), vec![bid.clone()]);
    let rows = b.ok_args(["images", "--filter", "dangling=true", "--format", "{{.Repository}} {{.Tag}}"]).lines();
    // It keeps its repo digest, so docker shows the repository with tag <none>.
    assert_eq!(rows, vec![format!("{host}/library/busybox <none>")]);

    // Unknown filter: docker's error and exit code.
    let r = b.run_args(["images", "--filter", "colour=blue"]).fails();
    r.stderr_has("colour");
}
