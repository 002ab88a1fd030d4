//! Build attestations as BuildKit writes them: in-toto statements carrying an SPDX 2.3 SBOM of
//! the final filesystem and SLSA provenance (v0.2) of the build.
//!
//! The generators are pure: they read the final filesystem through an [`FsView`] (a stack of
//! unpacked layer directories, top first, with OCI whiteouts) and take the build's metadata as
//! data, and return the statement as JSON. Wrapping the statements into an attestation
//! manifest (`vnd.docker.reference.type: attestation-manifest`) is the exporter's job; it is not
//! wired into `build` yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// in-toto statement type BuildKit writes.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v0.1";
/// Predicate type of an SPDX SBOM.
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
/// Predicate type of SLSA provenance v0.2.
pub const SLSA_V02_PREDICATE: &str = "https://slsa.dev/provenance/v0.2";
/// Media type of an in-toto layer.
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// BuildKit's build type.
pub const BUILD_TYPE: &str = "https://mobyproject.org/buildkit@v1";

/// Read access to a final image filesystem.
pub trait FsView {
    /// The contents of the regular file at `path` (relative, `/`-separated), if any.
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    /// The entry names in directory `path` (empty when absent).
    fn list(&self, path: &str) -> Vec<String>;
}

/// Layer directories stacked as an overlay: the first is the top layer. A `.wh.NAME` entry hides
/// NAME in lower layers; `.wh..wh..opq` hides a whole lower directory.
#[derive(Debug, Clone)]
pub struct LayerStack {
    pub layers: Vec<PathBuf>,
}

impl LayerStack {
    fn hidden_below(&self, layer: &Path, path: &str) -> bool {
        // Whiteouts of the path itself or of any of its parents, or an opaque parent.
        let mut parent = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let dir = layer.join(&parent);
            if dir.join(format!(".wh.{part}")).symlink_metadata().is_ok() {
                return true;
            }
            parent = if parent.is_empty() { part.to_string() } else { format!("{parent}/{part}") };
            if layer.join(&parent).join(".wh..wh..opq").symlink_metadata().is_ok() && parent != path {
                return true;
            }
        }
        false
    }
}

fn safe(path: &str) -> bool {
    !path.split('/').any(|p| p == "..")
}

impl FsView for LayerStack {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        if !safe(path) {
            return None;
        }
        for layer in &self.layers {
            let p = layer.join(path);
            if let Ok(m) = p.symlink_metadata() {
                return if m.is_file() { std::fs::read(&p).ok() } else { None };
            }
            if self.hidden_below(layer, path) {
                return None;
            }
        }
        None
    }

    fn list(&self, path: &str) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        let mut hidden = std::collections::BTreeSet::new();
        if !safe(path) {
            return Vec::new();
        }
        for layer in &self.layers {
            let dir = layer.join(path);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().to_string();
                    if let Some(w) = n.strip_prefix(".wh.") {
                        hidden.insert(w.to_string());
                    } else if !hidden.contains(&n) {
                        names.insert(n);
                    }
                }
                if dir.join(".wh..wh..opq").exists() {
                    break;
                }
            }
            if self.hidden_below(layer, path) {
                break;
            }
        }
        names.into_iter().collect()
    }
}

/// One package found in the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub purl: String,
    /// Where it was found (the database file).
    pub source: String,
}

fn os_id(fs: &dyn FsView) -> (String, Option<String>) {
    let text = fs.read("etc/os-release").or_else(|| fs.read("usr/lib/os-release")).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let mut id = String::new();
    let mut version = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("ID=") {
            id = v.trim_matches('"').to_string();
        } else if let Some(v) = line.strip_prefix("VERSION_ID=") {
            version = Some(v.trim_matches('"').to_string());
        }
    }
    (id, version)
}

