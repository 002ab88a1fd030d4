//! `network …`, `port`, and the network parts of `run`/`ps`/`inspect`.
//!
//! User-defined networks are records in `<store>/networks/<id>.json`; a container's
//! record holds the resolved [`NetworkSpec`], so the runtime needs no lookup. Bridges,
//! addresses and forwards live in the berth netns ([`berth_runtime::net`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use berth_runtime::net::{self, NetState, NetworkSpec, PortMapping, Proto};
use berth_runtime::{ContainerInfo, NetworkMode, RuntimeOptions, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cli::{
    NetworkCmd, NetworkCreateArgs, NetworkInspectArgs, NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs, PortArgs,
    RunArgs,
};
use crate::ctx::Ctx;
use crate::errors::exit_with;

/// A user-defined network as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetRecord {
    created: String,
    labels: BTreeMap<String, String>,
    spec: NetworkSpec,
}

fn dir(ctx: &Ctx) -> Result<PathBuf> {
    Ok(ctx.store()?.root().join("networks"))
}

fn records(ctx: &Ctx) -> Result<Vec<NetRecord>> {
    let mut out = Vec::new();
    let d = dir(ctx)?;
    for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            let data = std::fs::read(&p)?;
            let r: NetRecord = serde_json::from_slice(&data).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(out)
}

fn builtin() -> Vec<NetRecord> {
    let rec = |spec: NetworkSpec| NetRecord { created: "0001-01-01T00:00:00Z".into(), labels: BTreeMap::new(), spec };
    let mut host = NetworkSpec::default_bridge();
    host.name = "host".into();
    host.id = format!("{:0>64}", "1");
    let mut none = NetworkSpec::default_bridge();
    none.name = "none".into();
    none.id = format!("{:0>64}", "2");
    vec![rec(NetworkSpec::default_bridge()), rec(host), rec(none)]
}

fn driver(r: &NetRecord) -> &'static str {
    match r.spec.name.as_str() {
        "host" if r.spec.id.starts_with("000") => "host",
        "none" if r.spec.id.starts_with("000") => "null",
        _ => "bridge",
    }
}

/// Find a network by name, full id or unique id prefix (the built-in ones included).
fn find(ctx: &Ctx, s: &str) -> Result<NetRecord> {
    let all: Vec<NetRecord> = builtin().into_iter().chain(records(ctx)?).collect();
    if let Some(r) = all.iter().find(|r| r.spec.name == s || r.spec.id == s) {
        return Ok(r.clone());
    }
    let m: Vec<&NetRecord> = all.iter().filter(|r| !s.is_empty() && r.spec.id.starts_with(s)).collect();
    match m.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(exit_with(1, format!("network {s} not found"))),
    }
}

/// `--network` of `run`/`create`, resolved.
pub fn resolve_mode(ctx: &Ctx, a: &RunArgs) -> Result<NetworkMode> {
    let mode = match a.network.as_str() {
        "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        "bridge" | "default" | "" => NetworkMode::Bridge(NetworkSpec::default_bridge()),
        s if s.starts_with("container:") => {
            let target = &s["container:".len()..];
            let info = super::containers::find(ctx, target)?;
            NetworkMode::Container(info.record.id)
        }
        s => {
            let r = find(ctx, s).map_err(|_| exit_with(125, format!("network {s} not found")))?;
            NetworkMode::Bridge(r.spec)
        }
    };
    let bridge = matches!(mode, NetworkMode::Bridge(_));
    if !bridge {
        if !a.publish.is_empty() || a.publish_all {
            if mode == NetworkMode::Host {
                eprintln!("WARNING: Published ports are discarded when using host network mode");
            } else {
                return Err(exit_with(125, "conflicting options: port publishing and the container type network mode"));
            }
        }
        if !a.network_alias.is_empty() {
            return Err(exit_with(125, "network-scoped aliases are only supported for user-defined networks"));
        }
    }
    if matches!(mode, NetworkMode::Container(_))
        && (!a.dns.is_empty() || !a.add_host.is_empty() || a.hostname.is_some())
    {
        return Err(exit_with(
            125,
            "conflicting options: dns, add-host and hostname cannot be set with container network mode",
        ));
    }
    if a.ip.is_some() && !matches!(&mode, NetworkMode::Bridge(n) if n.name != "bridge") {
        return Err(exit_with(125, "user specified IP address is supported on user defined networks only"));
    }
    if let NetworkMode::Bridge(n) = &mode
        && n.name == "bridge"
        && !a.network_alias.is_empty()
    {
        return Err(exit_with(125, "network-scoped aliases are only supported for user-defined networks"));
    }
    Ok(mode)
}

