//! `berth image copy` between every pair of transports: docker://, oci:, oci-archive:, docker-archive:
//! and the store (berth:). Each destination is read back independently (skopeo for registries
//! and docker archives, our own digest-checking reader for OCI layouts, `berth inspect` and
//! `system check` for stores) and compared with the source image.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    Docker,
    Oci,
    OciArchive,
    DockerArchive,
    Store,
}

const ALL: [T; 5] = [T::Docker, T::Oci, T::OciArchive, T::DockerArchive, T::Store];

impl T {
    fn name(self) -> &'static str {
        match self {
            T::Docker => "docker",
            T::Oci => "oci",
            T::OciArchive => "oci-archive",
            T::DockerArchive => "docker-archive",
            T::Store => "berth",
        }
    }

    /// Whether the transport stores the manifest bytes (docker-archive keeps only config and
    /// layers).
    fn keeps_manifest(self) -> bool {
        self != T::DockerArchive
    }
}

/// What an image looks like once read back.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    manifest: Option<String>,
    config: String,
    diff_ids: Vec<String>,
}

/// A location of a transport, and the berth store used for `berth:` names.
struct Loc {
    t: T,
    arg: String,
    path: PathBuf,
    tag: String,
}

fn loc(t: T, dir: &Path, label: &str) -> Loc {
    let host = registries().plain.clone();
    match t {
        T::Docker => {
            let r = format!("{host}/{}:{label}", unique_repo("cp"));
            Loc { t, arg: format!("docker://{r}"), path: PathBuf::from(&r), tag: label.into() }
        }
        T::Oci => {
            let p = dir.join(format!("oci-{label}"));
            Loc { t, arg: format!("oci:{}:{label}", p.display()), path: p, tag: label.into() }
        }
        T::OciArchive => {
            let p = dir.join(format!("oci-{label}.tar"));
            Loc { t, arg: format!("oci-archive:{}:{label}", p.display()), path: p, tag: label.into() }
        }
        T::DockerArchive => {
            let p = dir.join(format!("docker-{label}.tar"));
            Loc { t, arg: format!("docker-archive:{}:berth-it/cp:{label}", p.display()), path: p, tag: label.into() }
        }
        T::Store => {
            let name = format!("berth-it/cp-store:{label}");
            Loc { t, arg: format!("berth:{name}"), path: PathBuf::from(name), tag: label.into() }
        }
    }
}

fn sha256_bytes(dir: &Path, data: &[u8]) -> String {
    let f = dir.join(".hash-tmp");
    std::fs::write(&f, data).expect("write");
    let d = sha256_file(&f);
    let _ = std::fs::remove_file(&f);
    d
}

/// Reads an OCI layout: finds `tag`, checks the digest of every blob the image references
/// (manifests of an index too), returns what the (host-platform) image is.
fn read_layout(dir: &Path, tag: &str) -> (Seen, serde_json::Value) {
    let index = read_json(&dir.join("index.json"));
    let layout = read_json(&dir.join("oci-layout"));
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let entry = index["manifests"]
        .as_array()
        .and_then(|m| m.iter().find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag))
        .cloned()
        .unwrap_or_else(|| panic!("{}: no entry named {tag}: {index:#}", dir.display()));
    let blob = |digest: &str, size: Option<u64>| -> Vec<u8> {
        let p = dir.join("blobs").join(digest.replace(':', "/"));
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(sha256_file(&p), digest, "{} has the wrong digest", p.display());
        if let Some(s) = size {
            assert_eq!(data.len() as u64, s, "{} size", p.display());
        }
        data
    };
    let top_digest = entry["digest"].as_str().unwrap_or_default().to_string();
    let top: serde_json::Value =
        serde_json::from_slice(&blob(&top_digest, entry["size"].as_u64())).expect("manifest json");
    let manifest_of = |m: &serde_json::Value, digest: String| -> Seen {
        let config_digest = m["config"]["digest"].as_str().unwrap_or_default().to_string();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(&config_digest, m["config"]["size"].as_u64())).expect("config json");
        for l in m["layers"].as_array().cloned().unwrap_or_default() {
            blob(l["digest"].as_str().unwrap_or_default(), l["size"].as_u64());
        }
        Seen { manifest: Some(digest), config: config_digest, diff_ids: strings(&config["rootfs"]["diff_ids"]) }
    };
    if let Some(list) = top["manifests"].as_array() {
        let mut host = None;
        for d in list {
            let digest = d["digest"].as_str().unwrap_or_default().to_string();
            let m: serde_json::Value = serde_json::from_slice(&blob(&digest, d["size"].as_u64())).expect("json");
            let seen = manifest_of(&m, digest);
            if d["platform"]["architecture"] == host_arch() {
                host = Some(seen);
            }
        }
        let mut s = host.expect("index has the host platform");
        s.manifest = Some(top_digest);
        (s, top)
    } else {
        (manifest_of(&top, top_digest), top)
    }
}

