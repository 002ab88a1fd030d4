//! Shell-word expansion, exactly as BuildKit's `frontend/dockerfile/shell`
//! lexer: quotes, escapes, `$V`, `${V}` and the `${V<op>word}` forms.
//!
//! The expander never runs a shell: it only substitutes variables from the
//! environment it is given and removes quotes. It also reports which variable
//! names were looked up and found (`matched`) or not found (`unmatched`),
//! which the builder uses for cache keys and the linter for `UndefinedVar`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::util::{go_quote, is_digit, is_letter, is_space};

/// Variables visible to the expander.
pub trait Env {
    /// The value of `name`, or `None` when it is unset.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An ordered `NAME=value` list; the last definition of a name wins.
impl Env for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// No variables at all.
pub struct NoEnv;

impl Env for NoEnv {
    fn lookup(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// An expansion failure. `message` is BuildKit's text, e.g.
/// `failed to process "${X:?}": X: is not allowed to be empty`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    pub message: String,
}

/// The outcome of processing one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// Single-word result (quotes removed, whitespace kept).
    pub result: String,
    /// Word-split result.
    pub words: Vec<String>,
    /// Variables that were looked up and were set (possibly empty).
    pub matched: BTreeSet<String>,
    /// Variables that were looked up and were unset.
    pub unmatched: BTreeSet<String>,
}

/// The lexer configuration (`shell.Lex`).
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    pub raw_quotes: bool,
    pub raw_escapes: bool,
    pub skip_process_quotes: bool,
    pub skip_unset_env: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer { escape, raw_quotes: false, raw_escapes: false, skip_process_quotes: false, skip_unset_env: false }
    }

    /// Expands `word` in single-word mode.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        self.process(word, env).map(|p| p.result)
    }

    /// Expands `word` and splits the result into words.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        self.process(word, env).map(|p| p.words)
    }

    /// Expands `word`, returning both forms and the variables used.
    pub fn process(&self, word: &str, env: &dyn Env) -> Result<Processed, ShellError> {
        let mut chars: Vec<char> = word.chars().collect();
        // text/scanner drops a byte-order mark at the very start of its input.
        if chars.first() == Some(&'\u{feff}') {
            chars.remove(0);
        }
        let mut sw = ShellWord {
            lex: *self,
            chars,
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            depth: 0,
        };
        let raw = sw.raw_escapes;
        match sw.process_stop_on(None, raw) {
            Ok((result, words)) => Ok(Processed { result, words, matched: sw.matched, unmatched: sw.unmatched }),
            Err(e) => Err(ShellError { message: format!("failed to process {}: {}", go_quote(word), e) }),
        }
    }
}