/// `-p` and `-P` (with the image's EXPOSE and `--expose`).
pub fn publish(a: &RunArgs, exposed: &[String]) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for p in &a.publish {
        out.extend(net::parse_publish(p).map_err(|e| exit_with(125, e))?);
    }
    if a.publish_all {
        for e in exposed.iter().chain(a.expose.iter()) {
            for m in net::parse_publish(e).map_err(|e| exit_with(125, format!("invalid exposed port: {e}")))? {
                if !out.iter().any(|o| o.container_port == m.container_port && o.proto == m.proto) {
                    out.push(PortMapping { host_port: 0, host_ip: String::new(), ..m });
                }
            }
        }
    }
    Ok(out)
}

/// Docker's `ps` PORTS text: `0.0.0.0:8080->80/tcp, 443/tcp`.
pub fn ports_text(info: &ContainerInfo) -> String {
    let mut parts = Vec::new();
    if info.state.status == Status::Running
        && let Some(n) = &info.state.network
    {
        for p in &n.ports {
            parts.push(format!("{}:{}->{}/{}", p.host_ip, p.host_port, p.container_port, p.proto.as_str()));
        }
    }
    parts.join(", ")
}

/// Docker's `NetworkSettings` for `inspect`.
pub fn settings_json(info: &ContainerInfo) -> Value {
    let cfg = &info.record.config;
    let running = info.state.status == Status::Running;
    let st: NetState = info.state.network.clone().filter(|_| running).unwrap_or_default();
    let mut ports = serde_json::Map::new();
    for m in &cfg.publish {
        ports.entry(format!("{}/{}", m.container_port, m.proto.as_str())).or_insert(Value::Null);
    }
    for p in &st.ports {
        let key = format!("{}/{}", p.container_port, p.proto.as_str());
        let b = json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()});
        match ports.get_mut(&key) {
            Some(Value::Array(v)) => v.push(b),
            _ => {
                ports.insert(key, json!([b]));
            }
        }
    }
    let mut networks = serde_json::Map::new();
    if let NetworkMode::Bridge(n) = &cfg.network {
        networks.insert(
            n.name.clone(),
            json!({
                "Aliases": if cfg.network_aliases.is_empty() { Value::Null } else { json!(cfg.network_aliases) },
                "NetworkID": n.id,
                "Gateway": st.gateway,
                "IPAddress": st.ip_address,
                "IPPrefixLen": st.ip_prefix_len,
                "MacAddress": st.mac_address,
                "IPAMConfig": cfg.ip.as_ref().map(|ip| json!({"IPv4Address": ip})),
            }),
        );
    } else if matches!(cfg.network, NetworkMode::Host | NetworkMode::None) {
        networks.insert(cfg.network.docker_name(), json!({"IPAddress": "", "Gateway": ""}));
    }
    let default_bridge = matches!(&cfg.network, NetworkMode::Bridge(n) if n.name == "bridge");
    json!({
        "Ports": ports,
        "SandboxKey": if running && cfg.network.is_private() { format!("/proc/{}/ns/net", info.state.pid) } else { String::new() },
        "Gateway": if default_bridge { st.gateway.clone() } else { String::new() },
        "IPAddress": if default_bridge { st.ip_address.clone() } else { String::new() },
        "IPPrefixLen": if default_bridge { st.ip_prefix_len } else { 0 },
        "MacAddress": if default_bridge { st.mac_address.clone() } else { String::new() },
        "Networks": networks,
    })
}

pub fn port(ctx: &Ctx, a: &PortArgs) -> Result<i32> {
    let info = super::containers::find(ctx, &a.container)?;
    let ports = info.state.network.as_ref().filter(|_| info.state.status == Status::Running).map(|n| n.ports.clone());
    let ports = ports.unwrap_or_default();
    let mut out = std::io::stdout().lock();
    match &a.port {
        Some(p) => {
            let (num, proto) = match p.split_once('/') {
                Some((n, "udp")) => (n, Proto::Udp),
                Some((n, "tcp")) => (n, Proto::Tcp),
                Some((_, x)) => return Err(exit_with(1, format!("Error: invalid proto: {x}"))),
                None => (p.as_str(), Proto::Tcp),
            };
            let num: u16 = num.parse().map_err(|_| exit_with(1, format!("Error: invalid port: {p}")))?;
            let hits: Vec<_> = ports.iter().filter(|x| x.container_port == num && x.proto == proto).collect();
            if hits.is_empty() {
                return Err(exit_with(
                    1,
                    format!("Error: No public port '{num}/{}' published for {}", proto.as_str(), a.container),
                ));
            }
            for h in hits {
                writeln!(out, "{}:{}", h.host_ip, h.host_port)?;
            }
        }
        None => {
            for h in &ports {
                writeln!(out, "{}/{} -> {}:{}", h.container_port, h.proto.as_str(), h.host_ip, h.host_port)?;
            }
        }
    }
    Ok(0)
}

