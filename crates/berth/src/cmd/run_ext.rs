//! `run`/`create` flags beyond the basic set: each is applied to the container's
//! configuration or refused with a clear error; none is accepted and ignored.

use anyhow::Result;
use berth_output::units;
use berth_runtime::{ContainerConfig, HealthConfig, MountSpec, RestartPolicy, SeccompMode, Ulimit};

use crate::cli::RunArgs;
use crate::ctx::Ctx;
use crate::errors::exit_with;

fn bad(msg: impl Into<String>) -> anyhow::Error {
    exit_with(125, msg.into())
}

/// `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let (name, n) = s.split_once(':').map(|(a, b)| (a, Some(b))).unwrap_or((s, None));
    let max = match (name, n) {
        ("on-failure", Some(n)) => n
            .parse::<u32>()
            .map_err(|_| bad(format!("invalid restart policy: maximum retry count must be an integer: {n}")))?,
        (_, Some(_)) => {
            return Err(bad(format!(
                "invalid restart policy format: maximum retry count can only be used with 'on-failure': {s}"
            )));
        }
        _ => 0,
    };
    match name {
        "" | "no" => Ok(RestartPolicy::default()),
        "always" | "unless-stopped" | "on-failure" => Ok(RestartPolicy { name: name.into(), maximum_retry_count: max }),
        _ => Err(bad(format!(
            "invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ))),
    }
}

fn duration_ns(flag: &str, v: &str) -> Result<u64> {
    units::parse_go_duration(v)
        .map(|d| d.as_nanos() as u64)
        .map_err(|e| bad(format!("invalid argument {v:?} for \"{flag}\" flag: {e}")))
}

fn bytes(flag: &str, v: &str) -> Result<i64> {
    units::ram_in_bytes(v).map_err(|e| bad(format!("invalid argument {v:?} for \"{flag}\" flag: {e}")))
}

fn namespace_flag(flag: &str, v: Option<&str>, ok: &[&str]) -> Result<()> {
    match v {
        None => Ok(()),
        Some(v) if ok.contains(&v) => Ok(()),
        Some(v) => Err(bad(format!(
            "--{flag}={v} is not supported: berth gives every container its own {flag} namespace (accepted: {})",
            ok.iter().filter(|o| !o.is_empty()).copied().collect::<Vec<_>>().join(", ")
        ))),
    }
}

pub fn apply(ctx: &Ctx, a: &RunArgs, cfg: &mut ContainerConfig) -> Result<()> {
    let x = &a.ext;
    if let Some(r) = &x.restart {
        cfg.restart_policy = parse_restart(r)?;
        if !cfg.restart_policy.name.is_empty() && a.rm {
            return Err(bad("Conflicting options: --restart and --rm"));
        }
    }
    if let Some(g) = &x.gpus {
        return Err(bad(format!(
            "--gpus {g}: could not select device driver \"\" with capabilities: [[gpu]] (berth has no GPU support: no GPU runtime hook on this host)"
        )));
    }
    if !x.device.is_empty() {
        return Err(bad(format!(
            "--device {} is not supported yet: use --privileged (all host devices) or a bind mount with -v",
            x.device.join(",")
        )));
    }
    namespace_flag("userns", x.userns.as_deref(), &["host", ""])?;
    namespace_flag("ipc", x.ipc.as_deref(), &["private", "shareable", ""])?;
    namespace_flag("pid", x.pid.as_deref(), &["private", ""])?;
    namespace_flag("uts", x.uts.as_deref(), &["private", ""])?;
    for t in &x.tmpfs {
        let (target, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        let mut size = None;
        let mut mode = None;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o.split_once('=') {
                Some(("size", v)) => size = Some(bytes("--tmpfs", v)?.max(0) as u64),
                Some(("mode", v)) => {
                    mode = Some(u32::from_str_radix(v, 8).map_err(|_| bad(format!("invalid tmpfs mode {v:?}")))?)
                }
                _ if matches!(o, "rw" | "noexec" | "nosuid" | "nodev" | "exec" | "suid" | "dev") => {}
                _ => return Err(bad(format!("--tmpfs {t}: unsupported option {o:?} (size=, mode=)"))),
            }
        }
        cfg.mounts.push(MountSpec::Tmpfs { target: target.to_string(), size, mode });
    }
    for o in &x.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match (k, v) {
            ("no-new-privileges", "" | "true") => cfg.no_new_privileges = true,
            ("no-new-privileges", "false") => cfg.no_new_privileges = false,
            ("seccomp", "unconfined") => cfg.seccomp = SeccompMode::Unconfined,
            ("seccomp", "") => return Err(bad("--security-opt seccomp needs a profile file or 'unconfined'")),
            ("seccomp", p) => {
                let path = std::path::PathBuf::from(p);
                if !path.is_file() {
                    return Err(bad(format!("opening seccomp profile ({p}) failed: no such file")));
                }
                cfg.seccomp = SeccompMode::Profile(path);
            }
            // No SELinux labelling happens in berth, so disabling it is what already holds.
            ("label", "disable") => {}
            _ => {
                return Err(bad(format!(
                    "--security-opt {o} is not supported (no-new-privileges, seccomp=PROFILE|unconfined, label=disable)"
                )));
            }
        }
    }
    for u in &x.ulimit {
        let (name, v) = u.split_once('=').ok_or_else(|| bad(format!("invalid ulimit argument: {u}")))?;
        let (soft, hard) = v.split_once(':').unwrap_or((v, v));
        let num = |s: &str| -> Result<u64> {
            if s == "-1" || s == "unlimited" {
                return Ok(u64::MAX);
            }
            s.parse().map_err(|_| bad(format!("invalid ulimit argument: {u}")))
        };
        let (soft, hard) = (num(soft)?, num(hard)?);
        if soft > hard {
            return Err(bad(format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")));
        }
        cfg.ulimits.push(Ulimit { name: name.to_string(), soft, hard });
    }
    if let Some(s) = &x.shm_size {
        cfg.shm_size = Some(bytes("--shm-size", s)?.max(0) as u64);
    }
    if let Some(c) = x.cpus {
        if c <= 0.0 {
            return Err(bad(format!("range of CPUs is from 0.01 to the number of CPUs: {c}")));
        }
        cfg.cpu_period = Some(100_000);
        cfg.cpu_quota = Some((c * 100_000.0) as i64);
    }
    cfg.cpu_shares = x.cpu_shares.or(cfg.cpu_shares);
    if let Some(c) = &x.cpuset_cpus {
        cfg.cpuset_cpus = Some(c.clone());
    }
    if let Some(s) = &x.memory_swap {
        let v = if s == "-1" { -1 } else { bytes("--memory-swap", s)? };
        if cfg.memory.is_none() && v != -1 {
            return Err(bad("You should always set the Memory limit when using Memoryswap limit, see usage."));
        }
        if let Some(m) = cfg.memory
            && v != -1
            && v < m
        {
            return Err(bad("Minimum memoryswap limit should be larger than memory limit, see usage."));
        }
        cfg.memory_swap = Some(v);
    }
    for s in &x.sysctl {
        let (k, v) = s.split_once('=').ok_or_else(|| bad(format!("invalid sysctl value {s:?} (name=value)")))?;
        cfg.sysctls.push((k.to_string(), v.to_string()));
    }
    cfg.group_add.extend(x.group_add.iter().cloned());
    for f in &x.label_file {
        let text = std::fs::read_to_string(f).map_err(|e| bad(format!("open {}: {e}", f.display())))?;
        for l in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            let key = format!("label.{k}");
            // Labels given with --label win over the file's, as in docker.
            if !cfg.annotations.iter().any(|(x, _)| *x == key) {
                cfg.annotations.push((key, v.to_string()));
            }
        }
    }
    match x.log_driver.as_deref() {
        None | Some("json-file") => {}
        Some(d) => {
            return Err(bad(format!("--log-driver {d} is not supported: berth's containers log with json-file only")));
        }
    }
    if let Some(o) = x.log_opt.first() {
        return Err(bad(format!(
            "--log-opt {o} is not supported: berth's json-file logs are not rotated yet (max-size, max-file)"
        )));
    }
    for from in &x.volumes_from {
        let (name, mode) = from.split_once(':').unwrap_or((from.as_str(), ""));
        let ro = match mode {
            "" | "rw" => None,
            "ro" => Some(true),
            m => return Err(bad(format!("invalid mode for --volumes-from {from}: {m} (ro or rw)"))),
        };
        let other = crate::cmd::containers::find(ctx, name)?;
        for m in &other.record.config.mounts {
            if let MountSpec::Bind { source, target, readonly } = m {
                cfg.mounts.push(MountSpec::Bind {
                    source: source.clone(),
                    target: target.clone(),
                    readonly: ro.unwrap_or(*readonly),
                });
            }
        }
    }
    let any_health = x.health_interval.is_some()
        || x.health_timeout.is_some()
        || x.health_retries.is_some()
        || x.health_start_period.is_some()
        || x.health_start_interval.is_some();
    if any_health {
        let Some(h) = cfg.healthcheck.as_mut() else {
            if a.no_healthcheck {
                return Err(bad("--no-healthcheck conflicts with --health-* options"));
            }
            return Err(bad("--health-* options need a health check: --health-cmd or the image's HEALTHCHECK"));
        };
        apply_health(h, x)?;
    }
    if x.detach_keys.is_some() && !a.detach {
        return Err(bad("--detach-keys is not supported: berth's attached sessions have no detach sequence"));
    }
    match x.sig_proxy.as_deref() {
        None | Some("true") => {}
        Some("false") if a.detach => {}
        Some(v) => {
            return Err(bad(format!(
                "--sig-proxy={v} is not supported: an attached berth run always forwards signals to the container"
            )));
        }
    }
    Ok(())
}

fn apply_health(h: &mut HealthConfig, x: &crate::cli::RunExtArgs) -> Result<()> {
    if let Some(v) = &x.health_interval {
        h.interval = duration_ns("--health-interval", v)?;
    }
    if let Some(v) = &x.health_timeout {
        h.timeout = duration_ns("--health-timeout", v)?;
    }
    if let Some(v) = &x.health_start_period {
        h.start_period = duration_ns("--health-start-period", v)?;
    }
    if let Some(v) = &x.health_start_interval {
        h.start_interval = duration_ns("--health-start-interval", v)?;
    }
    if let Some(r) = x.health_retries {
        h.retries = r;
    }
    Ok(())
}

/// `--cidfile`: refused when the file exists (docker's rule), else written with the ID.
pub fn write_cidfile(p: &std::path::Path, id: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            bad(format!(
                "Container ID file found, make sure the other container isn't running or delete {}",
                p.display()
            ))
        } else {
            bad(format!("failed to create the container ID file {}: {e}", p.display()))
        }
    })?;
    f.write_all(id.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("no").ok(), Some(RestartPolicy::default()));
        assert_eq!(parse_restart("on-failure:3").ok().map(|p| p.maximum_retry_count), Some(3));
        assert!(parse_restart("always:2").is_err());
        assert!(parse_restart("sometimes").is_err());
        let p = parse_restart("on-failure:2").unwrap_or_default();
        assert!(p.should_restart(1, 0) && p.should_restart(1, 1) && !p.should_restart(1, 2) && !p.should_restart(0, 0));
        assert!(parse_restart("always").unwrap_or_default().should_restart(0, 100));
    }
}
