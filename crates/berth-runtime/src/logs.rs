//! Docker's json-file log format: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-27T07:49:26.123456789Z"}`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{IoCtx, Result};
use crate::io::Stream;

/// One log line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends entries to a json-file log.
pub struct LogWriter {
    f: File,
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<Self> {
        let f = OpenOptions::new().create(true).append(true).open(path).ctx("open log", path)?;
        Ok(LogWriter { f })
    }

    /// Append one line (invalid UTF-8 is replaced, as Docker does).
    pub fn write(&mut self, stream: Stream, line: &[u8]) {
        let e = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: stream.as_str().into(),
            time: crate::util::now_rfc3339(),
        };
        if let Ok(mut s) = serde_json::to_vec(&e) {
            s.push(b'\n');
            // One write(2) per line: concurrent readers never see half a record.
            let _ = self.f.write_all(&s);
        }
    }
}

/// Options for [`read_logs`].
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep reading until `still_running` returns false.
    pub follow: bool,
    /// Only the last N entries (before following).
    pub tail: Option<usize>,
}

/// Read entries from `path`, calling `out` for each. With `follow`, poll for new lines
/// until `still_running()` is false and the file is drained.
pub fn read_logs(
    path: &Path,
    opts: &LogOptions,
    still_running: &mut dyn FnMut() -> bool,
    out: &mut dyn FnMut(&LogEntry),
) -> Result<()> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !opts.follow => return Ok(()),
        Err(e) => return Err(crate::Error::io("open log", path, e)),
    };
    let mut r = BufReader::new(f);
    let mut first: Vec<LogEntry> = Vec::new();
    let mut line = String::new();
    let mut pos = 0u64;
    loop {
        line.clear();
        let n = r.read_line(&mut line).ctx("read log", path)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        pos += n as u64;
        if let Ok(e) = serde_json::from_str::<LogEntry>(&line) {
            first.push(e);
        }
    }
    let skip = opts.tail.map(|t| first.len().saturating_sub(t)).unwrap_or(0);
    for e in first.iter().skip(skip) {
        out(e);
    }
    if !opts.follow {
        return Ok(());
    }
    loop {
        let running = still_running();
        r.seek(SeekFrom::Start(pos)).ctx("seek log", path)?;
        let mut got = false;
        loop {
            line.clear();
            let n = r.read_line(&mut line).ctx("read log", path)?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            pos += n as u64;
            got = true;
            if let Ok(e) = serde_json::from_str::<LogEntry>(&line) {
                out(&e);
            }
        }
        if !running && !got {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