struct ShellWord<'a> {
    lex: Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    depth: usize,
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if is_space(ch) && self.in_word {
            if !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else if !is_space(ch) {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn get_words(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

/// Nesting limit for `${a:-${b:-...}}`, to keep hostile input from
/// exhausting the stack.
const MAX_DEPTH: usize = 256;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> (String, bool) {
        match self.env.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                (v.to_string(), true)
            }
            None => {
                self.unmatched.insert(name.to_string());
                (String::new(), false)
            }
        }
    }

    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.get_words()));
            }
            if ch == '$' {
                let tmp = self.process_dollar()?;
                result.push_str(&tmp);
                words.add_string(&tmp);
            } else if !self.lex.skip_process_quotes && (ch == '\'' || ch == '"') {
                let tmp = if ch == '\'' { self.process_single_quote()? } else { self.process_double_quote()? };
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
            } else {
                let mut ch = match self.next() {
                    Some(c) => c,
                    None => break,
                };
                if ch == self.lex.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    ch = match self.next() {
                        Some(c) => c,
                        None => break,
                    };
                    words.add_raw_char(ch);
                } else {
                    words.add_char(ch);
                }
                result.push(ch);
            }
        }
        if let Some(s) = stop {
            return Err(format!("unexpected end of statement while looking for matching {s}"));
        }
        Ok((result, words.get_words()))
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let q = self.next();
        if self.lex.raw_quotes
            && let Some(q) = q
        {
            result.push(q);
        }
        loop {
            match self.next() {
                None => {
                    return Err("unexpected end of statement while looking for matching single-quote".to_string());
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let q = self.next();
        if self.lex.raw_quotes
            && let Some(q) = q
        {
            result.push(q);
        }
        loop {
            match self.peek() {
                None => {
                    return Err("unexpected end of statement while looking for matching double-quote".to_string());
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = match self.next() {
                        Some(c) => c,
                        None => continue,
                    };
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lex.escape => {
                                self.next();
                                ch = n;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("syntax error: substitutions nested too deeply".to_string());
        }
        let r = self.process_dollar_inner();
        self.depth -= 1;
        r
    }

    fn process_dollar_inner(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            let (value, found) = self.get_env(&name);
            if !found && self.lex.skip_unset_env {
                return Ok(format!("${name}"));
            }
            return Ok(value);
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            _ => {}
        }
        let name = self.process_name();
        let first = self.next();
        let mut chs = rune_str(first);
        match first {
            Some('}') => {
                let (value, set) = self.get_env(&name);
                if !set && self.lex.skip_unset_env {
                    return Ok(format!("${{{name}}}"));
                }
                Ok(value)
            }
            Some(c @ (':' | '+' | '-' | '?' | '#' | '%')) => {
                let mut null_is_unset = false;
                let mut ch = Some(c);
                if c == ':' {
                    null_is_unset = true;
                    ch = self.next();
                    chs.push_str(&rune_str(ch));
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.process_stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".to_string());
                        }
                        return Err(e);
                    }
                };
                let (value, set) = self.get_env(&name);
                if self.lex.skip_unset_env && !set {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                match ch {
                    Some('-') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(word)
                        } else {
                            Ok(value)
                        }
                    }
                    Some('+') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(String::new())
                        } else {
                            Ok(word)
                        }
                    }
                    Some('?') => {
                        if !set {
                            let m = if word.is_empty() { "is not allowed to be unset".to_string() } else { word };
                            return Err(format!("{name}: {m}"));
                        }
                        if null_is_unset && value.is_empty() {
                            let m = if word.is_empty() { "is not allowed to be empty".to_string() } else { word };
                            return Err(format!("{name}: {m}"));
                        }
                        Ok(value)
                    }
                    Some(op @ ('%' | '#')) => {
                        let mut pat: &str = &word;
                        let mut greedy = false;
                        if pat.starts_with(op) {
                            greedy = true;
                            pat = &pat[op.len_utf8()..];
                        }
                        if op == '%' { trim_suffix(pat, &value, greedy) } else { trim_prefix(pat, &value, greedy) }
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pattern = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '/' in ${}".to_string());
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".to_string());
                        }
                        return Err(e);
                    }
                };
                let (value, set) = self.get_env(&name);
                if self.lex.skip_unset_env && !set {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let glob = Glob::compile(&pattern, true)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                let v: Vec<char> = value.chars().collect();
                if replace_all {
                    Ok(glob.replace_all(&v, &replacement))
                } else {
                    match glob.find(&v, 0) {
                        Some((a, b)) => {
                            let mut out: String = v[..a].iter().collect();
                            out.push_str(&replacement);
                            out.extend(v[b..].iter());
                            Ok(out)
                        }
                        None => Ok(value),
                    }
                }
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek() {
                    if !is_digit(d) {
                        break;
                    }
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

/// Go's `string(rune)` of a scanner result; EOF (-1) becomes U+FFFD.
fn rune_str(c: Option<char>) -> String {
    c.unwrap_or('\u{fffd}').to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
}

/// A shell pattern (`*`, `?`, `\x`) compiled the way BuildKit converts it to
/// a Go regular expression, matched with Go's leftmost-first semantics.
/// As in Go's regexp without the `s` flag, `*` and `?` never match `\n`.
struct Glob {
    toks: Vec<Tok>,
    greedy: bool,
}

impl Glob {
    fn compile(pattern: &str, greedy: bool) -> Result<Glob, String> {
        let mut chars: Vec<char> = pattern.chars().collect();
        if chars.first() == Some(&'\u{feff}') {
            chars.remove(0);
        }
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => {
                    // Consecutive stars match exactly like one star.
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                }
                '?' => toks.push(Tok::Any),
                '\\' => {
                    let nxt = chars.get(i).copied();
                    if matches!(nxt, Some('}' | '/')) {
                        continue;
                    }
                    i += 1;
                    match nxt {
                        Some(t @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(t)),
                        other => return Err(format!("invalid escape '\\{}'", rune_str(other))),
                    }
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        // The matcher recurses once per star; refuse absurd patterns rather
        // than risk the stack.
        if toks.iter().filter(|t| **t == Tok::Star).count() > 256 {
            return Err("pattern has too many wildcards".to_string());
        }
        Ok(Glob { toks, greedy })
    }

    /// End of the first (priority-order) match starting exactly at `start`.
    fn match_at(&self, v: &[char], start: usize, memo: &mut HashMap<(usize, usize), Option<usize>>) -> Option<usize> {
        self.m(0, start, v, memo)
    }

    fn m(&self, ti: usize, pos: usize, v: &[char], memo: &mut HashMap<(usize, usize), Option<usize>>) -> Option<usize> {
        // Iterative over literal runs, recursive only at stars.
        let mut ti = ti;
        let mut pos = pos;
        loop {
            match self.toks.get(ti) {
                None => return Some(pos),
                Some(Tok::Lit(c)) => {
                    if v.get(pos) != Some(c) {
                        return None;
                    }
                    ti += 1;
                    pos += 1;
                }
                Some(Tok::Any) => match v.get(pos) {
                    Some(c) if *c != '\n' => {
                        ti += 1;
                        pos += 1;
                    }
                    _ => return None,
                },
                Some(Tok::Star) => {
                    if let Some(r) = memo.get(&(ti, pos)) {
                        return *r;
                    }
                    let mut maxk = 0;
                    while v.get(pos + maxk).is_some_and(|c| *c != '\n') {
                        maxk += 1;
                    }
                    let mut res = None;
                    if self.greedy {
                        for k in (0..=maxk).rev() {
                            if let Some(e) = self.m(ti + 1, pos + k, v, memo) {
                                res = Some(e);
                                break;
                            }
                        }
                    } else {
                        for k in 0..=maxk {
                            if let Some(e) = self.m(ti + 1, pos + k, v, memo) {
                                res = Some(e);
                                break;
                            }
                        }
                    }
                    memo.insert((ti, pos), res);
                    return res;
                }
            }
        }
    }

    /// Leftmost match at or after `from`.
    fn find(&self, v: &[char], from: usize) -> Option<(usize, usize)> {
        let mut memo = HashMap::new();
        (from..=v.len()).find_map(|s| self.match_at(v, s, &mut memo).map(|e| (s, e)))
    }

    /// Go's `Regexp.ReplaceAllString` (the replacement is a template where
    /// `$0`/`${0}` is the match and other references are empty).
    fn replace_all(&self, v: &[char], repl: &str) -> String {
        let mut out = String::new();
        let mut memo = HashMap::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= v.len() {
            let Some((a, b)) = (search..=v.len()).find_map(|s| self.match_at(v, s, &mut memo).map(|e| (s, e))) else {
                break;
            };
            out.extend(v[last_end..a].iter());
            if b > last_end || a == 0 {
                let m: String = v[a..b].iter().collect();
                out.push_str(&go_expand(repl, &m));
            }
            last_end = b;
            if search + 1 > b {
                search += 1;
            } else {
                search = b;
            }
        }
        out.extend(v[last_end..].iter());
        out
    }
}

/// Go's `regexp.Expand` for a regexp with no capture groups.
fn go_expand(template: &str, whole: &str) -> String {
    let mut out = String::new();
    let mut t = template;
    while let Some(i) = t.find('$') {
        out.push_str(&t[..i]);
        t = &t[i + 1..];
        if let Some(rest) = t.strip_prefix('$') {
            out.push('$');
            t = rest;
            continue;
        }
        let brace = t.starts_with('{');
        let body = if brace { &t[1..] } else { t };
        let name_len: usize =
            body.chars().take_while(|c| is_letter(*c) || is_digit(*c) || *c == '_').map(char::len_utf8).sum();
        if name_len == 0 || (brace && !body[name_len..].starts_with('}')) {
            out.push('$');
            continue;
        }
        let name = &body[..name_len];
        t = if brace { &body[name_len + 1..] } else { &body[name_len..] };
        let mut num: i64 = 0;
        for b in name.bytes() {
            if !b.is_ascii_digit() || num >= 100_000_000 {
                num = -1;
                break;
            }
            num = num * 10 + i64::from(b - b'0');
        }
        if name.starts_with('0') && name.len() > 1 {
            num = -1;
        }
        if num == 0 {
            out.push_str(whole);
        }
    }
    out.push_str(t);
    out
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let g = Glob::compile(pattern, greedy).map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    let v: Vec<char> = value.chars().collect();
    let mut memo = HashMap::new();
    match g.match_at(&v, 0, &mut memo) {
        Some(end) => Ok(v[end..].iter().collect()),
        None => Ok(value.to_string()),
    }
}

fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    if p.is_empty() {
        return String::new();
    }
    let last = p.len() - 1;
    let mut out = vec!['\0'; p.len()];
    let mut i = 0;
    while i <= last {
        let tok = p[i];
        let oi = last - i;
        if tok == '\\' && i != last {
            out[oi - 1] = tok;
            out[oi] = p[i + 1];
            i += 2;
        } else {
            out[oi] = tok;
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let rp = reverse_pattern(pattern);
    let rv: String = value.chars().rev().collect();
    let r = trim_prefix(&rp, &rv, greedy)?;
    Ok(r.chars().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn basics() {
        let l = Lexer::new('\\');
        let e = env(&[("A", "x y"), ("E", "")]);
        assert_eq!(l.process_word("$A-${A}", &e).unwrap(), "x y-x y");
        assert_eq!(l.process_words("a$A", &e).unwrap(), vec!["ax", "y"]);
        assert_eq!(l.process_word("${B:-d}", &e).unwrap(), "d");
        assert!(l.process_word("${E:?oops}", &e).is_err());
        let p = l.process("${A} $B", &e).unwrap();
        assert!(p.matched.contains("A") && p.unmatched.contains("B"));
    }

    #[test]
    fn nested_limit_does_not_overflow() {
        let l = Lexer::new('\\');
        let s = "${a:-".repeat(10_000);
        assert!(l.process_word(&s, &NoEnv).is_err());
    }
}
