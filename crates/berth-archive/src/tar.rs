//! A streaming tar reader and a deterministic tar writer.
//!
//! Our own implementation rather than the `tar` crate so that limits (extended headers are capped
//! at 1 MiB, as in Go's `archive/tar`), interpretation (header-only entry types carry no data,
//! as in Go, so we parse layers exactly as Docker does) and error reporting (entry path and
//! header offset) are under our control.
//!
//! Reading understands ustar, PAX (path, linkpath, size, uid, gid, mtime, `SCHILY.xattr.*`,
//! GNU sparse 0.1 and 1.0), GNU (long names `L`/`K`, base-256 numbers, old sparse `S`), v7.
//! Writing produces ustar, plus a PAX header only when a field does not fit.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use crate::error::{Error, Result, lossy};

pub const BLOCK: usize = 512;
/// Largest PAX header or GNU long name we accept (Go's limit).
pub const MAX_SPECIAL: u64 = 1 << 20;
/// Most sparse segments we accept for one entry.
const MAX_SPARSE_SEGMENTS: usize = 1 << 20;

/// The type of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A hard link to an earlier entry of the archive (`link` names it).
    Hardlink,
    Char,
    Block,
    Fifo,
}

impl EntryKind {
    /// Whether the entry carries data in the archive (only regular files do; Go's rule).
    pub fn has_data(self) -> bool {
        self == EntryKind::File
    }

    fn flag(self) -> u8 {
        match self {
            EntryKind::File => b'0',
            EntryKind::Hardlink => b'1',
            EntryKind::Symlink => b'2',
            EntryKind::Char => b'3',
            EntryKind::Block => b'4',
            EntryKind::Dir => b'5',
            EntryKind::Fifo => b'6',
        }
    }
}

/// Metadata of one archive entry, as read or to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as stored (after PAX/GNU long-name resolution); see [`normalize_path`].
    pub path: Vec<u8>,
    /// Symlink target, or the archive path a hard link refers to; empty otherwise.
    pub link: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits plus setuid/setgid/sticky (`0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Logical size of a regular file (for sparse files, the full size); 0 for other kinds.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Sub-second part of `mtime` (only from PAX; written only when a PAX header is needed).
    pub mtime_nsec: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extended attributes (`SCHILY.xattr.*`), sorted by name.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// For sparse files read from an archive: the data segments `(offset, length)`.
    pub sparse: Option<Vec<(u64, u64)>>,
    /// Offset of this entry's first header block (including extension headers) in the stream.
    pub offset: u64,
}

impl Header {
    pub fn new(path: impl Into<Vec<u8>>, kind: EntryKind) -> Header {
        Header {
            path: path.into(),
            link: Vec::new(),
            kind,
            mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
            dev_major: 0,
            dev_minor: 0,
            xattrs: BTreeMap::new(),
            sparse: None,
            offset: 0,
        }
    }

    /// The path for error messages.
    pub fn display_path(&self) -> String {
        lossy(&self.path)
    }
}

// ---------------------------------------------------------------------------------------------
// Path normalization

/// Why a path was rejected by [`normalize_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// `..` would climb above the root.
    Escapes,
    /// A NUL byte in the name.
    Nul,
    /// A component longer than 255 bytes (Linux `NAME_MAX`).
    ComponentTooLong,
    /// Longer than `PATH_MAX`.
    TooLong,
}

impl PathProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            PathProblem::Escapes => "'..' leads outside the root",
            PathProblem::Nul => "NUL byte in name",
            PathProblem::ComponentTooLong => "a path component is longer than 255 bytes",
            PathProblem::TooLong => "path is longer than 4096 bytes",
        }
    }
}

/// Normalizes an archive path the way Docker does (`filepath.Clean` of an absolute path):
/// leading `/` and `./` are dropped, empty and `.` components are removed, `..` pops a
/// component and is an error if it would climb above the root. The result has no leading or
/// trailing slash; an empty result means the root itself.
///
/// This is lexical: it does not know about symlinks. The applier resolves the result inside the
/// target with the kernel (`openat2` `RESOLVE_IN_ROOT`).
pub fn normalize_path(p: &[u8]) -> std::result::Result<Vec<u8>, PathProblem> {
    if p.contains(&0) {
        return Err(PathProblem::Nul);
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err(PathProblem::Escapes);
                }
            }
            c if c.len() > 255 => return Err(PathProblem::ComponentTooLong),
            c => parts.push(c),
        }
    }
    let out = parts.join(&b'/');
    if out.len() >= 4096 {
        return Err(PathProblem::TooLong);
    }
    Ok(out)
}

