//! Container networking, after rootless podman's design, for root and rootless alike.
//!
//! Private addresses live only inside network namespaces berth creates, never on the
//! host's interfaces:
//!
//! ```text
//! host netns                      berth netns (one per state root, i.e. per user)
//!   slirp4netns ──── tap0 ──────── 10.0.2.100, default route via 10.0.2.2 (user-mode stack)
//!   -p listeners                   berth0 (bridge "bridge", 10.88.0.1/16), masquerade → tap0
//!     (forwarder threads of the    berthN (user-defined networks)
//!      container's run process)      └─ vbXXXX ══ veth ══ eth0 in the container's netns
//! ```
//!
//! * The berth netns is created once (bind-mounted at `<state_root>/net/ns`) with its
//!   slirp4netns process, and reused by every container; a bridge is created on first
//!   use of each network. slirp4netns runs with `--disable-host-loopback`, so nothing in
//!   a container reaches the host's `127.0.0.1` services.
//! * Each container gets a netns of its own, created by berth before the runtime starts
//!   (bind-mounted at `<scratch>/netns`, joined by path in the OCI spec, so the embedded
//!   and external runtimes behave alike), with a veth pair into its network's bridge and
//!   an address leased in `<state_root>/net/ipam/<network>/<ip>`.
//! * Published ports are host sockets owned by the process that runs the container (the
//!   supervisor for detached containers); connections are spliced to the container's
//!   address through a socket created in the berth netns. They close when it exits.
//! * On user-defined networks, containers resolve each other through generated
//!   `/etc/hosts` entries (written into each peer's hosts file as containers join).

mod forward;
mod ipam;

use std::fs::{self, File};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoCtx, Result};

pub use forward::Forwarders;
pub use ipam::Lease;

/// The address slirp4netns gives the berth netns, its gateway and DNS forwarder.
pub const SLIRP_DNS: &str = "10.0.2.3";
const TAP: &str = "tap0";

/// A network as the runtime needs it (the CLI resolves names to this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSpec {
    pub name: String,
    pub id: String,
    /// `a.b.c.d/len`.
    pub subnet: String,
    pub gateway: String,
    /// No route out (`--internal`).
    #[serde(default)]
    pub internal: bool,
    /// The bridge device in the berth netns.
    pub bridge: String,
    /// Containers resolve each other by name (user-defined networks; not the default
    /// `bridge`, as in Docker).
    #[serde(default)]
    pub dns: bool,
}

impl NetworkSpec {
    /// Docker's default network, `bridge`.
    pub fn default_bridge() -> Self {
        NetworkSpec {
            name: "bridge".into(),
            id: DEFAULT_BRIDGE_ID.into(),
            subnet: "10.88.0.0/16".into(),
            gateway: "10.88.0.1".into(),
            internal: false,
            bridge: "berth0".into(),
            dns: false,
        }
    }

    /// The subnet as (network address, prefix length).
    pub fn cidr(&self) -> Result<(Ipv4Addr, u8)> {
        parse_cidr(&self.subnet)
    }

    pub fn gateway_addr(&self) -> Result<Ipv4Addr> {
        self.gateway
            .parse()
            .map_err(|_| Error::InvalidConfig(format!("network {}: bad gateway {:?}", self.name, self.gateway)))
    }
}

/// A stable id for the default network (64 hex digits, like Docker's).
pub const DEFAULT_BRIDGE_ID: &str = "b3f7a2d1c0e94f6a8b5d2c1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";

/// Parse `a.b.c.d/len` into the network address and prefix length.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Error::InvalidConfig(format!("invalid subnet {s:?} (want a.b.c.d/len, IPv4)"));
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let l: u8 = l.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&l) {
        return Err(Error::InvalidConfig(format!("subnet {s:?}: prefix length must be between 8 and 30")));
    }
    let mask = u32::MAX << (32 - l);
    Ok((Ipv4Addr::from(u32::from(a) & mask), l))
}

