//! The low-level Dockerfile parser (BuildKit's `frontend/dockerfile/parser`):
//! directives, line continuation, comments, flags, per-instruction argument
//! rules, JSON vs shell form, heredocs, line ranges, and the AST dump.

use serde::Serialize;

use crate::error::{Error, LineRange, Result};
use crate::shell::{Lexer, NoEnv};
use crate::util::{go_lower, go_quote, is_space, is_space_byte};

/// Longest physical line accepted (Go's `bufio.MaxScanTokenSize`).
const MAX_LINE: usize = 64 * 1024;

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The terminator word after quote removal.
    pub name: String,
    /// File descriptor written before `<<` (0 if none).
    pub fd: u64,
    /// `false` when any part of the terminator was quoted.
    pub expand: bool,
    /// `<<-` form: leading tabs are stripped from the body later.
    pub chomp: bool,
    /// The body exactly as read, each line with its own line ending.
    pub content: String,
}

/// One parsed instruction (a child of BuildKit's root node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The keyword as written (original case).
    pub keyword: String,
    /// `--flag[=value]` words, complete with the leading `--`.
    pub flags: Vec<String>,
    /// Argument values (for ONBUILD: empty; see `sub`).
    pub args: Vec<String>,
    /// Arguments came from a JSON array.
    pub json: bool,
    /// The instruction wrapped by ONBUILD.
    pub sub: Option<Box<Node>>,
    pub heredocs: Vec<Heredoc>,
    /// The logical line (after continuation joining).
    pub original: String,
    pub range: LineRange,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

impl Node {
    /// The keyword in lower case (`run`, `copy`, ...).
    pub fn cmd(&self) -> String {
        go_lower(&self.keyword)
    }

    /// BuildKit's `nodeArgs`: for ONBUILD the wrapped keyword followed by
    /// its arguments.
    pub fn all_args(&self) -> Vec<String> {
        match &self.sub {
            Some(s) => {
                let mut v = vec![s.cmd()];
                v.extend(s.all_args());
                v
            }
            None => self.args.clone(),
        }
    }

    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.sub, self.cmd().as_str()) {
            (Some(s), "onbuild") => s.as_ref(),
            _ => self,
        };
        matches!(node.cmd().as_str(), "run" | "copy" | "add") && !node.json
    }

    /// One entry of BuildKit's AST dump, without parentheses.
    fn dump_inner(&self) -> String {
        let mut s = go_lower(&self.keyword);
        if !self.flags.is_empty() {
            let q: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", q.join(" ")));
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        if let Some(sub) = &self.sub {
            s.push_str(&format!(" ({})", sub.dump_inner()));
        }
        s.trim().to_string()
    }
}

/// A parser directive found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// Lower-case name: `syntax`, `escape` or `check`.
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// A non-fatal parser finding (empty continuation lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub short: String,
    pub detail: Vec<String>,
    pub url: String,
    pub range: LineRange,
}

/// The parse result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    pub nodes: Vec<Node>,
    pub escape: char,
    pub directives: Vec<Directive>,
    pub warnings: Vec<Warning>,
    /// Lines spanned by all instructions.
    pub range: LineRange,
    /// The source text (lossily decoded), kept for error rendering and lint.
    #[serde(skip)]
    pub source: String,
}

impl Dockerfile {
    /// The value of a directive, if present.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives.iter().find(|d| d.name == name).map(|d| d.value.as_str())
    }

    /// BuildKit's AST dump: one `(...)` line per instruction.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out.push('(');
            out.push_str(&n.dump_inner());
            out.push_str(")\n");
        }
        out
    }
}

/// The AST dump of a Dockerfile, exactly like BuildKit's dumper (each
/// instruction on its own line). Parse errors are returned as errors.
pub fn dump_ast(source: &[u8]) -> Result<String> {
    Ok(parse(source)?.dump())
}

struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
    found: Vec<Directive>,
    line: usize,
}

