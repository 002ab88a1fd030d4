//! `tag`, `rmi` and `image prune`: Docker's output lines, refusal rules and exit codes, and that
//! the store really loses the content.

mod common;

use common::*;
use serde_json::json;

fn id_of(b: &Berth, r: &str) -> String {
    b.inspect(r)["Id"].as_str().unwrap_or_default().to_string()
}

fn blob_count(b: &Berth) -> usize {
    std::fs::read_dir(b.root.join("blobs/sha256")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn tag_adds_names_and_rejects_bad_input() {
    let busybox = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&busybox);
    let id = id_of(&b, &busybox);
    let r = b.ok(&format!("tag {busybox} myrepo/mine:v1"));
    assert!(r.stdout.is_empty(), "tag prints nothing: {}", r.stdout);
    b.ok(&format!("tag {} other", &id[7..19]));
    let v = b.inspect("myrepo/mine:v1");
    assert_eq!(v["Id"], id.as_str());
    let mut tags = strings(&v["RepoTags"]);
    tags.sort();
    let mut want = vec![busybox.clone(), "myrepo/mine:v1".to_string(), "other:latest".to_string()];
    want.sort();
    assert_eq!(tags, want);
    assert_eq!(b.inspect("other")["Id"], id.as_str(), "short name defaults to :latest");

    let r = b.run("tag nosuch:image x:y").code(1);
    r.stderr_has("No such image");
    r.stderr_has("nosuch:image");
    let r = b.run(&format!("tag {busybox} Bad/Name")).fails();
    r.stderr_has("invalid reference format");
    let r = b.run(&format!("tag {busybox} x@sha256:{}", "a".repeat(64))).fails();
    assert!(r.stderr.contains("digest"), "{}", r.stderr);
    // Retagging moves the name.
    let nginx = fixture("library/nginx:latest");
    b.pull(&nginx);
    b.ok(&format!("tag {nginx} other"));
    assert_ne!(b.inspect("other")["Id"], id.as_str());
    b.check_store();
}

#[test]
fn rmi_untags_then_deletes() {
    let busybox = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&busybox);
    let id = id_of(&b, &busybox);
    b.ok(&format!("tag {busybox} extra:one"));

    // Another name remains: only Untagged.
    let r = b.ok("rmi extra:one");
    assert_eq!(r.lines(), vec!["Untagged: extra:one".to_string()]);
    assert_eq!(b.image_ids(), vec![id.clone()]);

    // The last name: its digest goes too and the image is deleted.
    let r = b.ok(&format!("rmi {busybox}"));
    let lines = r.lines();
    assert_eq!(lines.first(), Some(&format!("Untagged: {busybox}")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("Untagged: ") && l.contains("@sha256:")), "{lines:#?}");
    assert!(lines.contains(&format!("Deleted: {id}")), "{lines:#?}");
    assert!(b.image_ids().is_empty());
    assert_eq!(blob_count(&b), 0, "rmi of the only image leaves no blobs");
    b.check_store();
}

#[test]
fn rmi_by_id_refuses_multiple_repositories_without_force() {
    let busybox = fixture("library/busybox:latest");
    let b = Berth::new();
    b.pull(&busybox);
    let id = id_of(&b, &busybox);
    let short = id[7..19].to_string();
    b.ok(&format!("tag {busybox} second/repo:x"));

    let r = b.run(&format!("rmi {short}")).code(1);
    r.stderr_has(&format!(
        "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
    ));
    assert_eq!(b.image_ids(), vec![id.clone()], "nothing removed");

    let r = b.ok(&format!("rmi -f {short}"));
    let lines = r.lines();
    assert!(lines.contains(&format!("Untagged: {busybox}")), "{lines:#?}");
    assert!(lines.contains(&"Untagged: second/repo:x".to_string()), "{lines:#?}");
    assert!(lines.contains(&format!("Deleted: {id}")), "{lines:#?}");
    assert!(b.image_ids().is_empty());
    b.check_store();

    // Several tags in one repository: by ID deletes without -f.
    b.pull(&busybox);
    b.ok(&format!("tag {busybox} {}/library/busybox:again", registries().plain));
    let r = b.ok(&format!("rmi {id}"));
    assert!(r.lines().contains(&format!("Deleted: {id}")), "{}", r.stdout);
    assert!(b.image_ids().is_empty());
}