/// Whether `ip` lies in `net/len`.
pub fn in_subnet(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX << (32 - len);
    u32::from(ip) & mask == u32::from(net) & mask
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One `-p` mapping. `host_port` 0 means a random free port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortMapping {
    /// Empty means all addresses (`0.0.0.0`), as Docker.
    #[serde(default)]
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default)]
    pub proto: Proto,
}

/// Parse one `-p [IP:][HOSTPORT:]CPORT[/tcp|udp]` value (ports may be ranges
/// `A-B`; a host range must have the container range's length, or be a range a single
/// container port takes one free port from — berth takes the first).
pub fn parse_publish(spec: &str) -> std::result::Result<Vec<PortMapping>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        Some((_, p)) => return Err(format!("invalid proto: {p}")),
        None => (spec, Proto::Tcp),
    };
    // An IPv6 host address is bracketed: [::1]:80:80.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r.split_once("]:").ok_or_else(|| format!("invalid IP address in {spec:?}"))?;
        (ip.to_string(), r.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), rest.to_string()),
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            _ => return Err(format!("invalid port format {spec:?}")),
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if ip.contains(':') {
        return Err(format!("{spec:?}: IPv6 host addresses are not supported by berth"));
    }
    let (hp, cp) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest.as_str()),
    };
    let range = |s: &str| -> std::result::Result<(u16, u16), String> {
        let p = |x: &str| x.parse::<u16>().map_err(|_| format!("invalid port {x:?} in {spec:?}"));
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (p(a)?, p(b)?);
                if b < a {
                    return Err(format!("invalid range {s:?} in {spec:?}"));
                }
                Ok((a, b))
            }
            None => p(s).map(|a| (a, a)),
        }
    };
    let (c0, c1) = range(cp)?;
    if c0 == 0 {
        return Err(format!("invalid containerPort: {cp}"));
    }
    let (h0, h1) = if hp.is_empty() { (0, 0) } else { range(hp)? };
    let n = c1 - c0;
    if hp.is_empty() || (h0 == h1 && n == 0) {
        return Ok((c0..=c1)
            .map(|c| PortMapping { host_ip: ip.clone(), host_port: h0, container_port: c, proto })
            .collect());
    }
    if h1 - h0 != n {
        if n == 0 {
            // One container port, a host range: Docker takes a free port of the range.
            return Ok(vec![PortMapping { host_ip: ip, host_port: h0, container_port: c0, proto }]);
        }
        return Err(format!("invalid ranges specified for container and host Ports: {cp} and {hp}"));
    }
    Ok((0..=n).map(|i| PortMapping { host_ip: ip.clone(), host_port: h0 + i, container_port: c0 + i, proto }).collect())
}

/// A published port as it is bound (the real host port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishedPort {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// A running container's network, as `inspect` shows it (recorded in its state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetState {
    pub network: String,
    pub network_id: String,
    pub ip_address: String,
    pub ip_prefix_len: u8,
    pub gateway: String,
    pub mac_address: String,
    pub aliases: Vec<String>,
    pub ports: Vec<PublishedPort>,
}

/// Where the berth netns and its bookkeeping live.
fn net_dir(state_root: &Path) -> PathBuf {
    state_root.join("net")
}

fn mkdir_private(p: &Path) -> Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p).ctx("create", p)
}

/// Run `program args` with its network namespace set to `ns`, `input` on stdin.
fn run_in_netns(ns: &File, program: &str, args: &[&str], input: &str) -> Result<()> {
    let fd = ns.as_raw_fd();
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: setns is async-signal-safe; the descriptor stays open in the parent (and is
    // inherited across fork) until the child has run.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let what = format!("{program} {}", args.join(" "));
    let mut child =
        cmd.spawn().map_err(|e| net_err(&what, format!("cannot execute: {e} (is iproute2/iptables installed?)")))?;
    if let Some(mut s) = child.stdin.take() {
        let _ = s.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| net_err(&what, e.to_string()))?;
    if !out.status.success() {
        return Err(net_err(&what, format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

fn net_err(what: &str, message: String) -> Error {
    Error::Network { what: what.to_owned(), message }
}

/// Run `f` on a short-lived thread whose network namespace is `ns` (setns affects only
/// the calling thread).
fn in_netns_thread<T: Send + 'static>(
    ns: &File,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let ns = ns.try_clone()?;
    std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        f()
    })
    .join()
    .map_err(|_| std::io::Error::other("network namespace thread panicked"))?
}

/// Create a new network namespace and bind-mount it on `target` (an empty file is
/// created). Returns an open descriptor of it.
fn new_netns(target: &Path) -> Result<File> {
    File::create(target).ctx("create", target)?;
    let t = target.to_path_buf();
    let r = std::thread::spawn(move || -> std::io::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        // SAFETY-free: a bind mount of our own thread's namespace file.
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &t).map_err(std::io::Error::from)?;
        Ok(())
    })
    .join()
    .map_err(|_| net_err("create network namespace", "thread panicked".into()))?;
    r.map_err(|e| net_err(&format!("create network namespace on {}", target.display()), e.to_string()))?;
    File::open(target).ctx("open", target)
}

