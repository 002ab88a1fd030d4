//! /etc/resolv.conf, /etc/hosts and /etc/hostname for a container, generated into its
//! scratch directory and bind-mounted over the rootfs files.

use std::path::Path;

use crate::config::{ContainerConfig, NetworkMode};
use crate::error::Result;
use crate::spec::EtcFiles;

/// Write the three files into `dir` and return their paths.
pub fn write_etc_files(dir: &Path, cfg: &ContainerConfig, hostname: &str) -> Result<EtcFiles> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io("create", dir, e))?;
    let files =
        EtcFiles { resolv_conf: dir.join("resolv.conf"), hosts: dir.join("hosts"), hostname: dir.join("hostname") };
    // Scratch files live as long as the run: no fsync needed (and /run is tmpfs).
    let w = |p: &Path, d: &[u8]| std::fs::write(p, d).map_err(|e| crate::Error::io("write", p, e));
    w(&files.resolv_conf, resolv_conf(cfg).as_bytes())?;
    w(&files.hosts, hosts(cfg, hostname).as_bytes())?;
    w(&files.hostname, format!("{hostname}\n").as_bytes())?;
    Ok(files)
}

fn resolv_conf(cfg: &ContainerConfig) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if cfg.dns.is_empty() && cfg.dns_search.is_empty() && cfg.dns_options.is_empty() {
        if cfg.network == NetworkMode::Host || !host.is_empty() {
            return host;
        }
        return "nameserver 8.8.8.8\nnameserver 8.8.4.4\n".into();
    }
    let mut out = String::new();
    let servers: Vec<String> = if cfg.dns.is_empty() {
        host.lines().filter_map(|l| l.strip_prefix("nameserver")).map(|s| s.trim().to_owned()).collect()
    } else {
        cfg.dns.clone()
    };
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !cfg.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", cfg.dns_search.join(" ")));
    }
    if !cfg.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", cfg.dns_options.join(" ")));
    }
    out
}

fn hosts(cfg: &ContainerConfig, hostname: &str) -> String {
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
        out.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for (name, ip) in &cfg.extra_hosts {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}
