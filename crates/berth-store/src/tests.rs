use berth_types::{Descriptor, Digest, ImageConfig, Manifest, Reference, RootFs, media};

use crate::{Lookup, Roots, SnapshotInfo, Store, StoreError};

fn store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("root")).unwrap();
    (t, s)
}

/// Writes a one-layer image whose layer content is `seed`; returns the manifest descriptor.
fn put_image(s: &Store, seed: &str) -> Descriptor {
    let layer = s.put_blob_bytes(seed.as_bytes(), None).unwrap();
    let diff = Digest::sha256_of(format!("diff-{seed}").as_bytes());
    let cfg = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        created: Some("2024-01-01T00:00:00Z".into()),
        rootfs: RootFs { kind: "layers".into(), diff_ids: vec![diff] },
        ..Default::default()
    };
    let cb = serde_json::to_vec(&cfg).unwrap();
    let cd = s.put_blob_bytes(&cb, None).unwrap();
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, cd, cb.len() as u64),
        layers: vec![Descriptor::new(media::OCI_LAYER_GZIP, layer, seed.len() as u64)],
        subject: None,
        annotations: None,
    };
    let mb = serde_json::to_vec(&m).unwrap();
    let md = s.put_blob_bytes(&mb, None).unwrap();
    Descriptor::new(media::OCI_MANIFEST, md, mb.len() as u64)
}

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap().with_default_tag()
}

#[test]
fn layout_is_oci() {
    let (_t, s) = store();
    let layout = std::fs::read_to_string(s.root().join("oci-layout")).unwrap();
    assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
    let idx: serde_json::Value = serde_json::from_slice(&std::fs::read(s.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(idx["schemaVersion"], 2);
    assert!(idx["manifests"].as_array().unwrap().is_empty());
}

#[test]
fn blob_verification_rejects_mismatch() {
    let (_t, s) = store();
    let wrong = Digest::sha256_of(b"other");
    let e = s.put_blob_bytes(b"data", Some(&wrong)).unwrap_err();
    assert!(matches!(e, StoreError::DigestMismatch { .. }), "{e}");
    assert!(!s.has_blob(&wrong));
    let mut w = s.blob_writer().unwrap();
    std::io::Write::write_all(&mut w, b"hello").unwrap();
    let tmp = w.tmp_path().to_path_buf();
    let e = w.commit(Some(&Digest::sha256_of(b"hello")), Some(4)).unwrap_err();
    assert!(matches!(e, StoreError::SizeMismatch { .. }));
    assert!(!tmp.exists(), "temp file must be removed on failure");
    assert_eq!(std::fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
    let d = s.put_blob_bytes(b"hello", Some(&Digest::sha256_of(b"hello"))).unwrap();
    assert_eq!(s.read_blob(&d).unwrap(), b"hello");
}

#[test]
fn tags_dangling_and_lookup() {
    let (_t, s) = store();
    let a = put_image(&s, "a");
    let b = put_image(&s, "b");
    s.set_ref(&r("nginx:latest"), a.clone()).unwrap();
    s.set_ref(&r("nginx:1.21"), a.clone()).unwrap();
    let imgs = s.images().unwrap();
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].repo_tags.len(), 2);
    let id = imgs[0].id().clone();
    // Retagging latest to b leaves a still tagged 1.21 (no dangling entry).
    s.set_ref(&r("nginx:latest"), b.clone()).unwrap();
    assert_eq!(s.images().unwrap().len(), 2);
    // Moving 1.21 too makes a dangling.
    s.set_ref(&r("nginx:1.21"), b.clone()).unwrap();
    let imgs = s.images().unwrap();
    assert_eq!(imgs.len(), 2);
    let dangling: Vec<_> = imgs.iter().filter(|i| i.is_dangling()).collect();
    assert_eq!(dangling.len(), 1);
    assert_eq!(dangling[0].id(), &id);
    // Lookups.
    assert!(matches!(s.lookup("nginx").unwrap(), Lookup::Name(n) if n == r("nginx:latest")));
    assert!(matches!(s.lookup(&id.hex()[..12]).unwrap(), Lookup::Id(d) if d == id));
    assert!(matches!(s.lookup(&id.to_string()).unwrap(), Lookup::Id(d) if d == id));
    assert!(matches!(s.lookup("nosuch").unwrap_err(), StoreError::NoSuchImage(_)));
    assert_eq!(s.lookup("nosuch:1").unwrap_err().to_string(), "No such image: nosuch:1");
}

#[test]
fn gc_keeps_reachable_and_extra_roots() {
    let (_t, s) = store();
    let a = put_image(&s, "a");
    let b = put_image(&s, "b");
    s.set_ref(&r("keep:1"), a.clone()).unwrap();
    // A snapshot for a's layer and one stray snapshot.
    let img = s.load_image(&a).unwrap();
    for d in [img.diff_ids()[0].clone(), Digest::sha256_of(b"stray")] {
        let t = s.temp_snapshot().unwrap();
        std::fs::write(t.fs().join("f"), "x").unwrap();
        t.commit(&d, &SnapshotInfo { size: 1, entries: 1, created: String::new() }).unwrap();
    }
    let stray_blob = s.put_blob_bytes(b"stray", None).unwrap();
    let rooted = s.put_blob_bytes(b"rooted", None).unwrap();
    let mut roots = Roots::default();
    roots.blobs.insert(rooted.clone());
    let rep = s.gc(&roots).unwrap();
    assert!(s.has_blob(&a.digest));
    assert!(!s.has_blob(&b.digest), "unreferenced manifest removed");
    assert!(!s.has_blob(&stray_blob));
    assert!(s.has_blob(&rooted));
    assert!(s.has_snapshot(&img.diff_ids()[0]));
    assert!(!s.has_snapshot(&Digest::sha256_of(b"stray")));
    assert_eq!(rep.snapshots_removed.len(), 1);
    assert!(s.check().unwrap().problems.is_empty());
}

#[test]
fn check_finds_corruption() {
    let (_t, s) = store();
    let a = put_image(&s, "a");
    s.set_ref(&r("x:1"), a.clone()).unwrap();
    let img = s.load_image(&a).unwrap();
    let layer = &img.manifest.layers[0].digest;
    std::fs::write(s.blob_path(layer), b"tampered").unwrap();
    let rep = s.check().unwrap();
    assert_eq!(rep.problems.len(), 1, "{:?}", rep.problems);
    assert!(rep.problems[0].contains(&layer.to_string()));
}

#[test]
fn concurrent_ref_updates_are_not_lost() {
    let (_t, s) = store();
    let a = put_image(&s, "a");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            let a = a.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    s.set_ref(&r(&format!("t{i}:v{j}")), a.clone()).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.ref_table().unwrap().entries.len(), 80);
}