pub fn dispatch(ctx: &Ctx, c: NetworkCmd) -> Result<i32> {
    match c {
        NetworkCmd::Create(a) => create(ctx, &a),
        NetworkCmd::Ls(a) => ls(ctx, &a),
        NetworkCmd::Inspect(a) => inspect(ctx, &a),
        NetworkCmd::Rm(a) => rm(ctx, &a),
        NetworkCmd::Prune(a) => prune(ctx, &a),
        NetworkCmd::Connect(_) | NetworkCmd::Disconnect(_) => Err(exit_with(
            1,
            "berth cannot change a container's networks after it is created yet; \
             hint: recreate the container with --network NAME",
        )),
    }
}

fn containers_on(ctx: &Ctx, id: &str) -> Result<Vec<ContainerInfo>> {
    Ok(super::containers::containers(ctx)?
        .list()?
        .into_iter()
        .filter(|c| matches!(&c.record.config.network, NetworkMode::Bridge(n) if n.id == id))
        .collect())
}

fn create(ctx: &Ctx, a: &NetworkCreateArgs) -> Result<i32> {
    if a.driver != "bridge" {
        return Err(exit_with(1, format!("plugin \"{}\" not found (berth supports the bridge driver)", a.driver)));
    }
    if a.subnet.len() > 1 || a.gateway.len() > 1 {
        return Err(exit_with(1, "berth supports one IPv4 subnet per network"));
    }
    let existing = records(ctx)?;
    if builtin().iter().chain(existing.iter()).any(|r| r.spec.name == a.name) {
        return Err(exit_with(1, format!("network with name {} already exists", a.name)));
    }
    let id = berth_runtime::util::random_id();
    let used: Vec<(std::net::Ipv4Addr, u8)> = existing
        .iter()
        .map(|r| r.spec.subnet.as_str())
        .chain(std::iter::once(NetworkSpec::default_bridge().subnet.as_str()))
        .filter_map(|s| net::parse_cidr(s).ok())
        .collect();
    let overlaps = |n: std::net::Ipv4Addr, l: u8| {
        used.iter().any(|(u, ul)| net::in_subnet(n, *u, *ul) || net::in_subnet(*u, n, l))
    };
    let (subnet, len) = match a.subnet.first() {
        Some(s) => {
            let (n, l) = net::parse_cidr(s).map_err(|e| exit_with(1, e.to_string()))?;
            if overlaps(n, l) {
                return Err(exit_with(
                    1,
                    format!("invalid pool request: Pool overlaps with other one on this address space ({s})"),
                ));
            }
            (n, l)
        }
        None => {
            // 10.89.N.0/24, the first N no network of this store uses.
            let free = (1u8..=254).map(|i| std::net::Ipv4Addr::new(10, 89, i, 0)).find(|n| !overlaps(*n, 24));
            (free.ok_or_else(|| exit_with(1, "no free subnet left in 10.89.0.0/16; pass --subnet"))?, 24)
        }
    };
    let gateway = match a.gateway.first() {
        Some(g) => {
            let ip: std::net::Ipv4Addr = g.parse().map_err(|_| exit_with(1, format!("invalid gateway {g}")))?;
            if !net::in_subnet(ip, subnet, len) {
                return Err(exit_with(1, format!("gateway {g} is not in subnet {subnet}/{len}")));
            }
            ip
        }
        None => std::net::Ipv4Addr::from(u32::from(subnet) + 1),
    };
    let labels = a
        .label
        .iter()
        .map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap_or((l.clone(), String::new())))
        .collect();
    let rec = NetRecord {
        created: berth_runtime::util::now_rfc3339(),
        labels,
        spec: NetworkSpec {
            name: a.name.clone(),
            id: id.clone(),
            subnet: format!("{subnet}/{len}"),
            gateway: gateway.to_string(),
            internal: a.internal,
            bridge: format!("br-{}", &id[..12]),
            dns: true,
        },
    };
    let d = dir(ctx)?;
    std::fs::create_dir_all(&d)?;
    berth_runtime::util::atomic_write(&d.join(format!("{id}.json")), &serde_json::to_vec_pretty(&rec)?, 0o600)?;
    println!("{id}");
    Ok(0)
}

fn row(r: &NetRecord, no_trunc: bool) -> Value {
    json!({
        "ID": if no_trunc { r.spec.id.clone() } else { r.spec.id.chars().take(12).collect() },
        "Name": r.spec.name,
        "Driver": driver(r),
        "Scope": "local",
        "IPv6": "false",
        "Internal": r.spec.internal.to_string(),
        "CreatedAt": r.created,
        "Labels": r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
    })
}

