//! The build context: a directory filtered by `.dockerignore`, with content hashes for cache
//! keys. Hashes of unchanged files come from a persistent stat cache (size, mtime, ctime,
//! inode), so a rebuild does not re-read the context.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_dockerfile::{EntryKind, WalkEntry};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct StatKey {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct StatCache {
    files: HashMap<String, (StatKey, String)>,
    #[serde(skip)]
    dirty: bool,
}

/// A filtered build context. Thread-safe.
pub struct Context {
    root: Option<PathBuf>,
    /// Filtered entries by relative path (no leading `./`).
    entries: BTreeMap<String, EntryKind>,
    ignore: Vec<String>,
    stat: Mutex<StatCache>,
    cache_file: Option<PathBuf>,
}

impl Context {
    /// An empty context (`berth build -` with the Dockerfile on stdin).
    pub fn empty() -> Context {
        Context {
            root: None,
            entries: BTreeMap::new(),
            ignore: vec![],
            stat: Mutex::new(StatCache::default()),
            cache_file: None,
        }
    }

    /// Loads `root` with the ignore patterns in effect. `cache_dir` holds stat caches.
    pub fn load(root: &Path, ignore: Vec<String>, cache_dir: Option<&Path>) -> Result<Context> {
        let list: Vec<WalkEntry> = berth_dockerfile::list_context(root, &ignore)
            .map_err(|e| BuildError::Other(format!("reading the build context {}: {e}", root.display())))?;
        let entries = list.into_iter().map(|e| (e.path, e.kind)).collect();
        let cache_file = cache_dir.map(|d| {
            let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            d.join(format!("{}.json", hex::encode(Sha256::digest(abs.to_string_lossy().as_bytes()))))
        });
        let stat = cache_file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice::<StatCache>(&b).ok())
            .unwrap_or_default();
        Ok(Context { root: Some(root.to_path_buf()), entries, ignore, stat: Mutex::new(stat), cache_file })
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    pub fn ignore_patterns(&self) -> &[String] {
        &self.ignore
    }

    /// Whether a relative path survives `.dockerignore`.
    pub fn contains(&self, rel: &str) -> bool {
        rel.is_empty() || rel == "." || self.entries.contains_key(rel)
    }

    pub fn kind(&self, rel: &str) -> Option<EntryKind> {
        if rel.is_empty() || rel == "." {
            return Some(EntryKind::Dir);
        }
        self.entries.get(rel).copied()
    }