/// Splits a normalized path into (parent, name). The parent is empty for top-level names.
pub fn split_parent(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (p.get(..i).unwrap_or_default(), p.get(i + 1..).unwrap_or_default()),
        None => (&[], p),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A streaming tar reader. Use [`TarReader::next_entry`] in a loop; each entry borrows the
/// reader, and unread data is skipped when the next entry is requested.
///
/// The reader stops at the first zero block (the end-of-archive marker) and does not consume
/// what follows; [`TarReader::into_inner`] gives the rest of the stream back (callers that hash
/// the stream should drain it). A stream that ends exactly between entries without an end
/// marker is accepted, like Go's reader, and reported by [`TarReader::saw_end_marker`].
pub struct TarReader<R> {
    inner: R,
    pos: u64,
    /// Archive data bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    pad: u64,
    done: bool,
    end_marker: bool,
    block: [u8; BLOCK],
    /// Logical state of the current entry for sparse expansion.
    cur: Option<EntryState>,
}

struct EntryState {
    path: Vec<u8>,
    offset: u64,
    sparse: Option<SparseState>,
}

struct SparseState {
    segments: Vec<(u64, u64)>,
    idx: usize,
    /// Logical position within the file.
    lpos: u64,
    size: u64,
}

/// Extended-header state accumulated before the real header.
#[derive(Default)]
struct Pending {
    pax: BTreeMap<Vec<u8>, Vec<u8>>,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    any: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> TarReader<R> {
        TarReader { inner, pos: 0, remaining: 0, pad: 0, done: false, end_marker: false, block: [0; BLOCK], cur: None }
    }

    /// Bytes of the stream consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Whether the end-of-archive marker (a zero block) was read.
    pub fn saw_end_marker(&self) -> bool {
        self.end_marker
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn read_err(&self, e: io::Error) -> Error {
        Error::Read { offset: self.pos, source: e }
    }

    /// Fills `self.block`. Ok(false) on a clean EOF before any byte.
    fn read_block(&mut self) -> Result<bool> {
        let mut n = 0;
        while n < BLOCK {
            let Some(buf) = self.block.get_mut(n..) else { break };
            match self.inner.read(buf) {
                Ok(0) if n == 0 => return Ok(false),
                Ok(0) => return Err(Error::Truncated { offset: self.pos + n as u64, what: "inside a header block" }),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_err(e)),
            }
        }
        self.pos += BLOCK as u64;
        Ok(true)
    }

    /// Skips `n` bytes of the stream.
    fn skip(&mut self, mut n: u64, what: &'static str) -> Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = usize::try_from(n.min(buf.len() as u64)).unwrap_or(buf.len());
            let Some(b) = buf.get_mut(..want) else { break };
            match self.inner.read(b) {
                Ok(0) => return Err(Error::Truncated { offset: self.pos, what }),
                Ok(k) => {
                    n -= k as u64;
                    self.pos += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_err(e)),
            }
        }
        Ok(())
    }

    /// Reads the data of an extension header (at most [`MAX_SPECIAL`] bytes) and its padding.
    fn read_special(&mut self, size: u64, offset: u64) -> Result<Vec<u8>> {
        if size > MAX_SPECIAL {
            return Err(Error::Malformed {
                offset,
                reason: format!("extended header of {size} bytes exceeds the {MAX_SPECIAL}-byte limit"),
            });
        }
        let len = usize::try_from(size).unwrap_or(0);
        let mut v = vec![0u8; len];
        let mut n = 0;
        while n < len {
            let Some(b) = v.get_mut(n..) else { break };
            match self.inner.read(b) {
                Ok(0) => return Err(Error::Truncated { offset: self.pos, what: "inside an extended header" }),
                Ok(k) => {
                    n += k;
                    self.pos += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_err(e)),
            }
        }
        self.skip(padding(size), "inside padding")?;
        Ok(v)
    }

    /// Advances to the next entry. Returns `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, R>>> {
        if self.done {
            return Ok(None);
        }
        let r = self.next_header();
        if r.is_err() {
            self.done = true;
        }
        match r? {
            None => {
                self.done = true;
                Ok(None)
            }
            Some(h) => Ok(Some(Entry { header: h, tar: self })),
        }
    }

    fn next_header(&mut self) -> Result<Option<Header>> {
        // Skip the rest of the previous entry.
        let rest = self.remaining + self.pad;
        if rest > 0 {
            let path = self.cur.as_ref().map(|c| c.path.clone()).unwrap_or_default();
            let offset = self.cur.as_ref().map(|c| c.offset).unwrap_or(0);
            self.skip(rest, "inside entry data").map_err(|e| match e {
                Error::Truncated { .. } => Error::Apply {
                    path: lossy(&path),
                    offset,
                    op: "read data",
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "archive is truncated inside this entry's data",
                    ),
                },
                e => e,
            })?;
            self.remaining = 0;
            self.pad = 0;
        }
        self.cur = None;
        let mut pending = Pending::default();
        let mut first_offset = None;
        loop {
            let offset = self.pos;
            if !self.read_block()? {
                if pending.any {
                    return Err(Error::Truncated { offset, what: "after an extended header" });
                }
                return Ok(None);
            }
            if self.block.iter().all(|&b| b == 0) {
                if pending.any {
                    return Err(Error::Malformed { offset, reason: "extended header not followed by an entry".into() });
                }
                self.end_marker = true;
                return Ok(None);
            }
            let first = *first_offset.get_or_insert(offset);
            let raw = RawHeader::parse(&self.block, offset)?;
            match raw.flag {
                b'x' | b'g' => {
                    let data = self.read_special(raw.size, offset)?;
                    if raw.flag == b'x' {
                        parse_pax(&data, offset, &mut pending)?;
                        pending.any = true;
                    }
                    // Global headers are validated and ignored, as Docker does.
                    else {
                        parse_pax(&data, offset, &mut Pending::default())?;
                    }
                }
                b'L' | b'K' => {
                    let mut data = self.read_special(raw.size, offset)?;
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    if raw.flag == b'L' {
                        pending.long_name = Some(data);
                    } else {
                        pending.long_link = Some(data);
                    }
                    pending.any = true;
                }
                b'V' => {
                    // GNU volume label: not a file.
                    self.skip(raw.size + padding(raw.size), "inside a volume label")?;
                }
                _ => {
                    let h = self.finish_header(raw, pending, first)?;
                    return Ok(Some(h));
                }
            }
        }
    }

    fn finish_header(&mut self, raw: RawHeader, mut p: Pending, offset: u64) -> Result<Header> {
        let mut path = if let Some(v) = p.pax.remove(b"path".as_slice()) {
            v
        } else if let Some(v) = p.long_name.take() {
            v
        } else {
            raw.name.clone()
        };
        let link = if let Some(v) = p.pax.remove(b"linkpath".as_slice()) {
            v
        } else if let Some(v) = p.long_link.take() {
            v
        } else {
            raw.link.clone()
        };
        let num = |key: &[u8], default: u64| -> Result<u64> {
            match p.pax.get(key) {
                Some(v) => parse_decimal(v).ok_or_else(|| Error::Malformed {
                    offset,
                    reason: format!("PAX {} is not a number: {:?}", lossy(key), lossy(v)),
                }),
                None => Ok(default),
            }
        };
        let uid = num(b"uid", raw.uid)?;
        let gid = num(b"gid", raw.gid)?;
        let mut data_size = num(b"size", raw.size)?;
        let (mtime, mtime_nsec) = match p.pax.get(b"mtime".as_slice()) {
            Some(v) => parse_pax_time(v)
                .ok_or_else(|| Error::Malformed { offset, reason: format!("PAX mtime is invalid: {:?}", lossy(v)) })?,
            None => (raw.mtime, 0),
        };
        let unsupported = |what: String, path: &[u8]| Error::Unsupported { path: lossy(path), offset, what };
        let kind = match raw.flag {
            b'0' | b'7' | b'S' => EntryKind::File,
            0 if path.last() == Some(&b'/') => EntryKind::Dir,
            0 => EntryKind::File,
            b'1' => EntryKind::Hardlink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::Char,
            b'4' => EntryKind::Block,
            b'5' | b'D' => EntryKind::Dir,
            b'6' => EntryKind::Fifo,
            f => return Err(unsupported(format!("entry type {:?}", f as char), &path)),
        };
        let mut size = data_size;
        let mut sparse = None;
        if raw.flag == b'S' {
            let Some(gnu) = raw.gnu_sparse.as_ref() else {
                return Err(unsupported("GNU sparse entry without a GNU header".into(), &path));
            };
            let mut segs: Vec<(u64, u64)> = gnu.segments.clone();
            let mut extended = gnu.extended;
            while extended {
                let at = self.pos;
                if !self.read_block()? {
                    return Err(Error::Truncated { offset: at, what: "in sparse extension headers" });
                }
                let (more, ext) = parse_sparse_ext(&self.block, at)?;
                segs.extend(more);
                if segs.len() > MAX_SPARSE_SEGMENTS {
                    return Err(unsupported("too many sparse segments".into(), &path));
                }
                extended = ext;
            }
            size = gnu.real_size;
            sparse = Some(segs);
        } else if let Some(major) = p.pax.get(b"GNU.sparse.major".as_slice()).cloned() {
            let minor = p.pax.get(b"GNU.sparse.minor".as_slice()).cloned().unwrap_or_default();
            if let Some(n) = p.pax.remove(b"GNU.sparse.name".as_slice()) {
                path = n;
            }
            let real = p
                .pax
                .get(b"GNU.sparse.realsize".as_slice())
                .or_else(|| p.pax.get(b"GNU.sparse.size".as_slice()))
                .and_then(|v| parse_decimal(v))
                .ok_or_else(|| unsupported("PAX sparse entry without a valid real size".into(), &path))?;
            match (major.as_slice(), minor.as_slice()) {
                (b"1", b"0") => {
                    // The map is at the start of the data, as decimal lines, padded to a block.
                    let (segs, used) = self.read_sparse_map_1_0(data_size, &path, offset)?;
                    data_size -= used;
                    sparse = Some(segs);
                }
                (b"0", b"1") => {
                    let map = p.pax.get(b"GNU.sparse.map".as_slice()).cloned().unwrap_or_default();
                    sparse = Some(
                        parse_sparse_0_1(&map)
                            .ok_or_else(|| Error::Malformed { offset, reason: "invalid GNU.sparse.map".into() })?,
                    );
                }
                _ => return Err(unsupported(format!("GNU sparse format {}.{}", lossy(&major), lossy(&minor)), &path)),
            }
            size = real;
        } else if p.pax.contains_key(b"GNU.sparse.offset".as_slice()) {
            return Err(unsupported("GNU sparse format 0.0".into(), &path));
        }
        if let Some(segs) = sparse.as_ref() {
            validate_sparse(segs, data_size, size).map_err(|reason| Error::Malformed { offset, reason })?;
        }
        if !kind.has_data() {
            // Go's rule: header-only types have no data, whatever the size field says. A GNU
            // dumpdir ('D') does carry data (a name list), which we skip.
            if raw.flag != b'D' {
                data_size = 0;
            }
            size = 0;
        }
        self.remaining = data_size;
        self.pad = padding(data_size);
        if raw.flag == b'D' {
            // The dumpdir data is not file content: skip it now.
            self.skip(data_size + padding(data_size), "inside a GNU dumpdir")?;
            self.remaining = 0;
            self.pad = 0;
        }
        let h = Header {
            path,
            link: if matches!(kind, EntryKind::Hardlink | EntryKind::Symlink) { link } else { Vec::new() },
            kind,
            mode: raw.mode & 0o7777,
            uid,
            gid,
            size,
            mtime,
            mtime_nsec,
            dev_major: raw.dev_major,
            dev_minor: raw.dev_minor,
            xattrs: std::mem::take(&mut p.xattrs),
            sparse: sparse.clone(),
            offset,
        };
        self.cur = Some(EntryState {
            path: h.path.clone(),
            offset,
            sparse: sparse.map(|segments| SparseState { segments, idx: 0, lpos: 0, size }),
        });
        Ok(h)
    }

    fn read_sparse_map_1_0(&mut self, data_size: u64, path: &[u8], offset: u64) -> Result<(Vec<(u64, u64)>, u64)> {
        // Read block by block until we have 2n+1 numbers.
        let mut text: Vec<u8> = Vec::new();
        let mut used = 0u64;
        let mut nums: Vec<u64> = Vec::new();
        let mut want: Option<usize> = None;
        loop {
            if used >= data_size || used >= MAX_SPECIAL {
                return Err(Error::Malformed {
                    offset,
                    reason: format!("sparse map of {:?} is too long", lossy(path)),
                });
            }
            let at = self.pos;
            if !self.read_block()? {
                return Err(Error::Truncated { offset: at, what: "in a sparse map" });
            }
            used += BLOCK as u64;
            text.extend_from_slice(&self.block);
            // Parse complete lines.
            while let Some(nl) = text.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = text.drain(..=nl).collect();
                let v = parse_decimal(line.get(..nl).unwrap_or_default())
                    .ok_or_else(|| Error::Malformed { offset, reason: "invalid number in sparse map".into() })?;
                nums.push(v);
                if want.is_none() {
                    let n = usize::try_from(v).unwrap_or(usize::MAX);
                    if n > MAX_SPARSE_SEGMENTS {
                        return Err(Error::Malformed { offset, reason: "too many sparse segments".into() });
                    }
                    want = Some(1 + 2 * n);
                }
                if Some(nums.len()) == want {
                    let segs = nums
                        .get(1..)
                        .unwrap_or_default()
                        .chunks_exact(2)
                        .filter_map(|c| match c {
                            [a, b] => Some((*a, *b)),
                            _ => None,
                        })
                        .collect();
                    return Ok((segs, used));
                }
            }
        }
    }

    /// Reads raw archive data of the current entry.
    fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        let Some(b) = buf.get_mut(..want) else { return Ok(0) };
        let n = loop {
            match self.inner.read(b) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r?,
            }
        };
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive is truncated inside this entry's data"));
        }
        self.remaining -= n as u64;
        self.pos += n as u64;
        Ok(n)
    }

    /// Reads logical content (sparse holes expanded as zeros).
    fn read_logical(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A loop rather than recursion: a hostile map may hold many empty segments.
        loop {
            let Some(st) = self.cur.as_mut().and_then(|c| c.sparse.as_mut()) else {
                return self.read_data(buf);
            };
            if st.lpos >= st.size || buf.is_empty() {
                return Ok(0);
            }
            let seg = st.segments.get(st.idx).copied();
            match seg {
                Some((off, len)) if st.lpos >= off => {
                    let in_seg = off.saturating_add(len).saturating_sub(st.lpos);
                    if in_seg == 0 {
                        st.idx += 1;
                        continue;
                    }
                    let want = usize::try_from(in_seg.min(buf.len() as u64)).unwrap_or(buf.len());
                    let Some(b) = buf.get_mut(..want) else { return Ok(0) };
                    let n = self.read_data(b)?;
                    if let Some(st) = self.cur.as_mut().and_then(|c| c.sparse.as_mut()) {
                        st.lpos += n as u64;
                    }
                    return Ok(n);
                }
                _ => {
                    // In a hole: zeros up to the next segment or the end.
                    let end = seg.map(|(off, _)| off).unwrap_or(st.size);
                    let gap = end.saturating_sub(st.lpos);
                    let want = usize::try_from(gap.min(buf.len() as u64)).unwrap_or(buf.len());
                    let Some(b) = buf.get_mut(..want) else { return Ok(0) };
                    b.fill(0);
                    st.lpos += want as u64;
                    return Ok(want);
                }
            }
        }
    }
}

