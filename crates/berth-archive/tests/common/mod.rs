//! Shared test helpers: tree snapshots and fixture builders.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Option<i64>,
    pub size: u64,
    pub link: Option<Vec<u8>>,
    pub content: Option<Vec<u8>>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub rdev: u64,
    /// For files with nlink > 1: the first path (in walk order) of the same inode.
    pub hardlink_of: Option<String>,
}

pub struct SnapOpts {
    pub dir_mtimes: bool,
    pub mtimes: bool,
    /// Drop xattrs whose name starts with any of these.
    pub ignore_xattrs: Vec<&'static str>,
}

impl Default for SnapOpts {
    fn default() -> Self {
        SnapOpts { dir_mtimes: true, mtimes: true, ignore_xattrs: vec!["security.selinux"] }
    }
}

pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    snapshot_with(root, &SnapOpts::default())
}

pub fn snapshot_with(root: &Path, o: &SnapOpts) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    fn rec(
        root: &Path,
        dir: &Path,
        o: &SnapOpts,
        out: &mut BTreeMap<String, Node>,
        inodes: &mut BTreeMap<(u64, u64), String>,
    ) {
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        for n in names {
            let p = dir.join(&n);
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_file() {
                "file"
            } else if ft.is_dir() {
                "dir"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else {
                "other"
            };
            let mut xattrs = BTreeMap::new();
            if let Ok(names) = xattr_list(&p) {
                for x in names {
                    if o.ignore_xattrs.iter().any(|pre| x.starts_with(pre)) {
                        continue;
                    }
                    xattrs.insert(x.clone(), xattr_get(&p, &x).unwrap_or_default());
                }
            }
            let hardlink_of = if ft.is_file() && md.nlink() > 1 {
                let first = inodes.entry((md.dev(), md.ino())).or_insert_with(|| rel.clone()).clone();
                (first != rel).then_some(first)
            } else {
                None
            };
            let mtime = if (kind == "dir" && !o.dir_mtimes) || !o.mtimes { None } else { Some(md.mtime()) };
            out.insert(
                rel.clone(),
                Node {
                    kind,
                    mode: md.permissions().mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    mtime,
                    size: if ft.is_file() { md.size() } else { 0 },
                    link: ft.is_symlink().then(|| std::fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec()),
                    content: ft.is_file().then(|| std::fs::read(&p).unwrap()),
                    xattrs,
                    rdev: if ft.is_char_device() || ft.is_block_device() { md.rdev() } else { 0 },
                    hardlink_of,
                },
            );
            if ft.is_dir() {
                rec(root, &p, o, out, inodes);
            }
        }
    }
    rec(root, root, o, &mut out, &mut inodes);
    out
}

pub fn xattr_list(p: &Path) -> std::io::Result<Vec<String>> {
    let mut buf = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(p, &mut buf[..]).map_err(std::io::Error::from)?;
    Ok(buf[..n].split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
}

pub fn xattr_get(p: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let n = rustix::fs::lgetxattr(p, name, &mut buf[..]).map_err(std::io::Error::from)?;
    Ok(buf[..n].to_vec())
}

pub fn xattr_set(p: &Path, name: &str, v: &[u8]) {
    rustix::fs::lsetxattr(p, name, v, rustix::fs::XattrFlags::empty()).unwrap();
}

pub fn set_mtime(p: &Path, secs: i64) {
    let ts = rustix::fs::Timespec { tv_sec: secs, tv_nsec: 0 };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &rustix::fs::Timestamps { last_access: ts, last_modification: ts },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn lchown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A VFS_CAP_REVISION_2 `security.capability` blob granting cap_net_bind_service (10).
pub fn cap_blob() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0200_0001u32.to_le_bytes()); // revision 2, effective
    v.extend_from_slice(&(1u32 << 10).to_le_bytes()); // permitted lo
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable lo
    v.extend_from_slice(&0u32.to_le_bytes()); // permitted hi
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable hi
    v
}