fn ls(ctx: &Ctx, a: &NetworkLsArgs) -> Result<i32> {
    let all: Vec<NetRecord> = builtin().into_iter().chain(records(ctx)?).collect();
    let rows: Vec<Value> = all.iter().map(|r| row(r, a.no_trunc)).collect();
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or(""))?;
        }
        return Ok(0);
    }
    berth_output::write_list(
        &mut out,
        a.format.as_deref(),
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        &[
            ("ID", "NETWORK ID"),
            ("Name", "NAME"),
            ("Driver", "DRIVER"),
            ("Scope", "SCOPE"),
            ("IPv6", "IPV6"),
            ("Internal", "INTERNAL"),
            ("CreatedAt", "CREATED AT"),
            ("Labels", "LABELS"),
        ],
        &rows,
    )?;
    Ok(0)
}

fn inspect_json(ctx: &Ctx, r: &NetRecord) -> Result<Value> {
    let mut containers = serde_json::Map::new();
    for c in containers_on(ctx, &r.spec.id)? {
        if c.state.status != Status::Running {
            continue;
        }
        let st = c.state.network.clone().unwrap_or_default();
        containers.insert(
            c.record.id.clone(),
            json!({
                "Name": c.record.name.clone().unwrap_or_default(),
                "MacAddress": st.mac_address,
                "IPv4Address": if st.ip_address.is_empty() { String::new() } else { format!("{}/{}", st.ip_address, st.ip_prefix_len) },
                "IPv6Address": "",
            }),
        );
    }
    let bridge = driver(r) == "bridge";
    Ok(json!({
        "Name": r.spec.name,
        "Id": r.spec.id,
        "Created": r.created,
        "Scope": "local",
        "Driver": driver(r),
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": if bridge { json!([{"Subnet": r.spec.subnet, "Gateway": r.spec.gateway}]) } else { json!([]) },
        },
        "Internal": r.spec.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": if bridge { json!({"com.docker.network.bridge.name": r.spec.bridge}) } else { json!({}) },
        "Labels": r.labels,
    }))
}

fn inspect(ctx: &Ctx, a: &NetworkInspectArgs) -> Result<i32> {
    let mut vals = Vec::new();
    let mut errs = Vec::new();
    for n in &a.networks {
        match find(ctx, n) {
            Ok(r) => vals.push(inspect_json(ctx, &r)?),
            Err(_) => errs.push(format!("Error response from daemon: network {n} not found")),
        }
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = berth_output::write_inspect(&mut out, a.format.as_deref(), &vals) {
        drop(out);
        return Err(exit_with(1, format!("template: {e}")));
    }
    drop(out);
    if !errs.is_empty() {
        return Err(exit_with(1, errs.join("\n")));
    }
    Ok(0)
}

fn remove(ctx: &Ctx, r: &NetRecord) -> Result<()> {
    if builtin().iter().any(|b| b.spec.id == r.spec.id) {
        return Err(exit_with(1, format!("{} is a pre-defined network and cannot be removed", r.spec.name)));
    }
    let users = containers_on(ctx, &r.spec.id)?;
    if let Some(c) = users.first() {
        return Err(exit_with(
            1,
            format!(
                "error while removing network: network {} id {} has active endpoints (container {})",
                r.spec.name,
                r.spec.id,
                c.record.name.clone().unwrap_or_default()
            ),
        ));
    }
    let opts = RuntimeOptions::default();
    net::remove_bridge(&opts.state_root, &r.spec).map_err(|e| exit_with(1, e.to_string()))?;
    std::fs::remove_file(dir(ctx)?.join(format!("{}.json", r.spec.id)))?;
    Ok(())
}

fn rm(ctx: &Ctx, a: &NetworkRmArgs) -> Result<i32> {
    let mut errs = Vec::new();
    for n in &a.networks {
        match find(ctx, n).and_then(|r| remove(ctx, &r)) {
            Ok(()) => println!("{n}"),
            Err(e) => errs.push(format!("{e:#}")),
        }
    }
    if !errs.is_empty() {
        return Err(exit_with(1, errs.join("\n")));
    }
    Ok(0)
}

fn prune(ctx: &Ctx, a: &NetworkPruneArgs) -> Result<i32> {
    if !a.force && !super::confirm("WARNING! This will remove all custom networks not used by at least one container.")
    {
        return Ok(0);
    }
    let mut removed = Vec::new();
    for r in records(ctx)? {
        if containers_on(ctx, &r.spec.id)?.is_empty() {
            remove(ctx, &r)?;
            removed.push(r.spec.name.clone());
        }
    }
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(0)
}
