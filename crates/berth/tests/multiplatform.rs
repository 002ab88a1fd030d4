//! Multi-platform images in the local store and on the wire, against the CI plain registry:
//! a name keeps its index and the platforms fetched so far; pull/inspect/history/push/save/load/
//! rmi/run with and without --platform.

mod common;

use common::*;

fn arch_of(b: &Berth, args: &str) -> String {
    let v = b.ok(&format!("image inspect {args}")).json();
    let p =
        format!("{}/{}", v[0]["Os"].as_str().unwrap_or_default(), v[0]["Architecture"].as_str().unwrap_or_default());
    match v[0]["Variant"].as_str() {
        Some(var) if !var.is_empty() => format!("{p}/{var}"),
        _ => p,
    }
}

/// The regression of issue 11: after a pull of the host's platform, `pull --platform
/// linux/arm64` said "up to date" and kept amd64; `--platform linux/s390x` succeeded.
#[test]
fn pull_platform_after_pull_fetches_that_platform_and_unknown_platform_fails_listing_them() {
    let img = fixture("library/busybox-multi:latest");
    let b = Berth::new();
    b.ok(&format!("pull {img}")).stdout_has("Status: Downloaded newer image for");
    assert_eq!(arch_of(&b, &img), format!("linux/{}", host_arch()));

    let r = b.ok(&format!("pull --platform linux/arm64 {img}"));
    r.stdout_has("Status: Downloaded newer image for");
    assert_eq!(arch_of(&b, &format!("--platform linux/arm64 {img}")), "linux/arm64/v8");
    // The host's platform is still there and is what the name shows by default.
    assert_eq!(arch_of(&b, &img), format!("linux/{}", host_arch()));
    // One name, one row.
    let rows = b.ok("images --format {{.Repository}}:{{.Tag}}").lines();
    assert_eq!(rows, vec![img.clone()], "images lists a multi-platform image once");

    // Now both are stored: up to date for either.
    b.ok(&format!("pull --platform linux/arm64 {img}")).stdout_has("Status: Image is up to date for");
    b.ok(&format!("pull {img}")).stdout_has("Status: Image is up to date for");

    // A platform the index lacks fails and lists the ones it has, also when the name is stored.
    let r = b.run(&format!("pull --platform linux/s390x {img}")).code(1);
    r.stderr_has("no matching manifest for linux/s390x");
    for p in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
        r.stderr_has(p);
    }
    // A platform the index has but the store lacks: inspect says so and lists what is stored.
    let r = b.run(&format!("image inspect --platform linux/arm/v7 {img}")).fails();
    r.stderr_has("linux/arm/v7");

    // history follows --platform (the arm64 image has its own config, hence ID).
    let arm_id = b.ok(&format!("image inspect --platform linux/arm64 -f {{{{.Id}}}} {img}")).stdout.trim().to_string();
    let hist = b.ok(&format!("history -q --no-trunc --platform linux/arm64 {img}")).lines();
    assert_eq!(hist.first(), Some(&arm_id), "history --platform shows the arm64 image");
    let host_id = b.ok(&format!("image inspect -f {{{{.Id}}}} {img}")).stdout.trim().to_string();
    assert_ne!(arm_id, host_id);
    b.check_store();
}

#[test]
fn pull_platform_into_a_fresh_store_then_host_platform_adds_it() {
    let img = fixture("library/busybox-multi:list");
    let b = Berth::new();
    b.ok(&format!("pull -q --platform linux/arm/v7 {img}"));
    // Only arm/v7 is stored: the name shows it.
    assert_eq!(arch_of(&b, &img), "linux/arm/v7");
    b.ok(&format!("pull {img}")).stdout_has("Status: Downloaded newer image for");
    assert_eq!(arch_of(&b, &img), format!("linux/{}", host_arch()));
    assert_eq!(arch_of(&b, &format!("--platform linux/arm/v7 {img}")), "linux/arm/v7");
    b.check_store();
}