fn untar(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).expect("mkdir");
    let mut c = Command::new("tar");
    c.arg("-xf").arg(archive).arg("-C").arg(into);
    run_cmd(c).ok();
}

/// Reads back what `l` holds; `store` is the berth installation for `berth:` locations.
fn read_back(l: &Loc, store: &Berth, scratch: &Path) -> Seen {
    match l.t {
        T::Docker => {
            let r = l.path.display().to_string();
            let info = skopeo_inspect(&r, &[]);
            let cfg = skopeo_inspect(&r, &["--config"]);
            // Every blob fetched and verified.
            let dst = scratch.join(format!("verify-{}", r.replace(['/', ':'], "_")));
            skopeo(["copy", "--src-tls-verify=false", &format!("docker://{r}"), &format!("dir:{}", dst.display())])
                .ok();
            let raw = skopeo_raw(&r);
            let config = if raw["manifests"].is_array() {
                // An index: the host platform's config, as skopeo --config resolved it.
                let cfg_raw =
                    skopeo(["inspect", "--tls-verify=false", "--config", "--raw", &format!("docker://{r}")]).ok();
                sha256_bytes(scratch, cfg_raw.stdout.as_bytes())
            } else {
                raw["config"]["digest"].as_str().unwrap_or_default().to_string()
            };
            Seen {
                manifest: info["Digest"].as_str().map(str::to_string),
                config,
                diff_ids: strings(&cfg["rootfs"]["diff_ids"]),
            }
        }
        T::Oci => read_layout(&l.path, &l.tag).0,
        T::OciArchive => {
            let d = scratch.join(format!("x-{}", l.path.file_name().unwrap_or_default().to_string_lossy()));
            untar(&l.path, &d);
            read_layout(&d, &l.tag).0
        }
        T::DockerArchive => {
            let src = format!("docker-archive:{}", l.path.display());
            let info = skopeo(["inspect", &src]).ok().json();
            let cfg_raw = skopeo(["inspect", "--config", "--raw", &src]).ok();
            let dst = scratch.join(format!("verify-da-{}", l.tag));
            skopeo(["copy", &src, &format!("dir:{}", dst.display())]).ok();
            let d = scratch.join(format!("xd-{}", l.tag));
            untar(&l.path, &d);
            let manifest = read_json(&d.join("manifest.json"));
            let tags = strings(&manifest[0]["RepoTags"]);
            assert_eq!(tags, vec![format!("berth-it/cp:{}", l.tag)], "docker-archive RepoTags");
            Seen {
                manifest: None,
                config: sha256_bytes(scratch, cfg_raw.stdout.as_bytes()),
                diff_ids: strings(&info["Layers"]),
            }
        }
        T::Store => {
            let name = l.path.display().to_string();
            let v = store.inspect(&name);
            store.check_store();
            Seen {
                manifest: v["Descriptor"]["digest"].as_str().map(str::to_string),
                config: v["Id"].as_str().unwrap_or_default().to_string(),
                diff_ids: strings(&v["RootFS"]["Layers"]),
            }
        }
    }
}

