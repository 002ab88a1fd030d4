//! Pull and push progress, rendered the way `docker pull`/`docker push` render the daemon's JSON
//! messages (moby `pkg/jsonmessage`).
//!
//! Model: a session ([`TransferProgress`]) receives three kinds of report:
//! - [`message`](TransferProgress::message): a plain line (`Using default tag: latest`,
//!   `Digest: sha256:...`, `Status: Downloaded newer image for nginx:latest`);
//! - [`id_message`](TransferProgress::id_message): a plain line with an ID prefix
//!   (`latest: Pulling from library/nginx`);
//! - per-layer reports keyed by short ID: a status ([`LayerStatus`]) or byte progress
//!   ([`Action`] with current/total).
//!
//! On a terminal each layer has its own line, redrawn in place with cursor movement; the bar is
//! shown when the terminal is wider than 110 columns and the ETA when wider than 50. Not on a
//! terminal, byte progress is dropped and each status transition is one line. Quiet prints
//! nothing. A plain line "forgets" the layer lines above it (as jsonmessage does), so a later
//! layer report starts a new block below.
//!
//! Thread safety: the handle is `Clone + Send + Sync`; clones share one session. Reports are
//! rendered synchronously under a mutex, but byte-progress redraws of one layer are throttled to
//! one per [`TransferOptions::throttle`] (100 ms by default), so a download loop can report every
//! chunk without cost. Write errors on the output are remembered and never fail the caller.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::term::TermSize;
use crate::units::{format_go_duration, human_size};

/// How a transfer session renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// In-place per-layer lines with bars (stderr/stdout is a terminal).
    Tty,
    /// One line per status transition, no byte counts (logs, CI).
    Plain,
    /// Nothing (`-q`).
    Quiet,
}

/// Options of a transfer session.
#[derive(Debug, Clone, Copy)]
pub struct TransferOptions {
    /// Rendering mode.
    pub mode: TransferMode,
    /// Terminal size source (only the width is used).
    pub size: TermSize,
    /// Minimum time between two byte-progress redraws of the same layer.
    pub throttle: Duration,
    /// Show the estimated time left after the byte counts (docker shows it when the daemon sent
    /// a start time; we always know it).
    pub show_eta: bool,
}

impl TransferOptions {
    /// Options for a stream: TTY mode with the terminal's width if it is a terminal, else plain.
    pub fn auto(is_terminal: bool, quiet: bool) -> Self {
        TransferOptions {
            mode: if quiet {
                TransferMode::Quiet
            } else if is_terminal {
                TransferMode::Tty
            } else {
                TransferMode::Plain
            },
            size: TermSize::STDERR,
            throttle: Duration::from_millis(100),
            show_eta: true,
        }
    }
}

/// A per-layer status without byte counts (docker's wording).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    /// `Pulling fs layer`
    PullingFsLayer,
    /// `Waiting`
    Waiting,
    /// `Verifying Checksum`
    VerifyingChecksum,
    /// `Download complete`
    DownloadComplete,
    /// `Pull complete`
    PullComplete,
    /// `Already exists`
    AlreadyExists,
    /// `Preparing`
    Preparing,
    /// `Pushed`
    Pushed,
    /// `Layer already exists`
    LayerAlreadyExists,
    /// `Mounted from <repository>` (cross-repository blob mount).
    MountedFrom(String),
    /// `Retrying in N seconds`
    RetryingIn(u64),
    /// Any other text.
    Other(String),
}

impl std::fmt::Display for LayerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerStatus::PullingFsLayer => f.write_str("Pulling fs layer"),
            LayerStatus::Waiting => f.write_str("Waiting"),
            LayerStatus::VerifyingChecksum => f.write_str("Verifying Checksum"),
            LayerStatus::DownloadComplete => f.write_str("Download complete"),
            LayerStatus::PullComplete => f.write_str("Pull complete"),
            LayerStatus::AlreadyExists => f.write_str("Already exists"),
            LayerStatus::Preparing => f.write_str("Preparing"),
            LayerStatus::Pushed => f.write_str("Pushed"),
            LayerStatus::LayerAlreadyExists => f.write_str("Layer already exists"),
            LayerStatus::MountedFrom(repo) => write!(f, "Mounted from {repo}"),
            LayerStatus::RetryingIn(1) => f.write_str("Retrying in 1 second"),
            LayerStatus::RetryingIn(n) => write!(f, "Retrying in {n} seconds"),
            LayerStatus::Other(s) => f.write_str(s),
        }
    }
}