fn validate_sparse(segs: &[(u64, u64)], data_size: u64, real: u64) -> std::result::Result<(), String> {
    let mut end = 0u64;
    let mut total = 0u64;
    for &(off, len) in segs {
        if off < end {
            return Err("sparse segments overlap or are out of order".into());
        }
        end = off.checked_add(len).ok_or("sparse segment overflows")?;
        total = total.checked_add(len).ok_or("sparse segment overflows")?;
    }
    if end > real {
        return Err("sparse segment beyond the file size".into());
    }
    if total != data_size {
        return Err(format!("sparse segments hold {total} bytes but the entry has {data_size}"));
    }
    Ok(())
}

/// One archive entry: its header, and its content through `Read` (for sparse files the full
/// logical content, holes as zeros). Content not read is skipped by the next
/// [`TarReader::next_entry`].
pub struct Entry<'a, R> {
    pub header: Header,
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Entry<'_, R> {
    /// Position in the stream (for error messages).
    pub fn position(&self) -> u64 {
        self.tar.pos
    }

    /// For a sparse entry whose logical position is in a hole: moves past the hole without
    /// producing its zeros and returns its length; 0 anywhere else. Lets a writer seek over
    /// holes, so a tiny archive describing a huge sparse file costs no time.
    pub fn skip_hole(&mut self) -> u64 {
        let Some(st) = self.tar.cur.as_mut().and_then(|c| c.sparse.as_mut()) else { return 0 };
        while let Some(&(off, len)) = st.segments.get(st.idx) {
            if st.lpos >= off && off.saturating_add(len) <= st.lpos {
                st.idx += 1; // exhausted (or empty) segment
            } else {
                break;
            }
        }
        let end = match st.segments.get(st.idx) {
            Some(&(off, _)) if st.lpos >= off => return 0, // inside a data segment
            Some(&(off, _)) => off,
            None => st.size,
        };
        let gap = end.saturating_sub(st.lpos);
        st.lpos += gap;
        gap
    }

    /// Reads like [`Read::read`] until `buf` is full, the entry ends, or (for sparse entries)
    /// a hole begins; see [`Entry::skip_hole`].
    pub fn read_until_hole(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.at_hole() {
                break;
            }
            let Some(b) = buf.get_mut(n..) else { break };
            match self.read(b) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn at_hole(&self) -> bool {
        let Some(st) = self.tar.cur.as_ref().and_then(|c| c.sparse.as_ref()) else { return false };
        if st.lpos >= st.size {
            return false;
        }
        let mut idx = st.idx;
        while let Some(&(off, len)) = st.segments.get(idx) {
            if st.lpos >= off && off.saturating_add(len) <= st.lpos {
                idx += 1;
                continue;
            }
            return st.lpos < off;
        }
        true
    }
}

