//! The pattern matcher and ignore-file reader must never panic.
//! Input: `path \n pattern \n pattern ...`.
#![no_main]

use berth_dockerfile::dockerignore::{MatchInfo, PatternMatcher, matches_legacy, read_ignore_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let pats = read_ignore_file(&s);
    let mut lines = s.split('\n');
    let path = lines.next().unwrap_or("");
    let raw: Vec<&str> = lines.collect();
    let _ = matches_legacy(path, &raw);
    for list in [raw.iter().map(|x| x.to_string()).collect::<Vec<_>>(), pats] {
        if let Ok(pm) = PatternMatcher::new(&list) {
            let _ = pm.matches(path);
            let _ = pm.matches_legacy(path);
            let mut info = MatchInfo::default();
            let parts: Vec<&str> = path.split('/').collect();
            for i in 0..parts.len() {
                match pm.matches_with_parent(&parts[..=i].join("/"), &info) {
                    Ok((_, inf)) => info = inf,
                    Err(_) => break,
                }
            }
        }
    }
});
