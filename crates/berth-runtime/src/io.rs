//! Terminal and stream plumbing for foreground runs: raw mode, window size, line
//! splitting, SCM_RIGHTS receive, and the signal set we forward.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};

use crate::error::{Error, Result};

/// Which stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Signals berth forwards to the container (plus SIGCHLD, which we consume).
pub(crate) fn forward_set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        s.add(sig);
    }
    s
}

/// Restores the previous signal mask of the calling thread on drop.
pub(crate) struct MaskGuard(SigSet);

impl MaskGuard {
    pub fn block(set: &SigSet) -> Result<Self> {
        let mut old = SigSet::empty();
        nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(set), Some(&mut old))
            .map_err(|e| Error::sys("block signals", e))?;
        Ok(MaskGuard(old))
    }
}

impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// Puts a terminal in raw mode and restores it on drop (also on error paths).
pub(crate) struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl RawMode {
    pub fn enter(fd: RawFd) -> Option<Self> {
        // SAFETY: fd is one of our stdio descriptors and outlives the guard.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let saved = termios::tcgetattr(bfd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(bfd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: see enter.
        let bfd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(bfd, SetArg::TCSAFLUSH, &self.saved);
    }
}

pub(crate) fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// The window size of our terminal (stdin, else stdout), if it is one.
pub(crate) fn host_winsize() -> Option<(u16, u16)> {
    for fd in [0, 1] {
        let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCGWINSZ writes into a winsize we own.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Copy the window size of `from` (a terminal) to `to` (the pty master).
pub(crate) fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws: libc::winsize = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read/write a winsize struct we own.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Receive one fd sent with SCM_RIGHTS over `sock`.
pub(crate) fn recv_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| Error::sys("receive pty master from the container", e))?;
    for c in msg.cmsgs().map_err(|e| Error::sys("read control message", e))? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    Err(Error::InvalidConfig("the container sent no pty master on the console socket".into()))
}

/// Splits a byte stream into lines for a callback (a line keeps its `\n`; a final
/// partial line is flushed at EOF).
#[derive(Default)]
pub(crate) struct LineBuf {
    buf: Vec<u8>,
}

impl LineBuf {
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(i) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + i + 1;
            emit(&self.buf[start..end]);
            start = end;
        }
        self.buf.drain(..start);
        // Keep memory bounded for output without newlines.
        if self.buf.len() > 64 * 1024 {
            emit(&self.buf);
            self.buf.clear();
        }
    }
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

pub(crate) fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return false,
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(nix::Error::EAGAIN) => {
                let mut pfd = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(1000u16));
            }
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let mut lb = LineBuf::default();
        let mut got: Vec<Vec<u8>> = vec![];
        lb.push(b"a\nb", |l| got.push(l.to_vec()));
        lb.push(b"c\n\nd", |l| got.push(l.to_vec()));
        lb.flush(|l| got.push(l.to_vec()));
        assert_eq!(got, vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"\n".to_vec(), b"d".to_vec()]);
    }
}