/// A byte-counting phase of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `Downloading`
    Downloading,
    /// `Extracting`
    Extracting,
    /// `Pushing`
    Pushing,
    /// `Loading layer` (docker load)
    Loading,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Downloading => "Downloading",
            Action::Extracting => "Extracting",
            Action::Pushing => "Pushing",
            Action::Loading => "Loading layer",
        }
    }
}

/// docker's short ID of a digest: the first 12 hex characters after the algorithm
/// (`sha256:a3ed95caeb02...` → `a3ed95caeb02`).
pub fn short_id(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

/// moby's `JSONProgress.String()`: `[=====>    ]  26.83MB/58.4MB 12s`. `width` is the terminal
/// width; `elapsed` the time since the layer's first byte report (for the ETA).
pub fn progress_string(current: u64, total: u64, width: u16, elapsed: Option<Duration>) -> String {
    if current == 0 && total == 0 {
        return String::new();
    }
    if total == 0 {
        return format!("{:>8}", human_size(current as f64));
    }
    let percentage = (((current as f64 / total as f64) * 100.0) as i64 / 2).clamp(0, 50);
    let mut out = String::new();
    if width > 110 {
        out.push('[');
        for _ in 0..percentage {
            out.push('=');
        }
        out.push('>');
        for _ in percentage..50 {
            out.push(' ');
        }
        out.push_str("] ");
    }
    let cur = human_size(current as f64);
    if current > total {
        out.push_str(&format!("{cur:>8}"));
    } else {
        out.push_str(&format!("{cur:>8}/{}", human_size(total as f64)));
    }
    if let Some(elapsed) = elapsed
        && current > 0
        && percentage < 50
        && width > 50
    {
        let per_byte = elapsed.as_nanos() / u128::from(current);
        let left_ns = per_byte.saturating_mul(u128::from(total - current.min(total)));
        let secs = ((left_ns + 500_000_000) / 1_000_000_000) as u64;
        out.push(' ');
        out.push_str(&format_go_duration(Duration::from_secs(secs)));
    }
    out
}

struct State {
    out: Box<dyn Write + Send>,
    opts: TransferOptions,
    /// jsonmessage's `ids`: line number of each layer in the current block.
    ids: HashMap<String, usize>,
    last_draw: HashMap<String, Instant>,
    first_bytes: HashMap<String, Instant>,
    write_error: Option<std::io::Error>,
}

impl State {
    fn write(&mut self, s: &str) {
        if self.write_error.is_some() {
            return;
        }
        if let Err(e) = self.out.write_all(s.as_bytes()) {
            self.write_error = Some(e);
        }
    }

    fn flush(&mut self) {
        if self.write_error.is_none()
            && let Err(e) = self.out.flush()
        {
            self.write_error = Some(e);
        }
    }

    fn plain_line(&mut self, id: Option<&str>, text: &str) {
        self.ids.clear();
        let line = match id {
            Some(id) => format!("{id}: {text}\n"),
            None => format!("{text}\n"),
        };
        self.write(&line);
        self.flush();
    }

    /// A layer line (jsonmessage message with an ID and a progress detail).
    fn layer_line(&mut self, id: &str, status: &str, progress: &str) {
        match self.opts.mode {
            TransferMode::Quiet => {}
            TransferMode::Plain => {
                // Byte progress is dropped off a terminal; statuses are one line each.
                if progress.is_empty() {
                    let line = format!("{id}: {status}\n");
                    self.write(&line);
                    self.flush();
                }
            }
            TransferMode::Tty => {
                let mut buf = String::new();
                let n = self.ids.len();
                let line = match self.ids.get(id) {
                    Some(l) => *l,
                    None => {
                        self.ids.insert(id.to_string(), n);
                        buf.push('\n');
                        n
                    }
                };
                let diff = self.ids.len() - line;
                if diff > 0 {
                    buf.push_str(&format!("\x1b[{diff}A"));
                }
                buf.push_str("\x1b[2K\r");
                buf.push_str(&format!("{id}: {status} {progress}\r"));
                if diff > 0 {
                    buf.push_str(&format!("\x1b[{diff}B"));
                }
                self.write(&buf);
                self.flush();
            }
        }
    }
}

/// A pull or push progress session. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct TransferProgress {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for TransferProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferProgress").finish_non_exhaustive()
    }
}

