//! `berth pull` against the CI plain registry (scripts/ci/registry.sh, fixtures.sh).

mod common;

use common::*;

/// The unpacked top layer of an image, from `inspect`'s GraphDriver.LowerDir (first entry).
fn top_snapshot(b: &Berth, reference: &str) -> std::path::PathBuf {
    let v = b.inspect(reference);
    let lower = v["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap_or_else(|| panic!("no LowerDir in {v:#}"));
    std::path::PathBuf::from(lower.split(':').next().unwrap_or_default())
}

#[test]
fn pull_single_arch_progress_and_reference_on_stdout_then_up_to_date() {
    let img = fixture("library/busybox:latest");
    let want = skopeo_inspect(&img, &[]);
    let b = Berth::new();

    let r = b.ok(&format!("pull {}", img.trim_end_matches(":latest")));
    // Like docker: progress on stdout, the fully qualified reference as its last line, and
    // nothing on stderr (so `pull x | grep 'Downloaded newer image'` works).
    assert_eq!(r.lines().last(), Some(&img), "stdout of pull: {}", r.stdout);
    assert_eq!(r.lines().first().map(String::as_str), Some("Using default tag: latest"));
    r.stdout_has("Pulling from library/busybox");
    r.stdout_has(&format!("Digest: {}", want["Digest"].as_str().unwrap_or_default()));
    r.stdout_has("Status: Downloaded newer image for");
    r.stdout_has("Pull complete");
    assert!(r.stderr.trim().is_empty(), "pull wrote to stderr: {}", r.stderr);

    let again = b.ok(&format!("pull {img}"));
    again.stdout_has("Status: Image is up to date for");
    assert_eq!(again.lines().last(), Some(&img));

    let v = b.inspect(&img);
    let raw = skopeo_raw(&img);
    assert_eq!(v["Id"], raw["config"]["digest"], "image ID is the config digest");
    assert_eq!(strings(&v["RepoTags"]), vec![img.clone()]);
    b.check_store();
}

#[test]
fn pull_quiet_prints_only_the_reference() {
    let img = fixture("library/busybox:latest");
    let b = Berth::new();
    let r = b.ok(&format!("pull -q {img}"));
    assert_eq!(r.stdout, format!("{img}\n"));
    assert!(!r.stderr.contains("Pulling"), "-q printed progress: {}", r.stderr);
    // The reference is printed fully qualified even for a short name with an explicit registry.
    assert_eq!(b.image_ids().len(), 1);
}

#[test]
fn pull_multi_arch_index_and_list_pick_the_host_platform() {
    for tag in ["latest", "list"] {
        let img = fixture(&format!("library/busybox-multi:{tag}"));
        let b = Berth::new();
        b.pull(&img);
        let v = b.inspect(&img);
        assert_eq!(v["Architecture"], host_arch(), "{tag}: {v:#}");
        assert_eq!(v["Os"], "linux");
        // RepoDigests name the index/list digest, as docker does.
        let index_digest = skopeo_inspect(&img, &[])["Digest"].as_str().unwrap_or_default().to_string();
        let repo_digests = strings(&v["RepoDigests"]);
        assert!(
            repo_digests.iter().any(|d| d.ends_with(&index_digest)),
            "{tag}: RepoDigests {repo_digests:?} lack the index digest {index_digest}"
        );
        let platform = std::fs::read_to_string(top_snapshot(&b, &img).join("etc/berth-fixture-platform"))
            .expect("the unpacked layer has /etc/berth-fixture-platform");
        assert_eq!(platform.trim(), format!("linux/{}", host_arch()), "{tag}");
        b.check_store();
    }
}

#[test]
fn pull_platform_arm64_gets_the_arm64_manifest() {
    for tag in ["latest", "list"] {
        let img = fixture(&format!("library/busybox-multi:{tag}"));
        let b = Berth::new();
        b.ok(&format!("pull -q --platform linux/arm64 {img}"));
        let v = b.inspect(&img);
        assert_eq!(v["Architecture"], "arm64", "{tag}: {v:#}");
        assert_eq!(v["Variant"], "v8", "{tag}");
        // Its config is the one the arm64 entry of the index points at.
        let raw = skopeo_raw(&img);
        let arm = raw["manifests"]
            .as_array()
            .and_then(|m| m.iter().find(|d| d["platform"]["architecture"] == "arm64"))
            .cloned()
            .unwrap_or_else(|| panic!("no arm64 entry in {raw:#}"));
        let host = registries().plain.clone();
        let arm_manifest =
            skopeo_raw(&format!("{host}/library/busybox-multi@{}", arm["digest"].as_str().unwrap_or_default()));
        assert_eq!(v["Id"], arm_manifest["config"]["digest"], "{tag}");
        let platform = std::fs::read_to_string(top_snapshot(&b, &img).join("etc/berth-fixture-platform"))
            .expect("unpacked /etc/berth-fixture-platform");
        assert_eq!(platform.trim(), "linux/arm64/v8", "{tag}");
    }
}

#[test]
fn pull_missing_platform_fails_listing_the_available_ones() {
    let img = fixture("library/busybox-multi:latest");
    let b = Berth::new();
    let r = b.run(&format!("pull --platform linux/s390x {img}")).code(1);
    r.stderr_has("linux/s390x");
    for p in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
        r.stderr_has(p);
    }
    assert!(b.image_ids().is_empty(), "a failed pull stored an image");
    b.check_store();
}

#[test]
fn pull_zstd_and_uncompressed_layers() {
    let busybox = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&busybox);
    let diff_ids = b.inspect(&busybox)["RootFS"]["Layers"].clone();
    for repo in ["library/busybox-zstd:latest", "library/busybox-uncompressed:latest"] {
        let img = fixture(repo);
        let r = b.ok(&format!("pull {img}"));
        assert_eq!(r.lines().last(), Some(&img));
        let v = b.inspect(&img);
        // Same uncompressed content, so the same diff ID as the gzip busybox.
        assert_eq!(v["RootFS"]["Layers"], diff_ids, "{repo}");
        let raw = skopeo_raw(&img);
        assert_eq!(v["Id"], raw["config"]["digest"], "{repo}");
    }
    // A second store with only the zstd image, to be sure nothing came from the gzip layer.
    let z = Berth::new();
    let img = fixture("library/busybox-zstd:latest");
    z.pull(&img);
    assert!(top_snapshot(&z, &img).join("bin/busybox").is_file(), "zstd layer unpacked");
    z.check_store();
    b.check_store();
}