impl<R: Read> Read for Entry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tar.read_logical(buf)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

struct GnuSparse {
    segments: Vec<(u64, u64)>,
    extended: bool,
    real_size: u64,
}

struct RawHeader {
    name: Vec<u8>,
    link: Vec<u8>,
    flag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    dev_major: u32,
    dev_minor: u32,
    gnu_sparse: Option<GnuSparse>,
}

fn field(b: &[u8; BLOCK], start: usize, len: usize) -> &[u8] {
    b.get(start..start + len).unwrap_or_default()
}

fn cstr(f: &[u8]) -> &[u8] {
    match f.iter().position(|&c| c == 0) {
        Some(i) => f.get(..i).unwrap_or_default(),
        None => f,
    }
}

/// Parses a numeric header field: octal (space/NUL padded) or GNU base-256.
fn parse_number(f: &[u8]) -> Option<i128> {
    match f.first() {
        Some(&b) if b & 0x80 != 0 => {
            let neg = b & 0x40 != 0;
            let mut v: i128 = i128::from(b & 0x3f);
            if neg {
                v = i128::from(b) - 256; // sign-extended first byte
            }
            for &c in f.get(1..).unwrap_or_default() {
                v = v.checked_mul(256)?.checked_add(i128::from(c))?;
                if v.unsigned_abs() > u128::from(u64::MAX) {
                    return None;
                }
            }
            Some(v)
        }
        _ => {
            let t: &[u8] = cstr(f);
            let t = t.iter().skip_while(|&&c| c == b' ').copied().collect::<Vec<u8>>();
            let t: Vec<u8> = t.into_iter().take_while(|&c| c != b' ' && c != 0).collect();
            let mut v: i128 = 0;
            for c in t {
                if !(b'0'..=b'7').contains(&c) {
                    return None;
                }
                v = v.checked_mul(8)?.checked_add(i128::from(c - b'0'))?;
            }
            Some(v)
        }
    }
}

impl RawHeader {
    fn parse(b: &[u8; BLOCK], offset: u64) -> Result<RawHeader> {
        let bad = |reason: &str| Error::Malformed { offset, reason: reason.to_string() };
        // Checksum: sum of all bytes with the checksum field taken as spaces. Some old tars
        // summed signed bytes; accept either.
        let want = parse_number(field(b, 148, 8)).ok_or_else(|| bad("invalid checksum field"))?;
        let (mut us, mut ss) = (0i128, 0i128);
        for (i, &c) in b.iter().enumerate() {
            let c = if (148..156).contains(&i) { b' ' } else { c };
            us += i128::from(c);
            ss += i128::from(c as i8);
        }
        if want != us && want != ss {
            return Err(bad("header checksum mismatch (not a tar archive, or corrupt)"));
        }
        let magic = field(b, 257, 8);
        let ustar = magic == b"ustar\x0000";
        let gnu = magic == b"ustar  \x00";
        let mut name = cstr(field(b, 0, 100)).to_vec();
        if ustar {
            let prefix = cstr(field(b, 345, 155));
            if !prefix.is_empty() {
                let mut p = prefix.to_vec();
                p.push(b'/');
                p.extend_from_slice(&name);
                name = p;
            }
        }
        let num = |start: usize, len: usize, what: &str| -> Result<i128> {
            parse_number(field(b, start, len)).ok_or_else(|| bad(&format!("invalid {what} field")))
        };
        let nonneg =
            |v: i128, what: &str| -> Result<u64> { u64::try_from(v).map_err(|_| bad(&format!("negative {what}"))) };
        let flag = field(b, 156, 1).first().copied().unwrap_or(0);
        let size = nonneg(num(124, 12, "size")?, "size")?;
        let mode = u32::try_from(nonneg(num(100, 8, "mode")?, "mode")? & 0o7777_7777).unwrap_or(0);
        let uid = nonneg(num(108, 8, "uid")?, "uid")?;
        let gid = nonneg(num(116, 8, "gid")?, "gid")?;
        let mtime = i64::try_from(num(136, 12, "mtime")?).map_err(|_| bad("mtime out of range"))?;
        let (dev_major, dev_minor) = if ustar || gnu {
            let dev = |start: usize| -> Result<u32> {
                // Some writers leave device fields empty or garbage for non-devices.
                match parse_number(field(b, start, 8)) {
                    Some(v) => u32::try_from(v).map_err(|_| bad("device number out of range")),
                    None if flag == b'3' || flag == b'4' => Err(bad("invalid device number")),
                    None => Ok(0),
                }
            };
            (dev(329)?, dev(337)?)
        } else {
            (0, 0)
        };
        let gnu_sparse = if gnu && flag == b'S' {
            let mut segments = Vec::new();
            for i in 0..4 {
                let s = 386 + i * 24;
                let off = parse_number(field(b, s, 12)).ok_or_else(|| bad("invalid sparse offset"))?;
                let len = parse_number(field(b, s + 12, 12)).ok_or_else(|| bad("invalid sparse length"))?;
                if off == 0 && len == 0 && field(b, s, 1) == [0] {
                    continue;
                }
                segments.push((nonneg(off, "sparse offset")?, nonneg(len, "sparse length")?));
            }
            let extended = field(b, 482, 1) != [0];
            let real_size = nonneg(parse_number(field(b, 483, 12)).ok_or_else(|| bad("invalid sparse size"))?, "size")?;
            Some(GnuSparse { segments, extended, real_size })
        } else {
            None
        };
        Ok(RawHeader {
            name,
            link: cstr(field(b, 157, 100)).to_vec(),
            flag,
            mode,
            uid,
            gid,
            size,
            mtime,
            dev_major,
            dev_minor,
            gnu_sparse,
        })
    }
}