fn purl_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Packages from dpkg's status database (installed packages only).
pub fn dpkg_packages(fs: &dyn FsView) -> Vec<Package> {
    let Some(status) = fs.read("var/lib/dpkg/status") else { return Vec::new() };
    let (os, _) = os_id(fs);
    let ns = if os.is_empty() { "debian".to_string() } else { os };
    let text = String::from_utf8_lossy(&status);
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let mut f: BTreeMap<&str, &str> = BTreeMap::new();
        for line in para.lines() {
            if line.starts_with([' ', '\t']) {
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                f.insert(k.trim(), v.trim());
            }
        }
        let (Some(name), Some(version)) = (f.get("Package"), f.get("Version")) else { continue };
        if !f.get("Status").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        let arch = f.get("Architecture").copied().unwrap_or("");
        let mut purl = format!("pkg:deb/{ns}/{}@{}", purl_escape(name), purl_escape(version));
        if !arch.is_empty() {
            purl.push_str(&format!("?arch={arch}"));
        }
        out.push(Package {
            name: name.to_string(),
            version: version.to_string(),
            purl,
            source: "var/lib/dpkg/status".into(),
        });
    }
    out
}

/// Packages from apk's installed database.
pub fn apk_packages(fs: &dyn FsView) -> Vec<Package> {
    let Some(db) = fs.read("lib/apk/db/installed") else { return Vec::new() };
    let (os, _) = os_id(fs);
    let ns = if os.is_empty() { "alpine".to_string() } else { os };
    let text = String::from_utf8_lossy(&db);
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let (mut name, mut version, mut arch) = (None, None, None);
        for line in para.lines() {
            match line.split_once(':') {
                Some(("P", v)) => name = Some(v.to_string()),
                Some(("V", v)) => version = Some(v.to_string()),
                Some(("A", v)) => arch = Some(v.to_string()),
                _ => {}
            }
        }
        if let (Some(n), Some(v)) = (name, version) {
            let mut purl = format!("pkg:apk/{ns}/{}@{}", purl_escape(&n), purl_escape(&v));
            if let Some(a) = arch {
                purl.push_str(&format!("?arch={a}"));
            }
            out.push(Package { name: n, version: v, purl, source: "lib/apk/db/installed".into() });
        }
    }
    out
}

/// Python distributions (`*.dist-info/METADATA`) under the usual site-packages directories.
pub fn python_packages(fs: &dyn FsView) -> Vec<Package> {
    let mut out = Vec::new();
    let mut roots = Vec::new();
    for base in ["usr/lib", "usr/local/lib", "opt/venv/lib"] {
        for py in fs.list(base).into_iter().filter(|n| n.starts_with("python")) {
            for sub in ["site-packages", "dist-packages"] {
                roots.push(format!("{base}/{py}/{sub}"));
            }
        }
    }
    roots.push("usr/lib/python3/dist-packages".into());
    roots.sort();
    roots.dedup();
    for root in roots {
        for d in fs.list(&root).into_iter().filter(|n| n.ends_with(".dist-info")) {
            let path = format!("{root}/{d}/METADATA");
            let Some(meta) = fs.read(&path) else { continue };
            let text = String::from_utf8_lossy(&meta);
            let field = |k: &str| {
                text.lines().take_while(|l| !l.is_empty()).find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string())
            };
            if let (Some(n), Some(v)) = (field("Name:"), field("Version:")) {
                let purl = format!("pkg:pypi/{}@{}", purl_escape(&n.to_lowercase().replace('_', "-")), purl_escape(&v));
                out.push(Package { name: n, version: v, purl, source: path });
            }
        }
    }
    out
}

/// npm packages from `package-lock.json` files at common application roots.
pub fn npm_packages(fs: &dyn FsView) -> Vec<Package> {
    let mut out = Vec::new();
    for root in ["app", "usr/src/app", "srv", "opt/app", "home/node/app"] {
        let path = format!("{root}/package-lock.json");
        let Some(bytes) = fs.read(&path) else { continue };
        let Ok(lock) = serde_json::from_slice::<Value>(&bytes) else { continue };
        if let Some(pkgs) = lock.get("packages").and_then(Value::as_object) {
            for (key, p) in pkgs {
                let Some(name) =
                    key.rsplit("node_modules/").next().filter(|n| !n.is_empty() && key.contains("node_modules/"))
                else {
                    continue;
                };
                let Some(version) = p.get("version").and_then(Value::as_str) else { continue };
                let ns_name: Vec<String> = name.split('/').map(purl_escape).collect();
                let purl = format!("pkg:npm/{}@{}", ns_name.join("/"), purl_escape(version));
                out.push(Package { name: name.to_string(), version: version.to_string(), purl, source: path.clone() });
            }
        }
    }
    out
}

