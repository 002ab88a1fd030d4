//! Docker-shaped JSON for images (`inspect`, `images --format`, `history --format`).

use berth_store::{ImageRecord, Store};
use berth_types::ContainerConfig;
use serde_json::{Map, Value, json};

/// Seconds since the epoch of an RFC 3339 time (0 when absent or unparsable).
pub fn unix_of(t: Option<&str>) -> i64 {
    t.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|d| d.timestamp()).unwrap_or(0)
}

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Docker's full `Config` object: every field present, zero values included.
pub fn container_config_json(c: Option<&ContainerConfig>) -> Value {
    let d = ContainerConfig::default();
    let c = c.unwrap_or(&d);
    let mut m = Map::new();
    m.insert("Hostname".into(), json!(c.hostname.clone().unwrap_or_default()));
    m.insert("Domainname".into(), json!(c.domainname.clone().unwrap_or_default()));
    m.insert("User".into(), json!(c.user.clone().unwrap_or_default()));
    m.insert("AttachStdin".into(), json!(c.attach_stdin.unwrap_or(false)));
    m.insert("AttachStdout".into(), json!(c.attach_stdout.unwrap_or(false)));
    m.insert("AttachStderr".into(), json!(c.attach_stderr.unwrap_or(false)));
    if let Some(p) = &c.exposed_ports {
        m.insert("ExposedPorts".into(), json!(p));
    }
    m.insert("Tty".into(), json!(c.tty.unwrap_or(false)));
    m.insert("OpenStdin".into(), json!(c.open_stdin.unwrap_or(false)));
    m.insert("StdinOnce".into(), json!(c.stdin_once.unwrap_or(false)));
    m.insert("Env".into(), json!(c.env));
    m.insert("Cmd".into(), json!(c.cmd));
    if let Some(h) = &c.healthcheck {
        m.insert("Healthcheck".into(), json!(h));
    }
    if let Some(a) = c.args_escaped {
        m.insert("ArgsEscaped".into(), json!(a));
    }
    m.insert("Image".into(), json!(c.image.clone().unwrap_or_default()));
    m.insert("Volumes".into(), json!(c.volumes));
    m.insert("WorkingDir".into(), json!(c.working_dir.clone().unwrap_or_default()));
    m.insert("Entrypoint".into(), json!(c.entrypoint));
    m.insert("OnBuild".into(), json!(c.on_build));
    m.insert("Labels".into(), json!(c.labels));
    if let Some(s) = &c.stop_signal {
        m.insert("StopSignal".into(), json!(s));
    }
    if let Some(s) = &c.shell {
        m.insert("Shell".into(), json!(s));
    }
    Value::Object(m)
}

/// `docker image inspect` for one image.
pub fn inspect_image(rec: &ImageRecord, store: &Store) -> Value {
    let img = &rec.image;
    let cfg = &img.config;
    let mut m = Map::new();
    m.insert("Id".into(), json!(img.id.to_string()));
    m.insert("RepoTags".into(), json!(rec.repo_tags.iter().map(|r| r.familiar()).collect::<Vec<_>>()));
    m.insert("RepoDigests".into(), json!(rec.repo_digests.iter().map(|r| r.familiar()).collect::<Vec<_>>()));
    m.insert("Parent".into(), json!(cfg.extra_str("parent").unwrap_or("")));
    m.insert("Comment".into(), json!(cfg.extra_str("comment").unwrap_or("")));
    m.insert("Created".into(), json!(cfg.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into())));
    if let Some(c) = cfg.extra.get("container") {
        m.insert("Container".into(), c.clone());
    }
    if let Some(cc) = cfg.extra.get("container_config") {
        let parsed: Option<ContainerConfig> = serde_json::from_value(cc.clone()).ok();
        m.insert("ContainerConfig".into(), container_config_json(parsed.as_ref()));
    }
    m.insert("DockerVersion".into(), json!(cfg.extra_str("docker_version").unwrap_or("")));
    m.insert("Author".into(), json!(cfg.author.clone().unwrap_or_default()));
    m.insert("Config".into(), container_config_json(cfg.config.as_ref()));
    m.insert("Architecture".into(), json!(cfg.architecture));
    if let Some(v) = &cfg.variant {
        m.insert("Variant".into(), json!(v));
    }
    m.insert("Os".into(), json!(cfg.os));
    if let Some(v) = &cfg.os_version {
        m.insert("OsVersion".into(), json!(v));
    }
    m.insert("Size".into(), json!(rec.size));
    m.insert("VirtualSize".into(), json!(rec.size));
    let lowers: Vec<String> = img.diff_ids().iter().rev().map(|d| store.snapshot_fs(d).display().to_string()).collect();
    m.insert("GraphDriver".into(), json!({"Data": {"LowerDir": lowers.join(":")}, "Name": "overlay"}));
    m.insert(
        "RootFS".into(),
        json!({"Type": cfg.rootfs.kind, "Layers": cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()}),
    );
    m.insert(
        "Metadata".into(),
        json!({"LastTagTime": rec.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into())}),
    );
    m.insert(
        "Descriptor".into(),
        json!({"mediaType": img.manifest_desc.media_type, "digest": img.manifest_desc.digest.to_string(), "size": img.manifest_desc.size}),
    );
    Value::Object(m)
}
