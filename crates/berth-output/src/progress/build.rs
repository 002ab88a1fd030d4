//! Build progress in the shapes of BuildKit's `progressui` (what `docker build` prints).
//!
//! The model is BuildKit's: a build is a set of *vertices* (steps), each with a caller-chosen
//! stable id and a display name (`[stage-name 2/5] RUN apt-get update`,
//! `[internal] load build definition from Dockerfile`). A vertex starts, then completes, is
//! CACHED, or fails with an ERROR. While it runs it may have *statuses* (named sub-progress such
//! as `transferring context` with byte counts) and *logs* (stdout/stderr of `RUN`).
//!
//! Modes ([`BuildMode`]):
//! - `plain`: numbered blocks in order of first appearance (`#5 [2/3] RUN echo hi`,
//!   `#5 0.211 hi`, `#5 DONE 0.2s`, `#5 CACHED`, `#6 ERROR: ...`). When output switches to another
//!   vertex before the current one is done, `#N ...` marks the interruption and the block header
//!   is repeated when it resumes, as BuildKit does.
//! - `tty`: a block redrawn in place (`[+] Building 2.2s (17/17) FINISHED`, ` => [2/4] RUN ... 1.6s`,
//!   ` => CACHED [3/4] COPY ...`, ` => => transferring context: 2B`, the last 6 log lines of
//!   running steps); finished steps drop their logs; colours only when allowed.
//! - `rawjson`: one JSON object per event, in BuildKit's `SolveStatus` JSON shape.
//! - `quiet`: nothing.
//!
//! At [`finish`](BuildProgress::finish), plain and tty print BuildKit's error section for
//! failed steps (`------`, ` > [2/3] RUN false:`, the last 10 log lines, `------`).
//!
//! Thread safety: [`BuildProgress`] is `Clone + Send + Sync`; parallel stages report from any
//! thread. Plain and rawjson render synchronously per event; tty only updates state per event
//! and redraws from a ticker thread (every 150 ms), so a chatty `RUN` costs a lock and a copy.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use thiserror::Error;

use crate::tabwriter::display_width;
use crate::term::TermSize;
use crate::units::rfc3339_nano_utc;

/// `--progress` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMode {
    /// `tty` if stderr is a terminal, else `plain`.
    Auto,
    /// Numbered line blocks.
    Plain,
    /// Redrawn block.
    Tty,
    /// JSON lines of solve status.
    RawJson,
    /// Nothing (`quiet`, or `none` as newer buildx spells it).
    Quiet,
}

/// An unknown `--progress` value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid progress mode \"{value}\" (from {source_name}); use auto, plain, tty, rawjson or quiet")]
pub struct BuildModeError {
    /// The value given.
    pub value: String,
    /// Where it came from: `--progress` or `BUILDKIT_PROGRESS`.
    pub source_name: &'static str,
}

impl BuildMode {
    /// Parses a mode name.
    pub fn parse(s: &str) -> Option<BuildMode> {
        match s {
            "auto" | "" => Some(BuildMode::Auto),
            "plain" => Some(BuildMode::Plain),
            "tty" => Some(BuildMode::Tty),
            "rawjson" => Some(BuildMode::RawJson),
            "quiet" | "none" => Some(BuildMode::Quiet),
            _ => None,
        }
    }

    /// buildx's rule: the `--progress` flag, else `BUILDKIT_PROGRESS`, else `auto`; `auto`
    /// becomes `tty` when `stderr_is_terminal`, else `plain`. Never returns `Auto`.
    pub fn resolve(
        flag: Option<&str>,
        env: Option<&str>,
        stderr_is_terminal: bool,
    ) -> Result<BuildMode, BuildModeError> {
        let (value, source_name) = match (flag, env) {
            (Some(f), _) => (f, "--progress"),
            (None, Some(e)) => (e, "BUILDKIT_PROGRESS"),
            (None, None) => ("auto", "--progress"),
        };
        let mode = BuildMode::parse(value).ok_or_else(|| BuildModeError { value: value.to_string(), source_name })?;
        Ok(match mode {
            BuildMode::Auto if stderr_is_terminal => BuildMode::Tty,
            BuildMode::Auto => BuildMode::Plain,
            m => m,
        })
    }
}

/// Which output stream a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// stdout (BuildKit stream 1).
    Stdout,
    /// stderr (BuildKit stream 2).
    Stderr,
}

/// A time source: time elapsed since the session started. Tests pass a fake one.
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// Options of a build progress session.
#[derive(Clone)]
pub struct BuildOptions {
    /// Resolved mode (`Auto` behaves as `Plain`; resolve it with [`BuildMode::resolve`]).
    pub mode: BuildMode,
    /// Terminal size source for `tty`.
    pub size: TermSize,
    /// Use ANSI colours in `tty` mode (see [`crate::term::colors_allowed`]).
    pub color: bool,
    /// Redraw period of the `tty` ticker; `None` disables the ticker thread (then call
    /// [`BuildProgress::refresh`] yourself).
    pub tick: Option<Duration>,
    /// Time source; `None` uses a monotonic clock started with the session.
    pub clock: Option<Clock>,
    /// Wall-clock time of the session start (for `rawjson` timestamps); `None` = now.
    pub start_time: Option<SystemTime>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("mode", &self.mode)
            .field("size", &self.size)
            .field("color", &self.color)
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl BuildOptions {
    /// Options for stderr with a resolved mode: terminal size from fd 2, colours when allowed,
    /// a 150 ms ticker.
    pub fn stderr(mode: BuildMode) -> Self {
        let tty = crate::term::stderr_is_terminal();
        BuildOptions {
            mode,
            size: TermSize::STDERR,
            color: crate::term::colors_allowed(tty),
            tick: Some(Duration::from_millis(150)),
            clock: None,
            start_time: None,
        }
    }
}

/// BuildKit's tty log view: rows of the virtual terminal (`termHeightInitial`), its minimum
/// (`termHeightMin`) and how much narrower than the screen it is (`termPad`).
const TERM_HEIGHT_INITIAL: usize = 6;
const TERM_HEIGHT_MIN: usize = 3;
const TERM_PAD: usize = 10;
/// Lines kept for the error section (BuildKit's plain printer keeps a ring of 10).
const ERROR_LOG_LINES: usize = 10;
/// Plain-mode scheduling (BuildKit's textMux): stay on the current vertex this long before a
/// fair switch; show a vertex that has waited this long regardless.
const ANTI_FLICKER: Duration = Duration::from_secs(5);
const MAX_DELAY: Duration = Duration::from_secs(10);
/// Plain-mode status throttling: reprint an open status after 5% progress or 5 seconds.
const MIN_TIME_DELTA: Duration = Duration::from_secs(5);
const MIN_PROGRESS_DELTA: f64 = 0.05;

#[derive(Debug, Clone)]
struct StatusEntry {
    id: String,
    current: u64,
    total: u64,
    started: Duration,
    completed: Option<Duration>,
    /// Time of the latest update.
    timestamp: Duration,
    /// Updated since last printed (plain).
    dirty: bool,
    /// (current, timestamp) when last printed (plain throttling).
    last_plain: Option<(u64, Duration)>,
}

#[derive(Debug, Clone)]
struct Vertex {
    id: String,
    name: String,
    index: usize,
    started: Option<Duration>,
    completed: Option<Duration>,
    cached: bool,
    error: Option<String>,
    statuses: Vec<StatusEntry>,
    warnings: Vec<String>,
    warnings_printed: usize,
    /// Last complete log lines, without time prefix (tty view).
    tail: VecDeque<String>,
    /// Last log lines with time prefix (error section).
    err_tail: VecDeque<String>,
    /// Incomplete last log line, already time-prefixed.
    partial: Option<String>,
    /// Complete, time-prefixed log lines not printed yet (plain).
    pending: Vec<String>,
    /// Has updates not printed yet (plain).
    dirty: bool,
    /// Updates since the vertex was last shown, and when the first of them came (BuildKit's
    /// `count` and `lastBlockTime`).
    count: usize,
    last_block_time: Duration,
    /// Log bytes received and times its log view was shown (tty: which logs get the space).
    log_bytes: usize,
    term_count: usize,
}

impl Vertex {
    fn canceled(&self) -> bool {
        self.error.as_deref().is_some_and(|e| e.ends_with("context canceled"))
    }

