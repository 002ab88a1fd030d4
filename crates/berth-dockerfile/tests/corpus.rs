//! Conformance harness over the shared BuildKit / dockerignore corpus.
//! The corpus is read at test time from `BERTH_CORPUS_DIR`, `$BERTH_SHARED_DIR/corpus` or
//! `<repo>/../shared/corpus`. Without it every test here skips with a `SKIPPED` line on
//! stderr, except under CI, where a missing corpus fails.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use berth_dockerfile::parser::{heredocs_from_line, parse, parse_heredoc};
use berth_dockerfile::shell::Lexer;

/// The corpus directory, or `None` (after one `SKIPPED` line) when a clone has no shared
/// material beside it; under CI its absence fails (see `berth_testkit::shared`).
fn corpus_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| match std::env::var_os("BERTH_CORPUS_DIR") {
        Some(p) => Some(PathBuf::from(p)),
        None => berth_testkit::shared::shared_material(
            "berth-dockerfile corpus conformance",
            "corpus",
            "buildkit/FORMAT.md",
        ),
    })
    .as_ref()
}

/// The corpus directory; only called by tests that passed [`skip_without_corpus!`].
fn corpus() -> PathBuf {
    let p = corpus_dir().cloned().unwrap_or_default();
    assert!(
        p.join("buildkit/FORMAT.md").is_file() && p.join("dockerignore/FORMAT.md").is_file(),
        "conformance corpus incomplete at {} (set BERTH_SHARED_DIR or BERTH_CORPUS_DIR)",
        p.display()
    );
    p
}

/// Returns from the test (which passes, after the `SKIPPED` line) when the corpus is absent.
macro_rules! skip_without_corpus {
    () => {
        if corpus_dir().is_none() {
            return;
        }
    };
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

struct Tally {
    name: &'static str,
    pass: usize,
    fail: Vec<String>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Tally { name, pass: 0, fail: Vec::new() }
    }
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.pass += 1;
        } else {
            self.fail.push(what());
        }
    }
    fn finish(self, expected_min: usize) {
        println!("{}: {} passed, {} failed", self.name, self.pass, self.fail.len());
        for f in &self.fail {
            println!("  FAIL {f}");
        }
        assert!(self.fail.is_empty(), "{} failures in {}", self.fail.len(), self.name);
        assert!(self.pass >= expected_min, "{}: too few cases ran ({})", self.name, self.pass);
    }
}

#[test]
fn parser_positive_cases() {
    skip_without_corpus!();
    let dir = corpus().join("buildkit/parser/testfiles");
    let mut t = Tally::new("parser testfiles");
    let mut entries: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let src = fs::read(e.path().join("Dockerfile")).unwrap();
        let want = read(e.path().join("result"));
        match parse(&src) {
            Ok(df) => {
                let got = df.dump();
                t.check(got == want, || format!("{name}:\n--- got\n{got}--- want\n{want}"));
            }
            Err(err) => t.check(false, || format!("{name}: parse error {err}")),
        }
    }
    t.finish(33);
}

#[test]
fn parser_negative_cases() {
    skip_without_corpus!();
    let dir = corpus().join("buildkit/parser/testfiles-negative");
    let mut t = Tally::new("parser testfiles-negative");
    for e in fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let src = fs::read(e.path().join("Dockerfile")).unwrap();
        let r = parse(&src);
        t.check(r.is_err(), || format!("{name}: parsed but should fail"));
    }
    t.finish(4);
}

#[test]
fn parser_line_numbers() {
    skip_without_corpus!();
    let base = corpus().join("buildkit/parser/testfile-line");
    let df = parse(&fs::read(base.join("Dockerfile")).unwrap()).unwrap();
    let mut t = Tally::new("parser line numbers");
    for line in read(base.join("expected-lines.tsv")).lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let (s, e): (usize, usize) = (cols[1].parse().unwrap(), cols[2].parse().unwrap());
        let got = if cols[0] == "root" {
            (df.range.start, df.range.end)
        } else {
            let i: usize = cols[0].trim_start_matches("child ").parse().unwrap();
            (df.nodes[i].range.start, df.nodes[i].range.end)
        };
        t.check(got == (s, e), || format!("{}: got {got:?} want {:?}", cols[0], (s, e)));
    }
    t.finish(4);
}

