//! `save` and `load`: archives read back by skopeo, podman and docker; archives written by skopeo
//! loaded by berth; compressed and stdin loads; round trips.

mod common;

use std::process::Command;

use common::*;

fn id_of(b: &Berth, r: &str) -> String {
    b.inspect(r)["Id"].as_str().unwrap_or_default().to_string()
}

fn tar_list(path: &std::path::Path) -> Vec<String> {
    let mut c = Command::new("tar");
    c.arg("-tf").arg(path);
    run_cmd(c).ok().lines()
}

/// Extracts one member of a tar to a string.
fn tar_member(path: &std::path::Path, member: &str) -> String {
    let mut c = Command::new("tar");
    c.arg("-xOf").arg(path).arg(member);
    run_cmd(c).ok().stdout
}

#[test]
fn save_is_a_docker_archive_skopeo_reads() {
    let busybox = fixture("library/busybox:latest");
    let nginx = fixture("library/nginx:latest");
    let b = Berth::new();
    b.pull(&busybox);
    b.pull(&nginx);
    let out = b.dir.path().join("two.tar");
    let r = b.ok(&format!("save -o {} {busybox} {nginx}", out.display()));
    assert!(r.stdout.is_empty(), "save -o prints nothing on stdout");

    let members = tar_list(&out);
    for m in ["manifest.json", "repositories", "index.json", "oci-layout"] {
        assert!(members.iter().any(|x| x == m), "archive lacks {m}: {members:#?}");
    }
    let manifest: serde_json::Value = serde_json::from_str(&tar_member(&out, "manifest.json")).expect("manifest.json");
    assert_eq!(manifest.as_array().map(Vec::len), Some(2), "{manifest:#}");
    let repos: serde_json::Value = serde_json::from_str(&tar_member(&out, "repositories")).expect("repositories");
    assert!(repos.get(format!("{}/library/busybox", registries().plain)).is_some(), "{repos:#}");

    for (img, tag_index) in [(&busybox, 0), (&nginx, 1)] {
        let v = b.inspect(img);
        // skopeo picks an image of a multi-image archive by index (`:@N`) or by name.
        let loc = format!("docker-archive:{}:{img}", out.display());
        let info = skopeo(["inspect", &loc]).ok().json();
        assert_eq!(info["Layers"], v["RootFS"]["Layers"], "{img}: layers as diff IDs");
        assert_eq!(info["Architecture"], v["Architecture"]);
        let cfg = skopeo(["inspect", "--config", "--raw", &loc]).ok();
        let cfg_file = b.dir.path().join(format!("cfg{tag_index}.json"));
        std::fs::write(&cfg_file, cfg.stdout.as_bytes()).expect("write config");
        assert_eq!(sha256_file(&cfg_file), v["Id"].as_str().unwrap_or_default(), "{img}: config bytes preserved");
        // And skopeo can copy it out, verifying every blob.
        let dst = b.dir.path().join(format!("oci{tag_index}"));
        skopeo(["copy", &loc, &format!("oci:{}:x", dst.display())]).ok();
    }
}

#[test]
fn save_to_stdout_and_load_from_stdin_round_trip() {
    let busybox = fixture("library/busybox:latest");
    let a = Berth::new();
    a.pull(&busybox);
    let id = id_of(&a, &busybox);
    let mut c = a.cmd(["save", &busybox]);
    c.stdout(std::process::Stdio::piped());
    let out = c.output().expect("run save");
    assert!(out.status.success(), "save to stdout: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.len() > 1_000_000, "archive on stdout");

    let b = Berth::new();
    let r = b.run_stdin("load", &out.stdout).ok();
    assert_eq!(r.lines(), vec![format!("Loaded image: {busybox}")]);
    assert_eq!(id_of(&b, &busybox), id, "round trip keeps the image ID");
    let va = a.inspect(&busybox);
    let vb = b.inspect(&busybox);
    for k in ["RootFS", "Config", "Architecture", "Os", "Created", "RepoTags"] {
        assert_eq!(va[k], vb[k], "{k} after save | load");
    }
    b.check_store();
    // Loading the same archive again is fine and changes nothing.
    b.run_stdin("load -q", &out.stdout).ok();
    assert_eq!(b.image_ids(), vec![id]);
}

#[test]
fn save_big_round_trip_keeps_id() {
    let big = fixture("library/big:latest");
    let a = Berth::new();
    a.pull(&big);
    let id = id_of(&a, &big);
    let out = a.dir.path().join("big.tar");
    a.ok(&format!("save -o {} {big}", out.display()));
    let b = Berth::new();
    b.ok(&format!("load -i {}", out.display())).stdout_has(&format!("Loaded image: {big}"));
    assert_eq!(id_of(&b, &big), id);
    assert_eq!(b.inspect(&big)["RootFS"], a.inspect(&big)["RootFS"]);
    b.check_store();
}

#[test]
fn load_compressed_archives() {
    let busybox = fixture("library/busybox:latest");
    let a = Berth::new();
    a.pull(&busybox);
    let id = id_of(&a, &busybox);
    let plain = a.dir.path().join("bb.tar");
    a.ok(&format!("save -o {} {busybox}", plain.display()));
    for (tool, ext) in [("gzip", "gz"), ("zstd", "zst"), ("xz", "xz"), ("bzip2", "bz2")] {
        need_tool(tool);
        let f = a.dir.path().join(format!("bb.tar.{ext}"));
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!("{tool} -c < '{}' > '{}'", plain.display(), f.display()));
        run_cmd(c).ok();
        let b = Berth::new();
        b.ok(&format!("load -i {}", f.display())).stdout_has(&format!("Loaded image: {busybox}"));
        assert_eq!(b.image_ids(), vec![id.clone()], "{tool}");
        // And from stdin.
        let c = Berth::new();
        let bytes = std::fs::read(&f).expect("read archive");
        c.run_stdin("load", &bytes).ok();
        assert_eq!(c.image_ids(), vec![id.clone()], "{tool} on stdin");
        c.check_store();
    }
}