    fn touch(&mut self, now: Duration) {
        if self.count == 0 {
            self.last_block_time = now;
        }
        self.count += 1;
        self.dirty = true;
    }

    /// `0.211 text` with BuildKit's precision: 3 decimals under 10 s, 2 under 100 s, else 1.
    fn log_prefix(&self, at: Duration) -> String {
        let secs = at.saturating_sub(self.started.unwrap_or(at)).as_secs_f64();
        let prec = if secs < 10.0 {
            3
        } else if secs < 100.0 {
            2
        } else {
            1
        };
        format!("{secs:.prec$}")
    }
}

struct State {
    out: Box<dyn Write + Send>,
    opts: BuildOptions,
    clock: Clock,
    start_wall: SystemTime,
    vertices: Vec<Vertex>,
    by_id: HashMap<String, usize>,
    // plain
    current: Option<usize>,
    not_first: bool,
    // tty
    line_count: usize,
    repeated: bool,
    finished: bool,
    write_error: Option<std::io::Error>,
}

/// A build progress session. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct BuildProgress {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for BuildProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildProgress").finish_non_exhaustive()
    }
}

impl BuildProgress {
    /// A session writing to `out`. In `tty` and `plain` modes with a tick, starts the ticker
    /// thread (redraws the tty block; lets plain output switch between parallel steps); it stops
    /// at [`finish`](Self::finish) or when every handle is dropped.
    pub fn new(out: Box<dyn Write + Send>, opts: BuildOptions) -> Self {
        let clock = opts.clock.clone().unwrap_or_else(|| {
            let t0 = Instant::now();
            Arc::new(move || t0.elapsed())
        });
        let start_wall = opts.start_time.unwrap_or_else(SystemTime::now);
        let tick = opts.tick;
        let ticking = matches!(opts.mode, BuildMode::Tty | BuildMode::Plain | BuildMode::Auto);
        let state = Arc::new(Mutex::new(State {
            out,
            opts,
            clock,
            start_wall,
            vertices: Vec::new(),
            by_id: HashMap::new(),
            current: None,
            not_first: false,
            line_count: 0,
            repeated: false,
            finished: false,
            write_error: None,
        }));
        if ticking && let Some(period) = tick {
            let weak: Weak<Mutex<State>> = Arc::downgrade(&state);
            // The ticker holds only a weak reference: dropping every handle ends it. If the
            // thread cannot be spawned, output still happens at each event (and at finish).
            let _ = std::thread::Builder::new().name("berth-build-progress".into()).spawn(move || {
                loop {
                    std::thread::sleep(period);
                    let Some(state) = weak.upgrade() else { break };
                    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                    if st.finished {
                        break;
                    }
                    st.tick();
                }
            });
        }
        BuildProgress { state }
    }