#[test]
fn parser_empty_continuation() {
    skip_without_corpus!();
    let base = corpus().join("buildkit/parser/empty-continuation");
    let df = parse(&fs::read(base.join("Dockerfile")).unwrap()).unwrap();
    let exp: serde_json::Value = serde_json::from_str(&read(base.join("expected.json"))).unwrap();
    let mut t = Tally::new("empty continuation warnings");
    let count = exp["warning_count"].as_u64().unwrap() as usize;
    t.check(df.warnings.len() == count, || format!("count {} want {count}", df.warnings.len()));
    for (i, w) in exp["warnings"].as_array().unwrap().iter().enumerate() {
        let Some(got) = df.warnings.get(i) else { continue };
        for s in w["short_contains"].as_array().unwrap() {
            let s = s.as_str().unwrap();
            t.check(got.short.contains(s), || format!("warning {i}: {:?} lacks {s:?}", got.short));
        }
        if let Some(d) = w["detail0_contains"].as_str() {
            t.check(got.detail.first().is_some_and(|x| x.contains(d)), || format!("warning {i}: detail lacks {d:?}"));
        }
    }
    t.finish(4);
}

fn check_heredoc_file(dir: &str, t: &mut Tally) {
    let base = corpus().join(dir);
    let df = parse(&fs::read(base.join("Dockerfile")).unwrap()).unwrap();
    for line in read(base.join("expected.jsonl")).lines() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let i = v["child"].as_u64().unwrap() as usize;
        let node = &df.nodes[i];
        let want: Vec<serde_json::Value> = v["heredocs"].as_array().cloned().unwrap_or_default();
        let ok = node.heredocs.len() == want.len()
            && node.heredocs.iter().zip(&want).all(|(h, w)| {
                h.name == w["name"].as_str().unwrap()
                    && h.content == w["content"].as_str().unwrap()
                    && h.expand == w["expand"].as_bool().unwrap()
                    && h.chomp == w["chomp"].as_bool().unwrap()
                    && h.fd == w["fd"].as_u64().unwrap()
            });
        t.check(ok, || format!("{dir} child {i}: got {:?} want {want:?}", node.heredocs));
    }
}

#[test]
fn parser_heredocs() {
    skip_without_corpus!();
    let mut t = Tally::new("heredoc expectations");
    check_heredoc_file("buildkit/parser/heredoc", &mut t);
    check_heredoc_file("buildkit/parser/heredoc-json", &mut t);
    let words = read(corpus().join("buildkit/parser/heredoc/words.tsv"));
    for line in words.lines() {
        if line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let (kind, input, exp) = (cols[0], cols[1], cols[2]);
        if kind == "word" {
            let r = parse_heredoc(input);
            let ok = match exp {
                "error" => r.is_err(),
                "none" => matches!(r, Ok(None)),
                name => matches!(&r, Ok(Some(h)) if h.name == name),
            };
            t.check(ok, || format!("word {input:?}: got {r:?} want {exp}"));
        } else {
            let want: Vec<String> = serde_json::from_str(exp).unwrap();
            let got: Vec<String> =
                heredocs_from_line(input).map(|v| v.into_iter().map(|h| h.name).collect()).unwrap_or_default();
            t.check(got == want, || format!("line {input:?}: got {got:?} want {want:?}"));
        }
    }
    t.finish(58);
}

#[test]
fn shell_env_var_test() {
    skip_without_corpus!();
    let text = read(corpus().join("buildkit/shell/envVarTest"));
    let env: HashMap<String, String> = [("PWD", "/home"), ("SHELL", "bash"), ("KOREAN", "한국어"), ("NULL", "")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lex = Lexer::new('\\');
    let mut t = Tally::new("shell envVarTest (A+U)");
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(f.len(), 3, "bad line {line}");
        match f[0] {
            "A" | "U" => {}
            "W" => continue,
            o => panic!("bad platform tag {o}"),
        }
        let r = lex.process_word(f[1], &env);
        let ok = if f[2] == "error" { r.is_err() } else { r.as_deref() == Ok(f[2]) };
        t.check(ok, || format!("{:?}: got {r:?} want {:?}", f[1], f[2]));
    }
    t.finish(228);
}

#[test]
fn shell_words_test() {
    skip_without_corpus!();
    let text = read(corpus().join("buildkit/shell/wordsTest"));
    let mut env: Vec<(String, String)> = Vec::new();
    let lex = Lexer::new('\\');
    let mut t = Tally::new("shell wordsTest");
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(def) = line.strip_prefix("ENV ") {
            let def = def.trim_start_matches(' ');
            let (k, v) = def.split_once('=').unwrap();
            env.retain(|(n, _)| n != k);
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 2, "bad line {line:?}");
        let input = f[0].trim();
        let want: Vec<String> = f[1].trim_start_matches(' ').split(',').map(String::from).collect();
        let r = lex.process_words(input, &env);
        let ok = if want == ["error"] { r.is_err() } else { r.as_ref().ok() == Some(&want) };
        t.check(ok, || format!("{input:?}: got {r:?} want {want:?}"));
    }
    t.finish(24);
}

