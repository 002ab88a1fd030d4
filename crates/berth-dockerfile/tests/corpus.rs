//! Conformance harness over the shared BuildKit / dockerignore corpus.
//! The corpus is read at test time from `BERTH_CORPUS_DIR` or
//! `<repo>/../shared/corpus`; a missing corpus fails loudly.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;

use berth_dockerfile::parser::{heredocs_from_line, parse, parse_heredoc};
use berth_dockerfile::shell::Lexer;

fn corpus() -> PathBuf {
    let p = match std::env::var_os("BERTH_CORPUS_DIR") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    assert!(
        p.join("buildkit/FORMAT.md").is_file() && p.join("dockerignore/FORMAT.md").is_file(),
        "conformance corpus not found at {} (set BERTH_CORPUS_DIR)",
        p.display()
    );
    p
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
        Tally {
            name,
            pass: 0,
            fail: Vec::new(),
        }
    }
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.pass += 1;
        } else {
            self.fail.push(what());
        }
    }
    fn finish(self, expected_min: usize) {
        println!(
            "{}: {} passed, {} failed",
            self.name,
            self.pass,
            self.fail.len()
        );
        for f in &self.fail {
            println!("  FAIL {f}");
        }
        assert!(self.fail.is_empty(), "{} failures in {}", self.fail.len(), self.name);
        assert!(self.pass >= expected_min, "{}: too few cases ran ({})", self.name, self.pass);
    }
}

#[test]
fn parser_positive_cases() {
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
    let base = corpus().join("buildkit/parser/empty-continuation");
    let df = parse(&fs::read(base.join("Dockerfile")).unwrap()).unwrap();
    let exp: serde_json::Value = serde_json::from_str(&read(base.join("expected.json"))).unwrap();
    let mut t = Tally::new("empty continuation warnings");
    let count = exp["warning_count"].as_u64().unwrap() as usize;
    t.check(df.warnings.len() == count, || {
        format!("count {} want {count}", df.warnings.len())
    });
    for (i, w) in exp["warnings"].as_array().unwrap().iter().enumerate() {
        let Some(got) = df.warnings.get(i) else { continue };
        for s in w["short_contains"].as_array().unwrap() {
            let s = s.as_str().unwrap();
            t.check(got.short.contains(s), || format!("warning {i}: {:?} lacks {s:?}", got.short));
        }
        if let Some(d) = w["detail0_contains"].as_str() {
            t.check(got.detail.first().is_some_and(|x| x.contains(d)), || {
                format!("warning {i}: detail lacks {d:?}")
            });
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
            let got: Vec<String> = heredocs_from_line(input)
                .map(|v| v.into_iter().map(|h| h.name).collect())
                .unwrap_or_default();
            t.check(got == want, || format!("line {input:?}: got {got:?} want {want:?}"));
        }
    }
    t.finish(58);
}

#[test]
fn shell_env_var_test() {
    let text = read(corpus().join("buildkit/shell/envVarTest"));
    let env: HashMap<String, String> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
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
        let ok = if f[2] == "error" {
            r.is_err()
        } else {
            r.as_deref() == Ok(f[2])
        };
        t.check(ok, || format!("{:?}: got {r:?} want {:?}", f[1], f[2]));
    }
    t.finish(228);
}

#[test]
fn shell_words_test() {
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
        let ok = if want == ["error"] {
            r.is_err()
        } else {
            r.as_ref().ok() == Some(&want)
        };
        t.check(ok, || format!("{input:?}: got {r:?} want {want:?}"));
    }
    t.finish(24);
}

#[test]
fn shell_process_word_tsv() {
    let text = read(corpus().join("buildkit/shell/processWord.tsv"));
    let lex = Lexer::new('\\');
    let mut t = Tally::new("shell processWord.tsv");
    let set = |s: &str| -> Option<BTreeSet<String>> {
        if s == "-" {
            None
        } else {
            Some(s.split(',').filter(|x| !x.is_empty()).map(String::from).collect())
        }
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