impl TransferProgress {
    /// A session writing to `out`.
    pub fn new(out: Box<dyn Write + Send>, opts: TransferOptions) -> Self {
        TransferProgress {
            state: Arc::new(Mutex::new(State {
                out,
                opts,
                ids: HashMap::new(),
                last_draw: HashMap::new(),
                first_bytes: HashMap::new(),
                write_error: None,
            })),
        }
    }

    /// A session on standard output, TTY mode if it is a terminal: where docker writes the
    /// progress of `pull`, `push` and `load`, so `docker pull x | grep ...` works with berth.
    pub fn stdout(quiet: bool) -> Self {
        Self::new(Box::new(std::io::stdout()), TransferOptions::auto(crate::term::stdout_is_terminal(), quiet))
    }

    /// A session on standard error, TTY mode if it is a terminal: for transfers that are not the
    /// command's output (the implicit pull of `run`/`create`, as docker prints it, and
    /// `image copy`).
    pub fn stderr(quiet: bool) -> Self {
        Self::new(Box::new(std::io::stderr()), TransferOptions::auto(crate::term::stderr_is_terminal(), quiet))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while rendering must not take the download down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A plain line (`Using default tag: latest`, `Digest: ...`, `Status: ...`).
    pub fn message(&self, text: &str) {
        let mut s = self.lock();
        if s.opts.mode != TransferMode::Quiet {
            s.plain_line(None, text);
        }
    }

    /// A plain line with an ID prefix (`latest: Pulling from library/nginx`,
    /// `latest: digest: sha256:... size: 1234`).
    pub fn id_message(&self, id: &str, text: &str) {
        let mut s = self.lock();
        if s.opts.mode != TransferMode::Quiet {
            s.plain_line(Some(id), text);
        }
    }

    /// A layer's status changed. Always rendered.
    pub fn status(&self, id: &str, status: &LayerStatus) {
        let mut s = self.lock();
        s.last_draw.remove(id);
        let text = status.to_string();
        s.layer_line(id, &text, "");
    }

    /// Byte progress of a layer (`total` 0 when unknown). Throttled per layer; the first report
    /// and the one reaching `total` are always drawn.
    pub fn bytes(&self, id: &str, action: Action, current: u64, total: u64) {
        let mut s = self.lock();
        if s.opts.mode != TransferMode::Tty {
            return;
        }
        let now = Instant::now();
        let first = match s.first_bytes.get(id) {
            Some(t) => *t,
            None => {
                s.first_bytes.insert(id.to_string(), now);
                now
            }
        };
        let complete = total > 0 && current >= total;
        if let Some(last) = s.last_draw.get(id)
            && !complete
            && now.duration_since(*last) < s.opts.throttle
        {
            return;
        }
        s.last_draw.insert(id.to_string(), now);
        let width = s.opts.size.width().unwrap_or(200);
        let elapsed = s.opts.show_eta.then(|| now.duration_since(first));
        let progress = progress_string(current, total, width, elapsed);
        s.layer_line(id, action.as_str(), &progress);
    }

    /// A handle for one layer (keeps its short ID).
    pub fn layer(&self, id: &str) -> LayerProgress {
        LayerProgress { session: self.clone(), id: id.to_string() }
    }

    /// The first error met while writing, if any (rendering never fails the transfer).
    pub fn write_error(&self) -> Option<String> {
        self.lock().write_error.as_ref().map(|e| e.to_string())
    }
}

/// One layer of a [`TransferProgress`] session. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct LayerProgress {
    session: TransferProgress,
    id: String,
}

