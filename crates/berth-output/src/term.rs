//! Terminal facts the renderers need: is a stream a terminal, how wide is it, may we use colour.

use std::io::IsTerminal;
use std::os::fd::RawFd;

/// Where a renderer gets the terminal size from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermSize {
    /// Ask the kernel (`TIOCGWINSZ`) on this descriptor at every redraw, so resizes are followed.
    Fd(RawFd),
    /// A fixed size (tests, or output that is not a terminal): columns, rows.
    Fixed(u16, u16),
}

impl TermSize {
    /// The size of standard error (fd 2).
    pub const STDERR: TermSize = TermSize::Fd(2);

    /// Columns, or `None` when unknown.
    pub fn width(&self) -> Option<u16> {
        self.size().map(|(w, _)| w)
    }

    /// Rows, or `None` when unknown.
    pub fn height(&self) -> Option<u16> {
        self.size().map(|(_, h)| h)
    }

    /// (columns, rows), or `None` when unknown.
    pub fn size(&self) -> Option<(u16, u16)> {
        match self {
            TermSize::Fixed(w, h) => Some((*w, *h)),
            TermSize::Fd(fd) => winsize(*fd),
        }
    }
}

/// (columns, rows) of the terminal on `fd`, or `None` if it is not a terminal or reports 0.
pub fn winsize(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: `winsize` is plain old data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the pointer we pass, which is valid and
    // exclusively borrowed for the call. An invalid fd makes the call fail, which we check.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    if rc != 0 || ws.ws_col == 0 {
        return None;
    }
    Some((ws.ws_col, ws.ws_row))
}

/// Is standard error a terminal?
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Is standard output a terminal?
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// May we print colour on a stream? Only on a terminal, never when `NO_COLOR` is set to a
/// non-empty value (no-color.org), and not for `TERM=dumb`.
pub fn colors_allowed(is_terminal: bool) -> bool {
    colors_allowed_with(is_terminal, std::env::var_os("NO_COLOR").as_deref(), std::env::var_os("TERM").as_deref())
}

/// [`colors_allowed`] with the environment passed in (for tests).
pub fn colors_allowed_with(
    is_terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    if !is_terminal {
        return false;
    }
    if no_color.is_some_and(|v| !v.is_empty()) {
        return false;
    }
    term.is_none_or(|t| t != "dumb")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn color_policy() {
        assert!(colors_allowed_with(true, None, Some(OsStr::new("xterm"))));
        assert!(!colors_allowed_with(false, None, None));
        assert!(!colors_allowed_with(true, Some(OsStr::new("1")), None));
        assert!(colors_allowed_with(true, Some(OsStr::new("")), None));
        assert!(!colors_allowed_with(true, None, Some(OsStr::new("dumb"))));
    }

    #[test]
    fn sizes() {
        assert_eq!(TermSize::Fixed(120, 40).width(), Some(120));
        // A descriptor that is not a terminal has no size.
        assert_eq!(winsize(-1), None);
    }
}