impl Directives {
    /// Returns whether `line` was a recognised directive.
    fn possible(&mut self, token: &str) -> Result<bool, String> {
        self.line += 1;
        if self.done {
            return Ok(false);
        }
        let Some(rest) = token.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let rest = rest.trim_start_matches(is_space);
        let Some((name, value)) = match_directive(rest) else {
            self.done = true;
            return Ok(false);
        };
        let k = name.to_ascii_lowercase();
        if !matches!(k.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&k) {
            return Err(format!("only one {k} parser directive can be used"));
        }
        self.seen.push(k.clone());
        self.found.push(Directive { name: k.clone(), value: value.clone(), line: self.line });
        if k == "escape" {
            if value != "`" && value != "\\" {
                return Err(format!("invalid escape token '{value}' does not match ` or \\"));
            }
            self.escape = if value == "`" { '`' } else { '\\' };
        }
        Ok(true)
    }
}

/// Go regexp `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn match_directive(s: &str) -> Option<(String, String)> {
    let b = s.as_bytes();
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let n = b.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    let name = &s[..n];
    let rest = s[n..].trim_start_matches(is_re_space);
    let rest = rest.strip_prefix('=')?;
    if rest.is_empty() || rest.contains('\n') {
        return None;
    }
    let trimmed = rest.trim_start_matches(is_re_space);
    let value = trimmed.trim_end_matches(is_re_space);
    if value.is_empty() {
        // Only whitespace after `=`: the lazy group takes one character.
        let c = rest.chars().next()?;
        return Some((name.to_string(), c.to_string()));
    }
    Some((name.to_string(), value.to_string()))
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start_matches(is_space).starts_with('#')
}

/// Removes a trailing continuation escape; returns (line, is_end_of_line).
fn trim_continuation(line: &str, esc: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(esc) {
        match before.chars().last() {
            None => return (String::new(), false),
            Some(p) if p != esc => return (before.to_string(), false),
            _ => {}
        }
    }
    (line.to_string(), true)
}

/// Parses a Dockerfile. The input may have a UTF-8 BOM and CRLF line
/// endings; invalid UTF-8 is decoded lossily.
pub fn parse(source: &[u8]) -> Result<Dockerfile> {
    let text = String::from_utf8_lossy(source).into_owned();
    parse_str(text)
}

fn split_lines(text: &str) -> Vec<&str> {
    let mut v = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(i) => {
                v.push(&rest[..=i]);
                rest = &rest[i + 1..];
            }
            None => {
                v.push(rest);
                rest = "";
            }
        }
    }
    v
}

