//! /etc/resolv.conf, /etc/hosts and /etc/hostname for a container, generated into its
//! scratch directory and bind-mounted over the rootfs files.

use std::path::Path;

use crate::config::{ContainerConfig, NetworkMode};
use crate::error::Result;
use crate::net::Attachment;
use crate::spec::EtcFiles;

/// Write the three files into `dir` and return their paths.
pub fn write_etc_files(
    dir: &Path,
    cfg: &ContainerConfig,
    hostname: &str,
    net: Option<&Attachment>,
) -> Result<EtcFiles> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io("create", dir, e))?;
    let files =
        EtcFiles { resolv_conf: dir.join("resolv.conf"), hosts: dir.join("hosts"), hostname: dir.join("hostname") };
    // Scratch files live as long as the run: no fsync needed (and /run is tmpfs).
    let w = |p: &Path, d: &[u8]| std::fs::write(p, d).map_err(|e| crate::Error::io("write", p, e));
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    w(&files.resolv_conf, resolv_conf(cfg, &host).as_bytes())?;
    w(&files.hosts, hosts(cfg, hostname, net).as_bytes())?;
    w(&files.hostname, format!("{hostname}\n").as_bytes())?;
    Ok(files)
}

fn resolv_conf(cfg: &ContainerConfig, host: &str) -> String {
    let bridge = matches!(cfg.network, NetworkMode::Bridge(_));
    if cfg.dns.is_empty() && cfg.dns_search.is_empty() && cfg.dns_options.is_empty() && !bridge {
        if cfg.network == NetworkMode::Host || !host.is_empty() {
            return host.to_owned();
        }
        return "nameserver 8.8.8.8\nnameserver 8.8.4.4\n".into();
    }
    let mut out = String::new();
    let servers: Vec<String> = if !cfg.dns.is_empty() {
        cfg.dns.clone()
    } else if bridge {
        // The host's nameservers, except loopback ones the berth netns cannot reach.
        crate::net::bridge_nameservers(host)
    } else {
        host.lines().filter_map(|l| l.strip_prefix("nameserver")).map(|s| s.trim().to_owned()).collect()
    };
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    let host_line = |k: &str| host.lines().rev().find(|l| l.starts_with(k)).map(|l| format!("{l}\n"));
    if !cfg.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", cfg.dns_search.join(" ")));
    } else if let Some(l) = host_line("search") {
        out.push_str(&l);
    }
    if !cfg.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", cfg.dns_options.join(" ")));
    } else if let Some(l) = host_line("options") {
        out.push_str(&l);
    }
    out
}

fn hosts(cfg: &ContainerConfig, hostname: &str, net: Option<&Attachment>) -> String {
    let mut out = String::new();
    if cfg.network == NetworkMode::Host {
        // Like Docker: the host's file as is (plus extra hosts).
        out = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    }
    if out.is_empty() {
        out.push_str("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
        match net {
            // As Docker's bridge: the container's address names it; peers on user networks.
            Some(n) => {
                for (ip, name) in &n.hosts {
                    out.push_str(&format!("{ip}\t{name}\n"));
                }
            }
            None => out.push_str(&format!("127.0.1.1\t{hostname}\n")),
        }
    }
    for (name, ip) in &cfg.extra_hosts {
        let ip = if ip == "host-gateway" { host_gateway() } else { ip.clone() };
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// `host-gateway` in `--add-host`: the host's primary IPv4 address (the source address
/// of its default route; a UDP connect sends nothing). From a bridge network it reaches
/// the host's services listening on all addresses or that one, never loopback-only ones.
fn host_gateway() -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("198.51.100.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| crate::net::HOST_GATEWAY.into())
}
