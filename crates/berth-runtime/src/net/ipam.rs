//! Address leases: one file per leased address, `<ipam>/<network-id>/<ip>`, created
//! with O_EXCL (so two containers never get one address) and holding the owner's id,
//! pid, names and hosts file. A lease whose process is gone is stale and taken over, so
//! a crashed run never keeps its address.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoCtx, Result};

/// What a lease file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LeaseInfo {
    pub id: String,
    pub pid: i32,
    /// Process start time of `pid` (field 22 of /proc/PID/stat): a recycled pid is not
    /// mistaken for the owner.
    #[serde(default)]
    pub start: u64,
    pub ip: String,
    pub names: Vec<String>,
    pub hosts: PathBuf,
}

/// An address held by this process; released by [`Lease::release`].
#[derive(Debug)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub names: Vec<String>,
    path: PathBuf,
    id: String,
}

impl Lease {
    pub fn release(self) {
        // Only our own lease: a stale one may have been taken over already.
        if read(&self.path).is_some_and(|l| l.id == self.id) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn proc_start(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: fields after the last ')'.
    let rest = s.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn alive(l: &LeaseInfo) -> bool {
    crate::util::pid_alive(l.pid) && proc_start(l.pid) == Some(l.start)
}

fn read(p: &Path) -> Option<LeaseInfo> {
    serde_json::from_slice(&fs::read(p).ok()?).ok()
}

/// The leases of live owners in `dir`.
pub(crate) fn live_leases(dir: &Path) -> impl Iterator<Item = LeaseInfo> {
    fs::read_dir(dir).into_iter().flatten().flatten().filter_map(|e| read(&e.path())).filter(alive)
}

fn try_take(dir: &Path, ip: Ipv4Addr, info: &LeaseInfo) -> Result<bool> {
    let p = dir.join(ip.to_string());
    for _ in 0..2 {
        match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p) {
            Ok(mut f) => {
                let data = serde_json::to_vec(info).map_err(|e| Error::Json { path: p.clone(), source: e })?;
                f.write_all(&data).ctx("write", &p)?;
                return Ok(true);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Half-written (just created by another process) counts as taken.
                match read(&p) {
                    Some(old) if !alive(&old) => {
                        let _ = fs::remove_file(&p);
                    }
                    _ => return Ok(false),
                }
            }
            Err(e) => return Err(Error::io("create", &p, e)),
        }
    }
    Ok(false)
}

/// Lease `want`, or the first free address of `net/len` (not the network, gateway or
/// broadcast address).
#[allow(clippy::too_many_arguments)]
pub(crate) fn allocate(
    dir: &Path,
    net: Ipv4Addr,
    len: u8,
    gateway: Ipv4Addr,
    want: Option<Ipv4Addr>,
    id: &str,
    names: &[String],
    hosts: &Path,
) -> Result<Lease> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).ctx("create", dir)?;
    let pid = std::process::id() as i32;
    let mut info = LeaseInfo {
        id: id.to_owned(),
        pid,
        start: proc_start(pid).unwrap_or(0),
        ip: String::new(),
        names: names.to_vec(),
        hosts: hosts.to_path_buf(),
    };
    let lease = |ip: Ipv4Addr| Lease { ip, names: names.to_vec(), path: dir.join(ip.to_string()), id: id.to_owned() };
    if let Some(ip) = want {
        let base = u32::from(net);
        let last = base | (u32::MAX >> len);
        if ip == gateway || u32::from(ip) == base || u32::from(ip) == last {
            return Err(Error::InvalidConfig(format!("address {ip} is reserved in its network")));
        }
        info.ip = ip.to_string();
        if try_take(dir, ip, &info)? {
            return Ok(lease(ip));
        }
        return Err(Error::InvalidConfig(format!("address already in use: {ip}")));
    }
    let base = u32::from(net);
    let size = 1u32 << (32 - len);
    for off in 2..size - 1 {
        let ip = Ipv4Addr::from(base + off);
        if ip == gateway {
            continue;
        }
        info.ip = ip.to_string();
        if try_take(dir, ip, &info)? {
            return Ok(lease(ip));
        }
    }
    Err(Error::InvalidConfig(format!("no free address left in {net}/{len}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_exclusive_and_released() {
        let d = tempfile::tempdir().unwrap();
        let net: Ipv4Addr = "10.9.0.0".parse().unwrap();
        let gw: Ipv4Addr = "10.9.0.1".parse().unwrap();
        let h = d.path().join("hosts");
        let a = allocate(d.path(), net, 24, gw, None, "a", &[], &h).unwrap();
        let b = allocate(d.path(), net, 24, gw, None, "b", &["web".into()], &h).unwrap();
        assert_eq!(a.ip.to_string(), "10.9.0.2");
        assert_eq!(b.ip.to_string(), "10.9.0.3");
        assert!(allocate(d.path(), net, 24, gw, Some("10.9.0.3".parse().unwrap()), "c", &[], &h).is_err());
        assert!(allocate(d.path(), net, 24, gw, Some(gw), "c", &[], &h).is_err());
        assert_eq!(live_leases(d.path()).count(), 2);
        a.release();
        let c = allocate(d.path(), net, 24, gw, None, "c", &[], &h).unwrap();
        assert_eq!(c.ip.to_string(), "10.9.0.2");
        // A lease of a dead process is taken over.
        let stale = LeaseInfo {
            id: "x".into(),
            pid: i32::MAX,
            start: 0,
            ip: "10.9.0.4".into(),
            names: vec![],
            hosts: h.clone(),
        };
        fs::write(d.path().join("10.9.0.4"), serde_json::to_vec(&stale).unwrap()).unwrap();
        let e = allocate(d.path(), net, 24, gw, None, "e", &[], &h).unwrap();
        assert_eq!(e.ip.to_string(), "10.9.0.4");
    }
}