    /// A session on standard error.
    pub fn stderr(mode: BuildMode) -> Self {
        Self::new(Box::new(std::io::stderr()), BuildOptions::stderr(mode))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Declares a vertex and marks it started (`name` as BuildKit shows it).
    pub fn start(&self, id: &str, name: &str) {
        let mut s = self.lock();
        let now = s.now();
        let i = s.vertex(id, Some(name));
        if let Some(v) = s.vertices.get_mut(i) {
            v.started.get_or_insert(now);
            v.completed = None;
            v.touch(now);
        }
        s.after_vertex_event(i);
    }

    /// A vertex whose result came from the cache (started and completed at once).
    pub fn cached(&self, id: &str, name: &str) {
        let mut s = self.lock();
        let now = s.now();
        let i = s.vertex(id, Some(name));
        if let Some(v) = s.vertices.get_mut(i) {
            v.started.get_or_insert(now);
            v.completed = Some(now);
            v.cached = true;
            v.touch(now);
        }
        s.after_vertex_event(i);
    }

    /// A vertex finished successfully.
    pub fn done(&self, id: &str) {
        self.complete(id, None);
    }

    /// A vertex failed (`error` as BuildKit words it, e.g.
    /// `process "/bin/sh -c false" did not complete successfully: exit code: 1`; an error ending
    /// in `context canceled` shows as CANCELED).
    pub fn error(&self, id: &str, error: &str) {
        self.complete(id, Some(error));
    }

    fn complete(&self, id: &str, error: Option<&str>) {
        let mut s = self.lock();
        let now = s.now();
        let i = s.vertex(id, None);
        if let Some(v) = s.vertices.get_mut(i) {
            v.started.get_or_insert(now);
            v.completed = Some(now);
            v.error = error.map(str::to_string);
            v.touch(now);
        }
        s.after_vertex_event(i);
    }

    /// Sub-progress of a vertex (`transferring context`, a layer digest being pulled):
    /// `current`/`total` in bytes (0 when unknown), `done` when it finished.
    pub fn status(&self, vertex: &str, status_id: &str, current: u64, total: u64, done: bool) {
        let mut s = self.lock();
        let now = s.now();
        let i = s.vertex(vertex, None);
        let Some(v) = s.vertices.get_mut(i) else { return };
        let idx = match v.statuses.iter().position(|st| st.id == status_id) {
            Some(p) => p,
            None => {
                v.statuses.push(StatusEntry {
                    id: status_id.to_string(),
                    current: 0,
                    total: 0,
                    started: now,
                    completed: None,
                    timestamp: now,
                    dirty: false,
                    last_plain: None,
                });
                v.statuses.len() - 1
            }
        };
        if let Some(st) = v.statuses.get_mut(idx) {
            st.current = current;
            st.total = total;
            st.timestamp = now;
            st.dirty = true;
            if done {
                st.completed = Some(now);
            }
        }
        v.touch(now);
        match s.opts.mode {
            BuildMode::Plain | BuildMode::Auto => s.plain_schedule(),
            BuildMode::RawJson => s.rawjson_status(i, idx),
            BuildMode::Tty | BuildMode::Quiet => {}
        }
    }

    /// Output of a vertex (any chunking; lines are reassembled).
    pub fn log(&self, vertex: &str, stream: LogStream, data: &[u8]) {
        let mut s = self.lock();
        let now = s.now();
        let i = s.vertex(vertex, None);
        match s.opts.mode {
            BuildMode::RawJson => s.rawjson_log(i, stream, data, now),
            BuildMode::Quiet => {}
            BuildMode::Plain | BuildMode::Auto | BuildMode::Tty => {
                s.add_log(i, data, now);
                if s.opts.mode != BuildMode::Tty {
                    s.plain_schedule();
                }
            }
        }
    }

    /// A warning attached to a vertex (`#3 WARN: ...` in plain mode, ` => WARN: ...` in tty).
    pub fn warn(&self, vertex: &str, message: &str) {
        let mut s = self.lock();
        let now = s.now();
        let i = s.vertex(vertex, None);
        if let Some(v) = s.vertices.get_mut(i) {
            v.warnings.push(message.to_string());
            v.touch(now);
        }
        match s.opts.mode {
            BuildMode::Plain | BuildMode::Auto => s.plain_schedule(),
            BuildMode::RawJson => {
                let id = s.vertices.get(i).map(|v| v.id.clone()).unwrap_or_default();
                let line = json!({"warnings": [{"vertex": id, "level": 1, "short": base64(message.as_bytes())}]});
                s.write(&format!("{line}\n"));
                s.flush();
            }
            BuildMode::Tty | BuildMode::Quiet => {}
        }
    }

    /// Redraws the tty block, or lets plain output switch steps, now (the ticker does this
    /// periodically).
    pub fn refresh(&self) {
        let mut s = self.lock();
        if !s.finished {
            s.tick();
        }
    }

    /// Ends the session: prints what is pending (plain) or the final block (tty: `FINISHED` when
    /// everything completed, logs collapsed), then the error section for failed steps.
    /// Idempotent.
    pub fn finish(&self) {
        let mut s = self.lock();
        if s.finished {
            return;
        }
        match s.opts.mode {
            BuildMode::Tty => {
                s.render_tty(true);
                s.finished = true;
                s.print_error_logs();
            }
            BuildMode::Plain | BuildMode::Auto => {
                // Everything still pending, completed steps first, in order.
                s.plain_schedule();
                let n = s.vertices.len();
                for i in 0..n {
                    if s.vertices.get(i).is_some_and(|v| v.dirty || v.partial.is_some()) {
                        s.print_vtx(i);
                    }
                }
                s.finished = true;
                s.print_error_logs();
            }
            BuildMode::RawJson | BuildMode::Quiet => s.finished = true,
        }
        s.flush();
    }

    /// The first error met while writing, if any (rendering never fails the build).
    pub fn write_error(&self) -> Option<String> {
        self.lock().write_error.as_ref().map(|e| e.to_string())
    }
}

impl State {
    fn now(&self) -> Duration {
        (self.clock)()
    }

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

    fn tick(&mut self) {
        match self.opts.mode {
            BuildMode::Tty => self.render_tty(false),
            BuildMode::Plain | BuildMode::Auto => self.plain_schedule(),
            BuildMode::RawJson | BuildMode::Quiet => {}
        }
    }

    /// Index of vertex `id`, creating it (numbered in order of first appearance).
    fn vertex(&mut self, id: &str, name: Option<&str>) -> usize {
        if let Some(i) = self.by_id.get(id).copied() {
            if let (Some(name), Some(v)) = (name, self.vertices.get_mut(i)) {
                name.clone_into(&mut v.name);
            }
            return i;
        }
        let i = self.vertices.len();
        self.vertices.push(Vertex {
            id: id.to_string(),
            name: name.unwrap_or(id).to_string(),
            index: i + 1,
            started: None,
            completed: None,
            cached: false,
            error: None,
            statuses: Vec::new(),
            warnings: Vec::new(),
            warnings_printed: 0,
            tail: VecDeque::new(),
            err_tail: VecDeque::new(),
            partial: None,
            pending: Vec::new(),
            dirty: false,
            count: 0,
            last_block_time: Duration::ZERO,
            log_bytes: 0,
            term_count: 0,
        });
        self.by_id.insert(id.to_string(), i);
        i
    }

    fn timestamp(&self, at: Duration) -> String {
        let t = self.start_wall + at;
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        rfc3339_nano_utc(d.as_secs() as i64, d.subsec_nanos())
    }

    fn after_vertex_event(&mut self, i: usize) {
        match self.opts.mode {
            BuildMode::Plain | BuildMode::Auto => self.plain_schedule(),
            BuildMode::RawJson => self.rawjson_vertex(i),
            BuildMode::Tty | BuildMode::Quiet => {}
        }
    }

    /// Splits a log chunk into lines (BuildKit joins a partial line with the next chunk and
    /// stamps it with the time of its first part).
    fn add_log(&mut self, i: usize, data: &[u8], now: Duration) {
        let text = String::from_utf8_lossy(data);
        let Some(v) = self.vertices.get_mut(i) else { return };
        v.log_bytes += data.len();
        let mut rest: &str = &text;
        let mut any = false;
        loop {
            let (piece, complete) = match rest.find('\n') {
                Some(nl) => (rest.get(..nl).unwrap_or(""), true),
                None => (rest, false),
            };
            if !complete && piece.is_empty() {
                break;
            }
            let mut line = v.partial.take().unwrap_or_else(|| format!("{} ", v.log_prefix(now)));
            line.push_str(piece.strip_suffix('\r').unwrap_or(piece));
            if complete {
                push_tail(&mut v.tail, strip_time(&line), TERM_HEIGHT_INITIAL);
                push_tail(&mut v.err_tail, line.clone(), ERROR_LOG_LINES);
                v.pending.push(line);
                rest = rest.get(piece.len() + 1..).unwrap_or("");
                any = true;
            } else {
                v.partial = Some(line);
                break;
            }
        }
        if any || v.partial.is_some() {
            v.touch(now);
        }
    }