fn parse_str(text: String) -> Result<Dockerfile> {
    let mut all_lines = split_lines(&text);
    let mut too_long = None;
    if let Some(i) = all_lines.iter().position(|l| l.len() > MAX_LINE) {
        too_long = Some(i);
        all_lines.truncate(i);
    }
    let lines = all_lines;
    let mut d = Directives { escape: '\\', done: false, seen: Vec::new(), found: Vec::new(), line: 0 };
    let mut nodes: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut current = 0usize;
    let mut i = 0usize;

    let process = |d: &mut Directives, tok: &str, strip: bool, at: usize| -> Result<(String, bool)> {
        let mut t = trim_newline(tok);
        if strip {
            t = t.trim_start_matches(is_space);
        }
        let ok = d.possible(t).map_err(|m| Error::parse(m, Some(LineRange::line(at.max(1)))))?;
        let out = if is_comment(t) { String::new() } else { t.to_string() };
        Ok((out, ok))
    };

    while i < lines.len() {
        let mut raw = lines[i];
        i += 1;
        if current == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        if is_comment(raw) {
            let body = raw.get(1..).unwrap_or("");
            let c = body.trim();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        let (tok, directive_ok) = process(&mut d, raw, true, current + 1)?;
        if directive_ok {
            comments.pop();
        }
        current += 1;
        let start = current;
        let (first, mut end_of_line) = trim_continuation(&tok, d.escape);
        if end_of_line && first.is_empty() {
            continue;
        }
        let mut buf = first;
        let mut has_empty = false;
        while !end_of_line && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let (tok, _) = process(&mut d, raw, false, current + 1)?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if trim_newline(&tok).trim_start_matches(is_space).is_empty() {
                has_empty = true;
                continue;
            }
            let (l, eol) = trim_continuation(&tok, d.escape);
            end_of_line = eol;
            buf.push_str(&l);
        }
        let line = buf;
        if has_empty {
            warnings.push(Warning {
                short: format!("Empty continuation line found in: {line}"),
                detail: vec!["Empty continuation lines will become errors in a future release".to_string()],
                url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/".to_string(),
                range: LineRange::line(current),
            });
        }
        let range = LineRange::new(start, current);
        let mut node = new_node_from_line(&line, d.escape, 0).map_err(|m| Error::parse(m, Some(range)))?;
        node.comments = std::mem::take(&mut comments);
        if node.can_contain_heredoc() && line.contains("<<") {
            let docs = heredocs_from_line(&line).map_err(|m| Error::parse(m, Some(range)))?;
            for mut h in docs {
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    current += 1;
                    let mut possible = trim_newline(raw);
                    if h.chomp {
                        possible = possible.trim_start_matches('\t');
                    }
                    if possible == h.name {
                        terminated = true;
                        break;
                    }
                    h.content.push_str(raw);
                }
                if !terminated {
                    return Err(Error::parse("unterminated heredoc", Some(LineRange::new(start, current))));
                }
                node.heredocs.push(h);
            }
        }
        node.original = line;
        node.range = LineRange::new(start, current);
        nodes.push(node);
        comments.clear();
    }

    let (Some(first), Some(last)) = (nodes.first(), nodes.last()) else {
        return Err(Error::parse("file with no instructions", Some(LineRange::line(current.max(1)))));
    };
    let range = LineRange::new(first.range.start, last.range.end);
    if too_long.is_some() {
        return Err(Error::parse(
            format!("dockerfile line greater than max allowed size of {}", MAX_LINE - 1),
            Some(LineRange::line(current + 1)),
        ));
    }
    Ok(Dockerfile { nodes, escape: d.escape, directives: d.found, warnings, range, source: text })
}

/// Parses one logical line into a node. `depth` limits ONBUILD nesting
/// (`ONBUILD ONBUILD ...`), which the instruction layer rejects anyway.
fn new_node_from_line(line: &str, escape: char, depth: usize) -> Result<Node, String> {
    let (cmd, flags, args) = split_command(line);
    let lower = go_lower(&cmd);
    let mut node = Node {
        keyword: cmd,
        flags,
        args: Vec::new(),
        json: false,
        sub: None,
        heredocs: Vec::new(),
        original: line.to_string(),
        range: LineRange::line(0),
        comments: Vec::new(),
    };
    match lower.as_str() {
        "add" | "copy" | "volume" => {
            let (a, j) = parse_maybe_json_to_list(&args)?;
            node.args = a;
            node.json = j;
        }
        "arg" => node.args = parse_words(&args, escape),
        "cmd" | "entrypoint" | "run" | "shell" => {
            let (a, j) = parse_maybe_json(&args)?;
            node.args = a;
            node.json = j;
        }
        "env" => node.args = parse_name_val(&args, "ENV", escape)?,
        "label" => node.args = parse_name_val(&args, "LABEL", escape)?,
        "expose" | "from" => node.args = split_ws(&args, -1),
        "healthcheck" => {
            let (a, j) = parse_health_config(&args)?;
            node.args = a;
            node.json = j;
        }
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if !args.is_empty() {
                node.args = vec![args];
            }
        }
        "onbuild" => {
            if !args.is_empty() {
                if depth > 64 {
                    return Err("ONBUILD nested too deeply".to_string());
                }
                node.sub = Some(Box::new(new_node_from_line(&args, escape, depth + 1)?));
            }
        }
        _ => node.args = vec![String::new()],
    }
    Ok(node)
}