/// Whether `f` is a network namespace file (an nsfs mount), not the empty file under it.
fn is_nsfs(f: &File) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    // f_type's width differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::fstatfs(f).map(|s| s.f_type as i64 == NSFS_MAGIC).unwrap_or(false)
}

/// Unmount and remove a namespace file made by [`new_netns`].
pub(crate) fn remove_netns(target: &Path) {
    let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
    let _ = fs::remove_file(target);
}

fn slirp_alive(dir: &Path) -> bool {
    let Some(pid) = fs::read_to_string(dir.join("slirp.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok()) else {
        return false;
    };
    crate::util::pid_alive(pid)
        && fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "slirp4netns")
}

/// Open the berth netns, creating it and (re)starting its slirp4netns when needed.
/// Cheap when it is up (the per-container path): an open, a statfs, a pid check.
pub fn ensure_berth_netns(state_root: &Path) -> Result<File> {
    let dir = net_dir(state_root);
    let ns_path = dir.join("ns");
    if let Ok(f) = File::open(&ns_path)
        && is_nsfs(&f)
        && slirp_alive(&dir)
    {
        return Ok(f);
    }
    mkdir_private(&dir)?;
    let lock = crate::util::lock_file(&dir.join("lock"))?;
    let ns = match File::open(&ns_path) {
        Ok(f) if is_nsfs(&f) => f,
        _ => {
            remove_netns(&ns_path);
            // Bridges and leases belonged to the old namespace.
            let _ = fs::remove_dir_all(dir.join("bridges"));
            let _ = fs::remove_dir_all(dir.join("ipam"));
            let f = new_netns(&ns_path)?;
            run_in_netns(&f, "sh", &["-c", "ip link set lo up && echo 1 > /proc/sys/net/ipv4/ip_forward"], "")?;
            f
        }
    };
    if !slirp_alive(&dir) {
        start_slirp(&dir, &ns_path)?;
    }
    drop(lock);
    Ok(ns)
}

/// Start slirp4netns on the berth netns, detached (it outlives this process), and wait
/// until it has configured `tap0`.
fn start_slirp(dir: &Path, ns_path: &Path) -> Result<()> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    let wfd = w.as_raw_fd();
    let mut cmd = Command::new("slirp4netns");
    cmd.args(["--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd=3", "--netns-type=path"])
        .arg(ns_path)
        .arg(TAP)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("slirp.log")).map(Stdio::from).unwrap_or(Stdio::null()));
    // SAFETY: only async-signal-safe calls (setsid, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(wfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        net_err("start slirp4netns", format!("{e}; hint: install slirp4netns (apt-get install slirp4netns)"))
    })?;
    drop(w);
    let pid = child.id();
    // Do not reap it: it is re-parented when we exit. Wait for its ready byte.
    let mut b = [0u8; 1];
    let n = nix::unistd::read(r.as_raw_fd(), &mut b).unwrap_or(0);
    if n == 0 {
        let log = fs::read_to_string(dir.join("slirp.log")).unwrap_or_default();
        return Err(net_err("start slirp4netns", format!("it exited before configuring the network: {}", log.trim())));
    }
    crate::util::atomic_write(&dir.join("slirp.pid"), format!("{pid}\n").as_bytes(), 0o600)?;
    std::mem::forget(child);
    Ok(())
}

