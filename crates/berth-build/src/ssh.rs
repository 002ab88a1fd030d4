//! SSH agent forwarding for `RUN --mount=type=ssh` (`--ssh default|ID=socket|ID=key[,key]`).
//!
//! Contracts:
//! - A RUN sees the agent only through a socket that a per-mount proxy listens on (mode,
//!   uid and gid as the mount asks, in a private directory on a tmpfs); the proxy forwards
//!   each connection to the agent the `--ssh` value named. The agent protocol never hands out
//!   private keys, so keys cannot reach a layer, the cache or a log.
//! - `--ssh ID=KEYFILE` runs the host's `ssh-agent` (openssh-client) on a private socket in
//!   a private directory, loads only those keys with `ssh-add`, and kills it when the
//!   [`KeyAgent`] is dropped (after the build).

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{BuildError, Result};

/// An `ssh-agent` started for one build, holding only the keys given. Killed on drop.
pub struct KeyAgent {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl KeyAgent {
    /// Starts `ssh-agent` with its socket in a fresh private directory under `tmp_parent`
    /// and adds `keys` to it.
    pub fn start(keys: &[PathBuf], tmp_parent: &Path) -> Result<Self> {
        for k in keys {
            if !k.is_file() {
                return Err(BuildError::Other(format!("ssh key {} not found", k.display())));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-ssh-")
            .tempdir_in(tmp_parent)
            .map_err(|e| BuildError::io(tmp_parent, e))?;
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                BuildError::Other(format!(
                    "--ssh with key files needs ssh-agent (openssh-client): running ssh-agent: {e}"
                ))
            })?;
        let mut agent = KeyAgent { child, socket, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&agent.socket).is_err() {
            if Instant::now() > deadline || matches!(agent.child.try_wait(), Ok(Some(_))) {
                return Err(BuildError::Other("ssh-agent did not start".into()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for k in keys {
            // No terminal prompt: a key with a passphrase fails instead of hanging the build.
            let out = Command::new("ssh-add")
                .arg(k)
                .env("SSH_AUTH_SOCK", &agent.socket)
                .env("SSH_ASKPASS_REQUIRE", "never")
                .env_remove("DISPLAY")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| BuildError::Other(format!("running ssh-add for {}: {e}", k.display())))?;
            if !out.status.success() {
                let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
                return Err(BuildError::Other(format!(
                    "failed to load ssh key {}: {msg} (keys with a passphrase are not supported; load them into an agent and pass --ssh ID=$SSH_AUTH_SOCK)",
                    k.display()
                )));
            }
        }
        Ok(agent)
    }

    /// The agent's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for KeyAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A socket that forwards every connection to an upstream agent socket, for one RUN.
/// Stops accepting when dropped.
pub(crate) struct Proxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// Listens on a new socket in a private directory under `tmp_parent`, with the mount's
    /// mode and owner, forwarding to `upstream`.
    pub(crate) fn start(upstream: &Path, tmp_parent: &Path, mode: u32, uid: u32, gid: u32) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        // Fail now, in the step that asked, rather than inside the container.
        UnixStream::connect(upstream).map_err(|e| {
            BuildError::Other(format!("cannot connect to the ssh agent at {}: {e}", upstream.display()))
        })?;
        let dir = tempfile::Builder::new()
            .prefix("berth-ssh-")
            .tempdir_in(tmp_parent)
            .map_err(|e| BuildError::io(tmp_parent, e))?;
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).map_err(|e| BuildError::io(&path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(|e| BuildError::io(&path, e))?;
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(|e| BuildError::io(&path, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let upstream = upstream.to_path_buf();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let up = upstream.clone();
                std::thread::spawn(move || {
                    let _ = forward(conn, &up);
                });
            }
        });
        Ok(Proxy { path, stop, _dir: dir })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag and ends.
        let _ = UnixStream::connect(&self.path);
    }
}

fn forward(client: UnixStream, upstream: &Path) -> io::Result<()> {
    let server = UnixStream::connect(upstream)?;
    let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
    let t = std::thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let _ = io::copy(&mut s_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn proxy_forwards_both_ways_and_sets_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path().join("up.sock");
        let l = UnixListener::bind(&up).unwrap();
        // Serves every connection (the proxy probes the agent once when it starts).
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut b = [0u8; 4];
                if s.read_exact(&mut b).is_ok() {
                    let _ = s.write_all(&b.map(|x| x + 1));
                }
            }
        });
        let uid = unsafe { libc::getuid() };
        let gid = unsafe { libc::getgid() };
        let p = Proxy::start(&up, dir.path(), 0o600, uid, gid).unwrap();
        assert_eq!(std::fs::metadata(p.path()).unwrap().permissions().mode() & 0o777, 0o600);
        let mut c = UnixStream::connect(p.path()).unwrap();
        c.write_all(&[1, 2, 3, 4]).unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).unwrap();
        assert_eq!(b, [2, 3, 4, 5]);
    }
}
