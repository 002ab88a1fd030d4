//! `.dockerignore` patterns with Docker's exact semantics
//! (moby/patternmatcher), the ignore-file reader, and a build-context walker
//! that filters like tonistiigi/fsutil: excluded directories are pruned
//! unless an exception could re-include something below them, and the
//! ancestors of a re-included entry are reported before it.
//!
//! The same [`PatternMatcher`] serves `COPY --exclude`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::clean_path;

/// A bad pattern (`filepath.ErrBadPattern`) or an illegal `!`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    #[error("syntax error in pattern")]
    BadPattern { pattern: String },
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regexp(regex::Regex),
    /// Passed the syntax check but its regular expression does not compile;
    /// every match attempt reports `BadPattern` (like Go).
    Bad,
}

/// One cleaned pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    dirs: usize,
    kind: Kind,
}

impl Pattern {
    /// The cleaned pattern text without `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }
    /// Whether this is a `!` exception.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn matches(&self, path: &str) -> Result<bool, PatternError> {
        Ok(match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            Kind::Regexp(re) => re.is_match(path),
            Kind::Bad => {
                return Err(PatternError::BadPattern { pattern: self.cleaned.clone() });
            }
        })
    }

    /// The pattern without a trailing `/**` or `/*` (fsutil).
    fn without_trailing_glob(&self) -> &str {
        let p = self.cleaned.as_str();
        let p = p.strip_suffix("/**").unwrap_or(p);
        p.strip_suffix("/*").unwrap_or(p)
    }
}