#[test]
fn shell_process_word_tsv() {
    skip_without_corpus!();
    let text = read(corpus().join("buildkit/shell/processWord.tsv"));
    let lex = Lexer::new('\\');
    let mut t = Tally::new("shell processWord.tsv");
    let set = |s: &str| -> Option<BTreeSet<String>> {
        if s == "-" { None } else { Some(s.split(',').filter(|x| !x.is_empty()).map(String::from).collect()) }
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let c: Vec<&str> = line.split('\t').collect();
        assert_eq!(c.len(), 8, "bad line {line:?}");
        let env: HashMap<String, String> = serde_json::from_str(c[2]).unwrap();
        let r = lex.process(c[1], &env);
        let ok = match (c[3], &r) {
            ("ok", Ok(p)) => {
                p.result == c[4]
                    && set(c[5]).is_none_or(|s| s == p.matched)
                    && set(c[6]).is_none_or(|s| s == p.unmatched)
            }
            ("error", Err(e)) => c[7].is_empty() || e.message.contains(c[7]),
            _ => false,
        };
        t.check(ok, || format!("{:?} env {}: got {r:?} want {} {:?}", c[1], c[2], c[3], c[4]));
    }
    t.finish(56);
}

mod ignore {
    use super::*;
    use berth_dockerfile::dockerignore::{
        Control, EntryKind, Filter, MatchInfo, PatternMatcher, matches_legacy, read_ignore_file, walk_filtered,
    };