    /// Entries at or below `rel` (the directory itself first), in sorted order.
    pub fn under<'a>(&'a self, rel: &'a str) -> impl Iterator<Item = (&'a String, EntryKind)> + 'a {
        let prefix = if rel.is_empty() || rel == "." { String::new() } else { format!("{rel}/") };
        let exact = self.entries.get_key_value(rel).map(|(k, v)| (k, *v));
        exact.into_iter().chain(
            self.entries.range(prefix.clone()..).take_while(move |(k, _)| k.starts_with(&prefix)).map(|(k, v)| (k, *v)),
        )
    }

    /// Follows symlinks in `rel` (a path relative to the context) the way a copy of it reads
    /// it, and returns the path it resolves to, relative to the context (`""` is the root).
    /// Every step must survive `.dockerignore`: a link to an ignored file, or through an
    /// ignored link or directory, resolves to nothing, as in BuildKit, where ignored files are
    /// never sent to the builder. Absolute link targets and `..` stay inside the context.
    pub fn resolve(&self, rel: &str) -> Option<String> {
        let root = self.root.as_ref()?;
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: Vec<String> = rel.split('/').rev().filter(|s| !s.is_empty()).map(str::to_string).collect();
        let mut links = 0;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(c);
            let cand = resolved.join("/");
            if *self.entries.get(&cand)? == EntryKind::Symlink {
                links += 1;
                if links > 255 {
                    return None;
                }
                resolved.pop();
                let target = std::fs::read_link(root.join(&cand)).ok()?;
                let t = target.to_str()?;
                if t.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(t.split('/').rev().filter(|s| !s.is_empty()).map(str::to_string));
            }
        }
        Some(resolved.join("/"))
    }

    /// Total bytes of regular files (BuildKit's "transferring context").
    pub fn size(&self) -> u64 {
        let Some(root) = &self.root else { return 0 };
        self.entries
            .iter()
            .filter(|(_, k)| **k == EntryKind::File)
            .filter_map(|(p, _)| std::fs::symlink_metadata(root.join(p)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Matches a COPY/ADD source (already cleaned, relative, possibly with wildcards) against
    /// the context. Returns matching paths (`""` is the root).
    pub fn glob(&self, pattern: &str) -> Vec<String> {
        let pattern = pattern.trim_start_matches('/');
        let pattern = berth_dockerfile::clean_path(pattern);
        if pattern == "." || pattern.is_empty() {
            return vec![String::new()];
        }
        if !has_wildcards(&pattern) {
            return if self.entries.contains_key(&pattern) { vec![pattern] } else { vec![] };
        }
        let depth = pattern.split('/').count();
        self.entries.keys().filter(|p| p.split('/').count() == depth && go_match(&pattern, p)).cloned().collect()
    }

    /// A content digest of everything at or below `rel` that survives the filters: paths,
    /// types, permission bits, symlink targets and file contents.
    pub fn hash_tree(&self, rel: &str, exclude: Option<&berth_dockerfile::PatternMatcher>) -> Result<String> {
        let Some(root) = &self.root else { return Ok(String::new()) };
        let mut h = Sha256::new();
        let base_len = if rel.is_empty() { 0 } else { rel.len() + 1 };
        for (p, kind) in self.under(rel) {
            let relname = p.get(base_len..).unwrap_or("");
            // --exclude patterns are relative to the source, as the copy applies them.
            if let Some(ex) = exclude
                && !relname.is_empty()
                && ex.matches(relname).unwrap_or(false)
            {
                continue;
            }
            let abs = root.join(p);
            let md = std::fs::symlink_metadata(&abs).map_err(|e| BuildError::io(&abs, e))?;
            h.update(relname.as_bytes());
            h.update([0]);
            h.update(format!("{:o}", md.mode()).as_bytes());
            h.update([0]);
            match kind {
                EntryKind::File => h.update(self.file_hash(p, &abs, &md)?.as_bytes()),
                EntryKind::Symlink => {
                    let t = std::fs::read_link(&abs).map_err(|e| BuildError::io(&abs, e))?;
                    h.update(t.as_os_str().as_encoded_bytes());
                }
                _ => {}
            }
            h.update([0xff]);
        }
        Ok(hex::encode(h.finalize()))
    }

    fn file_hash(&self, rel: &str, abs: &Path, md: &std::fs::Metadata) -> Result<String> {
        let key = StatKey {
            size: md.len(),
            mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
            ctime_ns: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
            ino: md.ino(),
        };
        if let Ok(c) = self.stat.lock()
            && let Some((k, v)) = c.files.get(rel)
            && *k == key
        {
            return Ok(v.clone());
        }
        let mut f = std::fs::File::open(abs).map_err(|e| BuildError::io(abs, e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(|e| BuildError::io(abs, e))?;
            if n == 0 {
                break;
            }
            h.update(buf.get(..n).unwrap_or(&[]));
        }
        let v = hex::encode(h.finalize());
        if let Ok(mut c) = self.stat.lock() {
            c.files.insert(rel.to_string(), (key, v.clone()));
            c.dirty = true;
        }
        Ok(v)
    }

    /// Saves the stat cache (best effort).
    pub fn save(&self) {
        let Some(f) = &self.cache_file else { return };
        let Ok(c) = self.stat.lock() else { return };
        if !c.dirty {
            return;
        }
        if let (Some(dir), Ok(bytes)) = (f.parent(), serde_json::to_vec(&*c)) {
            let _ = std::fs::create_dir_all(dir);
            let tmp = f.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, f);
            }
        }
    }
}

pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's `path/filepath.Match` (Unix): `*` and `?` do not cross `/`; classes `[a-z]`, `[^x]`;
/// `\` escapes.
pub fn go_match(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], s: &[char]) -> bool {
        let (mut pi, mut si) = (0usize, 0usize);
        let (mut star_p, mut star_s) = (None::<usize>, 0usize);
        while si < s.len() {
            if pi < p.len() {
                match p[pi] {
                    '*' => {
                        star_p = Some(pi);
                        star_s = si;
                        pi += 1;
                        continue;
                    }
                    '?' if s[si] != '/' => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    '[' => {
                        if let Some((ok, len)) = class(&p[pi..], s[si])
                            && ok
                            && s[si] != '/'
                        {
                            pi += len;
                            si += 1;
                            continue;
                        }
                    }
                    '\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                        pi += 2;
                        si += 1;
                        continue;
                    }
                    c if c == s[si] && c != '*' && c != '?' && c != '[' && c != '\\' => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            match star_p {
                Some(sp) if s[star_s] != '/' => {
                    pi = sp + 1;
                    star_s += 1;
                    si = star_s;
                }
                _ => return false,
            }
        }
        while pi < p.len() && p[pi] == '*' {
            pi += 1;
        }
        pi == p.len()
    }
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        let mut i = 1;
        let negate = p.get(i) == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = if p[i] == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                p[i]
            };
            i += 1;
            let mut hi = lo;
            if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|x| *x != ']') {
                hi = if p[i + 1] == '\\' { *p.get(i + 2)? } else { p[i + 1] };
                i += if p[i + 1] == '\\' { 3 } else { 2 };
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        }
        None
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    m(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_basics() {
        assert!(go_match("package*.json", "package.json"));
        assert!(go_match("package*.json", "package-lock.json"));
        assert!(!go_match("*.txt", "a/b.txt"));
        assert!(go_match("a/*.txt", "a/b.txt"));
        assert!(go_match("[a-c]x", "bx"));
        assert!(!go_match("[^a-c]x", "bx"));
        assert!(go_match("?.md", "a.md"));
    }

    #[test]
    fn context_listing_and_hash() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("src/sub")).unwrap();
        std::fs::write(t.path().join("src/a.py"), "print(1)").unwrap();
        std::fs::write(t.path().join("src/sub/b.py"), "print(2)").unwrap();
        std::fs::write(t.path().join("README.md"), "x").unwrap();
        std::fs::write(t.path().join("package.json"), "{}").unwrap();
        let cache = tempfile::tempdir().unwrap();
        let c = Context::load(t.path(), vec!["README.md".into()], Some(cache.path())).unwrap();
        assert!(!c.contains("README.md"));
        assert_eq!(c.glob("package*.json"), vec!["package.json"]);
        assert_eq!(c.glob("src"), vec!["src"]);
        assert!(c.glob("nope").is_empty());
        let h1 = c.hash_tree("src", None).unwrap();
        c.save();
        std::fs::write(t.path().join("src/sub/b.py"), "print(3)").unwrap();
        let c2 = Context::load(t.path(), vec!["README.md".into()], Some(cache.path())).unwrap();
        let h2 = c2.hash_tree("src", None).unwrap();
        assert_ne!(h1, h2);
        // README changes do not affect the hash of the root (ignored).
        let root1 = c2.hash_tree("", None).unwrap();
        std::fs::write(t.path().join("README.md"), "changed").unwrap();
        let c3 = Context::load(t.path(), vec!["README.md".into()], Some(cache.path())).unwrap();
        assert_eq!(root1, c3.hash_tree("", None).unwrap());
    }

    #[test]
    fn symlinks_resolve_only_through_what_dockerignore_lets_in() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("secret")).unwrap();
        std::fs::create_dir_all(r.join("pub/sub")).unwrap();
        std::fs::write(r.join("secret.txt"), "s").unwrap();
        std::fs::write(r.join("secret/key"), "k").unwrap();
        std::fs::write(r.join("pub/sub/f"), "f").unwrap();
        symlink("secret.txt", r.join("to-secret")).unwrap();
        symlink("/secret/key", r.join("to-key")).unwrap();
        symlink("pub/sub", r.join("to-sub")).unwrap();
        symlink("../../../../pub/sub/f", r.join("pub/up")).unwrap();
        symlink("to-secret", r.join("chain")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        let c = Context::load(r, vec!["secret.txt".into(), "secret".into()], None).unwrap();
        assert_eq!(c.resolve("to-secret"), None);
        assert_eq!(c.resolve("to-key"), None);
        assert_eq!(c.resolve("chain"), None);
        assert_eq!(c.resolve("loop"), None);
        assert_eq!(c.resolve("nope"), None);
        assert_eq!(c.resolve("to-sub").as_deref(), Some("pub/sub"));
        assert_eq!(c.resolve("to-sub/f").as_deref(), Some("pub/sub/f"));
        assert_eq!(c.resolve("pub/up").as_deref(), Some("pub/sub/f"), "`..` stays inside the context");
        assert_eq!(c.resolve("").as_deref(), Some(""));
        // Without the ignore file the same links resolve.
        let all = Context::load(r, vec![], None).unwrap();
        assert_eq!(all.resolve("chain").as_deref(), Some("secret.txt"));
    }
}