/// Per-pattern results for a directory, reused for its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of patterns; the last applicable pattern wins.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// Go's `filepath.Match` syntax check (Unix rules).
fn check_syntax(p: &str) -> bool {
    let c: Vec<char> = p.chars().collect();
    let mut i = 0;
    // getEsc: returns the index after one class character, or None.
    let get_esc = |i: usize| -> Option<usize> {
        let ch = *c.get(i)?;
        if ch == '-' || ch == ']' {
            return None;
        }
        let mut j = i;
        if ch == '\\' {
            j += 1;
            c.get(j)?;
        }
        j += 1;
        // The class must continue after this character.
        c.get(j)?;
        Some(j)
    };
    while i < c.len() {
        match c[i] {
            '[' => {
                i += 1;
                if c.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut nrange = 0;
                loop {
                    if c.get(i) == Some(&']') && nrange > 0 {
                        i += 1;
                        break;
                    }
                    let Some(j) = get_esc(i) else { return false };
                    i = j;
                    if c.get(i) == Some(&'-') {
                        let Some(j) = get_esc(i + 1) else { return false };
                        i = j;
                    }
                    nrange += 1;
                }
            }
            '\\' => {
                if i + 1 >= c.len() {
                    return false;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    true
}

const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "word",
    "xdigit",
];

/// Translates `\X` (as it appears in the Go regular expression built by
/// patternmatcher) to Rust regex syntax with Go's meaning.
fn translate_escape(x: char, in_class: bool) -> Option<String> {
    Some(match x {
        'd' => "0-9".to_string(),
        'D' => "^0-9".to_string(),
        's' => "\\t\\n\\x0C\\r ".to_string(),
        'S' => "^\\t\\n\\x0C\\r ".to_string(),
        'w' => "0-9A-Za-z_".to_string(),
        'W' => "^0-9A-Za-z_".to_string(),
        'a' | 'f' | 't' | 'n' | 'r' | 'v' => format!("\\{x}"),
        'b' | 'B' | 'A' | 'z' if !in_class => format!("(?-u:\\{x})"),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => {
            let s = c.to_string();
            if regex::escape(&s) != s || matches!(c, '-' | '&' | '~') { format!("\\{c}") } else { s }
        }
        _ => return None,
    })
    .map(|s| {
        // Perl classes become bracket classes (or their contents in a class).
        if matches!(x, 'd' | 'D' | 's' | 'S' | 'w' | 'W') {
            if in_class {
                if s.starts_with('^') {
                    // A negated Perl class inside a class: use the Rust
                    // nested-class form.
                    format!("[{s}]")
                } else {
                    s
                }
            } else {
                format!("[{s}]")
            }
        } else {
            s
        }
    })
}

fn compile(p: &str) -> Kind {
    let chars: Vec<char> = p.chars().collect();
    let mut re = String::from("^");
    let mut kind = 0u8; // 0 exact, 1 prefix, 2 suffix, 3 regexp
    let mut in_class = false;
    let mut class_items = 0;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        let at_start = first;
        first = false;
        i += 1;
        if in_class {
            match ch {
                ']' if class_items > 0 => {
                    re.push(']');
                    in_class = false;
                }
                '\\' => {
                    let Some(&x) = chars.get(i) else { return Kind::Bad };
                    i += 1;
                    match translate_escape(x, true) {
                        Some(s) => re.push_str(&s),
                        None => return Kind::Bad,
                    }
                    class_items += 1;
                }
                '[' => {
                    // `[:name:]` is a POSIX class for Go's regexp.
                    let rest: String = chars[i..].iter().collect();
                    let posix = rest.strip_prefix(':').and_then(|r| {
                        let end = r.find(":]")?;
                        let name = &r[..end];
                        POSIX_CLASSES.contains(&name).then(|| name.to_string())
                    });
                    if let Some(name) = posix {
                        re.push_str(&format!("[:{name}:]"));
                        i += name.chars().count() + 3;
                    } else {
                        re.push_str("\\[");
                    }
                    class_items += 1;
                }
                '&' | '~' => {
                    re.push('\\');
                    re.push(ch);
                    class_items += 1;
                }
                '-' if class_items == 0 => {
                    re.push_str("\\-");
                    class_items += 1;
                }
                _ => {
                    re.push(ch);
                    class_items += 1;
                }
            }
            continue;
        }
        match ch {
            '*' => {
                if chars.get(i) == Some(&'*') {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        if kind == 0 {
                            kind = 1;
                        } else {
                            re.push_str(".*");
                            kind = 3;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        kind = 3;
                    }
                    if at_start {
                        kind = 2;
                    }
                } else {
                    re.push_str("[^/]*");
                    kind = 3;
                }
            }
            '?' => {
                re.push_str("[^/]");
                kind = 3;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.get(i) {
                Some(&x) => {
                    i += 1;
                    match translate_escape(x, false) {
                        Some(s) => re.push_str(&s),
                        None => return Kind::Bad,
                    }
                    kind = 3;
                }
                None => return Kind::Bad,
            },
            '[' => {
                re.push('[');
                in_class = true;
                class_items = 0;
                if chars.get(i) == Some(&'^') {
                    re.push('^');
                    i += 1;
                }
                kind = 3;
            }
            ']' => {
                re.push_str("\\]");
                kind = 3;
            }
            '^' => re.push('^'),
            c => {
                let mut b = [0u8; 4];
                re.push_str(&regex::escape(c.encode_utf8(&mut b)));
            }
        }
    }
    match kind {
        0 => Kind::Exact,
        1 => Kind::Prefix,
        2 => Kind::Suffix,
        _ => {
            re.push('$');
            match regex::Regex::new(&re) {
                Ok(r) => Kind::Regexp(r),
                Err(_) => Kind::Bad,
            }
        }
    }
}

fn dir_of(file: &str) -> String {
    match file.rfind('/') {
        Some(i) => clean_path(&file[..i]),
        None => ".".to_string(),
    }
}

impl PatternMatcher {
    /// Builds a matcher (patternmatcher `New`): trims, skips empty patterns,
    /// cleans, handles `!`, and checks syntax.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut pm = PatternMatcher::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean_path(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(PatternError::IllegalExclusion);
                }
                exclusion = true;
                pm.exclusions = true;
                p = rest.to_string();
            }
            if !check_syntax(&p) {
                return Err(PatternError::BadPattern { pattern: p });
            }
            let kind = compile(&p);
            pm.patterns.push(Pattern { dirs: p.split('/').count(), cleaned: p, exclusion, kind });
        }
        Ok(pm)
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }
    /// Whether any pattern is a `!` exception.
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `file` (slash-separated, relative) or any of its ancestor
    /// directories is matched (`MatchesOrParentMatches`).
    pub fn matches(&self, file: &str) -> Result<bool, PatternError> {
        let parent = dir_of(file);
        let dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(file)?;
            if !m && parent != "." {
                for i in 0..dirs.len() {
                    if p.matches(&dirs[..=i].join("/")).unwrap_or(false) {
                        m = true;
                        break;
                    }
                }
            }
            if m {
                matched = !p.exclusion;
            }
        }
        Ok(matched)
    }

    /// The deprecated single-ancestor evaluation (`PatternMatcher.Matches`).
    pub fn matches_legacy(&self, file: &str) -> Result<bool, PatternError> {
        let parent = dir_of(file);
        let dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(file)?;
            if !m && parent != "." && p.dirs <= dirs.len() {
                m = p.matches(&dirs[..p.dirs].join("/")).unwrap_or(false);
            }
            if m {
                matched = !p.exclusion;
            }
        }
        Ok(matched)
    }

    /// Incremental evaluation used while walking top-down
    /// (`MatchesUsingParentResults`). Pass `MatchInfo::default()` when the
    /// parent's results are unknown.
    pub fn matches_with_parent(&self, file: &str, parent: &MatchInfo) -> Result<(bool, MatchInfo), PatternError> {
        let pm = &parent.parent_matched;
        let known = !pm.is_empty() && pm.len() == self.patterns.len();
        let mut info = MatchInfo { parent_matched: vec![false; self.patterns.len()] };
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = known && pm[i];
            if !m {
                if p.exclusion != matched {
                    continue;
                }
                m = p.matches(file)?;
                if !m && !known {
                    let parent = dir_of(file);
                    if parent != "." {
                        let dirs: Vec<&str> = parent.split('/').collect();
                        for j in 0..dirs.len() {
                            if p.matches(&dirs[..=j].join("/")).unwrap_or(false) {
                                m = true;
                                break;
                            }
                        }
                    }
                }
            }
            info.parent_matched[i] = m;
            if m {
                matched = !p.exclusion;
            }
        }
        Ok((matched, info))
    }
}