    // ---- plain ------------------------------------------------------------------------------

    /// BuildKit's textMux scheduling: completed steps first, then the current step, switching
    /// to another step with pending output only after `ANTI_FLICKER` (fair share) or when it
    /// has waited `MAX_DELAY`.
    fn plain_schedule(&mut self) {
        let now = self.now();
        let mut completed: Vec<usize> = (0..self.vertices.len())
            .filter(|&i| self.vertices.get(i).is_some_and(|v| v.dirty && v.completed.is_some()))
            .collect();
        completed.sort_by_key(|&i| self.vertices.get(i).and_then(|v| v.completed));
        if let Some(c) = self.current
            && completed.contains(&c)
        {
            self.print_vtx(c);
        }
        for i in completed {
            if self.vertices.get(i).is_some_and(|v| v.dirty) {
                self.print_vtx(i);
            }
        }
        let rest: Vec<usize> =
            (0..self.vertices.len()).filter(|&i| self.vertices.get(i).is_some_and(|v| v.dirty)).collect();
        if rest.is_empty() {
            self.flush();
            return;
        }
        if let Some(c) = self.current
            && rest.contains(&c)
        {
            self.print_vtx(c);
        }
        // Speeds of the waiting steps and of the current one.
        let speed = |v: &Vertex| {
            let tm = now.saturating_sub(v.last_block_time).as_secs_f64().max(1e-3);
            v.count as f64 / tm
        };
        let mut max: Option<(usize, f64)> = None;
        let mut sum = 0.0;
        let mut over_limit = None;
        for &i in &rest {
            let Some(v) = self.vertices.get(i) else { continue };
            if Some(i) == self.current {
                continue;
            }
            let sp = speed(v);
            sum += sp;
            if over_limit.is_none() && now.saturating_sub(v.last_block_time) > MAX_DELAY {
                over_limit = Some(i);
            }
            if max.is_none_or(|(_, m)| sp > m) {
                max = Some((i, sp));
            }
        }
        let Some((max_i, _)) = max else {
            self.flush();
            return;
        };
        match self.current {
            None => self.print_vtx(max_i),
            Some(c) => {
                if let Some(i) = over_limit {
                    self.print_vtx(i);
                } else if let Some(cv) = self.vertices.get(c) {
                    let cs = speed(cv);
                    let share = if sum + cs > 0.0 { cs / (sum + cs) } else { 0.0 };
                    let block = now.saturating_sub(cv.last_block_time).as_secs_f64();
                    if share < 1.0 && ANTI_FLICKER.as_secs_f64() / (1.0 - share) < block {
                        self.print_vtx(max_i);
                    }
                }
            }
        }
        self.flush();
    }

    /// Prints a step's pending output (BuildKit's `printVtx`).
    fn print_vtx(&mut self, i: usize) {
        if self.current != Some(i) {
            if let Some(old) = self.current
                && let Some(ov) = self.vertices.get_mut(old)
            {
                ov.count = 0;
                let line = format!("#{} ...\n", ov.index);
                self.write(&line);
            }
            if self.not_first {
                self.write("\n");
            } else {
                self.not_first = true;
            }
            let now = self.now();
            if let Some(v) = self.vertices.get_mut(i) {
                // Unlike BuildKit (which decides once per tick) we schedule at every event, so a
                // step that just became current gets a fresh block to avoid ping-pong.
                v.count = 0;
                v.last_block_time = now;
                let line = format!("#{} {}\n", v.index, v.name);
                self.write(&line);
            }
        }
        let Some(v) = self.vertices.get_mut(i) else { return };
        let index = v.index;
        let mut buf = String::new();
        for st in v.statuses.iter_mut().filter(|st| st.dirty) {
            st.dirty = false;
            if let Some((last_cur, last_t)) = st.last_plain
                && st.completed.is_none()
            {
                let delta =
                    if st.total > 0 { st.current.saturating_sub(last_cur) as f64 / st.total as f64 } else { 0.0 };
                if delta < MIN_PROGRESS_DELTA && st.timestamp.saturating_sub(last_t) < MIN_TIME_DELTA {
                    continue;
                }
            }
            st.last_plain = Some((st.current, st.timestamp));
            buf.push_str(&format!("#{index} {}\n", plain_status(st)));
        }
        for w in v.warnings.iter().skip(v.warnings_printed) {
            buf.push_str(&format!("#{index} WARN: {w}\n"));
        }
        v.warnings_printed = v.warnings.len();
        for l in v.pending.drain(..) {
            buf.push_str(&format!("#{index} {l}\n"));
        }
        v.dirty = false;
        self.current = Some(i);
        if let Some(completed) = v.completed {
            if let Some(p) = v.partial.take() {
                push_tail(&mut v.err_tail, p.clone(), ERROR_LOG_LINES);
                buf.push_str(&format!("#{index} {p}\n"));
            }
            self.current = None;
            v.count = 0;
            if let Some(err) = &v.error {
                if v.canceled() {
                    buf.push_str(&format!("#{index} CANCELED\n"));
                } else {
                    buf.push_str(&format!("#{index} ERROR: {err}\n"));
                }
            } else if v.cached {
                buf.push_str(&format!("#{index} CACHED\n"));
            } else {
                let dt = completed.saturating_sub(v.started.unwrap_or(completed));
                buf.push_str(&format!("#{index} DONE {:.1}s\n", dt.as_secs_f64()));
            }
        }
        self.write(&buf);
    }

    fn print_error_logs(&mut self) {
        let mut buf = String::new();
        for v in &self.vertices {
            if v.error.is_none() || v.canceled() {
                continue;
            }
            buf.push_str("------\n");
            buf.push_str(&format!(" > {}:\n", v.name));
            for l in &v.err_tail {
                buf.push_str(l);
                buf.push('\n');
            }
            if let Some(p) = &v.partial {
                buf.push_str(p);
                buf.push('\n');
            }
            buf.push_str("------\n");
        }
        self.write(&buf);
    }

    // ---- rawjson ----------------------------------------------------------------------------