/// Create the network's bridge in the berth netns on first use.
fn ensure_bridge(state_root: &Path, ns: &File, net: &NetworkSpec) -> Result<()> {
    let dir = net_dir(state_root).join("bridges");
    let marker = dir.join(&net.bridge);
    if marker.exists() {
        return Ok(());
    }
    mkdir_private(&dir)?;
    let _lock = crate::util::lock_file(&net_dir(state_root).join("lock"))?;
    if marker.exists() {
        return Ok(());
    }
    let (addr, len) = net.cidr()?;
    let gw = net.gateway_addr()?;
    let (dev, subnet) = (&net.bridge, format!("{addr}/{len}"));
    let mut script = format!(
        "ip link del {dev} 2>/dev/null || true\nip link add {dev} type bridge\nip addr add {gw}/{len} dev {dev}\nip link set {dev} up\n"
    );
    script.push_str(&bridge_rules(net, "-A"));
    if !net.internal {
        script.push_str(&format!("iptables -w -t nat -A POSTROUTING -s {subnet} -o {TAP} -j MASQUERADE\n"));
    }
    run_in_netns(ns, "sh", &["-e", "-c", &script], "")?;
    File::create(&marker).ctx("create", &marker)?;
    Ok(())
}

/// Filter rules (`-A` to add, `-D` to delete): traffic from a bridge goes to its own
/// members or out through tap0 (not at all for internal networks), never to another
/// network's bridge.
fn bridge_rules(net: &NetworkSpec, op: &str) -> String {
    let dev = &net.bridge;
    let mut s = format!("iptables -w {op} FORWARD -i {dev} -o {dev} -j ACCEPT\n");
    if net.internal {
        s.push_str(&format!("iptables -w {op} FORWARD -i {dev} -j DROP\niptables -w {op} FORWARD -o {dev} -j DROP\n"));
    } else {
        s.push_str(&format!("iptables -w {op} FORWARD -i {dev} ! -o {TAP} -j DROP\n"));
    }
    s
}

/// Remove a user-defined network's bridge from the berth netns (when it exists).
pub fn remove_bridge(state_root: &Path, net: &NetworkSpec) -> Result<()> {
    let marker = net_dir(state_root).join("bridges").join(&net.bridge);
    if !marker.exists() {
        return Ok(());
    }
    let ns = ensure_berth_netns(state_root)?;
    let _lock = crate::util::lock_file(&net_dir(state_root).join("lock"))?;
    let (addr, len) = net.cidr()?;
    let dev = &net.bridge;
    let mut script = format!("ip link del {dev}\n");
    script.push_str(&bridge_rules(net, "-D"));
    if !net.internal {
        script.push_str(&format!("iptables -w -t nat -D POSTROUTING -s {addr}/{len} -o {TAP} -j MASQUERADE\n"));
    }
    let script = script.lines().map(|l| format!("{l} || true\n")).collect::<String>();
    run_in_netns(&ns, "sh", &["-c", &script], "")?;
    let _ = fs::remove_file(&marker);
    let _ = fs::remove_dir_all(net_dir(state_root).join("ipam").join(&net.id));
    Ok(())
}

/// Whether any live container holds an address on the network.
pub fn network_in_use(state_root: &Path, net_id: &str) -> bool {
    ipam::live_leases(&net_dir(state_root).join("ipam").join(net_id)).next().is_some()
}

/// A container's network, set up before its runtime starts and torn down on drop:
/// its namespace, address lease and published-port listeners.
pub struct Attachment {
    pub netns_path: PathBuf,
    pub state: NetState,
    /// Lines for the container's /etc/hosts (its own name and, on user networks, peers).
    pub hosts: Vec<(String, String)>,
    lease: Option<Lease>,
    forwarders: std::sync::Mutex<Option<Forwarders>>,
    listeners: std::sync::Mutex<Vec<forward::Listener>>,
    berth_ns: File,
}