/// `[\t\v\f\r ]`
fn is_token_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Go's `regexp.MustCompile("[\t\v\f\r ]+").Split(s, n)`.
pub(crate) fn split_ws(s: &str, n: isize) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    // Collect matches (non-empty runs).
    let mut matches = Vec::new();
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if is_token_ws(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, c2)) = it.peek() {
                if !is_token_ws(c2) {
                    break;
                }
                end = j + c2.len_utf8();
                it.next();
            }
            matches.push((i, end));
            if n > 0 && matches.len() as isize >= n {
                break;
            }
        }
    }
    let mut out = Vec::new();
    let mut beg = 0;
    let mut end = 0;
    for (a, b) in matches {
        if n > 0 && out.len() as isize == n - 1 {
            break;
        }
        end = a;
        if b != 0 {
            out.push(s[beg..end].to_string());
        }
        beg = b;
    }
    if end != s.len() {
        out.push(s[beg..].to_string());
    }
    out
}

/// Splits `line` into (keyword, flags, rest).
fn split_command(line: &str) -> (String, Vec<String>, String) {
    let trimmed = line.trim_matches(is_space);
    let parts = split_ws(trimmed, 2);
    let cmd = parts.first().cloned().unwrap_or_default();
    let mut flags = Vec::new();
    let mut args = String::new();
    if let Some(rest) = parts.get(1) {
        let (a, f) = extract_builder_flags(rest);
        args = a;
        flags = f;
    }
    (cmd, flags, args.trim_matches(is_space).to_string())
}

/// BuildKit's `extractBuilderFlags`, byte by byte like the Go code (a
/// non-ASCII byte inside a flag becomes the Latin-1 character of that byte).
fn extract_builder_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let rest_from = |pos: usize| String::from_utf8_lossy(&b[pos..]).into_owned();
    let mut words: Vec<String> = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0usize;
    while pos <= b.len() {
        let ch = b.get(pos).copied().unwrap_or(0);
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if is_space_byte(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (rest_from(pos), words);
            }
            phase = Phase::Word;
        }
        if pos == b.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space_byte(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (rest_from(pos), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if c == b'\\' {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            word.push(char::from(c));
            pos += 1;
            continue;
        }
        // in quote
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if c == b'\\' {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(char::from(c));
        pos += 1;
    }
    (String::new(), words)
}

/// Quote-aware word splitting for ENV, LABEL and ARG (quotes are kept).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut sb = String::new();
    let mut pos = 0usize;
    while pos <= n {
        let mut ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == n {
            if blank_ok || !sb.is_empty() {
                words.push(std::mem::take(&mut sb));
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !sb.is_empty() {
                    words.push(std::mem::take(&mut sb));
                }
                sb.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                sb.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            sb.push(ch);
            pos += 1;
            continue;
        }
        // in quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            sb.push(ch);
            ch = chars[pos];
        }
        sb.push(ch);
        pos += 1;
    }
    words
}

fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let parts = split_ws(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(vec![parts[0].clone(), parts[1].clone(), String::new()]);
    }
    let mut out = Vec::new();
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!("Syntax error - can't find = in {}. Must be of the form: name=value", go_quote(w)));
        };
        out.push(k.to_string());
        out.push(v.to_string());
        out.push("=".to_string());
    }
    Ok(out)
}

enum JsonErr {
    NotArray,
    NotStrings,
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

fn parse_json(rest: &str) -> Result<Vec<String>, JsonErr> {
    let rest = rest.trim_start_matches(is_space);
    if !rest.starts_with('[') {
        return Err(JsonErr::NotArray);
    }
    let v: serde_json::Value = serde_json::from_str(rest).map_err(|_| JsonErr::NotArray)?;
    let serde_json::Value::Array(items) = v else {
        return Err(JsonErr::NotArray);
    };
    items
        .into_iter()
        .map(|i| match i {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(JsonErr::NotStrings),
        })
        .collect()
}

fn parse_maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Ok(v) => Ok((v, true)),
        Err(JsonErr::NotStrings) => Err(NOT_STRINGS.to_string()),
        Err(JsonErr::NotArray) => Ok((vec![rest.to_string()], false)),
    }
}

