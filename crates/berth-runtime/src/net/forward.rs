//! Published-port forwarders: host sockets (bound before the container starts, so a
//! taken port fails the start) whose connections are relayed to the container's address
//! through sockets created in the berth netns. TCP is spliced (no copy through user
//! space); UDP is relayed per client.

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{PortMapping, Proto};
use crate::error::{Error, Result};

/// A bound host socket for one mapping.
pub(crate) enum Listener {
    Tcp(TcpListener, u16),
    Udp(UdpSocket, u16),
}

impl Listener {
    pub(crate) fn bind(p: &PortMapping) -> Result<Listener> {
        let ip: Ipv4Addr = if p.host_ip.is_empty() {
            Ipv4Addr::UNSPECIFIED
        } else {
            p.host_ip.parse().map_err(|_| Error::InvalidConfig(format!("invalid host IP {:?}", p.host_ip)))?
        };
        let addr = SocketAddrV4::new(ip, p.host_port);
        let taken = |e: std::io::Error| {
            let why = if e.kind() == std::io::ErrorKind::AddrInUse {
                "port is already allocated".into()
            } else {
                e.to_string()
            };
            Error::Network { what: format!("bind for {addr}"), message: why }
        };
        Ok(match p.proto {
            Proto::Tcp => Listener::Tcp(TcpListener::bind(addr).map_err(taken)?, p.container_port),
            Proto::Udp => Listener::Udp(UdpSocket::bind(addr).map_err(taken)?, p.container_port),
        })
    }

    pub(crate) fn port(&self) -> u16 {
        let a = match self {
            Listener::Tcp(l, _) => l.local_addr(),
            Listener::Udp(s, _) => s.local_addr(),
        };
        a.map(|a| a.port()).unwrap_or(0)
    }
}

/// Running forwarders; [`Forwarders::stop`] closes the host sockets.
pub struct Forwarders {
    stop: Arc<AtomicBool>,
    fds: Vec<Arc<OwnedFd>>,
}

impl Forwarders {
    pub(crate) fn start(listeners: Vec<Listener>, ip: Ipv4Addr, ns: File) -> Forwarders {
        let stop = Arc::new(AtomicBool::new(false));
        let ns = Arc::new(ns);
        let mut fds = Vec::new();
        for l in listeners {
            let (stop, ns) = (stop.clone(), ns.clone());
            match l {
                Listener::Tcp(l, cport) => {
                    let fd = Arc::new(OwnedFd::from(l));
                    fds.push(fd.clone());
                    std::thread::spawn(move || tcp_accept(fd, SocketAddrV4::new(ip, cport), ns, stop));
                }
                Listener::Udp(s, cport) => {
                    let _ = s.set_read_timeout(Some(Duration::from_millis(250)));
                    std::thread::spawn(move || udp_relay(s, SocketAddrV4::new(ip, cport), ns, stop));
                }
            }
        }
        Forwarders { stop, fds }
    }

    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for fd in &self.fds {
            // Wakes the accept(2) blocked on it (EINVAL), and the thread drops it.
            let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        }
    }
}

/// A socket of `ty` created in the berth netns (on a fresh thread: setns is per thread).
fn socket_in(ns: &File, udp: bool) -> std::io::Result<OwnedFd> {
    super::in_netns_thread(ns, move || {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
        let ty = if udp { SockType::Datagram } else { SockType::Stream };
        socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None).map_err(std::io::Error::from)
    })
}

fn tcp_accept(fd: Arc<OwnedFd>, target: SocketAddrV4, ns: Arc<File>, stop: Arc<AtomicBool>) {
    loop {
        let conn = nix::sys::socket::accept4(fd.as_raw_fd(), nix::sys::socket::SockFlag::SOCK_CLOEXEC);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(c) = conn else {
            continue;
        };
        // SAFETY: accept4 returned a new descriptor we own.
        let client = TcpStream::from(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(c) });
        let ns = ns.clone();
        std::thread::spawn(move || {
            let Ok(s) = socket_in(&ns, false) else { return };
            let addr = nix::sys::socket::SockaddrIn::from(target);
            if nix::sys::socket::connect(s.as_raw_fd(), &addr).is_err() {
                return;
            }
            let upstream = TcpStream::from(s);
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else { return };
            let t = std::thread::spawn(move || pipe_through(&c2, &u2));
            pipe_through(&upstream, &client);
            let _ = t.join();
        });
    }
}

/// Move bytes from `src` to `dst` until EOF with splice(2) through a pipe, then
/// half-close `dst`.
fn pipe_through(src: &TcpStream, dst: &TcpStream) {
    use nix::fcntl::{SpliceFFlags, splice};
    let Ok((pr, pw)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else { return };
    let _ = nix::fcntl::fcntl(pw.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
    'outer: loop {
        let n = match splice(src.as_fd(), None, pw.as_fd(), None, 1 << 20, flags) {
            Ok(0) => break,
            Ok(n) => n,
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
        };
        let mut left = n;
        while left > 0 {
            match splice(pr.as_fd(), None, dst.as_fd(), None, left, flags) {
                Ok(0) => break 'outer,
                Ok(m) => left -= m,
                Err(nix::Error::EINTR) => {}
                Err(_) => break 'outer,
            }
        }
    }
    let _ = dst.shutdown(std::net::Shutdown::Write);
}

fn udp_relay(host: UdpSocket, target: SocketAddrV4, ns: Arc<File>, stop: Arc<AtomicBool>) {
    let host = Arc::new(host);
    let mut peers: HashMap<SocketAddr, UdpSocket> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let (n, from) = match host.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = peers.entry(from) {
            let Ok(fd) = socket_in(&ns, true) else { continue };
            let up = UdpSocket::from(fd);
            if up.connect(target).is_err() {
                continue;
            }
            let _ = up.set_read_timeout(Some(Duration::from_millis(250)));
            let (Ok(reader), host2, stop2) = (up.try_clone(), host.clone(), stop.clone()) else { continue };
            std::thread::spawn(move || {
                let mut b = vec![0u8; 65536];
                while !stop2.load(Ordering::SeqCst) {
                    match reader.recv(&mut b) {
                        Ok(m) => {
                            let _ = host2.send_to(&b[..m], from);
                        }
                        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        }
                        Err(_) => return,
                    }
                }
            });
            slot.insert(up);
        }
        if let Some(up) = peers.get(&from) {
            let _ = up.send(&buf[..n]);
        }
    }
}