/// Every package berth recognises in `fs`, sorted and deduplicated.
pub fn scan(fs: &dyn FsView) -> Vec<Package> {
    let mut all = dpkg_packages(fs);
    all.extend(apk_packages(fs));
    all.extend(python_packages(fs));
    all.extend(npm_packages(fs));
    all.sort();
    all.dedup_by(|a, b| a.purl == b.purl);
    all
}

fn spdx_id(prefix: &str, n: usize, name: &str) -> String {
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    format!("SPDXRef-{prefix}-{clean}-{n}")
}

/// An SPDX 2.3 JSON document listing `packages`; `name` names the image, `created` is RFC 3339
/// (UTC, seconds), `namespace_id` makes the document namespace unique (e.g. the image digest).
pub fn spdx_document(name: &str, packages: &[Package], created: &str, namespace_id: &str) -> Value {
    let mut pkgs = Vec::new();
    let mut rels = Vec::new();
    for (i, p) in packages.iter().enumerate() {
        let id = spdx_id("Package", i, &p.name);
        pkgs.push(json!({
            "name": p.name,
            "SPDXID": id,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "sourceInfo": format!("acquired package info from {}", p.source),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }],
        }));
        rels.push(
            json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": id}),
        );
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://berth.invalid/spdx/{}", purl_escape(namespace_id)),
        "creationInfo": {"created": created, "creators": [format!("Tool: berth-{}", env!("CARGO_PKG_VERSION"))]},
        "packages": pkgs,
        "relationships": rels,
    })
}

/// An in-toto statement about `subjects` (`(name, sha256 hex)` pairs).
pub fn statement(predicate_type: &str, subjects: &[(String, String)], predicate: Value) -> Value {
    let subject: Vec<Value> = subjects.iter().map(|(n, d)| json!({"name": n, "digest": {"sha256": d}})).collect();
    json!({"_type": STATEMENT_TYPE, "predicateType": predicate_type, "subject": subject, "predicate": predicate})
}

/// What provenance records about a build.
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    /// Build args as given (`--build-arg`); secrets never appear here.
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: String,
    /// Base images: `(reference, sha256 hex of the manifest)`.
    pub materials: Vec<(String, String)>,
    pub dockerfile: Option<String>,
    pub started: String,
    pub finished: String,
    /// `mode=max`.
    pub max: bool,
}

fn material_uri(reference: &str, platform: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    let mut uri = format!("pkg:docker/{repo}");
    if let Some(t) = tag {
        uri.push_str(&format!("@{t}"));
    }
    uri.push_str(&format!("?platform={}", purl_escape(platform)));
    uri
}