#[test]
fn all_platforms_survive_save_load_and_push_whole_or_one_platform() {
    let img = fixture("library/busybox-multi:latest");
    let index = skopeo_raw(&img);
    let index_digest = skopeo_inspect(&img, &[])["Digest"].as_str().unwrap_or_default().to_string();
    let b = Berth::new();
    b.ok(&format!("pull -q --all-platforms {img}"));
    for p in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
        assert_eq!(arch_of(&b, &format!("--platform {p} {img}")), p);
    }
    assert_eq!(b.ok("images -q").lines().len(), 1);

    // save writes every platform; load into another store brings them all back under the name.
    let dir = tempdir("mp-save");
    let tar = dir.path().join("multi.tar");
    b.ok(&format!("save -o {} {img}", tar.display()));
    let other = Berth::new();
    other.ok(&format!("load -i {}", tar.display())).stdout_has("Loaded image:");
    for p in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
        assert_eq!(arch_of(&other, &format!("--platform {p} {img}")), p);
    }
    other.check_store();

    // push sends the whole index, unchanged (same digest).
    let host = registries().plain.clone();
    let whole = format!("{host}/{}:v1", unique_repo("mp-whole"));
    b.ok(&format!("tag {img} {whole}"));
    b.ok(&format!("push {whole}")).stdout_has(&format!("digest: {index_digest}"));
    let pushed = skopeo_raw(&whole);
    assert_eq!(pushed, index, "the pushed index is the pulled one");
    let pushed_digest = skopeo_inspect(&whole, &[])["Digest"].as_str().unwrap_or_default().to_string();
    assert_eq!(pushed_digest, index_digest);
    // Each platform's image reads back.
    let arm = skopeo_inspect(&whole, &["--override-arch", "arm64"]);
    assert_eq!(arm["Architecture"], "arm64");

    // push --platform sends one platform's manifest.
    let one = format!("{host}/{}:arm64", unique_repo("mp-one"));
    b.ok(&format!("tag {img} {one}"));
    b.ok(&format!("push --platform linux/arm64 {one}"));
    let raw = skopeo_raw(&one);
    assert!(raw["layers"].is_array(), "push --platform wrote an image manifest: {raw:#}");
    assert_eq!(skopeo_inspect(&one, &[])["Architecture"], "arm64");

    // rmi removes the name with every platform; the store is then empty.
    b.ok(&format!("rmi {img} {whole} {one}"));
    assert!(b.image_ids().is_empty(), "images left: {:?}", b.image_ids());
    b.ok("image prune -af");
    b.check_store();
}