    fn rawjson_vertex(&mut self, i: usize) {
        let Some(v) = self.vertices.get(i) else { return };
        let mut obj = serde_json::Map::new();
        obj.insert("digest".into(), Value::String(v.id.clone()));
        obj.insert("name".into(), Value::String(v.name.clone()));
        let (started, completed) = (v.started, v.completed);
        let (cached, error) = (v.cached, v.error.clone());
        if let Some(t) = started {
            obj.insert("started".into(), Value::String(self.timestamp(t)));
        }
        if let Some(t) = completed {
            obj.insert("completed".into(), Value::String(self.timestamp(t)));
        }
        if cached {
            obj.insert("cached".into(), Value::Bool(true));
        }
        if let Some(e) = error {
            obj.insert("error".into(), Value::String(e));
        }
        let line = json!({"vertexes": [Value::Object(obj)]});
        self.write(&format!("{line}\n"));
        self.flush();
    }

    fn rawjson_status(&mut self, i: usize, idx: usize) {
        let Some(v) = self.vertices.get(i) else { return };
        let Some(st) = v.statuses.get(idx) else { return };
        let mut obj = serde_json::Map::new();
        obj.insert("id".into(), Value::String(st.id.clone()));
        obj.insert("vertex".into(), Value::String(v.id.clone()));
        if st.current > 0 {
            obj.insert("current".into(), Value::from(st.current));
        }
        if st.total > 0 {
            obj.insert("total".into(), Value::from(st.total));
        }
        let (timestamp, started, completed) = (st.timestamp, st.started, st.completed);
        obj.insert("timestamp".into(), Value::String(self.timestamp(timestamp)));
        obj.insert("started".into(), Value::String(self.timestamp(started)));
        if let Some(c) = completed {
            obj.insert("completed".into(), Value::String(self.timestamp(c)));
        }
        let line = json!({"statuses": [Value::Object(obj)]});
        self.write(&format!("{line}\n"));
        self.flush();
    }

    fn rawjson_log(&mut self, i: usize, stream: LogStream, data: &[u8], now: Duration) {
        let id = self.vertices.get(i).map(|v| v.id.clone()).unwrap_or_default();
        let stream_no = match stream {
            LogStream::Stdout => 1,
            LogStream::Stderr => 2,
        };
        let line = json!({"logs": [{"vertex": id, "stream": stream_no, "data": base64(data), "timestamp": self.timestamp(now)}]});
        self.write(&format!("{line}\n"));
        self.flush();
    }

    // ---- tty --------------------------------------------------------------------------------