/// Builds a tree exercising every file type and metadata kind we support.
pub fn rich_tree(root: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    };
    std::fs::create_dir_all(root.join("etc/empty")).unwrap();
    w("etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    w("bin/tool", &vec![0x7fu8; 70_000]);
    chmod(&root.join("bin/tool"), 0o4755);
    w("bin/sgid", b"x");
    chmod(&root.join("bin/sgid"), 0o2711);
    w("bin/capped", b"cap");
    xattr_set(&root.join("bin/capped"), "security.capability", &cap_blob());
    w("data/xattr", b"x");
    xattr_set(&root.join("data/xattr"), "user.note", b"hello\0world");
    xattr_set(&root.join("data"), "user.dir", b"d");
    w("data/private", b"secret");
    chmod(&root.join("data/private"), 0o600);
    w("data/open", b"everyone");
    chmod(&root.join("data/open"), 0o777);
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    chmod(&root.join("tmp"), 0o1777);
    w("data/owned", b"owned");
    lchown(&root.join("data/owned"), 1000, 1001);
    w("data/bigid", b"big");
    lchown(&root.join("data/bigid"), 3_000_000, 3_000_001);
    std::os::unix::fs::symlink("../etc/passwd", root.join("data/rel-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("data/abs-link")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("data/dangling")).unwrap();
    lchown(&root.join("data/dangling"), 7, 8);
    std::fs::hard_link(root.join("etc/passwd"), root.join("data/passwd-hl")).unwrap();
    std::fs::hard_link(root.join("etc/passwd"), root.join("etc/zz-hl2")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("data/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    let long = "long-directory-name-".repeat(6);
    w(&format!("{long}/{long}/file-{}", "x".repeat(120)), b"long");
    w("ünïcode/名前.txt", "unicode".as_bytes());
    w("with space/and\ttab", b"ws");
    w("empty-file", b"");
    {
        let mut f = std::fs::File::create(root.join("sparse")).unwrap();
        f.seek(SeekFrom::Start(4 << 20)).unwrap();
        f.write_all(b"end").unwrap();
    }
    // Deterministic times everywhere, dirs last.
    let mut all: Vec<_> = Vec::new();
    fn collect(d: &Path, v: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                collect(&p, v);
            }
            v.push(p);
        }
    }
    collect(root, &mut all);
    for (i, p) in all.iter().enumerate() {
        set_mtime(p, 1_600_000_000 + i as i64 * 1000);
    }
}

/// A tiny DSL for hand-made layers.
pub enum E<'a> {
    Dir(&'a str),
    DirMode(&'a str, u32),
    File(&'a str, &'a [u8]),
    Sym(&'a str, &'a str),
    Link(&'a str, &'a str),
    Fifo(&'a str),
    Char(&'a str, u32, u32),
    Raw(berth_archive::Header, Vec<u8>),
}

pub fn layer(entries: &[E]) -> Vec<u8> {
    use berth_archive::{EntryKind, Header, TarWriter};
    let mut w = TarWriter::new(Vec::new());
    for (i, e) in entries.iter().enumerate() {
        let mk = |p: &str, k: EntryKind| {
            let mut h = Header::new(p.as_bytes().to_vec(), k);
            h.mtime = 1_000_000 + i as i64;
            h
        };
        let (h, data): (Header, Vec<u8>) = match e {
            E::Dir(p) => (mk(p, EntryKind::Dir), vec![]),
            E::DirMode(p, m) => {
                let mut h = mk(p, EntryKind::Dir);
                h.mode = *m;
                (h, vec![])
            }
            E::File(p, d) => {
                let mut h = mk(p, EntryKind::File);
                h.size = d.len() as u64;
                (h, d.to_vec())
            }
            E::Sym(p, t) => {
                let mut h = mk(p, EntryKind::Symlink);
                h.link = t.as_bytes().to_vec();
                (h, vec![])
            }
            E::Link(p, t) => {
                let mut h = mk(p, EntryKind::Hardlink);
                h.link = t.as_bytes().to_vec();
                (h, vec![])
            }
            E::Fifo(p) => (mk(p, EntryKind::Fifo), vec![]),
            E::Char(p, a, b) => {
                let mut h = mk(p, EntryKind::Char);
                h.dev_major = *a;
                h.dev_minor = *b;
                (h, vec![])
            }
            E::Raw(h, d) => (h.clone(), d.clone()),
        };
        w.append(&h, &mut data.as_slice(), Path::new("test")).unwrap();
    }
    w.finish().unwrap()
}

/// Names (relative, sorted) under `root`.
pub fn names(root: &Path) -> Vec<String> {
    snapshot_with(root, &SnapOpts { dir_mtimes: false, mtimes: false, ..Default::default() }).into_keys().collect()
}
