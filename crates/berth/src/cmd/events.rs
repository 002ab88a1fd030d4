//! `events`: a journal of berth's own events in the store (`<root>/events.jsonl`, one JSON
//! object a line, as podman keeps one), written by the commands that change containers and
//! read with docker's `--since`, `--until`, `--filter` and `--format`.

use std::io::{BufRead, Seek, Write};

use anyhow::Result;
use berth_output::units;
use berth_runtime::ContainerInfo;
use serde_json::{Value, json};

use crate::cli::EventsArgs;
use crate::ctx::Ctx;
use crate::errors::exit_with;

fn journal(ctx: &Ctx) -> Result<std::path::PathBuf> {
    Ok(ctx.store()?.root().join("events.jsonl"))
}

/// Appends one event; a journal that cannot be written never fails the command itself.
pub fn record(ctx: &Ctx, kind: &str, action: &str, id: &str, attrs: Value) {
    let now = chrono::Utc::now();
    let ev = json!({
        "status": action,
        "id": id,
        "from": attrs.get("image").cloned().unwrap_or(Value::Null),
        "Type": kind,
        "Action": action,
        "Actor": {"ID": id, "Attributes": attrs},
        "scope": "local",
        "time": now.timestamp(),
        "timeNano": now.timestamp_nanos_opt().unwrap_or(0),
    });
    let write = || -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = journal(ctx)?;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(p)?;
        // One write(2) per line: appends from concurrent commands do not interleave.
        f.write_all(format!("{ev}\n").as_bytes())?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::debug!("events journal: {e}");
    }
}

/// A container event with docker's attributes (name, image).
pub fn container(ctx: &Ctx, action: &str, info: &ContainerInfo) {
    let image = info.record.config.annotations.iter().find(|(k, _)| k == "berth.image").map(|(_, v)| v.clone());
    record(
        ctx,
        "container",
        action,
        &info.record.id,
        json!({"name": info.record.name.clone().unwrap_or_default(), "image": image.unwrap_or_default()}),
    );
}

fn matches(ev: &Value, filters: &crate::cmd::images::Filters) -> bool {
    let any = |key: &str, f: &dyn Fn(&str) -> bool| {
        let v = filters.get(key);
        v.is_empty() || v.iter().any(|x| f(x))
    };
    let attr = |k: &str| ev["Actor"]["Attributes"][k].as_str().unwrap_or("").to_string();
    any("type", &|x| ev["Type"] == x)
        && any("event", &|x| ev["Action"] == x)
        && any("container", &|x| {
            ev["Type"] == "container" && (attr("name") == x || ev["id"].as_str().is_some_and(|i| i.starts_with(x)))
        })
        && any("image", &|x| attr("image") == x)
        && any("label", &|x| {
            let (k, v) = x.split_once('=').unwrap_or((x, ""));
            ev["Actor"]["Attributes"].get(k).is_some_and(|a| v.is_empty() || a == v)
        })
}

fn render(ev: &Value, format: Option<&str>) -> Result<String> {
    match format {
        Some("json") => Ok(berth_output::template::to_go_json(ev)),
        Some(f) => Ok(berth_output::Template::parse(f)?.execute(ev)?),
        None => {
            let nanos = ev["timeNano"].as_i64().unwrap_or(0);
            let t = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default();
            let mut attrs: Vec<String> = ev["Actor"]["Attributes"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
                .unwrap_or_default();
            attrs.sort();
            Ok(format!(
                "{t} {} {} {} ({})",
                ev["Type"].as_str().unwrap_or(""),
                ev["Action"].as_str().unwrap_or(""),
                ev["id"].as_str().unwrap_or(""),
                attrs.join(", ")
            ))
        }
    }
}

/// Prints the journal's events in `[since, until]` that pass the filters; without `--until`
/// it then follows the journal, as docker streams new events.
pub fn events(ctx: &Ctx, a: &EventsArgs) -> Result<i32> {
    let filters = crate::cmd::images::Filters::parse(&a.filter, &["type", "event", "container", "image", "label"])?;
    let now = chrono::Utc::now().timestamp();
    let ts = |v: &str| -> Result<i64> {
        units::parse_timestamp(v, now).map_err(|e| exit_with(1, format!("invalid timestamp {v:?}: {e}")))
    };
    let since = a.since.as_deref().map(ts).transpose()?;
    let until = a.until.as_deref().map(ts).transpose()?;
    let path = journal(ctx)?;
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => Some(std::io::BufReader::new(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(exit_with(1, format!("{}: {e}", path.display()))),
    };
    let mut out = std::io::stdout().lock();
    let mut line = String::new();
    // Docker shows past events only with --since; otherwise new ones from now on.
    let show_past = since.is_some();
    if !show_past && let Some(r) = f.as_mut() {
        r.seek(std::io::SeekFrom::End(0))?;
    }
    loop {
        if f.is_none() {
            f = std::fs::File::open(&path).ok().map(std::io::BufReader::new);
        }
        let mut progressed = false;
        if let Some(r) = f.as_mut() {
            line.clear();
            if r.read_line(&mut line)? > 0 && line.ends_with('\n') {
                progressed = true;
                if let Ok(ev) = serde_json::from_str::<Value>(line.trim()) {
                    let t = ev["time"].as_i64().unwrap_or(0);
                    if until.is_some_and(|u| t > u) {
                        return Ok(0);
                    }
                    if since.is_none_or(|s| t >= s) && matches(&ev, &filters) {
                        writeln!(out, "{}", render(&ev, a.format.as_deref())?)?;
                        out.flush()?;
                    }
                }
            }
        }
        if !progressed {
            if until.is_some_and(|u| chrono::Utc::now().timestamp() > u) {
                return Ok(0);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}