impl Attachment {
    /// Set up the container's namespace on `net`: lease an address, create the netns with
    /// a veth into the bridge, bind the published ports.
    pub fn create(
        state_root: &Path,
        scratch: &Path,
        id: &str,
        net: &NetworkSpec,
        cfg: &crate::ContainerConfig,
        hostname: &str,
    ) -> Result<Attachment> {
        let berth_ns = ensure_berth_netns(state_root)?;
        ensure_bridge(state_root, &berth_ns, net)?;
        let (subnet, len) = net.cidr()?;
        let gw = net.gateway_addr()?;
        let want = match cfg.ip.as_deref() {
            Some(s) => {
                if net.name == "bridge" {
                    return Err(Error::InvalidConfig(
                        "user specified IP address is supported on user defined networks only".into(),
                    ));
                }
                let ip: Ipv4Addr = s.parse().map_err(|_| Error::InvalidConfig(format!("invalid IPv4 address: {s}")))?;
                if !in_subnet(ip, subnet, len) {
                    return Err(Error::InvalidConfig(format!(
                        "IP {ip} is not in network {}'s subnet {}",
                        net.name, net.subnet
                    )));
                }
                Some(ip)
            }
            None => None,
        };
        let mut names: Vec<String> = Vec::new();
        if net.dns {
            names.extend(cfg.name.iter().cloned());
            names.extend(cfg.network_aliases.iter().cloned());
            names.push(id.chars().take(12).collect());
        }
        let hosts_file = scratch.join("hosts");
        let ipam_dir = net_dir(state_root).join("ipam").join(&net.id);
        let lease = ipam::allocate(&ipam_dir, subnet, len, gw, want, id, &names, &hosts_file)?;
        let ip = lease.ip;
        let o = ip.octets();
        let mac = format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
        let mut hosts = vec![(ip.to_string(), hostname.to_string())];
        if net.dns {
            for peer in ipam::live_leases(&ipam_dir).filter(|p| p.id != id) {
                for n in &peer.names {
                    hosts.push((peer.ip.clone(), n.clone()));
                }
            }
        }
        let mut att = Attachment {
            netns_path: scratch.join("netns"),
            state: NetState {
                network: net.name.clone(),
                network_id: net.id.clone(),
                ip_address: ip.to_string(),
                ip_prefix_len: len,
                gateway: gw.to_string(),
                mac_address: mac.clone(),
                aliases: cfg.network_aliases.clone(),
                ports: Vec::new(),
            },
            hosts,
            lease: Some(lease),
            forwarders: std::sync::Mutex::new(None),
            listeners: std::sync::Mutex::new(Vec::new()),
            berth_ns,
        };
        // From here on, drop undoes what was done.
        let cns = new_netns(&att.netns_path)?;
        let veth = format!("vb{}", &crate::util::random_id()[..10]);
        run_in_netns(
            &att.berth_ns,
            "ip",
            &["-b", "-"],
            &format!(
                "link add {veth} type veth peer name eth0 address {mac} netns {}\nlink set {veth} master {} up\n",
                att.netns_path.display(),
                net.bridge
            ),
        )?;
        run_in_netns(
            &cns,
            "ip",
            &["-b", "-"],
            &format!("link set lo up\naddr add {ip}/{len} dev eth0\nlink set eth0 up\nroute add default via {gw}\n"),
        )?;
        for p in &cfg.publish {
            let l = forward::Listener::bind(p)?;
            att.state.ports.push(PublishedPort {
                host_ip: if p.host_ip.is_empty() { "0.0.0.0".into() } else { p.host_ip.clone() },
                host_port: l.port(),
                container_port: p.container_port,
                proto: p.proto,
            });
            if let Ok(mut v) = att.listeners.lock() {
                v.push(l);
            }
        }
        // Peers learn the new name (their hosts files are bind-mounted, edited in place).
        if net.dns {
            let ipam_dir = net_dir(state_root).join("ipam").join(&net.id);
            let names = att.lease.as_ref().map(|l| l.names.clone()).unwrap_or_default();
            for peer in ipam::live_leases(&ipam_dir).filter(|p| p.id != id) {
                if let Ok(mut f) = fs::OpenOptions::new().append(true).open(&peer.hosts) {
                    for n in &names {
                        let _ = writeln!(f, "{ip}\t{n}");
                    }
                }
            }
        }
        Ok(att)
    }