/// The one-shot deprecated `patternmatcher.Matches(file, patterns)`.
pub fn matches_legacy<S: AsRef<str>>(file: &str, patterns: &[S]) -> Result<bool, PatternError> {
    let pm = PatternMatcher::new(patterns)?;
    let file = clean_path(file);
    if file == "." {
        return Ok(false);
    }
    pm.matches_legacy(&file)
}

/// Reads a `.dockerignore` file into patterns (moby `ignorefile.ReadAll`).
pub fn read_ignore_file(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = if n == 0 { line.strip_prefix('\u{feff}').unwrap_or(line) } else { line };
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut pat = p.to_string();
        if !pat.is_empty() {
            pat = clean_path(&pat);
            if pat.len() > 1 && pat.starts_with('/') {
                pat.remove(0);
            }
        }
        if invert {
            pat.insert(0, '!');
        }
        out.push(pat);
    }
    out
}

/// Where the ignore patterns came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreFile {
    pub path: PathBuf,
    pub patterns: Vec<String>,
}

/// Finds the ignore file for a build: `<Dockerfile name>.dockerignore`
/// next to the Dockerfile wins over `<context>/.dockerignore`. Returns
/// `None` when neither exists.
pub fn load_ignore_file(context: &Path, dockerfile: Option<&Path>) -> std::io::Result<Option<IgnoreFile>> {
    let mut candidates = Vec::new();
    if let Some(df) = dockerfile
        && let Some(name) = df.file_name()
    {
        let mut n = name.to_os_string();
        n.push(".dockerignore");
        candidates.push(df.with_file_name(n));
    }
    candidates.push(context.join(".dockerignore"));
    for c in candidates {
        match fs::read(&c) {
            Ok(b) => {
                return Ok(Some(IgnoreFile { patterns: read_ignore_file(&String::from_utf8_lossy(&b)), path: c }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The kind of a context entry (symlinks are never followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One entry reported by the walker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkEntry {
    /// Slash-separated path relative to the context root.
    pub path: String,
    pub kind: EntryKind,
}

/// What a visitor wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// For a directory: do not descend. For a file: skip the rest of its
    /// directory (like `fs.SkipDir`).
    SkipDir,
}

/// Walk failure.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("invalid {which} patterns: {source}")]
    Pattern {
        which: &'static str,
        #[source]
        source: PatternError,
    },
    #[error("failed to read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
struct Visited {
    path_with_sep: String,
    kind: EntryKind,
    path: String,
    include_info: MatchInfo,
    exclude_info: MatchInfo,
    called: bool,
    skip_fn: bool,
}

/// An include/exclude filter over a stream of walk entries (fsutil
/// `filterFS`). Filters can be stacked: each sees only what the previous
/// one reported.
#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
    only_prefix_includes: bool,
    only_prefix_exclude_exceptions: bool,
    parents: Vec<Visited>,
}

const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

impl Filter {
    /// Builds a filter. Empty lists mean "no filter" for that side.
    pub fn new<S: AsRef<str>>(include: &[S], exclude: &[S]) -> Result<Self, WalkError> {
        let include = if include.is_empty() {
            None
        } else {
            Some(PatternMatcher::new(include).map_err(|source| WalkError::Pattern { which: "include", source })?)
        };
        let exclude = if exclude.is_empty() {
            None
        } else {
            Some(PatternMatcher::new(exclude).map_err(|source| WalkError::Pattern { which: "exclude", source })?)
        };
        let only_prefix_includes = include.as_ref().is_none_or(|m| {
            !m.patterns.iter().any(|p| !p.exclusion && p.without_trailing_glob().contains(PATTERN_CHARS))
        });
        let only_prefix_exclude_exceptions = exclude.as_ref().is_none_or(|m| {
            !m.patterns.iter().any(|p| p.exclusion && p.without_trailing_glob().contains(PATTERN_CHARS))
        });
        Ok(Filter { include, exclude, only_prefix_includes, only_prefix_exclude_exceptions, parents: Vec::new() })
    }

    /// Whether opening `path` directly through the filter succeeds.
    pub fn allows(&self, path: &str) -> Result<bool, PatternError> {
        if let Some(i) = &self.include
            && !i.matches(path)?
        {
            return Ok(false);
        }
        if let Some(e) = &self.exclude
            && e.matches(path)?
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// Processes one entry from the inner walk; reported entries (and any
    /// ancestors not yet reported) go to `next`.
    pub fn visit(
        &mut self,
        path: &str,
        kind: EntryKind,
        read_error: Option<&std::io::Error>,
        next: &mut dyn FnMut(&str, EntryKind) -> Result<Control, WalkError>,
    ) -> Result<Control, WalkError> {
        let is_dir = kind == EntryKind::Dir;
        while let Some(last) = self.parents.last() {
            if path.starts_with(&last.path_with_sep) {
                break;
            }
            self.parents.pop();
        }
        let mut dir = Visited {
            path_with_sep: format!("{path}/"),
            kind,
            path: path.to_string(),
            include_info: MatchInfo::default(),
            exclude_info: MatchInfo::default(),
            called: false,
            skip_fn: false,
        };
        let mut skip = false;
        let pat_err = |which, source| WalkError::Pattern { which, source };
        if let Some(inc) = &self.include {
            let parent = self.parents.last().map(|p| &p.include_info);
            let empty = MatchInfo::default();
            let (m, info) =
                inc.matches_with_parent(path, parent.unwrap_or(&empty)).map_err(|e| pat_err("include", e))?;
            dir.include_info = info;
            if !m {
                if is_dir && self.only_prefix_includes {
                    let dir_slash = format!("{path}/");
                    let keep = inc
                        .patterns
                        .iter()
                        .any(|p| !p.exclusion && format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash));
                    if !keep {
                        return Ok(Control::SkipDir);
                    }
                }
                skip = true;
            }
        }
        if let Some(exc) = &self.exclude {
            let parent = self.parents.last().map(|p| &p.exclude_info);
            let empty = MatchInfo::default();
            let (m, info) =
                exc.matches_with_parent(path, parent.unwrap_or(&empty)).map_err(|e| pat_err("exclude", e))?;
            dir.exclude_info = info;
            if m {
                if is_dir && self.only_prefix_exclude_exceptions {
                    if !exc.exclusions {
                        return Ok(Control::SkipDir);
                    }
                    let dir_slash = format!("{path}/");
                    let keep = exc
                        .patterns
                        .iter()
                        .any(|p| p.exclusion && format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash));
                    if !keep {
                        return Ok(Control::SkipDir);
                    }
                }
                skip = true;
            }
        }
        if let Some(e) = read_error {
            if skip && e.kind() == std::io::ErrorKind::PermissionDenied {
                return Ok(Control::SkipDir);
            }
            return Err(WalkError::Io {
                path: PathBuf::from(path),
                source: std::io::Error::new(e.kind(), e.to_string()),
            });
        }
        if skip {
            if is_dir {
                self.parents.push(dir);
            }
            return Ok(Control::Continue);
        }
        for i in 0..self.parents.len() {
            if self.parents[i].skip_fn {
                return Ok(Control::SkipDir);
            }
            if self.parents[i].called {
                continue;
            }
            self.parents[i].called = true;
            let (p, k) = (self.parents[i].path.clone(), self.parents[i].kind);
            if next(&p, k)? == Control::SkipDir {
                self.parents[i].skip_fn = true;
                return Ok(Control::SkipDir);
            }
        }
        dir.called = true;
        let r = next(path, kind)?;
        if is_dir && r == Control::Continue {
            self.parents.push(dir);
        }
        Ok(r)
    }
}

fn kind_of(ft: fs::FileType) -> EntryKind {
    if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

/// A raw-walk visitor: relative path, kind, and a read error for a
/// directory that could not be listed.
pub type RawVisitor<'a> = dyn FnMut(&str, EntryKind, Option<&std::io::Error>) -> Result<Control, WalkError> + 'a;

/// Walks `root` depth-first in byte order of names, a directory before its
/// contents, without following symlinks, calling `visit` with each
/// relative path. The root itself is not reported.
pub fn walk_raw(root: &Path, visit: &mut RawVisitor<'_>) -> Result<(), WalkError> {
    fn read_sorted(dir: &Path) -> std::io::Result<Vec<(Vec<u8>, EntryKind)>> {
        use std::os::unix::ffi::OsStrExt;
        let mut v = Vec::new();
        for e in fs::read_dir(dir)? {
            let e = e?;
            let ft = e.file_type()?;
            v.push((e.file_name().as_bytes().to_vec(), kind_of(ft)));
        }
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    }
    fn rec(abs: &mut PathBuf, rel: &mut String, visit: &mut RawVisitor<'_>) -> Result<(), WalkError> {
        let entries = match read_sorted(abs) {
            Ok(e) => e,
            Err(err) => {
                if rel.is_empty() {
                    return Err(WalkError::Io { path: abs.clone(), source: err });
                }
                // Report the failure against the directory itself.
                visit(rel, EntryKind::Dir, Some(&err))?;
                return Ok(());
            }
        };
        for (name, kind) in entries {
            let name = String::from_utf8_lossy(&name).into_owned();
            let rl = rel.len();
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(&name);
            abs.push(&name);
            let c = visit(rel, kind, None);
            let res = match c {
                Ok(Control::Continue) if kind == EntryKind::Dir => rec(abs, rel, visit).map(|_| Control::Continue),
                other => other,
            };
            abs.pop();
            rel.truncate(rl);
            match res? {
                Control::Continue => {}
                Control::SkipDir if kind == EntryKind::Dir => {}
                Control::SkipDir => return Ok(()),
            }
        }
        Ok(())
    }
    let mut abs = root.to_path_buf();
    let mut rel = String::new();
    rec(&mut abs, &mut rel, visit)
}

/// Walks a build context through stacked filters (innermost first) and
/// calls `visit` for every entry that survives.
pub fn walk_filtered(
    root: &Path,
    filters: &mut [Filter],
    visit: &mut dyn FnMut(&str, EntryKind) -> Result<Control, WalkError>,
) -> Result<(), WalkError> {
    fn chain(
        filters: &mut [Filter],
        path: &str,
        kind: EntryKind,
        err: Option<&std::io::Error>,
        visit: &mut dyn FnMut(&str, EntryKind) -> Result<Control, WalkError>,
    ) -> Result<Control, WalkError> {
        match filters.split_first_mut() {
            None => match err {
                Some(e) => Err(WalkError::Io {
                    path: PathBuf::from(path),
                    source: std::io::Error::new(e.kind(), e.to_string()),
                }),
                None => visit(path, kind),
            },
            Some((first, rest)) => first.visit(path, kind, err, &mut |p, k| chain(rest, p, k, None, visit)),
        }
    }
    walk_raw(root, &mut |p, k, e| chain(filters, p, k, e, visit))
}

/// Lists a build context filtered by `.dockerignore` patterns, in walk
/// order. This is what the builder transfers as the context.
pub fn list_context<S: AsRef<str>>(root: &Path, excludes: &[S]) -> Result<Vec<WalkEntry>, WalkError> {
    let none: [&str; 0] = [];
    let ex: Vec<&str> = excludes.iter().map(AsRef::as_ref).collect();
    let mut f = [Filter::new(&none, &ex)?];
    let mut out = Vec::new();
    walk_filtered(root, &mut f, &mut |p, k| {
        out.push(WalkEntry { path: p.to_string(), kind: k });
        Ok(Control::Continue)
    })?;
    Ok(out)
}

/// The match type of a compiled pattern (`exact`, `prefix`, `suffix`,
/// `regexp`), for conformance tests and debugging.
pub fn debug_match_type(p: &Pattern) -> &'static str {
    match p.kind {
        Kind::Exact => "exact",
        Kind::Prefix => "prefix",
        Kind::Suffix => "suffix",
        Kind::Regexp(_) | Kind::Bad => "regexp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let pm = PatternMatcher::new(&["**", "dir/**", "**/dir", "a*", "abc.def"]).unwrap();
        let k: Vec<&str> = pm
            .patterns
            .iter()
            .map(|p| match p.kind {
                Kind::Exact => "exact",
                Kind::Prefix => "prefix",
                Kind::Suffix => "suffix",
                Kind::Regexp(_) => "regexp",
                Kind::Bad => "bad",
            })
            .collect();
        assert_eq!(k, vec!["suffix", "prefix", "suffix", "regexp", "exact"]);
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".dockerignore"), "a\n").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/Dockerfile.dev.dockerignore"), "/b/\n!c\n").unwrap();
        let f = load_ignore_file(d.path(), Some(&d.path().join("sub/Dockerfile.dev"))).unwrap().unwrap();
        assert_eq!(f.patterns, vec!["b", "!c"]);
        let f = load_ignore_file(d.path(), Some(&d.path().join("Dockerfile"))).unwrap().unwrap();
        assert_eq!(f.patterns, vec!["a"]);
        std::fs::remove_file(d.path().join(".dockerignore")).unwrap();
        assert!(load_ignore_file(d.path(), None).unwrap().is_none());
    }

    #[test]
    fn walker_prunes_but_reaches_reincluded_files() {
        let d = tempfile::tempdir().unwrap();
        for p in ["node_modules/x/y.js", "node_modules/keep/k.txt", "src/a.rs", "Dockerfile"] {
            let f = d.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, b"").unwrap();
        }
        let got: Vec<String> = list_context(d.path(), &["node_modules", "!node_modules/keep", "Dockerfile"])
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(got, vec!["node_modules", "node_modules/keep", "node_modules/keep/k.txt", "src", "src/a.rs"]);
    }

    #[test]
    fn go_regexp_escapes() {
        let pm = PatternMatcher::new(&["a\\d"]).unwrap();
        assert!(pm.matches("a1").unwrap());
        assert!(!pm.matches("ad").unwrap());
        let pm = PatternMatcher::new(&["[a&&b]"]).unwrap();
        assert!(pm.matches("&").unwrap());
    }
}