#[test]
fn pull_by_digest() {
    let img = fixture("library/busybox:latest");
    let digest = skopeo_inspect(&img, &[])["Digest"].as_str().unwrap_or_default().to_string();
    let host = registries().plain.clone();
    let by_digest = format!("{host}/library/busybox@{digest}");
    let b = Berth::new();
    let r = b.ok(&format!("pull {by_digest}"));
    assert_eq!(r.lines().last(), Some(&by_digest));
    let v = b.inspect(&by_digest);
    assert!(strings(&v["RepoDigests"]).contains(&by_digest), "{v:#}");
    assert!(strings(&v["RepoTags"]).is_empty(), "a pull by digest adds no tag: {v:#}");
    // docker lists it as <none> with the digest.
    let listed = b.ok("images --digests --format {{.Repository}}|{{.Tag}}|{{.Digest}}").lines();
    assert_eq!(listed, vec![format!("{host}/library/busybox|<none>|{digest}")]);
    // name:tag@digest pulls by digest too (the tag is ignored, as docker does).
    let b2 = Berth::new();
    b2.ok(&format!("pull -q {host}/library/busybox:latest@{digest}"));
    assert_eq!(b2.image_ids(), b.image_ids());

    // A digest the registry does not have: error naming it, nothing stored.
    let bad = format!("{host}/library/busybox@sha256:{}", "0".repeat(64));
    let b3 = Berth::new();
    let r = b3.run(&format!("pull {bad}")).code(1);
    r.stderr_has(&"0".repeat(64));
    assert!(b3.image_ids().is_empty());
}

#[test]
fn pull_all_tags() {
    let img = fixture("library/busybox:latest");
    fixture("library/busybox:1.36");
    fixture("library/busybox:oci");
    let host = registries().plain.clone();
    let b = Berth::new();
    b.ok(&format!("pull -a -q {host}/library/busybox"));
    let mut tags = b.ok("images --format {{.Tag}}").lines();
    tags.sort();
    let mut want = strings(&skopeo_inspect(&img, &[])["RepoTags"]);
    want.sort();
    assert_eq!(tags, want);
    b.check_store();
}

#[test]
fn pull_unknown_repository_and_tag_fail_cleanly() {
    let host = require(Reg::Plain);
    let b = Berth::new();
    let r = b.run(&format!("pull {host}/berth-it/does-not-exist:nope")).code(1);
    r.stderr_has("berth-it/does-not-exist");
    // (An uppercase first component is a registry host for docker, so use a later one.)
    let r = b.run("pull library/BusyBox").code(1);
    r.stderr_has("invalid reference format: repository name (library/BusyBox) must be lowercase");
    let r = b.run(&format!("pull {host}/library/busybox:bad@tag")).code(1);
    r.stderr_has("invalid reference format");
    assert!(b.image_ids().is_empty());
}
