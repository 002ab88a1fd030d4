//! Flattening a stack of layers into one tar of the final filesystem, without unpacking.
//!
//! Two passes over the layers. Pass 1 reads headers only and builds an index of the final tree
//! (path → the entry that defines it, and for regular files an inode that hard links share),
//! applying whiteouts and opaque markers with exactly the rules of [`crate::apply`] in flatten
//! mode. Pass 2 reads the layers again and copies the winning entries, in layer order.
//!
//! Hard links whose original path was later replaced or deleted are handled: the inode's data
//! is emitted (from the layer that wrote it) under the first surviving path, and the other
//! surviving paths become hard links to it.
//!
//! Paths are resolved lexically: an entry `a/x` under a symlink `a` stays `a/x` in the output
//! (an applier following symlinks inside the root, like ours, then puts it where it belongs).
//! The root directory's own entry (`./`) is not carried over.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};

use crate::compress::Decoder;
use crate::error::{Error, Result};
use crate::tar::{EntryKind, Header, TarReader, TarWriter, normalize_path, split_parent};

/// What [`flatten`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlattenReport {
    pub layers: usize,
    /// Entries read in pass 1 (all layers).
    pub entries_in: u64,
    /// Entries written.
    pub entries_out: u64,
    /// File content bytes written.
    pub bytes: u64,
}

type EntryId = (usize, u64);

struct Node {
    id: EntryId,
    kind: EntryKind,
    inode: Option<usize>,
}

enum Emit {
    /// The entry itself, under this path.
    Entry(Vec<u8>),
    /// The entry as a regular file under `path`, followed by hard links to it.
    File { path: Vec<u8>, links: Vec<Vec<u8>> },
}

fn key(p: &[u8]) -> Vec<u8> {
    p.iter().map(|&b| if b == b'/' { 0 } else { b }).collect()
}

fn unkey(k: &[u8]) -> Vec<u8> {
    k.iter().map(|&b| if b == 0 { b'/' } else { b }).collect()
}

/// Keys of `k` and everything below it.
fn subtree(nodes: &BTreeMap<Vec<u8>, Node>, k: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if nodes.contains_key(k) {
        out.push(k.to_vec());
    }
    let mut lo = k.to_vec();
    lo.push(0);
    let mut hi = k.to_vec();
    hi.push(1);
    out.extend(nodes.range(lo..hi).map(|(k, _)| k.clone()));
    out
}

fn unsafe_path(h: &Header, reason: &'static str) -> Error {
    Error::UnsafePath { path: h.display_path(), offset: h.offset, reason }
}