fn parse_maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), String> {
    match parse_json(rest) {
        Ok(v) => Ok((v, true)),
        Err(JsonErr::NotStrings) => Err(NOT_STRINGS.to_string()),
        Err(JsonErr::NotArray) => Ok((split_ws(rest, -1), false)),
    }
}

fn parse_health_config(rest: &str) -> Result<(Vec<String>, bool), String> {
    let b = rest.as_bytes();
    let sep = b.iter().position(|c| is_space_byte(*c)).unwrap_or(b.len());
    let next = b[sep..].iter().position(|c| !is_space_byte(*c)).map_or(b.len(), |p| sep + p);
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let typ = String::from_utf8_lossy(&b[..sep]).into_owned();
    let tail = String::from_utf8_lossy(&b[next..]).into_owned();
    let (cmd, json) = parse_maybe_json(&tail)?;
    let mut v = vec![typ];
    v.extend(cmd);
    Ok((v, json))
}

/// Recognises one heredoc marker word (`[fd]<<[-]WORD`); `Ok(None)` when
/// the word is not a marker.
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, String> {
    let digits = src.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after) = src[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let fd = if digits == 0 { 0 } else { src[..digits].parse::<u64>().unwrap_or(u64::MAX) };
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &NoEnv).map_err(|e| e.message)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &NoEnv).map_err(|e| e.message)?;
    if raw.len() != words.len() {
        return Err(format!("internal lexing of heredoc produced inconsistent results: {rest}"));
    }
    let count = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        name: words[0].clone(),
        fd,
        expand: count(&words[0]) == count(&raw[0]),
        chomp,
        content: String::new(),
    }))
}

/// Finds heredoc markers in an instruction line, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let mut w = words[i].clone();
        // A bare `<<` / `<<-` marker takes the next word as its terminator.
        let d = w.bytes().take_while(u8::is_ascii_digit).count();
        if (w[d..] == *"<<" || w[d..] == *"<<-") && i + 1 < words.len() {
            w.push(' ');
            w.push_str(&words[i + 1]);
            i += 1;
        }
        if let Some(h) = parse_heredoc(&w)? {
            docs.push(h);
        }
        i += 1;
    }
    Ok(docs)
}

/// Removes leading tabs from every line (`<<-` heredocs).
pub fn chomp_heredoc_content(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for l in s.split_inclusive('\n') {
        out.push_str(l.trim_start_matches('\t'));
    }
    out
}

/// Parses an ONBUILD trigger expression (from a base image config) into a
/// node, as BuildKit does when it injects triggers after `FROM`. The
/// expression may carry heredoc bodies on following lines.
pub fn parse_trigger(expression: &str) -> Result<Node> {
    let df = parse(expression.as_bytes())?;
    let mut nodes = df.nodes;
    if nodes.len() != 1 {
        return Err(Error::parse(format!("invalid ONBUILD trigger: {}", go_quote(expression)), None));
    }
    Ok(nodes.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_rest() {
        let (r, f) = extract_builder_flags("--a=1 --b \"x y\" rest");
        assert_eq!(f, vec!["--a=1", "--b"]);
        assert_eq!(r, "\"x y\" rest");
        let (r, f) = extract_builder_flags("-- foo");
        assert!(f.is_empty());
        assert_eq!(r, " foo");
    }

    #[test]
    fn split_ws_like_go() {
        assert_eq!(split_ws("a  b c", 2), vec!["a", "b c"]);
        assert_eq!(split_ws(" a ", -1), vec!["", "a", ""]);
    }

    #[test]
    fn crlf_and_bom() {
        let df = parse(b"\xef\xbb\xbfFROM a\r\nRUN x \\\r\n y\r\n").unwrap();
        assert_eq!(df.dump(), "(from \"a\")\n(run \"x  y\")\n");
        assert_eq!(df.nodes[1].range, LineRange::new(2, 3));
    }

    #[test]
    fn directives() {
        assert!(parse(b"# escape=x\nFROM a").is_err());
        assert!(parse(b"# syntax=a\n# syntax=b\nFROM a").is_err());
        let df = parse(b"# Check=skip=all\n#escape=`\nFROM a").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.directive("check"), Some("skip=all"));
    }
}