fn parse_sparse_ext(b: &[u8; BLOCK], offset: u64) -> Result<(Vec<(u64, u64)>, bool)> {
    let bad = |reason: &str| Error::Malformed { offset, reason: reason.to_string() };
    let mut segs = Vec::new();
    for i in 0..21 {
        let s = i * 24;
        if field(b, s, 1) == [0] {
            continue;
        }
        let off = parse_number(field(b, s, 12)).and_then(|v| u64::try_from(v).ok());
        let len = parse_number(field(b, s + 12, 12)).and_then(|v| u64::try_from(v).ok());
        match (off, len) {
            (Some(o), Some(l)) => segs.push((o, l)),
            _ => return Err(bad("invalid sparse extension header")),
        }
    }
    Ok((segs, field(b, 504, 1) != [0]))
}

fn parse_sparse_0_1(map: &[u8]) -> Option<Vec<(u64, u64)>> {
    if map.is_empty() {
        return Some(Vec::new());
    }
    let nums: Option<Vec<u64>> = map.split(|&b| b == b',').map(parse_decimal).collect();
    let nums = nums?;
    if nums.len() % 2 != 0 || nums.len() / 2 > MAX_SPARSE_SEGMENTS {
        return None;
    }
    Some(
        nums.chunks_exact(2)
            .filter_map(|c| match c {
                [a, b] => Some((*a, *b)),
                _ => None,
            })
            .collect(),
    )
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut ns: u32 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        ns += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    if neg {
        // -1.5 means 1.5 s before the epoch.
        if ns > 0 { Some((-secs - 1, 1_000_000_000 - ns)) } else { Some((-secs, 0)) }
    } else {
        Some((secs, ns))
    }
}