#[test]
fn stale_tmp_is_cleaned_on_open() {
    let (t, s) = store();
    let stale = s.root().join("tmp").join("999999999-1-1.blob");
    std::fs::write(&stale, b"x").unwrap();
    let _ = Store::open(t.path().join("root")).unwrap();
    assert!(!stale.exists());
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &std::path::Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn store_is_private_and_existing_modes_are_fixed_on_open() {
    let (t, s) = store();
    for d in ["", "blobs", "blobs/sha256", "snapshots", "meta", "locks", "tmp"] {
        assert_eq!(mode(&s.root().join(d)), 0o700, "{d:?} of a new store");
    }
    let d = Digest::sha256_of(b"layer");
    let snap = s.temp_snapshot().unwrap();
    std::fs::write(snap.fs().join("f"), "x").unwrap();
    chmod(&snap.fs(), 0o777); // an archive's `./` entry asked for this
    snap.commit(&d, &SnapshotInfo::default()).unwrap();
    let snap_dir = s.snapshot_fs(&d).parent().unwrap().to_path_buf();
    assert_eq!(mode(&snap_dir), 0o700);
    assert_eq!(mode(&s.snapshot_fs(&d)), 0o755, "world-writable layer root clamped");
    // A store made by an older berth: everything 0755.
    for d in ["", "blobs", "blobs/sha256", "snapshots", "meta", "locks", "tmp"] {
        chmod(&s.root().join(d), 0o755);
    }
    chmod(&snap_dir, 0o755);
    let s = Store::open(t.path().join("root")).unwrap();
    for d in ["", "blobs", "blobs/sha256", "snapshots", "meta", "locks", "tmp"] {
        assert_eq!(mode(&s.root().join(d)), 0o700, "{d:?} fixed on open");
    }
    assert_eq!(mode(&snap_dir), 0o700, "snapshot dir fixed on open");
}

#[test]
fn stale_tmp_is_judged_by_pid_and_start_time() {
    let (t, s) = store();
    let tmp = s.root().join("tmp");
    let init_start = crate::process_start_time(1).unwrap();
    // pid 1 is alive, but this entry names another process that once had pid 1.
    let recycled = tmp.join(format!("1@{}-1-1.blob", init_start + 1));
    let live = tmp.join(format!("1@{init_start}-1-1.blob"));
    let ours = tmp.join(format!("{}0-1.snap", crate::owner_prefix()));
    let foreign = tmp.join("not-ours");
    for p in [&recycled, &live, &foreign] {
        std::fs::write(p, b"x").unwrap();
    }
    std::fs::create_dir(&ours).unwrap();
    let _ = Store::open(t.path().join("root")).unwrap();
    assert!(!recycled.exists(), "a recycled pid does not keep a temp file alive");
    assert!(live.exists());
    assert!(ours.exists());
    assert!(foreign.exists(), "names without an owner are not ours to judge");
}

#[test]
fn unreadable_manifest_aborts_gc() {
    let (_t, s) = store();
    let a = put_image(&s, "a");
    s.set_ref(&r("keep:1"), a.clone()).unwrap();
    let img = s.load_image(&a).unwrap();
    let layer = img.manifest.layers[0].digest.clone();
    let d = img.diff_ids()[0].clone();
    let t = s.temp_snapshot().unwrap();
    t.commit(&d, &SnapshotInfo::default()).unwrap();
    std::fs::write(s.blob_path(&a.digest), b"{not json").unwrap();
    let e = s.gc(&Roots::default()).unwrap_err();
    assert!(e.to_string().contains("garbage collection stopped"), "{e}");
    assert!(s.has_blob(&layer), "layer of an unreadable manifest kept");
    assert!(s.has_snapshot(&d));
}

#[test]
fn gc_roots_are_computed_under_the_lock() {
    let (_t, s) = store();
    let stray = s.put_blob_bytes(b"stray", None).unwrap();
    // The closure runs while the exclusive lock is held: a shared guard cannot be taken.
    let rep = s
        .gc_with(|| {
            assert!(s.try_gc_exclusive().unwrap().is_none());
            let mut r = Roots::default();
            r.blobs.insert(stray.clone());
            Ok::<_, StoreError>(r)
        })
        .unwrap();
    assert!(rep.blobs_removed.is_empty());
    assert!(s.has_blob(&stray));
}