    fn render_tty(&mut self, all: bool) {
        // BuildKit falls back to 80x10 when the console size is unknown.
        let (width, height) = match self.opts.size.size() {
            Some((w, h)) if w > 0 && h > 0 => (usize::from(w), usize::from(h)),
            Some((w, _)) if w > 0 => (usize::from(w), 10),
            _ => (80, 10),
        };
        let now = self.now();
        let color = self.opts.color;

        let first_start = self.vertices.iter().filter_map(|v| v.started).min();
        let total = self.vertices.len();
        let completed = self.vertices.iter().filter(|v| v.completed.is_some()).count();
        let all_done = total > 0 && completed == total;
        let end =
            if all && all_done { self.vertices.iter().filter_map(|v| v.completed).max().unwrap_or(now) } else { now };
        let elapsed = first_start.map_or(0.0, |s| end.saturating_sub(s).as_secs_f64());
        let status = if all && all_done { "FINISHED" } else { "" };
        let header = truncate_width(
            &align(&format!("[+] Building {elapsed:.1}s ({completed}/{total}) {status}"), "", width),
            width,
        );

        let mut jobs: Vec<Job> = Vec::new();
        for (vi, v) in self.vertices.iter().enumerate() {
            let Some(started) = v.started else { continue };
            let mut name = v.name.replace('\t', " ");
            if v.canceled() {
                name = format!("CANCELED {name}");
            } else if v.error.is_some() {
                name = format!("ERROR {name}");
            }
            if v.cached {
                name = format!("CACHED {name}");
            }
            let paint = if v.completed.is_none() || !color {
                None
            } else if v.canceled() {
                Some(COLOR_CANCEL)
            } else if v.error.is_some() {
                Some(COLOR_ERROR)
            } else {
                Some(COLOR_RUN)
            };
            jobs.push(Job {
                name,
                status: String::new(),
                dt: v.completed.unwrap_or(now).saturating_sub(started),
                completed: v.completed.is_some(),
                paint,
                vertex: Some(vi),
                show_term: false,
            });
            for st in &v.statuses {
                jobs.push(Job {
                    name: format!("=> {}", st.id),
                    status: bytes_status(st),
                    dt: st.completed.unwrap_or(now).saturating_sub(st.started),
                    completed: st.completed.is_some(),
                    paint: if st.completed.is_some() && color { Some(COLOR_RUN) } else { None },
                    vertex: None,
                    show_term: false,
                });
            }
            for w in &v.warnings {
                jobs.push(Job {
                    name: format!("WARN: {w}"),
                    status: String::new(),
                    dt: v.completed.unwrap_or(now).saturating_sub(started),
                    completed: false,
                    paint: None,
                    vertex: None,
                    show_term: false,
                });
            }
        }

        // BuildKit's setupTerminals: log views for the busiest running steps, if they fit.
        let term_height = TERM_HEIGHT_INITIAL.min(height.saturating_sub(TERM_HEIGHT_MIN + 1)).max(TERM_HEIGHT_MIN);
        let term_width = width.saturating_sub(TERM_PAD).max(1);
        let mut num_to_hide = 0usize;
        if !all {
            let in_use = jobs.iter().filter(|j| !j.completed).count();
            let mut candidates: Vec<usize> = (0..jobs.len())
                .filter(|&j| {
                    jobs.get(j).is_some_and(|job| {
                        !job.completed
                            && job.vertex.and_then(|vi| self.vertices.get(vi)).is_some_and(|v| v.log_bytes > 0)
                    })
                })
                .collect();
            let weight = |j: &usize| {
                jobs.get(*j)
                    .and_then(|job| job.vertex)
                    .and_then(|vi| self.vertices.get(vi))
                    .map_or(0, |v| v.log_bytes + v.term_count * 50)
            };
            candidates.sort_by_key(|j| std::cmp::Reverse(weight(j)));
            let mut num_free = height as i64 - 2 - in_use as i64;
            let term_limit = (term_height + 3) as i64;
            for j in candidates {
                if num_free <= term_limit {
                    break;
                }
                if let Some(job) = jobs.get_mut(j) {
                    job.show_term = true;
                    let used = job
                        .vertex
                        .and_then(|vi| self.vertices.get(vi))
                        .map_or(0, |v| term_rows(&v.tail, term_width, term_height).len());
                    num_to_hide += used;
                }
                num_free -= term_limit;
            }
            jobs = wrap_height(jobs, height as i64 - 2 - num_to_hide as i64);
        }

        let mut buf = String::new();
        if self.repeated {
            buf.push_str(&format!("\x1b[{}A", self.line_count + 1));
        }
        self.repeated = true;
        buf.push_str("\x1b[0G\x1b[?25l");
        buf.push_str(&header);
        buf.push('\n');
        let mut line_count = 0;
        let mut shown_terms = Vec::new();
        for job in &jobs {
            let Some(line) = job_line(&job.name, &job.status, job.dt, width) else { continue };
            buf.push_str(&paint_line(&line, job.paint));
            line_count += 1;
            if job.show_term
                && let Some(v) = job.vertex.and_then(|vi| self.vertices.get(vi))
            {
                for row in term_rows(&v.tail, term_width, term_height) {
                    let l = format!(" => => # {row}\n");
                    buf.push_str(&paint_line(&l, color.then_some(COLOR_FAINT)));
                    line_count += 1;
                }
                if let Some(vi) = job.vertex {
                    shown_terms.push(vi);
                }
            }
        }
        for vi in shown_terms {
            if let Some(v) = self.vertices.get_mut(vi) {
                v.term_count += 1;
            }
        }
        if self.line_count > line_count {
            let diff = self.line_count - line_count;
            for _ in 0..diff {
                buf.push_str(&" ".repeat(width));
                buf.push('\n');
            }
            buf.push_str(&format!("\x1b[{diff}A\x1b[0G"));
        }
        buf.push_str("\x1b[?25h");
        self.line_count = line_count;
        self.write(&buf);
        self.flush();
    }
}

const COLOR_RUN: &str = "\x1b[34m";
const COLOR_ERROR: &str = "\x1b[31m";
const COLOR_CANCEL: &str = "\x1b[33m";
const COLOR_FAINT: &str = "\x1b[2m";

/// One line of the tty block.
#[derive(Debug, Clone)]
struct Job {
    name: String,
    status: String,
    dt: Duration,
    completed: bool,
    paint: Option<&'static str>,
    /// The vertex whose log view may follow this line.
    vertex: Option<usize>,
    show_term: bool,
}

/// BuildKit's `wrapHeight`: keep the last `limit` lines; running steps that would be cut are
/// moved in place of finished ones.
fn wrap_height(jobs: Vec<Job>, limit: i64) -> Vec<Job> {
    if limit < 0 {
        return Vec::new();
    }
    let limit = limit as usize;
    if jobs.len() <= limit {
        return jobs;
    }
    let cut = jobs.len() - limit;
    let (head, tail) = jobs.split_at(cut);
    let invisible: Vec<Job> = head.iter().filter(|j| !j.completed).cloned().collect();
    let mut wrapped: Vec<Job> = tail.to_vec();
    if !invisible.is_empty() {
        let mut l = invisible.len() as i64;
        let mut rewrapped = Vec::with_capacity(wrapped.len());
        for j in wrapped {
            if !j.completed || l <= 0 {
                rewrapped.push(j);
            }
            l -= 1;
        }
        let freespace = limit.saturating_sub(rewrapped.len());
        let start = invisible.len().saturating_sub(freespace);
        let mut out: Vec<Job> = invisible.get(start..).map(<[Job]>::to_vec).unwrap_or_default();
        out.extend(rewrapped);
        wrapped = out;
    }
    wrapped
}

/// The rows BuildKit's virtual terminal would show for these log lines: wrapped at `width`
/// columns, last `height` rows.
fn term_rows(lines: &VecDeque<String>, width: usize, height: usize) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    for l in lines {
        let mut row = String::new();
        let mut w = 0;
        for c in l.chars() {
            let cw = display_width(c.encode_utf8(&mut [0u8; 4]));
            if w + cw > width {
                rows.push(std::mem::take(&mut row));
                w = 0;
            }
            row.push(c);
            w += cw;
        }
        if !row.trim().is_empty() {
            rows.push(row);
        }
    }
    let skip = rows.len().saturating_sub(height);
    let mut rows = rows.split_off(skip);
    // vt100 rows are full width: the padding also erases what the previous frame left there.
    for row in &mut rows {
        let w = display_width(row);
        row.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    }
    rows
}

/// BuildKit's `align`: `l` padded to `w - len(r) - 1`, a space, then `r`.
fn align(l: &str, r: &str, w: usize) -> String {
    let pad = w.saturating_sub(r.len() + 1);
    let lw = display_width(l);
    let mut s = String::from(l);
    for _ in lw..pad {
        s.push(' ');
    }
    s.push(' ');
    s.push_str(r);
    s
}

/// One ` => name [status]   1.2s` line (with its newline), or `None` when the terminal is too
/// narrow to show it (BuildKit's rule).
fn job_line(name: &str, status: &str, dt: Duration, width: usize) -> Option<String> {
    let mut secs = dt.as_secs_f64();
    if secs < 0.05 {
        secs = 0.0;
    }
    let pfx = " => ";
    let timer = format!(" {secs:3.1}s\n");
    let mut left = width as i64 - pfx.len() as i64 - timer.len() as i64 - 1;
    let mut show_status = false;
    if !status.is_empty() && left + status.len() as i64 > 20 {
        show_status = true;
        left -= status.len() as i64 + 1;
    }
    if left < 12 {
        return None;
    }
    let mut out = String::from(pfx);
    out.push_str(&truncate_width(name, left as usize));
    if show_status {
        out.push(' ');
        out.push_str(status);
    }
    Some(align(&out, &timer, width))
}

fn paint_line(line: &str, color: Option<&str>) -> String {
    match color {
        None => line.to_string(),
        Some(c) => {
            let body = line.strip_suffix('\n').unwrap_or(line);
            format!("{c}{body}\x1b[0m\n")
        }
    }
}

fn truncate_width(s: &str, max: usize) -> String {
    let mut w = 0;
    let mut out = String::new();
    for c in s.chars() {
        let cw = display_width(c.encode_utf8(&mut [0u8; 4]));
        if w + cw > max {
            break;
        }
        w += cw;
        out.push(c);
    }
    out
}

/// BuildKit's byte formatting for statuses (`%.2f` of `units.Bytes`): `123B`, `2.34kB`.
pub fn buildkit_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1000.0;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.2}{}", UNITS.get(i).copied().unwrap_or("EB"))
}