/// SLSA provenance v0.2 as BuildKit's dockerfile frontend records it.
pub fn provenance_v02(info: &BuildInfo) -> Value {
    let mut args = serde_json::Map::new();
    for (k, v) in &info.args {
        args.insert(format!("build-arg:{k}"), Value::String(v.clone()));
    }
    if let Some(t) = &info.target {
        args.insert("target".into(), Value::String(t.clone()));
    }
    let materials: Vec<Value> = info
        .materials
        .iter()
        .map(|(r, d)| json!({"uri": material_uri(r, &info.platform), "digest": {"sha256": d}}))
        .collect();
    let invocation = json!({
        "configSource": {"entryPoint": "Dockerfile"},
        "parameters": {"frontend": "dockerfile.v0", "args": args, "locals": [{"name": "context"}, {"name": "dockerfile"}]},
        "environment": {"platform": info.platform},
    });
    let mut metadata = json!({
        "buildStartedOn": info.started,
        "buildFinishedOn": info.finished,
        "completeness": {"parameters": info.max, "environment": true, "materials": false},
        "reproducible": false,
    });
    if info.max
        && let Some(df) = &info.dockerfile
    {
        use base64::Engine as _;
        metadata["https://mobyproject.org/buildkit@v1#metadata"] = json!({
            "source": {"infos": [{"filename": "Dockerfile", "language": "Dockerfile",
                "data": base64::engine::general_purpose::STANDARD.encode(df)}]}
        });
    }
    json!({
        "builder": {"id": ""},
        "buildType": BUILD_TYPE,
        "materials": materials,
        "invocation": invocation,
        "metadata": metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, data: &str) {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    #[test]
    fn scans_dpkg_apk_python_npm_through_layers() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        write(lower.path(), "etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
        write(
            lower.path(),
            "var/lib/dpkg/status",
            "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\nDescription: x\n more\n\n\
             Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
             Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n",
        );
        write(
            lower.path(),
            "usr/local/lib/python3.11/site-packages/Flask-3.0.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.0\n\nbody\n",
        );
        write(
            lower.path(),
            "usr/local/lib/python3.11/site-packages/old-1.dist-info/METADATA",
            "Name: old\nVersion: 1\n",
        );
        write(upper.path(), "usr/local/lib/python3.11/site-packages/.wh.old-1.dist-info", "");
        write(
            upper.path(),
            "app/package-lock.json",
            r#"{"packages":{"":{"name":"app"},"node_modules/@scope/x":{"version":"1.2.3"},"node_modules/lodash":{"version":"4.17.21"}}}"#,
        );
        let fs = LayerStack { layers: vec![upper.path().to_path_buf(), lower.path().to_path_buf()] };
        let pkgs = scan(&fs);
        let purls: Vec<&str> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert!(purls.contains(&"pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64"), "{purls:?}");
        assert!(purls.contains(&"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"));
        assert!(purls.contains(&"pkg:pypi/flask@3.0.0"));
        assert!(purls.contains(&"pkg:npm/lodash@4.17.21"));
        assert!(purls.contains(&"pkg:npm/%40scope/x@1.2.3"), "{purls:?}");
        assert!(!purls.iter().any(|p| p.contains("gone") || p.contains("pypi/old")), "{purls:?}");

        let doc = spdx_document("app", &pkgs, "2026-01-01T00:00:00Z", "sha256:abc");
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["packages"].as_array().unwrap().len(), pkgs.len());
        // The SPDX project's own validator, when installed (scripts/ci/install-deps.sh).
        match std::process::Command::new("pyspdxtools").arg("--help").output() {
            Ok(o) if o.status.success() => {
                let f = lower.path().join("sbom.spdx.json");
                std::fs::write(&f, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
                let out = std::process::Command::new("pyspdxtools").arg("--infile").arg(&f).output().unwrap();
                let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
                assert!(out.status.success() && !text.to_lowercase().contains("invalid"), "pyspdxtools: {text}");
            }
            _ => eprintln!("SKIPPED: pyspdxtools not installed; the SBOM was not validated by the SPDX tools"),
        }
        let st = statement(SPDX_PREDICATE, &[("app".into(), "ab".into())], doc);
        assert_eq!(st["_type"], STATEMENT_TYPE);
        assert_eq!(st["predicateType"], SPDX_PREDICATE);
    }

    #[test]
    fn provenance_names_materials_and_args() {
        let info = BuildInfo {
            args: BTreeMap::from([("V".into(), "1".into())]),
            platform: "linux/amd64".into(),
            materials: vec![("docker.io/library/debian:12".into(), "ab".repeat(32))],
            dockerfile: Some("FROM debian:12\n".into()),
            max: true,
            ..Default::default()
        };
        let p = provenance_v02(&info);
        assert_eq!(p["buildType"], BUILD_TYPE);
        assert_eq!(p["invocation"]["parameters"]["frontend"], "dockerfile.v0");
        assert_eq!(p["invocation"]["parameters"]["args"]["build-arg:V"], "1");
        assert_eq!(p["materials"][0]["uri"], "pkg:docker/docker.io/library/debian@12?platform=linux%2Famd64");
        assert_eq!(p["materials"][0]["digest"]["sha256"], "ab".repeat(32));
        assert!(p["metadata"]["https://mobyproject.org/buildkit@v1#metadata"]["source"].is_object());
    }
}