/// Parses PAX records (`"%d %s=%s\n"`) into `p`.
fn parse_pax(data: &[u8], offset: u64, p: &mut Pending) -> Result<()> {
    let bad = |reason: String| Error::Malformed { offset, reason };
    let mut rest = data;
    while !rest.is_empty() {
        // Trailing NUL padding after the records is tolerated (some writers emit it).
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest.iter().position(|&b| b == b' ').ok_or_else(|| bad("PAX record without length".into()))?;
        let len = parse_decimal(rest.get(..sp).unwrap_or_default())
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| bad("invalid PAX record length".into()))?;
        if len <= sp + 1 || len > rest.len() {
            return Err(bad("PAX record length out of range".into()));
        }
        let rec = rest.get(sp + 1..len).unwrap_or_default();
        rest = rest.get(len..).unwrap_or_default();
        let Some((&b'\n', kv)) = rec.split_last() else {
            return Err(bad("PAX record not terminated by a newline".into()));
        };
        let eq = kv.iter().position(|&b| b == b'=').ok_or_else(|| bad("PAX record without '='".into()))?;
        let key = kv.get(..eq).unwrap_or_default();
        let value = kv.get(eq + 1..).unwrap_or_default();
        if key.is_empty() || key.contains(&0) {
            return Err(bad("invalid PAX key".into()));
        }
        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.".as_slice()) {
            if name.is_empty() {
                return Err(bad("empty xattr name in PAX header".into()));
            }
            p.xattrs.insert(name.to_vec(), value.to_vec());
            continue;
        }
        if (key == b"path" || key == b"linkpath") && value.contains(&0) {
            return Err(bad(format!("NUL byte in PAX {}", lossy(key))));
        }
        if value.is_empty() {
            // An empty value deletes the keyword (POSIX).
            p.pax.remove(key);
        } else {
            p.pax.insert(key.to_vec(), value.to_vec());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing

/// A tar writer producing ustar headers, with a PAX extended header only for what ustar cannot
/// hold (long or non-ASCII names, large ids or sizes, sub-second or out-of-range times,
/// xattrs). uname/gname are always empty. The archive ends with two zero blocks (like Go's
/// writer, no padding to a record size). Output depends only on the headers and data given.
pub struct TarWriter<W: Write> {
    w: W,
    pos: u64,
}

impl<W: Write> TarWriter<W> {
    pub fn new(w: W) -> TarWriter<W> {
        TarWriter { w, pos: 0 }
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b).map_err(Error::Write)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Writes an entry without data (anything but a regular file, or an empty file).
    pub fn append_header(&mut self, h: &Header) -> Result<()> {
        if h.kind == EntryKind::File && h.size != 0 {
            return Err(Error::InvalidEntry {
                path: h.display_path(),
                reason: "regular file with data needs a reader".into(),
            });
        }
        self.write_headers(h)
    }

    /// Writes an entry and exactly `h.size` bytes from `data` (for regular files). A reader that
    /// ends early or has more bytes is an [`Error::SourceChanged`] error (`source` names it).
    pub fn append(&mut self, h: &Header, data: &mut dyn Read, source: &std::path::Path) -> Result<()> {
        self.write_headers(h)?;
        if h.kind != EntryKind::File {
            return Ok(());
        }
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = h.size;
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let Some(b) = buf.get_mut(..want) else { break };
            let n = match data.read(b) {
                Ok(0) => {
                    return Err(Error::SourceChanged {
                        path: source.to_path_buf(),
                        expected: h.size,
                        actual: h.size - left,
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Source { path: source.to_path_buf(), op: "read", source: e }),
            };
            let chunk = b.get(..n).unwrap_or_default().to_vec();
            self.put(&chunk)?;
            left -= n as u64;
        }
        // A file that grew is as inconsistent as one that shrank.
        let mut probe = [0u8; 1];
        loop {
            match data.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(Error::SourceChanged {
                        path: source.to_path_buf(),
                        expected: h.size,
                        actual: h.size + 1,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Source { path: source.to_path_buf(), op: "read", source: e }),
            }
        }
        let pad = padding(h.size) as usize;
        self.put(&[0u8; BLOCK][..pad])?;
        Ok(())
    }

    fn write_headers(&mut self, h: &Header) -> Result<()> {
        let invalid = |reason: &str| Error::InvalidEntry { path: h.display_path(), reason: reason.to_string() };
        if h.path.is_empty() || h.path.contains(&0) || h.link.contains(&0) {
            return Err(invalid("empty name or NUL byte in name"));
        }
        let mut path = h.path.clone();
        if h.kind == EntryKind::Dir && path.last() != Some(&b'/') {
            path.push(b'/');
        }
        let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let (name, prefix) = match split_ustar_name(&path) {
            Some(np) => np,
            None => {
                pax.insert(b"path".to_vec(), path.clone());
                (ascii_truncate(&path, 100), Vec::new())
            }
        };
        let link = if h.link.len() <= 100 && h.link.is_ascii() {
            h.link.clone()
        } else {
            pax.insert(b"linkpath".to_vec(), h.link.clone());
            ascii_truncate(&h.link, 100)
        };
        const MAX8: u64 = 0o7777777;
        const MAX12: u64 = 0o77777777777;
        let uid = if h.uid > MAX8 {
            pax.insert(b"uid".to_vec(), h.uid.to_string().into_bytes());
            0
        } else {
            h.uid
        };
        let gid = if h.gid > MAX8 {
            pax.insert(b"gid".to_vec(), h.gid.to_string().into_bytes());
            0
        } else {
            h.gid
        };
        let size = if h.kind == EntryKind::File { h.size } else { 0 };
        let hsize = if size > MAX12 {
            pax.insert(b"size".to_vec(), size.to_string().into_bytes());
            0
        } else {
            size
        };
        let mtime = if h.mtime < 0 || h.mtime as u64 > MAX12 || h.mtime_nsec != 0 {
            pax.insert(b"mtime".to_vec(), format_pax_time(h.mtime, h.mtime_nsec).into_bytes());
            h.mtime.clamp(0, MAX12 as i64) as u64
        } else {
            h.mtime as u64
        };
        if u64::from(h.dev_major) > MAX8 || u64::from(h.dev_minor) > MAX8 {
            return Err(invalid("device number too large for a tar header"));
        }
        for (k, v) in &h.xattrs {
            if k.is_empty() || k.contains(&0) || k.contains(&b'=') {
                return Err(invalid("invalid xattr name"));
            }
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax.insert(key, v.clone());
        }
        if !pax.is_empty() {
            let data = encode_pax(&pax);
            let (dir, base) = split_parent(path.strip_suffix(b"/").unwrap_or(&path));
            let mut pname = Vec::new();
            if !dir.is_empty() {
                pname.extend_from_slice(dir);
                pname.push(b'/');
            }
            pname.extend_from_slice(b"PaxHeaders.0/");
            pname.extend_from_slice(base);
            let pname = ascii_truncate(&pname, 100);
            let block = ustar_block(&pname, &[], b'x', 0o644, 0, 0, data.len() as u64, mtime, &[], 0, 0);
            self.put(&block)?;
            self.put(&data)?;
            let pad = padding(data.len() as u64) as usize;
            self.put(&[0u8; BLOCK][..pad])?;
        }
        let block = ustar_block(
            &name,
            &prefix,
            h.kind.flag(),
            h.mode & 0o7777,
            uid,
            gid,
            hsize,
            mtime,
            &link,
            h.dev_major,
            h.dev_minor,
        );
        self.put(&block)
    }

    /// Writes the end-of-archive marker and returns the writer (not flushed).
    pub fn finish(mut self) -> Result<W> {
        self.put(&[0u8; 2 * BLOCK])?;
        Ok(self.w)
    }
}

/// Splits a path into ustar (name, prefix) if it fits, as Go's writer does.
fn split_ustar_name(p: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    if !p.is_ascii() {
        return None;
    }
    if p.len() <= 100 {
        return Some((p.to_vec(), Vec::new()));
    }
    // The prefix is at most 155 bytes and the name at most 100, split at a slash.
    let limit = p.len().min(156);
    let i = p.get(..limit)?.iter().rposition(|&b| b == b'/')?;
    let (prefix, name) = (p.get(..i)?, p.get(i + 1..)?);
    if name.is_empty() || name.len() > 100 || prefix.is_empty() {
        return None;
    }
    Some((name.to_vec(), prefix.to_vec()))
}

fn ascii_truncate(p: &[u8], n: usize) -> Vec<u8> {
    p.iter().map(|&b| if b.is_ascii() { b } else { b'_' }).take(n).collect()
}

fn format_pax_time(s: i64, ns: u32) -> String {
    if ns == 0 {
        return s.to_string();
    }
    if s < 0 {
        // (s, ns) = s + ns/1e9, e.g. (-2, 5e8) = -1.5
        let whole = -(s + 1);
        let frac = 1_000_000_000 - ns;
        return format!("-{whole}.{}", format!("{frac:09}").trim_end_matches('0'));
    }
    format!("{s}.{}", format!("{ns:09}").trim_end_matches('0'))
}

fn encode_pax(records: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        // Length includes its own digits.
        let body = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

fn put_octal(b: &mut [u8; BLOCK], start: usize, len: usize, v: u64) {
    // len-1 digits and a NUL terminator.
    let s = format!("{:0width$o}", v, width = len - 1);
    if let Some(dst) = b.get_mut(start..start + len - 1) {
        dst.copy_from_slice(s.as_bytes().get(s.len().saturating_sub(len - 1)..).unwrap_or_default());
    }
}

fn put_bytes(b: &mut [u8; BLOCK], start: usize, v: &[u8]) {
    if let Some(dst) = b.get_mut(start..start + v.len()) {
        dst.copy_from_slice(v);
    }
}

#[allow(clippy::too_many_arguments)]
fn ustar_block(
    name: &[u8],
    prefix: &[u8],
    flag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    link: &[u8],
    major: u32,
    minor: u32,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put_bytes(&mut b, 0, name.get(..name.len().min(100)).unwrap_or_default());
    put_octal(&mut b, 100, 8, u64::from(mode));
    put_octal(&mut b, 108, 8, uid);
    put_octal(&mut b, 116, 8, gid);
    put_octal(&mut b, 124, 12, size);
    put_octal(&mut b, 136, 12, mtime);
    put_bytes(&mut b, 148, b"        ");
    put_bytes(&mut b, 156, &[flag]);
    put_bytes(&mut b, 157, link.get(..link.len().min(100)).unwrap_or_default());
    put_bytes(&mut b, 257, b"ustar\x0000");
    put_octal(&mut b, 329, 8, u64::from(major));
    put_octal(&mut b, 337, 8, u64::from(minor));
    put_bytes(&mut b, 345, prefix.get(..prefix.len().min(155)).unwrap_or_default());
    let sum: u64 = b.iter().map(|&c| u64::from(c)).sum();
    put_octal(&mut b, 148, 7, sum);
    // Checksum field: six digits, NUL, space (traditional).
    put_bytes(&mut b, 155, b" ");
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn write(entries: &[(Header, Vec<u8>)]) -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        for (h, d) in entries {
            w.append(h, &mut d.as_slice(), std::path::Path::new("mem")).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(data: &[u8]) -> Result<Vec<(Header, Vec<u8>)>> {
        let mut r = TarReader::new(data);
        let mut out = Vec::new();
        while let Some(mut e) = r.next_entry()? {
            let mut d = Vec::new();
            e.read_to_end(&mut d).map_err(|e| Error::Read { offset: 0, source: e })?;
            out.push((e.header.clone(), d));
        }
        Ok(out)
    }

    fn file(path: &str, data: &[u8]) -> (Header, Vec<u8>) {
        let mut h = Header::new(path, EntryKind::File);
        h.size = data.len() as u64;
        h.mtime = 1_700_000_000;
        (h, data.to_vec())
    }

    #[test]
    fn normalize() {
        let ok = |s: &str| normalize_path(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(ok("/a//b/./c/"), Ok("a/b/c".into()));
        assert_eq!(ok("./"), Ok("".into()));
        assert_eq!(ok("a/../b"), Ok("b".into()));
        assert_eq!(ok("../a"), Err(PathProblem::Escapes));
        assert_eq!(ok("a/../../b"), Err(PathProblem::Escapes));
        assert_eq!(ok("/../etc"), Err(PathProblem::Escapes));
        assert_eq!(normalize_path(&[b'a', 0, b'b']), Err(PathProblem::Nul));
        assert_eq!(normalize_path(&[b'x'; 256]), Err(PathProblem::ComponentTooLong));
        assert_eq!(split_parent(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_parent(b"c"), (&b""[..], &b"c"[..]));
    }

    #[test]
    fn roundtrip_ours() {
        let long = "d/".repeat(80) + "file-with-a-long-name";
        let mut entries = vec![file("a.txt", b"hello"), file(&long, &[7u8; 3000]), file("empty", b"")];
        let mut d = Header::new("dir", EntryKind::Dir);
        d.mode = 0o1777;
        d.uid = 3_000_000;
        d.gid = 12;
        d.mtime = -5;
        d.xattrs.insert(b"user.k".to_vec(), b"v\0\n".to_vec());
        d.xattrs.insert(b"security.capability".to_vec(), vec![1, 0, 0, 2, 0, 0xff]);
        entries.push((d, vec![]));
        let mut s = Header::new("sym", EntryKind::Symlink);
        s.link = "x/".repeat(70).into_bytes();
        entries.push((s, vec![]));
        let mut l = Header::new("hl", EntryKind::Hardlink);
        l.link = b"a.txt".to_vec();
        entries.push((l, vec![]));
        let mut c = Header::new("null", EntryKind::Char);
        c.dev_major = 1;
        c.dev_minor = 3;
        entries.push((c, vec![]));
        let mut u = file("ünïcode/名前", b"x");
        u.0.mtime_nsec = 500_000_000;
        entries.push(u);
        let tar = write(&entries);
        assert_eq!(tar.len() % 512, 0);
        let back = read_all(&tar).unwrap();
        assert_eq!(back.len(), entries.len());
        for ((mut want, wd), (got, gd)) in entries.into_iter().zip(back) {
            if want.kind == EntryKind::Dir {
                want.path.push(b'/');
            }
            want.offset = got.offset;
            assert_eq!(got, want);
            assert_eq!(gd, wd);
        }
        // Deterministic.
        let again = write(
            &read_all(&tar)
                .unwrap()
                .into_iter()
                .map(|(mut h, d)| {
                    if h.kind == EntryKind::Dir {
                        h.path.pop();
                    }
                    (h, d)
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(again, tar);
    }

    #[test]
    fn gnu_tar_lists_ours() {
        let dir = tempfile::tempdir().unwrap();
        let long = "d/".repeat(80) + "f";
        let tar = write(&[file("a", b"1"), file(&long, b"22")]);
        let p = dir.path().join("t.tar");
        std::fs::write(&p, &tar).unwrap();
        let out = Command::new("tar").arg("-tvf").arg(&p).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let s = String::from_utf8(out.stdout).unwrap();
        assert!(s.contains(&long), "{s}");
    }

    fn gnu_tar(args: &[&str], dir: &std::path::Path) -> Vec<u8> {
        let out = Command::new("tar").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    #[test]
    fn read_gnu_tar_formats() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let long = "n".repeat(150);
        std::fs::create_dir_all(root.join("src").join(&long)).unwrap();
        std::fs::write(root.join("src").join(&long).join("f"), b"data").unwrap();
        std::os::unix::fs::symlink("l".repeat(120), root.join("src/ln")).unwrap();
        // A sparse file: 1 MiB hole, 5 bytes, hole to 3 MiB.
        {
            use std::io::{Seek, SeekFrom};
            let mut f = std::fs::File::create(root.join("src/sparse")).unwrap();
            f.seek(SeekFrom::Start(1 << 20)).unwrap();
            f.write_all(b"hello").unwrap();
            f.set_len(3 << 20).unwrap();
        }
        for fmt in ["gnu", "pax", "posix", "ustar", "v7"] {
            let mut args = vec!["-c", "-f", "-", "--sort=name", "-C", "src"];
            let fmtarg = format!("--format={fmt}");
            args.push(&fmtarg);
            if fmt != "ustar" && fmt != "v7" {
                args.push("-S");
            }
            args.push(".");
            let out = Command::new("tar").args(&args).current_dir(root).output().unwrap();
            if !out.status.success() {
                // ustar/v7 cannot hold the long names: GNU tar refuses; that is fine.
                assert!(fmt == "ustar" || fmt == "v7", "{fmt}: {}", String::from_utf8_lossy(&out.stderr));
                continue;
            }
            let entries = read_all(&out.stdout).unwrap_or_else(|e| panic!("{fmt}: {e}"));
            let by = |p: &str| {
                entries.iter().find(|(h, _)| h.path.ends_with(p.as_bytes())).unwrap_or_else(|| panic!("{fmt}: no {p}"))
            };
            assert_eq!(by(&format!("{long}/f")).1, b"data");
            assert_eq!(by("ln").0.link, "l".repeat(120).into_bytes());
            let (h, d) = by("sparse");
            assert_eq!(h.size, 3 << 20, "{fmt}");
            assert_eq!(d.len(), 3 << 20);
            assert_eq!(&d[1 << 20..(1 << 20) + 5], b"hello");
            assert!(d[..1 << 20].iter().all(|&b| b == 0));
            if fmt != "ustar" && fmt != "v7" {
                assert!(h.sparse.is_some(), "{fmt}: sparse map expected");
            }
        }
        let _ = gnu_tar;
    }

    #[test]
    fn malformed_inputs() {
        let tar = write(&[file("a", &[1u8; 1000]), file("b", b"x")]);
        // Truncated inside data, inside a header, and a bad checksum.
        let r = read_all(&tar[..700]);
        assert!(matches!(r, Err(Error::Read { .. }) | Err(Error::Apply { .. })), "{r:?}");
        assert!(matches!(read_all(&tar[..1536 + 100]), Err(Error::Truncated { .. })));
        let mut bad = tar.clone();
        bad[10] ^= 0x55;
        assert!(matches!(read_all(&bad), Err(Error::Malformed { .. })));
        // Missing end marker, cut at an entry boundary: accepted, and reported.
        let mut r = TarReader::new(&tar[..1536]);
        while r.next_entry().unwrap().is_some() {}
        assert!(!r.saw_end_marker());
        let mut r = TarReader::new(&tar[..]);
        while r.next_entry().unwrap().is_some() {}
        assert!(r.saw_end_marker());
        // A huge PAX header is refused before allocating.
        let mut h = ustar_block(b"PaxHeaders/x", &[], b'x', 0o644, 0, 0, 1 << 40, 0, &[], 0, 0).to_vec();
        h.extend_from_slice(&[0u8; 512]);
        assert!(matches!(read_all(&h), Err(Error::Malformed { .. })));
        // NUL in a PAX path.
        let mut pax = BTreeMap::new();
        pax.insert(b"path".to_vec(), b"a\0b".to_vec());
        let data = encode_pax(&pax);
        let mut t = ustar_block(b"p", &[], b'x', 0o644, 0, 0, data.len() as u64, 0, &[], 0, 0).to_vec();
        t.extend_from_slice(&data);
        t.resize(t.len() + padding(data.len() as u64) as usize, 0);
        t.extend_from_slice(&ustar_block(b"x", &[], b'0', 0o644, 0, 0, 0, 0, &[], 0, 0));
        t.extend_from_slice(&[0u8; 1024]);
        assert!(matches!(read_all(&t), Err(Error::Malformed { .. })), "{:?}", read_all(&t));
    }

    #[test]
    fn sparse_map_with_many_empty_segments() {
        // PAX sparse 0.1 with 200,000 empty segments then 3 bytes at offset 10.
        let mut map = "0,0,".repeat(200_000);
        map.push_str("10,3");
        let mut pax = BTreeMap::new();
        pax.insert(b"GNU.sparse.major".to_vec(), b"0".to_vec());
        pax.insert(b"GNU.sparse.minor".to_vec(), b"1".to_vec());
        pax.insert(b"GNU.sparse.map".to_vec(), map.into_bytes());
        pax.insert(b"GNU.sparse.size".to_vec(), b"20".to_vec());
        let data = encode_pax(&pax);
        let mut t = ustar_block(b"p", &[], b'x', 0o644, 0, 0, data.len() as u64, 0, &[], 0, 0).to_vec();
        t.extend_from_slice(&data);
        t.resize(t.len() + padding(data.len() as u64) as usize, 0);
        t.extend_from_slice(&ustar_block(b"s", &[], b'0', 0o644, 0, 0, 3, 0, &[], 0, 0));
        t.extend_from_slice(b"abc");
        t.resize(t.len() + 509, 0);
        t.extend_from_slice(&[0u8; 1024]);
        let e = read_all(&t).unwrap();
        let mut want = vec![0u8; 20];
        want[10..13].copy_from_slice(b"abc");
        assert_eq!(e[0].1, want);
    }

    /// A PAX 0.1 sparse file of `size` bytes holding "abc" at `size / 2`.
    fn sparse_bomb(size: u64) -> Vec<u8> {
        let mut pax = BTreeMap::new();
        pax.insert(b"GNU.sparse.major".to_vec(), b"0".to_vec());
        pax.insert(b"GNU.sparse.minor".to_vec(), b"1".to_vec());
        pax.insert(b"GNU.sparse.map".to_vec(), format!("{},3", size / 2).into_bytes());
        pax.insert(b"GNU.sparse.size".to_vec(), size.to_string().into_bytes());
        let data = encode_pax(&pax);
        let mut t = ustar_block(b"p", &[], b'x', 0o644, 0, 0, data.len() as u64, 0, &[], 0, 0).to_vec();
        t.extend_from_slice(&data);
        t.resize(t.len() + padding(data.len() as u64) as usize, 0);
        t.extend_from_slice(&ustar_block(b"bomb", &[], b'0', 0o644, 0, 0, 3, 0, &[], 0, 0));
        t.extend_from_slice(b"abc");
        t.resize(t.len() + 509, 0);
        t.extend_from_slice(&[0u8; 1024]);
        t
    }

    fn no_limits() -> crate::ApplyOptions {
        crate::ApplyOptions { max_expanded: None, max_sparse_ratio: None, ..crate::ApplyOptions::default() }
    }

    #[test]
    fn sparse_holes_are_seeked_over_not_written() {
        use std::io::{Read, Seek, SeekFrom};
        use std::os::unix::fs::MetadataExt;
        let size = 16u64 << 30;
        let dir = tempfile::tempdir().unwrap();
        let rep = crate::apply_tar(dir.path(), std::io::Cursor::new(sparse_bomb(size)), &no_limits()).unwrap();
        let p = dir.path().join("bomb");
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(md.len(), size, "apparent size kept");
        assert!(md.blocks() * 512 < 1 << 20, "holes were written: {} blocks", md.blocks());
        assert_eq!(rep.bytes, size, "the layer's size is its apparent size, as Docker reports");
        let mut f = std::fs::File::open(&p).unwrap();
        f.seek(SeekFrom::Start(size / 2 - 1)).unwrap();
        let mut b = [9u8; 5];
        f.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"\0abc\0");
    }

    #[test]
    fn expansion_limits_refuse_bombs_and_name_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::ApplyOptions { max_expanded: Some(1 << 30), ..no_limits() };
        let e = crate::apply_tar(dir.path(), std::io::Cursor::new(sparse_bomb(2 << 30)), &opts).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("1073741824") && e.to_string().contains("BERTH_MAX_LAYER_SIZE"), "{e}");
        assert!(!dir.path().join("bomb").exists(), "refused before writing");
        let opts = crate::ApplyOptions { max_sparse_ratio: Some(1000), ..no_limits() };
        let e = crate::apply_tar(dir.path(), std::io::Cursor::new(sparse_bomb(16 << 30)), &opts).unwrap_err();
        assert!(e.to_string().contains("BERTH_MAX_LAYER_RATIO"), "{e}");
        // Small sparse files are below the ratio floor.
        crate::apply_tar(dir.path(), std::io::Cursor::new(sparse_bomb(100 << 20)), &opts).unwrap();
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(crate::apply::parse_size("64g"), Some(64 << 30));
        assert_eq!(crate::apply::parse_size("64GiB"), Some(64 << 30));
        assert_eq!(crate::apply::parse_size("512M"), Some(512 << 20));
        assert_eq!(crate::apply::parse_size("1000"), Some(1000));
        assert_eq!(crate::apply::parse_size("0"), Some(0));
        assert_eq!(crate::apply::parse_size("x"), None);
        assert_eq!(crate::apply::parse_size("-1"), None);
    }

    #[test]
    fn header_only_types_have_no_data() {
        // A symlink header claiming 512 bytes of data, followed by a real file: Go (and so
        // Docker) ignores the size of header-only types, and so do we.
        let mut t = ustar_block(b"s", &[], b'2', 0o777, 0, 0, 512, 0, b"target", 0, 0).to_vec();
        t.extend_from_slice(&ustar_block(b"f", &[], b'0', 0o644, 0, 0, 0, 0, &[], 0, 0));
        t.extend_from_slice(&[0u8; 1024]);
        let e = read_all(&t).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].0.path, b"f");
    }
}