fn bytes_status(st: &StatusEntry) -> String {
    if st.total != 0 {
        format!("{} / {}", buildkit_bytes(st.current), buildkit_bytes(st.total))
    } else if st.current != 0 {
        buildkit_bytes(st.current)
    } else {
        String::new()
    }
}

fn plain_status(st: &StatusEntry) -> String {
    let bytes = bytes_status(st);
    let mut out = st.id.clone();
    if !bytes.is_empty() {
        out.push(' ');
        out.push_str(&bytes);
    }
    let end = st.completed.unwrap_or(st.timestamp);
    let diff = end.saturating_sub(st.started).as_secs_f64();
    if diff > 0.01 {
        out.push_str(&format!(" {diff:.1}s"));
    }
    if st.completed.is_some() {
        out.push_str(" done");
    }
    out
}

fn strip_time(line: &str) -> String {
    line.split_once(' ').map_or(line, |(_, t)| t).to_string()
}

fn push_tail(q: &mut VecDeque<String>, line: String, max: usize) {
    if q.len() == max {
        q.pop_front();
    }
    q.push_back(line);
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let idx = |shift: u32| char::from(T[((n >> shift) & 63) as usize]);
        out.push(idx(18));
        out.push(idx(12));
        out.push(if chunk.len() > 1 { idx(6) } else { '=' });
        out.push(if chunk.len() > 2 { idx(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

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
        fn clear(&self) {
            self.0.lock().unwrap().clear();
        }
    }

    struct Fake {
        ms: Arc<AtomicU64>,
        buf: Buf,
        p: BuildProgress,
    }
    impl Fake {
        fn at(&self, ms: u64) {
            self.ms.store(ms, Ordering::SeqCst);
        }
    }

    fn session(mode: BuildMode, width: u16, color: bool) -> Fake {
        let ms = Arc::new(AtomicU64::new(0));
        let m2 = ms.clone();
        let buf = Buf::default();
        let p = BuildProgress::new(
            Box::new(buf.clone()),
            BuildOptions {
                mode,
                size: TermSize::Fixed(width, 30),
                color,
                tick: None,
                clock: Some(Arc::new(move || Duration::from_millis(m2.load(Ordering::SeqCst)))),
                start_time: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            },
        );
        Fake { ms, buf, p }
    }

    /// A small build: context load, cached FROM, a RUN with output, a failing RUN.
    fn build(f: &Fake) {
        let p = &f.p;
        f.at(0);
        p.start("d1", "[internal] load build definition from Dockerfile");
        p.status("d1", "transferring dockerfile: 123B", 0, 0, false);
        f.at(20);
        p.status("d1", "transferring dockerfile: 123B", 0, 0, true);
        p.done("d1");
        f.at(30);
        p.cached("d2", "[1/3] FROM docker.io/library/alpine:3.20");
        f.at(40);
        p.start("d3", "[2/3] RUN echo hi && echo there");
        f.at(251);
        p.log("d3", LogStream::Stdout, b"hi\nthe");
        f.at(260);
        p.log("d3", LogStream::Stdout, b"re\n");
        f.at(300);
        p.done("d3");
        f.at(310);
        p.start("d4", "[3/3] RUN false");
        f.at(400);
        p.log("d4", LogStream::Stderr, b"something went wrong\n");
        f.at(420);
        p.error("d4", "process \"/bin/sh -c false\" did not complete successfully: exit code: 1");
        p.finish();
    }

    #[test]
    fn plain_output() {
        let f = session(BuildMode::Plain, 80, false);
        build(&f);
        assert_eq!(
            f.buf.text(),
            "#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 123B
#1 transferring dockerfile: 123B 0.0s done
#1 DONE 0.0s

#2 [1/3] FROM docker.io/library/alpine:3.20
#2 CACHED

#3 [2/3] RUN echo hi && echo there
#3 0.211 hi
#3 0.211 there
#3 DONE 0.3s

#4 [3/3] RUN false
#4 0.090 something went wrong
#4 ERROR: process \"/bin/sh -c false\" did not complete successfully: exit code: 1
------
 > [3/3] RUN false:
0.090 something went wrong
------
"
        );
    }

    #[test]
    fn plain_interleaving_of_parallel_stages() {
        let f = session(BuildMode::Plain, 80, false);
        let p = &f.p;
        p.start("a", "[stage-a 1/2] RUN make");
        f.at(100);
        p.log("a", LogStream::Stdout, b"building a\n");
        p.start("b", "[stage-b 1/2] RUN make");
        f.at(200);
        // b waits while a is current (anti-flicker), then is shown when a completes.
        p.log("b", LogStream::Stdout, b"building b\n");
        f.at(300);
        p.log("a", LogStream::Stdout, b"a done\n");
        p.done("a");
        p.done("b");
        p.finish();
        assert_eq!(
            f.buf.text(),
            "#1 [stage-a 1/2] RUN make
#1 0.100 building a
#1 0.300 a done
#1 DONE 0.3s

#2 [stage-b 1/2] RUN make
#2 0.100 building b
#2 DONE 0.2s
"
        );
    }

    #[test]
    fn plain_switches_after_anti_flicker_and_marks_interruption() {
        let f = session(BuildMode::Plain, 80, false);
        let p = &f.p;
        p.start("a", "[a 1/1] RUN sleep 20");
        p.start("b", "[b 1/1] RUN chatty");
        f.at(1000);
        p.log("b", LogStream::Stdout, b"b1\n");
        f.at(6000);
        // a has been current for 6 s with nothing to say: b gets the floor.
        p.refresh();
        f.at(6500);
        p.log("a", LogStream::Stdout, b"a1\n");
        f.at(12_000);
        p.refresh();
        f.at(13_000);
        p.done("a");
        p.done("b");
        p.finish();
        assert_eq!(
            f.buf.text(),
            "#1 [a 1/1] RUN sleep 20
#1 ...

#2 [b 1/1] RUN chatty
#2 1.000 b1
#2 ...

#1 [a 1/1] RUN sleep 20
#1 6.500 a1
#1 DONE 13.0s

#2 [b 1/1] RUN chatty
#2 DONE 13.0s
"
        );
    }

    #[test]
    fn plain_status_throttling_and_log_precision() {
        let f = session(BuildMode::Plain, 80, false);
        let p = &f.p;
        p.start("c", "[internal] load build context");
        for i in 0..=100u64 {
            f.at(i * 100);
            p.status("c", "transferring context", i * 1_000_000, 100_000_000, false);
        }
        f.at(10_100);
        p.status("c", "transferring context", 100_000_000, 100_000_000, true);
        f.at(12_345);
        p.log("c", LogStream::Stdout, b"late line\n");
        f.at(123_456);
        p.log("c", LogStream::Stdout, b"very late\n");
        p.done("c");
        p.finish();
        let text = f.buf.text();
        let statuses = text.lines().filter(|l| l.contains("transferring context")).count();
        // 0%, then every 5% (20 steps), then done.
        assert_eq!(statuses, 22, "{text}");
        assert!(text.contains("#1 transferring context 100.00MB / 100.00MB 10.1s done\n"), "{text}");
        assert!(text.contains("#1 12.35 late line\n"), "{text}");
        assert!(text.contains("#1 123.5 very late\n"), "{text}");
    }

    #[test]
    fn tty_running_then_finished() {
        let f = session(BuildMode::Tty, 60, false);
        let p = &f.p;
        p.start("d1", "[internal] load build context");
        p.status("d1", "transferring context", 2_340, 0, false);
        f.at(100);
        p.status("d1", "transferring context", 2_340, 0, true);
        p.done("d1");
        p.cached("d2", "[1/2] FROM docker.io/library/alpine");
        f.at(150);
        p.start("d3", "[2/2] RUN apt-get update && apt-get install -y curl");
        f.at(1750);
        p.log("d3", LogStream::Stdout, b"Get:1 http://deb.debian.org bookworm InRelease\n");
        p.refresh();
        let first = f.buf.text();
        let want_first = concat!(
            "\x1b[0G\x1b[?25l",
            "[+] Building 1.8s (2/3)                                     \n",
            " => [internal] load build context                      0.1s\n",
            " => => transferring context 2.34kB                     0.1s\n",
            " => CACHED [1/2] FROM docker.io/library/alpine         0.0s\n",
            " => [2/2] RUN apt-get update && apt-get install -y cu  1.6s\n",
            " => => # Get:1 http://deb.debian.org bookworm InRelease    \n",
            "\x1b[?25h",
        );
        assert_eq!(first, want_first);
        f.buf.clear();
        f.at(2200);
        p.done("d3");
        p.finish();
        let want_final = concat!(
            "\x1b[6A\x1b[0G\x1b[?25l",
            "[+] Building 2.2s (3/3) FINISHED                            \n",
            " => [internal] load build context                      0.1s\n",
            " => => transferring context 2.34kB                     0.1s\n",
            " => CACHED [1/2] FROM docker.io/library/alpine         0.0s\n",
            " => [2/2] RUN apt-get update && apt-get install -y cu  2.0s\n",
            "                                                            \n",
            "\x1b[1A\x1b[0G",
            "\x1b[?25h",
        );
        assert_eq!(f.buf.text(), want_final);
    }

    #[test]
    fn tty_colors_and_errors() {
        let f = session(BuildMode::Tty, 60, true);
        f.p.cached("d1", "[1/2] FROM alpine");
        f.p.start("d2", "[2/2] RUN false");
        f.at(500);
        f.p.log("d2", LogStream::Stderr, b"oops\n");
        f.p.error("d2", "process \"/bin/sh -c false\" did not complete successfully: exit code: 1");
        f.p.finish();
        let text = f.buf.text();
        assert!(text.contains("\x1b[34m => CACHED [1/2] FROM alpine"), "{text:?}");
        assert!(text.contains("\x1b[31m => ERROR [2/2] RUN false"), "{text:?}");
        assert!(text.contains("[+] Building 0.5s (2/2) FINISHED"), "{text:?}");
        assert!(text.ends_with("------\n > [2/2] RUN false:\n0.500 oops\n------\n"), "{text:?}");
    }

    #[test]
    fn rawjson_lines() {
        let f = session(BuildMode::RawJson, 80, false);
        f.p.start("sha256:v1", "[1/1] RUN echo hi");
        f.at(1500);
        f.p.log("sha256:v1", LogStream::Stdout, b"hi\n");
        f.p.done("sha256:v1");
        f.p.finish();
        let text = f.buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            vec![
                r#"{"vertexes":[{"digest":"sha256:v1","name":"[1/1] RUN echo hi","started":"2023-11-14T22:13:20Z"}]}"#,
                r#"{"logs":[{"vertex":"sha256:v1","stream":1,"data":"aGkK","timestamp":"2023-11-14T22:13:21.5Z"}]}"#,
                r#"{"vertexes":[{"digest":"sha256:v1","name":"[1/1] RUN echo hi","started":"2023-11-14T22:13:20Z","completed":"2023-11-14T22:13:21.5Z"}]}"#,
            ]
        );
    }

    #[test]
    fn quiet_prints_nothing() {
        let f = session(BuildMode::Quiet, 80, false);
        build(&f);
        assert_eq!(f.buf.text(), "");
    }

    #[test]
    fn mode_resolution() {
        assert_eq!(BuildMode::resolve(None, None, true), Ok(BuildMode::Tty));
        assert_eq!(BuildMode::resolve(None, None, false), Ok(BuildMode::Plain));
        assert_eq!(BuildMode::resolve(None, Some("plain"), true), Ok(BuildMode::Plain));
        assert_eq!(BuildMode::resolve(Some("tty"), Some("plain"), false), Ok(BuildMode::Tty));
        assert_eq!(BuildMode::resolve(Some("none"), None, true), Ok(BuildMode::Quiet));
        assert_eq!(BuildMode::resolve(Some("auto"), Some("rawjson"), true), Ok(BuildMode::Tty));
        let e = BuildMode::resolve(None, Some("fancy"), true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid progress mode \"fancy\" (from BUILDKIT_PROGRESS); use auto, plain, tty, rawjson or quiet"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(buildkit_bytes(2), "2B");
        assert_eq!(buildkit_bytes(2_340), "2.34kB");
        assert_eq!(buildkit_bytes(3_150_000), "3.15MB");
        assert_eq!(base64(b"hi\n"), "aGkK");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn concurrent_stages_and_ticker() {
        let buf = Buf::default();
        let p = BuildProgress::new(
            Box::new(buf.clone()),
            BuildOptions {
                mode: BuildMode::Tty,
                size: TermSize::Fixed(100, 30),
                color: false,
                tick: Some(Duration::from_millis(5)),
                clock: None,
                start_time: None,
            },
        );
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let id = format!("v{t}");
                    p.start(&id, &format!("[stage-{t} 1/1] RUN work"));
                    for i in 0..200 {
                        p.log(&id, LogStream::Stdout, format!("line {i}\n").as_bytes());
                    }
                    p.done(&id);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        p.finish();
        let text = buf.text();
        assert!(text.contains("(4/4) FINISHED"), "{text}");
    }
}