#[test]
fn load_archives_written_by_skopeo() {
    let busybox = fixture("library/busybox:latest");
    let zstd = fixture("library/busybox-zstd:latest");
    let expected_id = skopeo_raw(&busybox)["config"]["digest"].as_str().unwrap_or_default().to_string();
    let dir = tempdir("skopeo-archives");

    // docker-archive with a name.
    let da = dir.path().join("da.tar");
    skopeo([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{busybox}"),
        &format!("docker-archive:{}:berth-it/from-skopeo:da", da.display()),
    ])
    .ok();
    let b = Berth::new();
    b.ok(&format!("load -i {}", da.display())).stdout_has("Loaded image: berth-it/from-skopeo:da");
    assert_eq!(id_of(&b, "berth-it/from-skopeo:da"), expected_id);

    // oci-archive with a tag (ref.name = "oa"); the zstd image keeps its zstd layer.
    let oa = dir.path().join("oa.tar");
    skopeo([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{busybox}"),
        &format!("oci-archive:{}:oa", oa.display()),
    ])
    .ok();
    let r = b.ok(&format!("load -i {}", oa.display()));
    assert!(r.stdout.starts_with("Loaded image"), "{}", r.stdout);
    assert!(b.image_ids().contains(&expected_id));
    let oz = dir.path().join("oz.tar");
    skopeo(["copy", "--src-tls-verify=false", &format!("docker://{zstd}"), &format!("oci-archive:{}:z", oz.display())])
        .ok();
    let c = Berth::new();
    c.ok(&format!("load -i {}", oz.display()));
    let zid = skopeo_raw(&zstd)["config"]["digest"].as_str().unwrap_or_default().to_string();
    assert_eq!(c.image_ids(), vec![zid]);
    b.check_store();
    c.check_store();
}

#[test]
fn load_garbage_fails_and_stores_nothing() {
    let b = Berth::new();
    let dir = tempdir("garbage");
    let f = dir.path().join("garbage.tar");
    std::fs::write(&f, b"this is not a tar archive at all\n".repeat(100)).expect("write");
    let r = b.run(&format!("load -i {}", f.display())).code(1);
    assert!(r.stderr.starts_with("Error"), "{}", r.stderr);
    // A tar without manifest.json or index.json.
    std::fs::write(dir.path().join("hello"), b"hi").expect("write");
    let mut c = Command::new("tar");
    c.arg("-C").arg(dir.path()).arg("-cf").arg(dir.path().join("empty.tar")).arg("hello");
    run_cmd(c).ok();
    b.run(&format!("load -i {}", dir.path().join("empty.tar").display())).code(1);
    let r = b.run("load -i /nonexistent/archive.tar").code(1);
    r.stderr_has("/nonexistent/archive.tar");
    assert!(b.image_ids().is_empty());
    b.check_store();
}

#[test]
fn saved_archive_loads_and_runs_in_podman() {
    let busybox = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&busybox);
    let id = id_of(&b, &busybox);
    b.ok(&format!("tag {busybox} berth-it/podman:run"));
    let out = b.dir.path().join("bb.tar");
    b.ok(&format!("save -o {} berth-it/podman:run", out.display()));

    let p = Podman::new();
    let r = p.run(["load", "-i", &out.display().to_string()]).ok();
    r.stdout_has("Loaded image");
    r.stdout_has("berth-it/podman:run");
    let ids = p.run(["images", "-q", "--no-trunc"]).ok().lines();
    assert_eq!(ids, vec![id.clone()], "podman sees the same image ID");
    // podman names it docker.io/berth-it/podman:run (a familiar name is a Hub name).
    let names = p.run(["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok().lines();
    assert_eq!(names, vec!["docker.io/berth-it/podman:run".to_string()]);
    let run = p.run(["run", "--rm", "--network", "none", "docker.io/berth-it/podman:run", "true"]);
    run.ok();
    let run = p.run(["run", "--rm", "--network", "none", &id, "cat", "/etc/passwd"]).ok();
    run.stdout_has("root:x:0:0");
}

#[test]
fn saved_archive_loads_in_docker() {
    let (host, docker) = dockerd();
    let busybox = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&busybox);
    let id = id_of(&b, &busybox);
    let name = format!("{}:t", unique_repo("docker-load"));
    b.ok(&format!("tag {busybox} {name}"));
    let out = b.dir.path().join("bb.tar");
    b.ok(&format!("save -o {} {name}", out.display()));

    let docker_cmd = |args: &[&str]| {
        let mut c = Command::new(&docker);
        c.args(args).env("DOCKER_HOST", &host).env("DOCKER_CONFIG", b.dir.path().join("docker-client"));
        c
    };
    std::fs::create_dir_all(b.dir.path().join("docker-client")).expect("mkdir");
    std::fs::write(b.dir.path().join("docker-client/config.json"), "{}").expect("config.json");
    let r = run_cmd(docker_cmd(&["load", "-i", &out.display().to_string()])).ok();
    r.stdout_has(&format!("Loaded image: {name}"));
    let v = run_cmd(docker_cmd(&["image", "inspect", "--format", "{{.Id}}", &name])).ok();
    assert_eq!(v.stdout.trim(), id);
    run_cmd(docker_cmd(&["rmi", &name])).ok();
}