#[test]
fn rmi_unknown_and_partial_failure() {
    let busybox = fixture("library/busybox:latest");
    let b = Berth::new();
    let r = b.run("rmi nosuch").code(1);
    // (docker 24 says "nosuch:latest"; berth names the argument as given)
    r.stderr_has("No such image: nosuch");

    b.pull(&busybox);
    // Several arguments: the known one is removed, the unknown one reported, exit 1.
    let r = b.run(&format!("rmi nosuch {busybox}")).code(1);
    r.stderr_has("No such image");
    r.stdout_has(&format!("Untagged: {busybox}"));
    assert!(b.image_ids().is_empty());
}

#[test]
fn rmi_keeps_shared_layers() {
    // nginx (stand-in) is busybox + one layer: removing nginx must keep busybox whole.
    let busybox = fixture("library/busybox:latest");
    let nginx = fixture("library/nginx:latest");
    let b = Berth::new();
    b.pull(&busybox);
    b.pull(&nginx);
    let r = b.ok(&format!("rmi {nginx}"));
    // The nginx layer goes (a Deleted line for it besides the image).
    assert!(r.lines().iter().filter(|l| l.starts_with("Deleted: ")).count() >= 2, "{}", r.stdout);
    b.check_store();
    // busybox is still complete: it can be saved (every blob read back).
    let out = b.dir.path().join("busybox.tar");
    b.ok(&format!("save -o {} {busybox}", out.display()));
    skopeo(["inspect", &format!("docker-archive:{}", out.display())]).ok();
}

#[test]
fn image_prune_dangling_then_all() {
    let busybox = fixture("library/busybox:latest");
    let nginx = fixture("library/nginx:latest");
    let b = Berth::new();
    b.pull(&busybox);
    b.pull(&nginx);
    let bid = id_of(&b, &busybox);
    let nid = id_of(&b, &nginx);
    // Nothing dangling: prune removes nothing.
    let r = b.ok("image prune -f");
    r.stdout_has("Total reclaimed space: 0B");
    assert_eq!(b.image_ids().len(), 2);

    // Moving busybox's tag onto nginx makes busybox dangling.
    b.ok(&format!("tag {nginx} {busybox}"));
    let r = b.ok("image prune -f");
    r.stdout_has("Deleted Images:");
    r.stdout_has(&format!("deleted: {bid}"));
    let reclaimed = r.lines().last().cloned().unwrap_or_default();
    assert!(reclaimed.starts_with("Total reclaimed space: ") && !reclaimed.ends_with(" 0B"), "{reclaimed}");
    assert_eq!(b.image_ids(), vec![nid.clone()]);
    b.check_store();

    // -a: every image without a container.
    let r = b.ok("image prune -a -f");
    r.stdout_has(&format!("deleted: {nid}"));
    assert!(b.image_ids().is_empty());
    assert_eq!(blob_count(&b), 0, "prune -a leaves no blobs");
    b.check_store();

    // Without -f and no terminal: docker asks, reads "no" from stdin, removes nothing.
    b.pull(&busybox);
    b.ok(&format!("tag {busybox} x"));
    b.ok("rmi x");
    let r = b.run_stdin("image prune -a", b"n\n");
    assert!(r.success(), "{}", r.stderr);
    assert_eq!(b.image_ids().len(), 1);
}

#[test]
fn image_prune_label_filter() {
    let b = Berth::new();
    let dir = tempdir("prune");
    let (a1, id1) = make_docker_archive(
        dir.path(),
        "keep",
        Some("keep:1"),
        &[("k", b"k")],
        json!({"Labels": {"keep": "yes"}}),
        "2025-01-01T00:00:00Z",
    );
    let (a2, id2) = make_docker_archive(
        dir.path(),
        "drop",
        Some("drop:1"),
        &[("d", b"d")],
        json!({"Labels": {"temp": "1"}}),
        "2025-01-01T00:00:00Z",
    );
    b.ok(&format!("load -q -i {}", a1.display()));
    b.ok(&format!("load -q -i {}", a2.display()));
    let r = b.ok_args(["image", "prune", "-a", "-f", "--filter", "label=temp"]);
    r.stdout_has(&format!("deleted: {id2}"));
    assert_eq!(b.image_ids(), vec![id1.clone()]);
    let r = b.ok_args(["image", "prune", "-a", "-f", "--filter", "label!=keep"]);
    assert!(!r.stdout.contains(&id1), "{}", r.stdout);
    assert_eq!(b.image_ids(), vec![id1]);
    b.check_store();
}
