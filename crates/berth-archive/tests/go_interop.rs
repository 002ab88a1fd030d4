//! Go's gzip reader (through skopeo, a Go program) reads our block-parallel gzip and zstd
//! layers: skopeo verifies the blob digest and, with --dest-decompress, decompresses them.

use std::io::Write;
use std::process::Command;

use berth_archive::{CompressOptions, Compression, LayerWriter, TreeOptions, write_tree};
use berth_types::Digest;

fn put_blob(dir: &std::path::Path, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), data).unwrap();
    d
}

#[test]
fn skopeo_decompresses_our_layers() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // Enough data for many 128 KiB blocks.
    for i in 0..40 {
        let body: Vec<u8> = (0..50_000u32).map(|j| ((j * (i + 3)) % 253) as u8).collect();
        std::fs::write(src.join(format!("f{i}")), body).unwrap();
    }
    let (tar, _) = write_tree(&src, Vec::new(), &TreeOptions::default()).unwrap();
    for (c, mt) in [
        (Compression::Gzip, "application/vnd.oci.image.layer.v1.tar+gzip"),
        (Compression::Zstd, "application/vnd.oci.image.layer.v1.tar+zstd"),
    ] {
        let oci = t.path().join(format!("oci-{}", c.name()));
        std::fs::create_dir_all(oci.join("blobs/sha256")).unwrap();
        let mut w =
            LayerWriter::new(Vec::new(), &CompressOptions { compression: c, level: Some(6), threads: 2 }).unwrap();
        w.write_all(&tar).unwrap();
        let (blob, d) = w.finish().unwrap();
        put_blob(&oci, &blob);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}},"config":{{}}}}"#,
            d.diff_id
        );
        let cd = put_blob(&oci, config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"{mt}","digest":"{}","size":{}}}]}}"#,
            config.len(),
            d.digest,
            d.size
        );
        let md = put_blob(&oci, manifest.as_bytes());
        std::fs::write(oci.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(
            oci.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#,
                manifest.len()
            ),
        )
        .unwrap();
        let out = t.path().join(format!("out-{}", c.name()));
        let res = Command::new("skopeo")
            .args(["copy", "--dest-decompress"])
            .arg(format!("oci:{}:latest", oci.display()))
            .arg(format!("dir:{}", out.display()))
            .output()
            .expect("skopeo must be installed (scripts/ci/install-deps.sh)");
        assert!(res.status.success(), "skopeo: {}", String::from_utf8_lossy(&res.stderr));
        // The decompressed layer is stored under its diffID.
        let layer = std::fs::read(out.join(d.diff_id.hex())).expect("decompressed layer");
        assert_eq!(layer, tar, "{c:?}");
    }
}