    /// Top-down incremental evaluation, feeding each ancestor's results.
    fn incremental(pm: &PatternMatcher, path: &str) -> Result<bool, String> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut info = MatchInfo::default();
        let mut last = false;
        for i in 0..parts.len() {
            let p = parts[..=i].join("/");
            let (m, inf) = pm.matches_with_parent(&p, &info).map_err(|e| e.to_string())?;
            info = inf;
            last = m;
        }
        Ok(last)
    }

    #[test]
    fn cases_tsv() {
        skip_without_corpus!();
        let text = read(corpus().join("dockerignore/cases.tsv"));
        let mut t = Tally::new("dockerignore cases.tsv");
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let c: Vec<&str> = line.split('\t').collect();
            let (id, api, expected, path) = (c[0], c[2], c[4], c[5]);
            let pats: Vec<&str> = c[6..].to_vec();
            if api == "legacy" {
                let r = matches_legacy(path, &pats);
                let ok = match expected {
                    "error" => r.is_err(),
                    e => r.as_ref().ok() == Some(&(e == "true")),
                };
                t.check(ok, || format!("{id}: {path} {pats:?} got {r:?} want {expected}"));
                continue;
            }
            let pm = match PatternMatcher::new(&pats) {
                Ok(pm) => pm,
                Err(e) => {
                    t.check(false, || format!("{id}: construction failed {e}"));
                    continue;
                }
            };
            if expected == "error" {
                let a = pm.matches(path).is_err();
                let b = pm.matches(path).is_err();
                let c2 = pm.matches_with_parent(path, &MatchInfo::default()).is_err();
                t.check(a && b && c2, || format!("{id}: expected error on every call"));
                continue;
            }
            let want = expected == "true";
            let direct = pm.matches(path).map_err(|e| e.to_string());
            let noinfo = pm.matches_with_parent(path, &MatchInfo::default()).map(|r| r.0).map_err(|e| e.to_string());
            let inc = incremental(&pm, path);
            let ok = direct == Ok(want) && noinfo == Ok(want) && inc == Ok(want);
            t.check(ok, || {
                format!("{id}: {path} {pats:?} direct {direct:?} noinfo {noinfo:?} incremental {inc:?} want {want}")
            });
        }
        t.finish(138);
    }

    #[test]
    fn new_cases_and_ignorefile() {
        skip_without_corpus!();
        let mut t = Tally::new("dockerignore new_cases + ignorefile");
        for line in read(corpus().join("dockerignore/new_cases.jsonl")).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let pats: Vec<String> = serde_json::from_value(v["patterns"].clone()).unwrap();
            let r = PatternMatcher::new(&pats);
            let ok = if v["expect_error"].as_bool().unwrap() {
                r.is_err()
            } else {
                r.as_ref().is_ok_and(|pm| {
                    v["expect_count"].as_u64().is_none_or(|n| pm.patterns().len() as u64 == n)
                        && v["expect_exclusions"].as_bool().is_none_or(|x| pm.exclusions() == x)
                })
            };
            t.check(ok, || format!("{line}: got {r:?}"));
        }
        let base = corpus().join("dockerignore/ignorefile");
        let got = read_ignore_file(&read(base.join("readall.dockerignore")));
        let want: Vec<String> = read(base.join("readall.expected")).lines().map(String::from).collect();
        t.check(got == want, || format!("readall: got {got:?} want {want:?}"));
        t.check(read_ignore_file("").is_empty(), || "empty input".to_string());
        t.finish(8);
    }

    #[test]
    fn compile_tsv_match_types() {
        skip_without_corpus!();
        let mut t = Tally::new("dockerignore compile.tsv (match types)");
        for line in read(corpus().join("dockerignore/compile.tsv")).lines() {
            if line.starts_with('#') {
                continue;
            }
            let c: Vec<&str> = line.split('\t').collect();
            let pm = PatternMatcher::new(&[c[0]]).unwrap();
            let got = berth_dockerfile::dockerignore::debug_match_type(&pm.patterns()[0]);
            t.check(got == c[1], || format!("{}: got {got} want {}", c[0], c[1]));
        }
        t.finish(21);
    }

    #[test]
    fn walk_cases() {
        skip_without_corpus!();
        let mut t = Tally::new("dockerignore walk_cases (root-runnable)");
        let mut skipped = Vec::new();
        for line in read(corpus().join("dockerignore/walk_cases.jsonl")).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = v["id"].as_str().unwrap().to_string();
            if v.get("requires").is_some() && v.get("expect_error").is_some() {
                // Expects a permission error from an unreadable directory,
                // which root can always read. The rows that expect a
                // successful walk still run (the directory is readable).
                skipped.push(id);
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            for e in v["tree"].as_array().unwrap() {
                let p = dir.path().join(e["path"].as_str().unwrap());
                if e["type"] == "dir" {
                    fs::create_dir_all(&p).unwrap();
                } else {
                    fs::create_dir_all(p.parent().unwrap()).unwrap();
                    fs::write(&p, b"").unwrap();
                }
            }
            let strs = |k: &serde_json::Value| -> Vec<String> {
                k.as_array().map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect()).unwrap_or_default()
            };
            if let Some(di) = v["dockerignore"].as_str() {
                let got = read_ignore_file(di);
                let want = strs(&v["exclude"]);
                t.check(got == want, || format!("{id}: ignorefile {got:?} want {want:?}"));
            }
            let specs: Vec<(Vec<String>, Vec<String>)> = match v["layers"].as_array() {
                Some(ls) => ls.iter().map(|l| (strs(&l["include"]), strs(&l["exclude"]))).collect(),
                None => vec![(strs(&v["include"]), strs(&v["exclude"]))],
            };
            let filters: Result<Vec<Filter>, _> = specs.iter().map(|(i, e)| Filter::new(i, e)).collect();
            let mut filters = match filters {
                Ok(f) => f,
                Err(e) => {
                    t.check(v.get("expect_error").is_some(), || format!("{id}: filter error {e}"));
                    continue;
                }
            };
            let mut got = Vec::new();
            let r = walk_filtered(dir.path(), &mut filters, &mut |p, k| {
                got.push(format!("{} {p}", if k == EntryKind::Dir { "dir" } else { "file" }));
                Ok(Control::Continue)
            });
            if v.get("expect_error").is_some() {
                t.check(r.is_err(), || format!("{id}: expected an error"));
                continue;
            }
            t.check(r.is_ok(), || format!("{id}: walk error {r:?}"));
            if let Some(exp) = v["expect"].as_array() {
                let want: Vec<String> = exp.iter().map(|x| x.as_str().unwrap().to_string()).collect();
                t.check(got == want, || format!("{id}: got {got:?} want {want:?}"));
            }
            if let Some(open) = v["open"].as_object() {
                for (p, w) in open {
                    let ok = filters[0].allows(p).unwrap();
                    t.check(ok == (w == "ok"), || format!("{id}: open {p} got {ok} want {w}"));
                }
            }
        }
        println!("walk cases skipped (need a permission error, impossible as root): {skipped:?}");
        t.finish(34);
    }
}