#[test]
fn push_of_a_partly_pulled_index_pushes_the_stored_platforms() {
    let img = fixture("library/busybox-multi:latest");
    let b = Berth::new();
    b.ok(&format!("pull -q {img}"));
    b.ok(&format!("pull -q --platform linux/arm64 {img}"));
    let host = registries().plain.clone();
    let dst = format!("{host}/{}:v1", unique_repo("mp-partial"));
    b.ok(&format!("tag {img} {dst}"));
    b.ok(&format!("push {dst}")).stderr_has("linux/arm/v7");
    let raw = skopeo_raw(&dst);
    let platforms: Vec<String> = raw["manifests"]
        .as_array()
        .map(|m| m.iter().map(|d| d["platform"]["architecture"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    assert_eq!(platforms, vec!["amd64".to_string(), "arm64".to_string()], "{raw:#}");
    // podman pulls the arm64 variant of berth's index.
    need_tool("podman");
    let p = Podman::new();
    let r = p.run(["pull", "-q", "--tls-verify=false", "--platform", "linux/arm64", dst.as_str()]);
    assert!(r.success(), "podman pull: {}", r.stderr);
    let r = p.run(["image", "inspect", "--format", "{{.Architecture}}", dst.as_str()]);
    assert_eq!(r.stdout.trim(), "arm64", "{}", r.stderr);
}

/// `run --platform linux/arm64` runs the arm64 image under QEMU user emulation (skipped where
/// no emulator is registered with the fix-binary flag; CI's install-deps.sh registers one).
#[test]
fn run_platform_arm64_runs_under_emulation() {
    let img = fixture("library/busybox-qemu:latest");
    let reg = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").unwrap_or_default();
    if !(reg.contains("enabled") && reg.lines().any(|l| l.starts_with("flags:") && l.contains('F'))) {
        eprintln!("SKIPPED: no qemu-aarch64 registered with binfmt_misc's F flag (scripts/ci/install-deps.sh)");
        return;
    }
    let b = Berth::new();
    let r = b.ok_args([
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        img.as_str(),
        "sh",
        "-c",
        "uname -m; cat /etc/berth-fixture-platform",
    ]);
    assert_eq!(r.lines(), vec!["aarch64".to_string(), "linux/arm64".to_string()], "{}", r.stderr);
    // Without --platform, the name's only platform runs, with docker's warning.
    let r = b.ok(&format!("run --rm {img} cat /etc/berth-fixture-platform"));
    assert_eq!(r.stdout.trim(), "linux/arm64");
    r.stderr_has("does not match the detected host platform");
    // The host's platform, pulled into the same name, runs natively and is the default.
    b.ok(&format!("pull {img}")).stdout_has("Status: Downloaded newer image for");
    let r = b.ok(&format!("run --rm {img} cat /etc/berth-fixture-platform"));
    assert_eq!(r.stdout.trim(), format!("linux/{}", host_arch()));
    assert_eq!(b.ok("images -q").lines().len(), 1, "one name for both platforms");
    b.ok("system info").stdout_has("linux/arm64");
}

fn emulator_registered() -> bool {
    let reg = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").unwrap_or_default();
    reg.contains("enabled") && reg.lines().any(|l| l.starts_with("flags:") && l.contains('F'))
}

/// `build --platform linux/amd64,linux/arm64`: a `$BUILDPLATFORM` stage without TARGET* args
/// runs once (the second platform finds it cached), the final stage runs per platform (arm64
/// under emulation), BuildKit's BUILD*/TARGET* args, and the results: the store keeps one
/// name with both platforms, --push writes an OCI index that skopeo and podman read, and
/// type=oci writes an index too.
#[test]
fn build_two_platforms_shares_the_build_platform_stage_and_pushes_an_index() {
    let base = fixture("library/busybox-qemu:latest");
    if !emulator_registered() {
        eprintln!("SKIPPED: no qemu-aarch64 registered with binfmt_misc's F flag (scripts/ci/install-deps.sh)");
        return;
    }
    let ctx = tempdir("mp-build");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM --platform=$BUILDPLATFORM {base} AS build\n\
             ARG BUILDPLATFORM\n\
             RUN echo \"compiled on $BUILDPLATFORM\" > /out.txt && uname -m > /build-arch\n\
             FROM {base}\n\
             ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDARCH\n\
             COPY --from=build /out.txt /build-arch /\n\
             RUN echo \"$TARGETPLATFORM $TARGETOS $TARGETARCH [$TARGETVARIANT] $BUILDARCH $(uname -m)\" > /target.txt\n"
        ),
    )
    .expect("write Dockerfile");
    let host = registries().plain.clone();
    let tag = format!("{host}/{}:v1", unique_repo("mp-build"));
    let b = Berth::new();
    let dir = ctx.path().display().to_string();
    let oci = ctx.path().join("out.tar");
    let r = b.ok_args([
        "build",
        "--progress=plain",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        tag.as_str(),
        "--push",
        "-o",
        &format!("type=oci,dest={}", oci.display()),
        dir.as_str(),
    ]);
    // The build-platform stage's RUN ran once: the second platform found it cached.
    let runs = r.stderr.matches("RUN echo \"compiled on").count();
    let cached = r.stderr.lines().filter(|l| l.ends_with("CACHED")).count();
    assert!(runs >= 2 && cached >= 1, "expected the shared stage cached for the second platform:\n{}", r.stderr);

    let arm =
        b.ok_args(["run", "--rm", "--platform", "linux/arm64", tag.as_str(), "cat", "/target.txt", "/build-arch"]);
    assert_eq!(arm.lines(), vec!["linux/arm64 linux arm64 [] amd64 aarch64".to_string(), "x86_64".to_string()]);
    let amd = b.ok_args(["run", "--rm", "--platform", "linux/amd64", tag.as_str(), "cat", "/target.txt"]);
    assert_eq!(amd.stdout.trim(), "linux/amd64 linux amd64 [] amd64 x86_64");
    assert_eq!(b.ok("images -q").lines().len(), 2, "the base and the built image, once each");

    // The registry holds an OCI index with both platforms.
    let raw = skopeo_raw(&tag);
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json", "{raw:#}");
    let platforms: Vec<String> = raw["manifests"]
        .as_array()
        .map(|m| m.iter().map(|d| d["platform"]["architecture"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    assert_eq!(platforms, vec!["amd64".to_string(), "arm64".to_string()]);
    assert_eq!(skopeo_inspect(&tag, &["--override-arch", "arm64"])["Architecture"], "arm64");
    let p = Podman::new();
    let r = p.run(["pull", "-q", "--tls-verify=false", "--platform", "linux/arm64", tag.as_str()]);
    assert!(r.success(), "podman pull: {}", r.stderr);
    let r = p.run(["image", "inspect", "--format", "{{.Architecture}}", tag.as_str()]);
    assert_eq!(r.stdout.trim(), "arm64");

    // type=oci wrote the index too: it loads back with both platforms.
    let other = Berth::new();
    other.ok(&format!("load -i {}", oci.display()));
    let v = other.ok(&format!("image inspect --platform linux/arm64 {tag}")).json();
    assert_eq!(v[0]["Architecture"], "arm64");
    b.check_store();
}

#[test]
fn build_oci_mediatypes_false_pushes_a_docker_manifest_list() {
    let base = fixture("library/busybox-multi:list");
    let ctx = tempdir("mp-build-list");
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {base}\nCOPY Dockerfile /\n"))
        .expect("write Dockerfile");
    let host = registries().plain.clone();
    let tag = format!("{host}/{}:v1", unique_repo("mp-list"));
    let b = Berth::new();
    b.ok_args([
        "build",
        "-q",
        "--platform",
        "linux/amd64,linux/arm/v7",
        "-o",
        &format!("type=image,name={tag},push=true,oci-mediatypes=false"),
        ctx.path().to_str().unwrap_or_default(),
    ]);
    let raw = skopeo_raw(&tag);
    assert_eq!(raw["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json", "{raw:#}");
    let arm = skopeo_inspect(&tag, &["--override-arch", "arm", "--override-variant", "v7"]);
    assert_eq!(arm["Architecture"], "arm");
    // Its file shows which base platform was used.
    let v = b.ok(&format!("image inspect --platform linux/arm/v7 {tag}")).json();
    assert_eq!(v[0]["Variant"], "v7");
}

#[test]
fn build_for_a_platform_without_emulator_fails_naming_it() {
    let base = fixture("library/busybox-multi:latest");
    // A platform no emulator is registered for (qemu-user-static may register them all).
    let Some((platform, _)) = [("linux/s390x", "s390x"), ("linux/riscv64", "riscv64"), ("linux/mips64le", "mips64el")]
        .into_iter()
        .find(|(_, q)| !std::path::Path::new(&format!("/proc/sys/fs/binfmt_misc/qemu-{q}")).exists())
    else {
        eprintln!("SKIPPED: every candidate platform has an emulator registered");
        return;
    };
    let ctx = tempdir("mp-noemu");
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {base}\nRUN true\n")).expect("write Dockerfile");
    let b = Berth::new();
    let r = b.run_args(["build", "--platform", platform, ctx.path().to_str().unwrap_or_default()]).fails();
    r.stderr_has(platform);
    r.stderr_has("qemu-user-static");
}

fn child_digest(index_ref: &str, arch: &str) -> String {
    let raw = skopeo_raw(index_ref);
    raw["manifests"]
        .as_array()
        .and_then(|m| m.iter().find(|d| d["platform"]["architecture"] == arch))
        .and_then(|d| d["digest"].as_str())
        .unwrap_or_else(|| panic!("no {arch} entry in {raw:#}"))
        .to_string()
}

/// `manifest create|annotate|inspect|push|rm` as docker manifest: the list lives in the store
/// until pushed, then the registry serves a Docker manifest list whose entries pull.
#[test]
fn manifest_create_annotate_push_purge() {
    let multi = fixture("library/busybox-multi:list");
    let single = fixture("library/busybox:latest");
    let host = registries().plain.clone();
    let arm = format!("{host}/library/busybox-multi@{}", child_digest(&multi, "arm64"));
    let list = format!("{host}/{}:v1", unique_repo("mp-manifest"));
    let b = Berth::new();
    b.ok_args(["manifest", "create", list.as_str(), arm.as_str(), single.as_str()])
        .stdout_has(&format!("Created manifest list {list}"));
    // An index is refused as an entry; re-creating needs --amend.
    b.run_args(["manifest", "create", "--amend", list.as_str(), multi.as_str()])
        .fails()
        .stderr_has("is a manifest list");
    b.run_args(["manifest", "create", list.as_str(), single.as_str()]).fails().stderr_has("--amend");
    b.ok_args(["manifest", "annotate", "--os-features", "sse4", "--variant", "v2", list.as_str(), single.as_str()]);
    let local = b.ok_args(["manifest", "inspect", list.as_str()]).json();
    assert_eq!(local["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json");
    assert_eq!(local["manifests"][1]["platform"]["variant"], "v2", "{local:#}");
    assert_eq!(local["manifests"][1]["platform"]["os.features"][0], "sse4");
    let v = b.ok_args(["manifest", "inspect", "--verbose", list.as_str()]).json();
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert!(v[0]["SchemaV2Manifest"]["layers"].is_array(), "{v:#}");

    let pushed = b.ok_args(["manifest", "push", "--purge", list.as_str()]).stdout.trim().to_string();
    // (the amd64 entry now says variant v2, which skopeo matches only when asked)
    assert_eq!(skopeo_inspect(&list, &["--override-variant", "v2"])["Digest"], pushed.as_str());
    let raw = skopeo_raw(&list);
    assert_eq!(raw["manifests"][0]["platform"]["architecture"], "arm64");
    assert_eq!(skopeo_inspect(&list, &["--override-arch", "arm64"])["Architecture"], "arm64");
    // --purge removed the local list: inspect now reads the registry's, rm finds none.
    assert_eq!(b.ok_args(["manifest", "inspect", list.as_str()]).json(), raw);
    b.run_args(["manifest", "rm", list.as_str()]).fails().stderr_has("No such manifest");
    // And berth pulls the platform it wants from it.
    b.ok(&format!("pull -q --platform linux/arm64 {list}"));
    assert_eq!(arch_of(&b, &format!("--platform linux/arm64 {list}")), "linux/arm64/v8");
}

/// `buildx imagetools create` from an index and an image into two tags of other repositories
/// (blobs mounted), with an index annotation; `--append`; inspect's three outputs.
#[test]
fn imagetools_create_append_and_inspect() {
    let multi = fixture("library/busybox-multi:latest");
    let qemu = fixture("library/busybox-qemu:latest");
    let host = registries().plain.clone();
    let a = format!("{host}/{}:v1", unique_repo("mp-it-a"));
    let c = format!("{host}/{}:v1", unique_repo("mp-it-c"));
    let arm_only = format!("{host}/library/busybox-qemu@{}", child_digest(&qemu, "arm64"));
    let amd_only = format!("{host}/library/busybox-multi@{}", child_digest(&multi, "amd64"));
    let b = Berth::new();
    b.ok_args([
        "buildx",
        "imagetools",
        "create",
        "-t",
        a.as_str(),
        "-t",
        c.as_str(),
        "--annotation",
        "index:org.opencontainers.image.title=berth",
        amd_only.as_str(),
    ]);
    for t in [&a, &c] {
        let raw = skopeo_raw(t);
        assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(raw["annotations"]["org.opencontainers.image.title"], "berth");
        assert_eq!(raw["manifests"].as_array().map(Vec::len), Some(1));
    }
    b.ok_args(["buildx", "imagetools", "create", "--append", "-t", a.as_str(), arm_only.as_str()]);
    let raw = skopeo_raw(&a);
    let archs: Vec<&str> = raw["manifests"]
        .as_array()
        .map(|m| m.iter().filter_map(|d| d["platform"]["architecture"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(archs, vec!["amd64", "arm64"], "{raw:#}");
    // podman pulls the arm64 image of it (blobs were copied into the new repository).
    let p = Podman::new();
    let r = p.run(["pull", "-q", "--tls-verify=false", "--platform", "linux/arm64", a.as_str()]);
    assert!(r.success(), "podman pull: {}", r.stderr);

    let text = b.ok_args(["buildx", "imagetools", "inspect", multi.as_str()]).stdout;
    assert!(
        text.starts_with(&format!("Name:      {multi}\nMediaType: application/vnd.oci.image.index.v1+json\n")),
        "{text}"
    );
    for p in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
        assert!(text.contains(&format!("  Platform:    {p}\n")), "{text}");
    }
    let raw_out = b.ok_args(["buildx", "imagetools", "inspect", "--raw", multi.as_str()]).json();
    assert_eq!(raw_out, skopeo_raw(&multi));
    let m = b.ok_args(["buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", multi.as_str()]).json();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(m["digest"], skopeo_inspect(&multi, &[])["Digest"]);
    assert_eq!(m["manifests"].as_array().map(Vec::len), Some(3));
}

/// berth builds FROM a multi-platform image that podman assembled and pushed.
#[test]
fn build_from_a_podman_pushed_manifest_list() {
    let qemu = fixture("library/busybox-qemu:latest");
    if !emulator_registered() {
        eprintln!("SKIPPED: no qemu-aarch64 registered with binfmt_misc's F flag (scripts/ci/install-deps.sh)");
        return;
    }
    let host = registries().plain.clone();
    let list = format!("{host}/{}:v1", unique_repo("mp-podman"));
    let p = Podman::new();
    let ok = |args: &[&str]| {
        let r = p.run(args);
        assert!(r.success(), "podman {args:?}: {}", r.stderr);
    };
    ok(&["manifest", "create", "mp-podman-list"]);
    for arch in ["amd64", "arm64"] {
        let src = format!("docker://{host}/library/busybox-qemu@{}", child_digest(&qemu, arch));
        ok(&["manifest", "add", "--tls-verify=false", "mp-podman-list", src.as_str()]);
    }
    ok(&["manifest", "push", "--all", "--tls-verify=false", "mp-podman-list", &format!("docker://{list}")]);

    let ctx = tempdir("mp-from-podman");
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {list}\nRUN uname -m > /arch\n")).expect("write");
    let b = Berth::new();
    let tag = format!("{host}/{}:v1", unique_repo("mp-from-podman-out"));
    b.ok_args([
        "build",
        "-q",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        tag.as_str(),
        ctx.path().to_str().unwrap_or_default(),
    ]);
    let arm = b.ok_args([
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        tag.as_str(),
        "cat",
        "/arch",
        "/etc/berth-fixture-platform",
    ]);
    assert_eq!(arm.lines(), vec!["aarch64".to_string(), "linux/arm64".to_string()]);
    let amd = b.ok_args(["run", "--rm", "--platform", "linux/amd64", tag.as_str(), "cat", "/arch"]);
    assert_eq!(amd.stdout.trim(), "x86_64");
}
