//! Resolving Docker's `--user` forms against the rootfs's /etc/passwd and /etc/group,
//! with runc's rules (the same ones Docker uses).

use std::path::Path;

use crate::error::{Error, Result};
use crate::util::resolve_in_root;

/// The identity the container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership when no group was given,
    /// plus `--group-add`).
    pub additional_gids: Vec<u32>,
    /// Home directory from /etc/passwd, or `/` when the user has no entry.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read_lines(root: &Path, file: &str) -> Vec<String> {
    let p = resolve_in_root(root, Path::new(file));
    match std::fs::read(&p) {
        Ok(b) => String::from_utf8_lossy(&b)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn passwd(root: &Path) -> Vec<PasswdEntry> {
    read_lines(root, "/etc/passwd")
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn groups(root: &Path) -> Vec<GroupEntry> {
    read_lines(root, "/etc/group")
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolve `spec` (`""`, `name`, `uid`, `uid:gid`, `name:group`, …) inside `root`.
/// `group_add` entries (names or numbers) become extra supplementary groups.
pub fn resolve_user(root: &Path, spec: &str, group_add: &[String]) -> Result<ExecUser> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let users = passwd(root);
    let numeric_uid = user_arg.parse::<u32>().ok();
    let entry = users.iter().find(|u| Some(u.uid) == numeric_uid || (numeric_uid.is_none() && u.name == user_arg));
    let (uid, mut gid, home, name) = match (entry, numeric_uid) {
        (Some(e), _) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
        (None, Some(uid)) => (uid, 0, "/".to_owned(), None),
        (None, None) => {
            return Err(Error::UserNotFound { user: user_arg.to_owned() });
        }
    };
    let all_groups = groups(root);
    let mut additional = Vec::new();
    match group_arg {
        Some(g) if !g.is_empty() => {
            gid = lookup_group(&all_groups, g)?;
        }
        _ => {
            if let Some(name) = &name {
                for g in &all_groups {
                    if g.members.iter().any(|m| m == name) && !additional.contains(&g.gid) {
                        additional.push(g.gid);
                    }
                }
            }
        }
    }
    for g in group_add {
        let id = lookup_group(&all_groups, g)?;
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    Ok(ExecUser { uid, gid, additional_gids: additional, home: if home.is_empty() { "/".to_owned() } else { home } })
}

fn lookup_group(all: &[GroupEntry], g: &str) -> Result<u32> {
    if let Ok(n) = g.parse::<u32>() {
        return Ok(n);
    }
    all.iter().find(|e| e.name == g).map(|e| e.gid).ok_or_else(|| Error::GroupNotFound { group: g.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nnohome:x:1001:1001::::\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:alice\nstaff:x:50:\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn forms() {
        let d = root();
        let r = d.path();
        let u = resolve_user(r, "", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        let u = resolve_user(r, "alice", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![10, 29]);
        assert_eq!(u.home, "/home/alice");
        let u = resolve_user(r, "1000", &[]).unwrap();
        assert_eq!(u.additional_gids, vec![10, 29]);
        let u = resolve_user(r, "alice:staff", &[]).unwrap();
        assert_eq!((u.gid, u.additional_gids.len()), (50, 0));
        let u = resolve_user(r, "4242:77", &["staff".into()]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 77, "/"));
        assert_eq!(u.additional_gids, vec![50]);
        assert_eq!(resolve_user(r, "nohome", &[]).unwrap().home, "/");
        assert!(matches!(resolve_user(r, "bob", &[]), Err(Error::UserNotFound { .. })));
        assert!(matches!(resolve_user(r, "alice:nogroup", &[]), Err(Error::GroupNotFound { .. })));
    }
}