#[test]
fn cp_between_every_pair_of_transports() {
    let img = fixture("library/nginx:latest");
    let scratch = tempdir("cp");
    let b = Berth::new();
    let want = {
        let cfg = skopeo_inspect(&img, &["--config"]);
        Seen {
            manifest: skopeo_inspect(&img, &[])["Digest"].as_str().map(str::to_string),
            config: skopeo_raw(&img)["config"]["digest"].as_str().unwrap_or_default().to_string(),
            diff_ids: strings(&cfg["rootfs"]["diff_ids"]),
        }
    };
    let mut failures = Vec::new();
    for s in ALL {
        // The source: the fixture itself, or a copy of it made by berth.
        let src = if s == T::Docker {
            Loc { t: T::Docker, arg: format!("docker://{img}"), path: PathBuf::from(&img), tag: "latest".into() }
        } else {
            let l = loc(s, scratch.path(), &format!("src-{}", s.name()));
            b.ok_args(["image", "copy", "-q", &format!("docker://{img}"), &l.arg]);
            l
        };
        let seen_src = read_back(&src, &b, scratch.path());
        assert_eq!(seen_src.config, want.config, "source {}", s.name());
        for d in ALL {
            let dst = loc(d, scratch.path(), &format!("{}-to-{}", s.name(), d.name()));
            let r = b.run_args(["image", "copy", "-q", &src.arg, &dst.arg]);
            if !r.success() {
                failures.push(format!("image copy {} -> {}: {}", s.name(), d.name(), r.stderr.trim()));
                continue;
            }
            let seen = read_back(&dst, &b, scratch.path());
            if seen.config != want.config || seen.diff_ids != want.diff_ids {
                failures.push(format!("image copy {} -> {}: got {seen:?}, want {want:?}", s.name(), d.name()));
            }
            // No recompression was asked: where both ends keep manifests, the digest is kept.
            if s.keeps_manifest() && d.keeps_manifest() && seen.manifest != want.manifest {
                failures.push(format!(
                    "cp {} -> {}: manifest digest {:?}, source {:?}",
                    s.name(),
                    d.name(),
                    seen.manifest,
                    want.manifest
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of 25 copies wrong:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn cp_all_platforms_of_an_index() {
    let img = fixture("library/busybox-multi:latest");
    let index_digest = skopeo_inspect(&img, &[])["Digest"].as_str().unwrap_or_default().to_string();
    let scratch = tempdir("cp-all");
    let b = Berth::new();

    // --all: the index and every platform's blobs.
    let oci = scratch.path().join("all");
    b.ok_args(["image", "copy", "-q", "--all", &format!("docker://{img}"), &format!("oci:{}:multi", oci.display())]);
    let (seen, top) = read_layout(&oci, "multi");
    assert_eq!(seen.manifest.as_deref(), Some(index_digest.as_str()), "index digest preserved");
    assert_eq!(top["manifests"].as_array().map(Vec::len), Some(3));

    // Through the store and back to a registry: still the same index.
    b.ok_args(["image", "copy", "-q", "--all", &format!("oci:{}:multi", oci.display()), "berth:berth-it/multi:all"]);
    b.check_store();
    let target = format!("{}/{}:all", registries().plain, unique_repo("cp-all"));
    b.ok_args(["image", "copy", "-q", "--all", "berth:berth-it/multi:all", &format!("docker://{target}")]);
    assert_eq!(skopeo_inspect(&target, &[])["Digest"].as_str(), Some(index_digest.as_str()));
    for arch in ["amd64", "arm64", "arm"] {
        let cfg = skopeo([
            "inspect",
            "--tls-verify=false",
            "--override-arch",
            arch,
            "--config",
            &format!("docker://{target}"),
        ])
        .ok()
        .json();
        assert_eq!(cfg["architecture"], arch);
    }
    let a = scratch.path().join("all-archive.tar");
    b.ok_args(["image", "copy", "-q", "--all", &format!("docker://{img}"), &format!("oci-archive:{}:m", a.display())]);
    let x = scratch.path().join("all-archive");
    untar(&a, &x);
    assert_eq!(read_layout(&x, "m").0.manifest.as_deref(), Some(index_digest.as_str()));

    // Without --all: only the host platform (or --platform), as a plain manifest.
    let one = scratch.path().join("one");
    b.ok_args(["image", "copy", "-q", &format!("docker://{img}"), &format!("oci:{}:one", one.display())]);
    let (_, top) = read_layout(&one, "one");
    assert!(top["manifests"].is_null(), "a single manifest, not an index: {top:#}");
    let arm = scratch.path().join("arm");
    b.ok_args([
        "image",
        "copy",
        "-q",
        "--platform",
        "linux/arm64",
        &format!("docker://{img}"),
        &format!("oci:{}:arm", arm.display()),
    ]);
    let (seen, _) = read_layout(&arm, "arm");
    let cfg = read_json(&arm.join("blobs").join(seen.config.replace(':', "/")));
    assert_eq!(cfg["architecture"], "arm64");
}

#[test]
fn cp_errors_name_the_endpoint() {
    let b = Berth::new();
    let r = b.run("image copy oci:/nonexistent/layout:x berth:x").code(1);
    r.stderr_has("/nonexistent/layout");
    let r = b.run("image copy bogus://x berth:x").fails();
    assert!(!r.stderr.is_empty());
    let img = fixture("library/busybox:latest");
    let r = b.run(&format!("image copy docker://{img}-nope berth:x")).code(1);
    r.stderr_has("busybox");
}

#[test]
fn cp_dest_compress_format_zstd() {
    let img = fixture("library/busybox:latest");
    let scratch = tempdir("cp-zstd");
    let b = Berth::new();
    let dir = scratch.path().join("z");
    b.ok_args([
        "image",
        "copy",
        "-q",
        "--dest-compress-format",
        "zstd",
        &format!("docker://{img}"),
        &format!("oci:{}:z", dir.display()),
    ]);
    let (seen, top) = read_layout(&dir, "z");
    let t = top["layers"][0]["mediaType"].as_str().unwrap_or_default();
    assert!(t.ends_with("+zstd"), "layer type {t}");
    let cfg = skopeo_inspect(&img, &["--config"]);
    assert_eq!(seen.diff_ids, strings(&cfg["rootfs"]["diff_ids"]), "same content");
    assert_ne!(seen.manifest, skopeo_inspect(&img, &[])["Digest"].as_str().map(str::to_string), "recompressed");
}