/// Flattens `layers` layers (bottom first) into `out`. `open(i)` must return layer `i`'s blob
/// (any compression; sniffed) and is called twice per layer, which must yield the same bytes
/// both times (pass 2 checks the entries line up). The caller finishes `out`. Memory is
/// proportional to the number of paths in the final tree, never to file sizes.
pub fn flatten<W, R, F>(layers: usize, mut open: F, out: &mut TarWriter<W>) -> Result<FlattenReport>
where
    W: Write,
    R: Read,
    F: FnMut(usize) -> io::Result<R>,
{
    let mut report = FlattenReport { layers, ..Default::default() };
    let mut nodes: BTreeMap<Vec<u8>, Node> = BTreeMap::new();
    let mut inode_source: Vec<EntryId> = Vec::new();

    // Pass 1: the index.
    for layer in 0..layers {
        let blob = open(layer).map_err(|e| Error::Read { offset: 0, source: e })?;
        let mut tar = TarReader::new(Decoder::new(blob).map_err(|e| Error::Read { offset: 0, source: e })?);
        let mut ours: HashSet<Vec<u8>> = HashSet::new();
        let mut ordinal = 0u64;
        while let Some(e) = tar.next_entry()? {
            let h = &e.header;
            let id = (layer, ordinal);
            ordinal += 1;
            report.entries_in += 1;
            let path = normalize_path(&h.path).map_err(|p| unsafe_path(h, p.as_str()))?;
            if path.is_empty() {
                continue;
            }
            let (parent, name) = split_parent(&path);
            if let Some(wh) = name.strip_prefix(b".wh.") {
                if wh == b".wh..opq" {
                    // Opaque: drop everything below `parent` that this layer did not add.
                    let mut pk = key(parent);
                    let start = if pk.is_empty() {
                        Vec::new()
                    } else {
                        pk.push(0);
                        pk.clone()
                    };
                    let doomed: Vec<Vec<u8>> = if start.is_empty() {
                        nodes.keys().cloned().collect()
                    } else {
                        let mut hi = start.clone();
                        if let Some(l) = hi.last_mut() {
                            *l = 1;
                        }
                        nodes.range(start..hi).map(|(k, _)| k.clone()).collect()
                    };
                    for k in doomed {
                        if !ours.contains(&unkey(&k)) {
                            nodes.remove(&k);
                        }
                    }
                } else if !wh.starts_with(b".wh.") {
                    if wh.is_empty() || wh == b"." || wh == b".." {
                        return Err(unsafe_path(h, "invalid whiteout name"));
                    }
                    let mut target = parent.to_vec();
                    if !target.is_empty() {
                        target.push(b'/');
                    }
                    target.extend_from_slice(wh);
                    if !ours.contains(&target) {
                        for k in subtree(&nodes, &key(&target)) {
                            nodes.remove(&k);
                        }
                    }
                }
                continue;
            }
            let k = key(&path);
            let inode = match h.kind {
                EntryKind::File => {
                    inode_source.push(id);
                    Some(inode_source.len() - 1)
                }
                EntryKind::Hardlink => {
                    let t = normalize_path(&h.link)
                        .map_err(|_| unsafe_path(h, "hardlink target leads outside the root"))?;
                    match nodes.get(&key(&t)) {
                        Some(n) if n.inode.is_some() => n.inode,
                        _ => {
                            return Err(Error::Apply {
                                path: h.display_path(),
                                offset: h.offset,
                                op: "hardlink",
                                source: io::Error::new(
                                    io::ErrorKind::NotFound,
                                    "target is not an earlier regular file",
                                ),
                            });
                        }
                    }
                }
                _ => None,
            };
            let keep_children = h.kind == EntryKind::Dir && nodes.get(&k).is_some_and(|n| n.kind == EntryKind::Dir);
            if !keep_children {
                for old in subtree(&nodes, &k) {
                    nodes.remove(&old);
                }
            }
            nodes.insert(k, Node { id, kind: h.kind, inode });
            let mut p: &[u8] = &path;
            while !p.is_empty() && ours.insert(p.to_vec()) {
                p = split_parent(p).0;
            }
        }
    }

    // The plan: which entry of which layer is written, under which names.
    let mut plan: BTreeMap<EntryId, Vec<Emit>> = BTreeMap::new();
    let mut by_inode: HashMap<usize, (Vec<u8>, Vec<Vec<u8>>)> = HashMap::new();
    let mut inode_order: Vec<usize> = Vec::new();
    for (k, n) in &nodes {
        let path = unkey(k);
        match n.inode {
            Some(i) => match by_inode.get_mut(&i) {
                Some((_, links)) => links.push(path),
                None => {
                    by_inode.insert(i, (path, Vec::new()));
                    inode_order.push(i);
                }
            },
            None => plan.entry(n.id).or_default().push(Emit::Entry(path)),
        }
    }
    for i in inode_order {
        if let (Some((path, links)), Some(src)) = (by_inode.remove(&i), inode_source.get(i)) {
            plan.entry(*src).or_default().push(Emit::File { path, links });
        }
    }
    drop(nodes);

    // Pass 2: copy.
    for layer in 0..layers {
        let first = (layer, 0u64);
        let last = (layer, u64::MAX);
        if plan.range(first..=last).next().is_none() {
            continue;
        }
        let blob = open(layer).map_err(|e| Error::Read { offset: 0, source: e })?;
        let mut tar = TarReader::new(Decoder::new(blob).map_err(|e| Error::Read { offset: 0, source: e })?);
        let mut ordinal = 0u64;
        while let Some(mut e) = tar.next_entry()? {
            let id = (layer, ordinal);
            ordinal += 1;
            let Some(emits) = plan.remove(&id) else { continue };
            let mut h = e.header.clone();
            h.sparse = None;
            for emit in emits {
                match emit {
                    Emit::Entry(path) => {
                        h.path = path;
                        out.append_header(&h)?;
                        report.entries_out += 1;
                    }
                    Emit::File { path, links } => {
                        if h.kind != EntryKind::File {
                            return Err(changed(layer));
                        }
                        h.path = path.clone();
                        out.append(&h, &mut e as &mut dyn Read, std::path::Path::new("<layer>")).map_err(|err| {
                            match err {
                                Error::SourceChanged { .. } | Error::Source { .. } => Error::Apply {
                                    path: h.display_path(),
                                    offset: h.offset,
                                    op: "read data",
                                    source: io::Error::new(io::ErrorKind::UnexpectedEof, "layer data ended early"),
                                },
                                err => err,
                            }
                        })?;
                        report.entries_out += 1;
                        report.bytes += h.size;
                        for l in links {
                            let mut lh = h.clone();
                            lh.path = l;
                            lh.kind = EntryKind::Hardlink;
                            lh.link = path.clone();
                            lh.size = 0;
                            out.append_header(&lh)?;
                            report.entries_out += 1;
                        }
                    }
                }
            }
        }
        if plan.range(first..=last).next().is_some() {
            return Err(changed(layer));
        }
    }
    Ok(report)
}

fn changed(layer: usize) -> Error {
    Error::Read {
        offset: 0,
        source: io::Error::new(io::ErrorKind::InvalidData, format!("layer {layer} differs between the two passes")),
    }
}