    /// Start forwarding the published ports (threads of this process). Call once the
    /// container runs, and not before the runtime has created it (threading contract of
    /// [`crate::run()`]).
    pub fn start_forwarding(&self) -> Result<()> {
        let listeners = self.listeners.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
        if listeners.is_empty() {
            return Ok(());
        }
        let ip: Ipv4Addr = self.state.ip_address.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let ns = self.berth_ns.try_clone().ctx("dup", "berth netns")?;
        if let Ok(mut f) = self.forwarders.lock() {
            *f = Some(Forwarders::start(listeners, ip, ns));
        }
        Ok(())
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Some(f) = self.forwarders.lock().ok().and_then(|mut f| f.take()) {
            f.stop();
        }
        if let Ok(mut v) = self.listeners.lock() {
            v.clear();
        }
        // The veth pair goes with the container's namespace, once its last user is gone.
        remove_netns(&self.netns_path);
        if let Some(l) = self.lease.take() {
            l.release();
        }
    }
}

/// Nameservers for a container on a bridge network: the host's, except loopback ones
/// (unreachable from the berth netns), which are replaced by slirp4netns's forwarder.
pub fn bridge_nameservers(host_resolv: &str) -> Vec<String> {
    let mut out = Vec::new();
    for s in host_resolv.lines().filter_map(|l| l.trim().strip_prefix("nameserver")).map(str::trim) {
        let loopback = s.parse::<std::net::IpAddr>().map(|a| a.is_loopback()).unwrap_or(false);
        let v = if loopback { SLIRP_DNS.to_string() } else { s.to_string() };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        out.push(SLIRP_DNS.into());
    }
    out
}

/// The address of the host as seen from a bridge network (`host-gateway`): slirp4netns's
/// gateway, which reaches the host's non-loopback addresses only.
pub const HOST_GATEWAY: &str = "10.0.2.2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(p, vec![PortMapping { host_ip: "".into(), host_port: 8080, container_port: 80, proto: Proto::Tcp }]);
        let p = parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p[0].host_ip, "127.0.0.1");
        assert_eq!(p[0].proto, Proto::Udp);
        let p = parse_publish("80").unwrap();
        assert_eq!(p[0].host_port, 0);
        let p = parse_publish("127.0.0.1::80").unwrap();
        assert_eq!((p[0].host_ip.as_str(), p[0].host_port), ("127.0.0.1", 0));
        let p = parse_publish("9000-9002:7000-7002").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[2].host_port, p[2].container_port), (9002, 7002));
        assert!(parse_publish("9000-9001:7000-7002").is_err());
        assert!(parse_publish("80/sctp").is_err());
        assert!(parse_publish("x:80:80").is_err());
        assert!(parse_publish("0").is_err());
    }

    #[test]
    fn cidrs() {
        assert_eq!(parse_cidr("10.1.2.3/24").unwrap(), ("10.1.2.0".parse().unwrap(), 24));
        assert!(parse_cidr("10.1.2.3").is_err());
        assert!(parse_cidr("10.1.2.3/31").is_err());
        assert!(in_subnet("10.1.2.9".parse().unwrap(), "10.1.2.0".parse().unwrap(), 24));
        assert!(!in_subnet("10.1.3.9".parse().unwrap(), "10.1.2.0".parse().unwrap(), 24));
    }

    #[test]
    fn nameservers() {
        assert_eq!(bridge_nameservers("nameserver 127.0.0.53\noptions edns0\n"), vec![SLIRP_DNS.to_string()]);
        assert_eq!(
            bridge_nameservers("nameserver 10.0.0.1\nnameserver ::1\n"),
            vec!["10.0.0.1".to_string(), SLIRP_DNS.into()]
        );
        assert_eq!(bridge_nameservers(""), vec![SLIRP_DNS.to_string()]);
    }
}