impl LayerProgress {
    /// The layer's short ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// See [`TransferProgress::status`].
    pub fn status(&self, status: &LayerStatus) {
        self.session.status(&self.id, status);
    }

    /// See [`TransferProgress::bytes`].
    pub fn bytes(&self, action: Action, current: u64, total: u64) {
        self.session.bytes(&self.id, action, current, total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn session(mode: TransferMode, width: u16) -> (TransferProgress, Buf) {
        let buf = Buf::default();
        let p = TransferProgress::new(
            Box::new(buf.clone()),
            TransferOptions { mode, size: TermSize::Fixed(width, 40), throttle: Duration::ZERO, show_eta: false },
        );
        (p, buf)
    }

    fn pull(p: &TransferProgress) {
        p.message("Using default tag: latest");
        p.id_message("latest", "Pulling from library/ubuntu");
        let a = p.layer("a3ed95caeb02");
        let b = p.layer("236608c7b546");
        let c = p.layer("79b2f47ad444");
        a.status(&LayerStatus::PullingFsLayer);
        b.status(&LayerStatus::PullingFsLayer);
        c.status(&LayerStatus::AlreadyExists);
        b.status(&LayerStatus::Waiting);
        a.bytes(Action::Downloading, 26_830_000, 58_400_000);
        a.bytes(Action::Downloading, 58_400_000, 58_400_000);
        a.status(&LayerStatus::VerifyingChecksum);
        a.status(&LayerStatus::DownloadComplete);
        a.bytes(Action::Extracting, 32_768, 58_400_000);
        a.status(&LayerStatus::PullComplete);
        p.message("Digest: sha256:0123");
        p.message("Status: Downloaded newer image for ubuntu:latest");
    }

    #[test]
    fn plain_pull_prints_transitions_only() {
        let (p, buf) = session(TransferMode::Plain, 80);
        pull(&p);
        assert_eq!(
            buf.text(),
            "Using default tag: latest
latest: Pulling from library/ubuntu
a3ed95caeb02: Pulling fs layer
236608c7b546: Pulling fs layer
79b2f47ad444: Already exists
236608c7b546: Waiting
a3ed95caeb02: Verifying Checksum
a3ed95caeb02: Download complete
a3ed95caeb02: Pull complete
Digest: sha256:0123
Status: Downloaded newer image for ubuntu:latest
"
        );
    }

    #[test]
    fn tty_pull_redraws_in_place() {
        let (p, buf) = session(TransferMode::Tty, 120);
        pull(&p);
        let want = concat!(
            "Using default tag: latest\n",
            "latest: Pulling from library/ubuntu\n",
            "\n\x1b[1A\x1b[2K\ra3ed95caeb02: Pulling fs layer \r\x1b[1B",
            "\n\x1b[1A\x1b[2K\r236608c7b546: Pulling fs layer \r\x1b[1B",
            "\n\x1b[1A\x1b[2K\r79b2f47ad444: Already exists \r\x1b[1B",
            "\x1b[2A\x1b[2K\r236608c7b546: Waiting \r\x1b[2B",
            "\x1b[3A\x1b[2K\ra3ed95caeb02: Downloading [======================>                            ]  26.83MB/58.4MB\r\x1b[3B",
            "\x1b[3A\x1b[2K\ra3ed95caeb02: Downloading [==================================================>]   58.4MB/58.4MB\r\x1b[3B",
            "\x1b[3A\x1b[2K\ra3ed95caeb02: Verifying Checksum \r\x1b[3B",
            "\x1b[3A\x1b[2K\ra3ed95caeb02: Download complete \r\x1b[3B",
            "\x1b[3A\x1b[2K\ra3ed95caeb02: Extracting [>                                                  ]  32.77kB/58.4MB\r\x1b[3B",
            "\x1b[3A\x1b[2K\ra3ed95caeb02: Pull complete \r\x1b[3B",
            "Digest: sha256:0123\n",
            "Status: Downloaded newer image for ubuntu:latest\n",
        );
        assert_eq!(buf.text(), want);
    }

    #[test]
    fn narrow_tty_hides_bar() {
        let (p, buf) = session(TransferMode::Tty, 80);
        p.bytes("abc", Action::Pushing, 1_000_000, 4_000_000);
        assert_eq!(buf.text(), "\n\x1b[1A\x1b[2K\rabc: Pushing      1MB/4MB\r\x1b[1B");
    }

    #[test]
    fn push_statuses_and_quiet() {
        let (p, buf) = session(TransferMode::Plain, 80);
        p.message("The push refers to repository [docker.io/library/foo]");
        p.status("aaaaaaaaaaaa", &LayerStatus::Preparing);
        p.status("aaaaaaaaaaaa", &LayerStatus::Waiting);
        p.bytes("aaaaaaaaaaaa", Action::Pushing, 10, 100);
        p.status("aaaaaaaaaaaa", &LayerStatus::Pushed);
        p.status("bbbbbbbbbbbb", &LayerStatus::LayerAlreadyExists);
        p.status("cccccccccccc", &LayerStatus::MountedFrom("library/bar".into()));
        p.status("dddddddddddd", &LayerStatus::RetryingIn(5));
        p.id_message("latest", "digest: sha256:abc size: 1234");
        assert_eq!(
            buf.text(),
            "The push refers to repository [docker.io/library/foo]
aaaaaaaaaaaa: Preparing
aaaaaaaaaaaa: Waiting
aaaaaaaaaaaa: Pushed
bbbbbbbbbbbb: Layer already exists
cccccccccccc: Mounted from library/bar
dddddddddddd: Retrying in 5 seconds
latest: digest: sha256:abc size: 1234
"
        );
        let (q, buf) = session(TransferMode::Quiet, 80);
        pull(&q);
        assert_eq!(buf.text(), "");
    }

    #[test]
    fn progress_strings_like_jsonmessage() {
        assert_eq!(progress_string(0, 0, 200, None), "");
        assert_eq!(progress_string(1500, 0, 200, None), "   1.5kB");
        assert_eq!(
            progress_string(150, 100, 200, None),
            "[==================================================>]     150B"
        );
        assert_eq!(progress_string(50, 100, 80, None), "     50B/100B");
        // ETA: half done after 10 s → 10 s left.
        assert_eq!(
            progress_string(50_000_000, 100_000_000, 120, Some(Duration::from_secs(10))),
            "[=========================>                         ]     50MB/100MB 10s"
        );
        assert_eq!(progress_string(1_000_000, 100_000_000, 60, Some(Duration::from_secs(1))), "     1MB/100MB 1m39s");
        assert_eq!(short_id("sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"), "a3ed95caeb02");
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn throttles_byte_progress() {
        let buf = Buf::default();
        let p = TransferProgress::new(
            Box::new(buf.clone()),
            TransferOptions {
                mode: TransferMode::Tty,
                size: TermSize::Fixed(80, 24),
                throttle: Duration::from_secs(3600),
                show_eta: false,
            },
        );
        for i in 1..=1000u64 {
            p.bytes("abc", Action::Downloading, i * 1000, 1_000_000);
        }
        let text = buf.text();
        // First report and the final one only.
        assert_eq!(text.matches("Downloading").count(), 2, "{text:?}");
        assert!(text.contains("1MB/1MB"));
    }

    #[test]
    fn concurrent_reports() {
        let (p, buf) = session(TransferMode::Plain, 80);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let l = p.layer(&format!("layer{t:07}"));
                std::thread::spawn(move || {
                    l.status(&LayerStatus::PullingFsLayer);
                    for i in 0..1000 {
                        l.bytes(Action::Downloading, i, 1000);
                    }
                    l.status(&LayerStatus::PullComplete);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = buf.text();
        assert_eq!(text.lines().count(), 16);
        assert_eq!(text.matches("Pull complete").count(), 8);
    }
}
