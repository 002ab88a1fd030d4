//! Docker's `--format` templates: Go `text/template` plus docker/cli's functions (`json`, `join`,
//! `split`, `lower`, `upper`, `title`, `pad`, `truncate`).
//!
//! The engine is the `gotmpl` crate, kept behind this module so it can be replaced: no gotmpl
//! type appears in the public API. Data is a [`serde_json::Value`]; commands pass rows and inspect
//! objects with Docker's field names. Missing fields print `<no value>` (Go's map behaviour).
//!
//! What this layer adds on top of gotmpl, to behave like `docker`:
//! - unknown functions are rejected when the template is parsed (`function "foo" not defined`),
//!   as Go does, instead of when it runs;
//! - error text has Docker's shape: `template parsing error: template: :1: ...`;
//! - `json` keeps the key order of the objects it was given (Go marshals structs in declaration
//!   order), while `range`, `index` and map printing use sorted keys (Go's map order).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gotmpl::Value as GoValue;
use gotmpl::parse::{CommandNode, Expr, ListNode, Node, PipeNode};
use thiserror::Error;

/// A `--format` template that failed to parse or to execute.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// The template text is not valid (syntax error, unknown function).
    #[error("template parsing error: template: :{line}: {message}")]
    Parse {
        /// 1-based line in the template.
        line: usize,
        /// What is wrong, in Go's words where we have them.
        message: String,
    },
    /// The template is valid but failed on this data (wrong type for a function, bad index).
    /// Docker reports these with the same `template parsing error` prefix.
    #[error("template parsing error: template: :1: executing \"\": {message}")]
    Execute {
        /// What went wrong.
        message: String,
    },
    /// Writing the output failed.
    #[error("writing formatted output: {message}")]
    Io {
        /// The I/O error text.
        message: String,
    },
}

/// The functions Go's `text/template` defines.
const GO_BUILTINS: &[&str] = &[
    "and", "call", "eq", "ge", "gt", "html", "index", "js", "le", "len", "lt", "ne", "not", "or", "print", "printf",
    "println", "slice", "urlquery",
];

/// docker/cli's template functions (`templates.basicFunctions`).
pub const DOCKER_FUNCTIONS: &[&str] = &["json", "join", "lower", "pad", "split", "title", "truncate", "upper"];

/// A parsed template, reusable for many rows. `Send + Sync`.
pub struct Template {
    inner: gotmpl::Template,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").finish_non_exhaustive()
    }
}

/// Which set of Docker functions a template gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Funcs {
    /// docker/cli `basicFunctions`.
    Basic,
    /// docker/cli `HeaderFunctions`: `json`, `split`, `join`, `title`, `lower`, `upper` and
    /// `truncate` return their first argument untouched so table headers stay readable; `pad`
    /// still pads (to keep columns aligned).
    Header,
}

impl Template {
    /// Parses `src` with Go's and Docker's functions.
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        Self::parse_with(src, Funcs::Basic)
    }

    pub(crate) fn parse_with(src: &str, funcs: Funcs) -> Result<Self, TemplateError> {
        let mut t = gotmpl::Template::new("");
        t = match funcs {
            Funcs::Basic => register_basic(t),
            Funcs::Header => register_header(t),
        };
        let inner = t.parse(src).map_err(|e| parse_error(src, &e))?;
        // Go rejects unknown functions at parse time; gotmpl only at execution.
        let parser = gotmpl::parse::Parser::new(src, "{{", "}}").map_err(|e| parse_error(src, &e))?;
        let (tree, defines) = parser.parse().map_err(|e| parse_error(src, &e))?;
        check_list(src, &tree)?;
        check_nesting(src)?;
        for d in &defines {
            check_list(src, &d.body)?;
        }
        Ok(Template { inner })
    }

    /// Executes the template on `data`, appending to `out`.
    pub fn execute_to(&self, data: &serde_json::Value, out: &mut String) -> Result<(), TemplateError> {
        self.execute_ordered(data, out, true)
    }

    /// Executes the template on `data` and returns the text.
    pub fn execute(&self, data: &serde_json::Value) -> Result<String, TemplateError> {
        let mut s = String::new();
        self.execute_to(data, &mut s)?;
        Ok(s)
    }

    /// `root_ordered = false` makes `{{json .}}` sort the top-level keys, as docker/cli's list
    /// contexts marshal themselves through a map.
    pub(crate) fn execute_ordered(
        &self,
        data: &serde_json::Value,
        out: &mut String,
        root_ordered: bool,
    ) -> Result<(), TemplateError> {
        self.execute_full(data, out, root_ordered, &[])
    }

    /// Executes with Go type hints for `null`/absent fields (see [`NilKind`]), appending to `out`.
    pub fn execute_typed(
        &self,
        data: &serde_json::Value,
        types: GoTypes<'_>,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        self.execute_full(data, out, true, types)
    }

    fn execute_full(
        &self,
        data: &serde_json::Value,
        out: &mut String,
        root_ordered: bool,
        types: GoTypes<'_>,
    ) -> Result<(), TemplateError> {
        let _guard = OrderGuard::new();
        let value = convert(data, root_ordered, "", types);
        self.inner.execute_fmt(out, &value).map_err(|e| execute_error(&e))
    }
}

fn parse_error(src: &str, e: &gotmpl::TemplateError) -> TemplateError {
    match e {
        gotmpl::TemplateError::Parse { line, message, .. } | gotmpl::TemplateError::Lex { line, message, .. } => {
            TemplateError::Parse { line: *line, message: message.clone() }
        }
        other => TemplateError::Parse { line: src.lines().count().max(1), message: other.to_string() },
    }
}

fn execute_error(e: &gotmpl::TemplateError) -> TemplateError {
    let message = match e {
        gotmpl::TemplateError::Exec(m) => m.clone(),
        gotmpl::TemplateError::UndefinedFunction(f) => format!("function \"{f}\" not defined"),
        gotmpl::TemplateError::UndefinedVariable(v) => format!("undefined variable \"{v}\""),
        gotmpl::TemplateError::IndexOutOfRange { index } => {
            format!("error calling index: index out of range: {index}")
        }
        gotmpl::TemplateError::NotIterable(what) => format!("range can't iterate over {what}"),
        other => other.to_string(),
    };
    TemplateError::Execute { message }
}

fn line_of(src: &str, offset: usize) -> usize {
    src.get(..offset.min(src.len())).map_or(1, |s| s.matches('\n').count() + 1)
}

fn check_list(src: &str, list: &ListNode) -> Result<(), TemplateError> {
    for node in &list.nodes {
        match node {
            Node::List(l) => check_list(src, l)?,
            Node::Action(a) => check_pipe(src, &a.pipe)?,
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                check_pipe(src, &b.pipe)?;
                check_list(src, &b.body)?;
                if let Some(e) = &b.else_body {
                    check_list(src, e)?;
                }
            }
            Node::Template(t) => {
                if let Some(p) = &t.pipe {
                    check_pipe(src, p)?;
                }
            }
            Node::Define(d) => check_list(src, &d.body)?,
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }
    Ok(())
}

/// Go rejects a stray `{{end}}` or `{{else}}` (`unexpected {{end}}`); gotmpl ignores them. A
/// small scan of the actions' leading keywords restores Go's behaviour.
fn check_nesting(src: &str) -> Result<(), TemplateError> {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(off) = src.get(i..).and_then(|r| r.find("{{")) {
        let start = i + off;
        let mut j = start + 2;
        // Find the closing delimiter, skipping quoted strings and comments.
        let mut quote: Option<u8> = None;
        let mut end = None;
        while j < bytes.len() {
            let c = bytes.get(j).copied().unwrap_or(0);
            match quote {
                Some(q) => {
                    if c == b'\\' && q != b'`' {
                        j += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => {
                    if c == b'"' || c == b'`' || c == b'\'' {
                        quote = Some(c);
                    } else if bytes.get(j..j + 2) == Some(b"}}") {
                        end = Some(j);
                        break;
                    }
                }
            }
            j += 1;
        }
        let Some(end) = end else { return Ok(()) }; // unclosed: gotmpl reports it
        let body = src.get(start + 2..end).unwrap_or("");
        let body = body.strip_prefix('-').unwrap_or(body);
        let body = body.strip_suffix('-').unwrap_or(body).trim();
        let word: String = body.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let line = line_of(src, start);
        match word.as_str() {
            "if" | "range" | "with" | "define" | "block" => depth += 1,
            "end" | "else" if depth == 0 => {
                return Err(TemplateError::Parse { line, message: format!("unexpected {{{{{word}}}}}") });
            }
            "end" => depth -= 1,
            _ => {}
        }
        i = end + 2;
    }
    if depth > 0 {
        return Err(TemplateError::Parse { line: line_of(src, src.len()), message: "unexpected EOF".to_string() });
    }
    Ok(())
}

fn check_pipe(src: &str, pipe: &PipeNode) -> Result<(), TemplateError> {
    for cmd in &pipe.commands {
        check_command(src, cmd)?;
    }
    Ok(())
}

fn check_command(src: &str, cmd: &CommandNode) -> Result<(), TemplateError> {
    for arg in &cmd.args {
        check_expr(src, arg)?;
    }
    Ok(())
}

fn check_expr(src: &str, e: &Expr) -> Result<(), TemplateError> {
    match e {
        Expr::Identifier(pos, name) => {
            let known = GO_BUILTINS.contains(&name.as_str()) || DOCKER_FUNCTIONS.contains(&name.as_str());
            if !known {
                return Err(TemplateError::Parse {
                    line: line_of(src, pos.offset),
                    message: format!("function \"{name}\" not defined"),
                });
            }
            Ok(())
        }
        Expr::Pipe(_, p) => check_pipe(src, p),
        Expr::Chain(_, inner, _) => check_expr(src, inner),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Data conversion

/// Which Go type a field has when its JSON value is `null` or absent, for printing it as Go
/// would print the typed zero value: a nil slice prints `[]`, a nil map `map[]` (while `json`
/// still prints `null`). Without a hint, `null` prints `<no value>` (Go's `interface{}` rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NilKind {
    /// `[]T`: prints `[]`, `len` 0, `range` does nothing.
    Slice,
    /// `map[K]V`: prints `map[]`.
    Map,
}

/// Field paths (dotted, `*` for any array element) with their Go kind, e.g.
/// `("Config.Entrypoint", NilKind::Slice)`.
pub type GoTypes<'a> = &'a [(&'a str, NilKind)];

/// The slice and map fields of Docker's image inspect object (`image.InspectResponse`), so
/// `{{.Config.Entrypoint}}` prints `[]` and `{{.Config.Labels}}` `map[]` for images without them,
/// as with `docker image inspect`.
pub const IMAGE_INSPECT_TYPES: &[(&str, NilKind)] = &[
    ("RepoTags", NilKind::Slice),
    ("RepoDigests", NilKind::Slice),
    ("Config.Env", NilKind::Slice),
    ("Config.Cmd", NilKind::Slice),
    ("Config.Entrypoint", NilKind::Slice),
    ("Config.OnBuild", NilKind::Slice),
    ("Config.Shell", NilKind::Slice),
    ("Config.Labels", NilKind::Map),
    ("Config.Volumes", NilKind::Map),
    ("Config.ExposedPorts", NilKind::Map),
    ("GraphDriver.Data", NilKind::Map),
    ("RootFS.Layers", NilKind::Slice),
    ("Manifests", NilKind::Slice),
];

/// Per-execution side tables, keyed by the address of converted lists and maps. Only valid while
/// the converted value is alive (one `execute`), hence the guard that clears them.
#[derive(Default)]
struct ExecTables {
    /// Key order of JSON objects: `json` prints objects in their original order even though
    /// gotmpl's maps are sorted.
    key_order: HashMap<usize, Vec<Arc<str>>>,
    /// Typed nils (see [`NilKind`]): `json` prints them as `null`.
    nils: std::collections::HashSet<usize>,
}

thread_local! {
    static TABLES: RefCell<ExecTables> = RefCell::new(ExecTables::default());
}

struct OrderGuard;

impl OrderGuard {
    fn new() -> Self {
        TABLES.with(|t| *t.borrow_mut() = ExecTables::default());
        OrderGuard
    }
}

impl Drop for OrderGuard {
    fn drop(&mut self) {
        TABLES.with(|t| *t.borrow_mut() = ExecTables::default());
    }
}

fn map_key(m: &Arc<BTreeMap<Arc<str>, GoValue>>) -> usize {
    Arc::as_ptr(m) as usize
}

fn list_key(l: &Arc<[GoValue]>) -> usize {
    Arc::as_ptr(l) as *const u8 as usize
}

fn typed_nil(kind: NilKind) -> GoValue {
    match kind {
        NilKind::Slice => {
            let l: Arc<[GoValue]> = Arc::from(Vec::new());
            let k = list_key(&l);
            TABLES.with(|t| t.borrow_mut().nils.insert(k));
            GoValue::List(l)
        }
        NilKind::Map => {
            let m = Arc::new(BTreeMap::new());
            let k = map_key(&m);
            TABLES.with(|t| t.borrow_mut().nils.insert(k));
            GoValue::Map(m)
        }
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn kind_at(types: GoTypes<'_>, path: &str) -> Option<NilKind> {
    types.iter().find(|(p, _)| *p == path).map(|(_, k)| *k)
}

fn to_go_value(v: &serde_json::Value, ordered: bool) -> GoValue {
    convert(v, ordered, "", &[])
}

fn convert(v: &serde_json::Value, ordered: bool, path: &str, types: GoTypes<'_>) -> GoValue {
    match v {
        serde_json::Value::Null => match kind_at(types, path) {
            Some(kind) if !types.is_empty() => typed_nil(kind),
            _ => GoValue::Nil,
        },
        serde_json::Value::Bool(b) => GoValue::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                GoValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                GoValue::Uint(u)
            } else {
                GoValue::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => GoValue::String(Arc::from(s.as_str())),
        serde_json::Value::Array(a) => {
            let elem = if types.is_empty() { String::new() } else { child_path(path, "*") };
            GoValue::List(a.iter().map(|x| convert(x, true, &elem, types)).collect())
        }
        serde_json::Value::Object(o) => {
            let mut order = Vec::with_capacity(o.len());
            let mut map = BTreeMap::new();
            for (k, x) in o {
                let key: Arc<str> = Arc::from(k.as_str());
                order.push(key.clone());
                let sub = if types.is_empty() { String::new() } else { child_path(path, k) };
                map.insert(key, convert(x, true, &sub, types));
            }
            // Typed fields that are absent still have their zero value in Go.
            for (p, kind) in types {
                let Some(name) =
                    (if path.is_empty() { Some(*p) } else { p.strip_prefix(path).and_then(|r| r.strip_prefix('.')) })
                else {
                    continue;
                };
                if !name.contains('.') && !o.contains_key(name) {
                    map.insert(Arc::from(name), typed_nil(*kind));
                }
            }
            let m = Arc::new(map);
            if ordered {
                TABLES.with(|t| t.borrow_mut().key_order.insert(map_key(&m), order));
            }
            GoValue::Map(m)
        }
    }
}

/// Go's `json.Marshal` with HTML escaping off (docker/cli's `json` function).
fn write_json(v: &GoValue, out: &mut String) -> Result<(), gotmpl::TemplateError> {
    match v {
        GoValue::Nil => out.push_str("null"),
        GoValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        GoValue::Int(i) => out.push_str(&i.to_string()),
        GoValue::Uint(u) => out.push_str(&u.to_string()),
        GoValue::Float(f) => {
            let n = serde_json::Number::from_f64(*f)
                .ok_or_else(|| gotmpl::TemplateError::Exec(format!("json: unsupported value: {f}")))?;
            out.push_str(&n.to_string());
        }
        GoValue::String(s) => write_json_string(s, out),
        GoValue::List(items) if TABLES.with(|t| t.borrow().nils.contains(&list_key(items))) => {
            out.push_str("null");
        }
        GoValue::Map(m) if TABLES.with(|t| t.borrow().nils.contains(&map_key(m))) => {
            out.push_str("null");
        }
        GoValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out)?;
            }
            out.push(']');
        }
        GoValue::Map(m) => {
            let order = TABLES.with(|t| t.borrow().key_order.get(&map_key(m)).cloned());
            out.push('{');
            let mut first = true;
            let mut entry = |k: &str, val: &GoValue, out: &mut String| {
                if !first {
                    out.push(',');
                }
                first = false;
                write_json_string(k, out);
                out.push(':');
                write_json(val, out)
            };
            match order {
                Some(keys) => {
                    for k in keys {
                        if let Some(val) = m.get(&k) {
                            entry(&k, val, out)?;
                        }
                    }
                }
                None => {
                    for (k, val) in m.iter() {
                        entry(k, val, out)?;
                    }
                }
            }
            out.push('}');
        }
        GoValue::Function(_) => {
            return Err(gotmpl::TemplateError::Exec("error calling json: json: unsupported type: func".to_string()));
        }
    }
    Ok(())
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go escapes these two for JavaScript safety even with HTML escaping off.
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Serializes `v` as Go's `json.Marshal` would for the same data (order kept, no HTML escaping).
pub fn to_go_json(v: &serde_json::Value) -> String {
    let _guard = OrderGuard::new();
    let g = to_go_value(v, true);
    let mut s = String::new();
    if write_json(&g, &mut s).is_err() {
        // Only floats that are not finite fail, and serde_json cannot hold those.
        s = "null".to_string();
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Functions

fn type_name(v: &GoValue) -> &'static str {
    match v {
        GoValue::Nil => "<nil>",
        GoValue::Bool(_) => "bool",
        GoValue::Int(_) => "int",
        GoValue::Uint(_) => "uint",
        GoValue::Float(_) => "float64",
        GoValue::String(_) => "string",
        GoValue::List(_) => "[]interface {}",
        GoValue::Map(_) => "map[string]interface {}",
        GoValue::Function(_) => "func",
    }
}

fn arg<'a>(name: &str, args: &'a [GoValue], i: usize, want: usize) -> gotmpl::Result<&'a GoValue> {
    if args.len() != want {
        return Err(gotmpl::TemplateError::Exec(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        )));
    }
    args.get(i).ok_or_else(|| gotmpl::TemplateError::Exec(format!("wrong number of args for {name}: want {want}")))
}

fn str_arg(name: &str, args: &[GoValue], i: usize, want: usize) -> gotmpl::Result<Arc<str>> {
    match arg(name, args, i, want)? {
        GoValue::String(s) => Ok(s.clone()),
        other => Err(gotmpl::TemplateError::Exec(format!(
            "error calling {name}: wrong type for value; expected string; got {}",
            type_name(other)
        ))),
    }
}

fn int_arg(name: &str, args: &[GoValue], i: usize, want: usize) -> gotmpl::Result<i64> {
    match arg(name, args, i, want)? {
        GoValue::Int(n) => Ok(*n),
        GoValue::Uint(n) => i64::try_from(*n)
            .map_err(|_| gotmpl::TemplateError::Exec(format!("error calling {name}: {n} overflows int"))),
        other => Err(gotmpl::TemplateError::Exec(format!(
            "error calling {name}: wrong type for value; expected int; got {}",
            type_name(other)
        ))),
    }
}

fn string_value(s: impl Into<Arc<str>>) -> GoValue {
    GoValue::String(s.into())
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
pub(crate) fn go_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
        if c.is_ascii() {
            prev_sep = !(c.is_ascii_alphanumeric() || c == '_');
        }
    }
    out
}

fn register_basic(t: gotmpl::Template) -> gotmpl::Template {
    t.func("json", |args| {
        let v = arg("json", args, 0, 1)?;
        let mut s = String::new();
        write_json(v, &mut s)?;
        Ok(string_value(s))
    })
    .func("split", |args| {
        let s = str_arg("split", args, 0, 2)?;
        let sep = str_arg("split", args, 1, 2)?;
        let parts: Vec<GoValue> = if sep.is_empty() {
            s.chars().map(|c| string_value(c.to_string())).collect()
        } else {
            s.split(&*sep).map(string_value).collect()
        };
        Ok(GoValue::List(parts.into()))
    })
    .func("join", |args| {
        let list = arg("join", args, 0, 2)?;
        let sep = str_arg("join", args, 1, 2)?;
        match list {
            GoValue::List(items) => {
                let mut out = String::new();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&sep);
                    }
                    match item {
                        GoValue::String(s) => out.push_str(s),
                        other => out.push_str(&other.to_string()),
                    }
                }
                Ok(string_value(out))
            }
            // A missing field: Go would fail on the nil; an empty join is kinder and harmless.
            GoValue::Nil => Ok(string_value("")),
            other => Err(gotmpl::TemplateError::Exec(format!(
                "error calling join: wrong type for value; expected []string; got {}",
                type_name(other)
            ))),
        }
    })
    .func("title", |args| Ok(string_value(go_title(&str_arg("title", args, 0, 1)?))))
    .func("lower", |args| Ok(string_value(str_arg("lower", args, 0, 1)?.to_lowercase())))
    .func("upper", |args| Ok(string_value(str_arg("upper", args, 0, 1)?.to_uppercase())))
    .func("pad", pad)
    .func("truncate", |args| {
        let s = str_arg("truncate", args, 0, 2)?;
        let n = int_arg("truncate", args, 1, 2)?;
        let n = usize::try_from(n).map_err(|_| {
            gotmpl::TemplateError::Exec(format!("error calling truncate: slice bounds out of range [:{n}]"))
        })?;
        if s.len() < n {
            return Ok(GoValue::String(s));
        }
        // Go slices bytes; we stop at the last character boundary so the output stays UTF-8.
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Ok(string_value(s.get(..end).unwrap_or_default()))
    })
}

fn pad(args: &[GoValue]) -> gotmpl::Result<GoValue> {
    let s = str_arg("pad", args, 0, 3)?;
    let prefix = int_arg("pad", args, 1, 3)?;
    let suffix = int_arg("pad", args, 2, 3)?;
    if s.is_empty() {
        return Ok(GoValue::String(s));
    }
    let count = |n: i64| -> gotmpl::Result<usize> {
        usize::try_from(n)
            .map_err(|_| gotmpl::TemplateError::Exec("error calling pad: strings: negative Repeat count".to_string()))
    };
    Ok(string_value(format!("{}{}{}", " ".repeat(count(prefix)?), s, " ".repeat(count(suffix)?))))
}

fn register_header(t: gotmpl::Template) -> gotmpl::Template {
    let first = |args: &[GoValue]| -> gotmpl::Result<GoValue> {
        Ok(match args.first() {
            Some(GoValue::String(s)) => GoValue::String(s.clone()),
            Some(other) => string_value(other.to_string()),
            None => string_value(""),
        })
    };
    t.func("json", first)
        .func("split", first)
        .func("join", first)
        .func("title", first)
        .func("lower", first)
        .func("upper", first)
        .func("truncate", first)
        .func("pad", pad)
}

/// The top-level field names a template reads from `.` (`{{.Repository}}` → `Repository`), in
/// order of appearance, for building table headers.
pub(crate) fn referenced_fields(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(parser) = gotmpl::parse::Parser::new(src, "{{", "}}") else {
        return out;
    };
    let Ok((tree, _)) = parser.parse() else {
        return out;
    };
    fields_in_list(&tree, &mut out);
    out
}

fn fields_in_list(list: &ListNode, out: &mut Vec<String>) {
    for node in &list.nodes {
        match node {
            Node::List(l) => fields_in_list(l, out),
            Node::Action(a) => fields_in_pipe(&a.pipe, out),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                fields_in_pipe(&b.pipe, out);
                fields_in_list(&b.body, out);
                if let Some(e) = &b.else_body {
                    fields_in_list(e, out);
                }
            }
            _ => {}
        }
    }
}

fn fields_in_pipe(pipe: &PipeNode, out: &mut Vec<String>) {
    for cmd in &pipe.commands {
        for a in &cmd.args {
            match a {
                Expr::Field(_, path) => {
                    if let Some(first) = path.first()
                        && !out.iter().any(|f| f == first.as_str())
                    {
                        out.push(first.to_string());
                    }
                }
                Expr::Pipe(_, p) => fields_in_pipe(p, out),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> serde_json::Value {
        json!({
            "Id": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "RepoTags": ["nginx:latest"],
            "RepoDigests": [],
            "Size": 187_654_321,
            "Created": "2024-03-01T10:04:05.123456789Z",
            "Config": {
                "Env": ["PATH=/usr/local/sbin:/usr/bin", "X=y"],
                "Labels": {"b": "2", "a": "1", "org.opencontainers.image.version": "1.25"},
                "Cmd": ["nginx", "-g", "daemon off;"],
                "Entrypoint": null,
                "ExposedPorts": {"80/tcp": {}},
                "User": "",
                "Hostname": "",
            },
            "RootFS": {"Type": "layers", "Layers": ["sha256:aaa", "sha256:bbb"]},
            "Flag": true,
            "Ratio": 0.5,
            "Name": "Hello World",
            "Html": "<a&b>",
        })
    }

    fn run(src: &str) -> Result<String, String> {
        let t = Template::parse(src).map_err(|e| e.to_string())?;
        t.execute(&data()).map_err(|e| e.to_string())
    }

    /// The conformance table: (template, what Go + docker/cli print for the same data).
    #[test]
    fn conformance_table() {
        let cases: &[(&str, &str)] = &[
            ("{{.Id}}", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ("{{.RepoTags}}", "[nginx:latest]"),
            ("{{.RepoDigests}}", "[]"),
            ("{{.Config.Env}}", "[PATH=/usr/local/sbin:/usr/bin X=y]"),
            ("{{.Config.Labels}}", "map[a:1 b:2 org.opencontainers.image.version:1.25]"),
            ("{{.Config.ExposedPorts}}", "map[80/tcp:map[]]"),
            ("{{.Config.Entrypoint}}", "<no value>"),
            ("{{.Missing}}", "<no value>"),
            ("{{.Config.Missing}}", "<no value>"),
            ("{{.Size}}", "187654321"),
            ("{{.Flag}}", "true"),
            ("{{.Ratio}}", "0.5"),
            (r#"{{index .Config.Labels "org.opencontainers.image.version"}}"#, "1.25"),
            (r#"{{index .Config.Labels "nope"}}"#, "<no value>"),
            ("{{index .RepoTags 0}}", "nginx:latest"),
            ("{{range .Config.Env}}{{.}};{{end}}", "PATH=/usr/local/sbin:/usr/bin;X=y;"),
            (
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}",
                "a=1 b=2 org.opencontainers.image.version=1.25 ",
            ),
            ("{{range $i, $l := .RootFS.Layers}}{{$i}}:{{$l}} {{end}}", "0:sha256:aaa 1:sha256:bbb "),
            ("{{range .RepoDigests}}x{{else}}none{{end}}", "none"),
            ("{{if .Flag}}yes{{else}}no{{end}}", "yes"),
            ("{{if .Config.User}}u{{else if .Flag}}f{{else}}n{{end}}", "f"),
            ("{{if not .Config.User}}root{{end}}", "root"),
            ("{{with .RootFS}}{{.Type}}{{end}}", "layers"),
            ("{{with .Config.User}}x{{else}}empty{{end}}", "empty"),
            ("{{$t := .RootFS.Type}}{{$t}}-{{$t}}", "layers-layers"),
            ("{{.RootFS.Type | upper}}", "LAYERS"),
            (r#"{{if eq .RootFS.Type "layers"}}ok{{end}}"#, "ok"),
            (r#"{{if ne .RootFS.Type "x"}}ok{{end}}"#, "ok"),
            ("{{if gt .Size 100}}big{{end}}", "big"),
            ("{{if and .Flag .RootFS}}both{{end}}", "both"),
            ("{{or .Config.User \"root\"}}", "root"),
            ("{{len .Config.Env}} {{len .Config.Labels}}", "2 3"),
            (r#"{{printf "%.12s" .Id}}"#, "sha256:01234"),
            (
                r#"{{printf "%s|%d|%v|%q" .RootFS.Type .Size .RepoTags .Name}}"#,
                "layers|187654321|[nginx:latest]|\"Hello World\"",
            ),
            (r#"{{printf "%-8s|%8s|" "ab" "cd"}}"#, "ab      |      cd|"),
            (r#"{{print "a" "b" 1 2}}"#, "ab1 2"),
            ("{{println .RootFS.Type}}", "layers\n"),
            ("a  {{- .RootFS.Type -}}  b", "alayersb"),
            ("{{json .RepoTags}}", "[\"nginx:latest\"]"),
            ("{{json .Config.Labels}}", "{\"b\":\"2\",\"a\":\"1\",\"org.opencontainers.image.version\":\"1.25\"}"),
            ("{{json .RootFS}}", "{\"Type\":\"layers\",\"Layers\":[\"sha256:aaa\",\"sha256:bbb\"]}"),
            ("{{json .Html}}", "\"<a&b>\""),
            ("{{json .Config.Entrypoint}}", "null"),
            ("{{json .Missing}}", "null"),
            ("{{json .Size}}", "187654321"),
            (r#"{{join .Config.Cmd " "}}"#, "nginx -g daemon off;"),
            (r#"{{join .RepoTags ", "}}"#, "nginx:latest"),
            (r#"{{split "a,b,c" ","}}"#, "[a b c]"),
            (r#"{{index (split .RootFS.Type "y") 0}}"#, "la"),
            ("{{lower .Name}} {{upper .Name}}", "hello world HELLO WORLD"),
            (r#"{{title "hello wide_world foo-bar"}}"#, "Hello Wide_world Foo-Bar"),
            (r#"{{pad .RootFS.Type 2 3}}|"#, "  layers   |"),
            (r#"{{pad "" 2 3}}|"#, "|"),
            ("{{truncate .Id 12}}", "sha256:01234"),
            ("{{truncate .RootFS.Type 100}}", "layers"),
            ("{{/* comment */}}x", "x"),
            ("{{range $i, $e := .RootFS.Layers}}{{if $i}},{{end}}{{$e}}{{end}}", "sha256:aaa,sha256:bbb"),
            ("{{.Config.Env | len}}", "2"),
            (r#"{{"quoted" | printf "%q"}}"#, "\"quoted\""),
        ];
        let mut failures = Vec::new();
        for (src, want) in cases {
            match run(src) {
                Ok(got) if got == *want => {}
                other => failures.push(format!("{src:?}: want {want:?}, got {other:?}")),
            }
        }
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    #[test]
    fn json_of_root_keeps_or_sorts_order() {
        let row = json!({"Repository": "nginx", "ID": "abc", "Size": "1MB"});
        let t = Template::parse("{{json .}}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.execute(&row).unwrap(), r#"{"Repository":"nginx","ID":"abc","Size":"1MB"}"#);
        let mut s = String::new();
        t.execute_ordered(&row, &mut s, false).unwrap();
        assert_eq!(s, r#"{"ID":"abc","Repository":"nginx","Size":"1MB"}"#);
    }

    #[test]
    fn errors_look_like_docker() {
        assert_eq!(
            run("{{nosuchfunc .Id}}").unwrap_err(),
            "template parsing error: template: :1: function \"nosuchfunc\" not defined"
        );
        assert_eq!(
            run("line1\n{{.Id | bogus}}").unwrap_err(),
            "template parsing error: template: :2: function \"bogus\" not defined"
        );
        let e = run("{{.Id").unwrap_err();
        assert!(e.starts_with("template parsing error: template: :1: "), "{e}");
        assert!(e.contains("unclosed action"), "{e}");
        let e = run("{{upper .Size}}").unwrap_err();
        assert_eq!(
            e,
            "template parsing error: template: :1: executing \"\": error calling upper: wrong type for value; expected string; got int"
        );
        let e = run("{{index .RepoTags 5}}").unwrap_err();
        assert!(e.contains("index out of range"), "{e}");
        assert!(matches!(Template::parse("{{if}}"), Err(TemplateError::Parse { .. })));
    }

    #[test]
    fn stray_end_and_else_are_errors() {
        assert_eq!(run("x{{end}}").unwrap_err(), "template parsing error: template: :1: unexpected {{end}}");
        assert_eq!(run("a\n{{- else -}}").unwrap_err(), "template parsing error: template: :2: unexpected {{else}}");
        assert_eq!(run(r#"{{if .Flag}}{{"}}{{end}}"}}{{end}}"#).unwrap(), "}}{{end}}");
        assert_eq!(
            run("{{range .RepoTags}}{{if .}}{{.}}{{else}}-{{end}}{{end}}{{/* {{end}} */}}").unwrap(),
            "nginx:latest"
        );
        assert!(run("{{if .Flag}}x").unwrap_err().starts_with("template parsing error: template: :1: "));
    }

    #[test]
    fn header_functions_keep_names() {
        let t = Template::parse_with(
            r#"{{upper .A}}|{{json .B}}|{{truncate .C 1}}|{{pad .D 1 1}}|{{join .E ","}}"#,
            Funcs::Header,
        )
        .unwrap();
        let h = json!({"A": "REPOSITORY", "B": "TAG", "C": "IMAGE ID", "D": "SIZE", "E": "LABELS"});
        assert_eq!(t.execute(&h).unwrap(), "REPOSITORY|TAG|IMAGE ID| SIZE |LABELS");
    }

    #[test]
    fn referenced_fields_in_order() {
        assert_eq!(
            referenced_fields(
                "table {{.Repository}}\t{{if .CreatedSince}}{{.CreatedSince}}{{end}}\t{{json .Labels}}\t{{.Repository}}"
            ),
            vec!["Repository", "CreatedSince", "Labels"]
        );
    }

    #[test]
    fn typed_nils_print_like_go_structs() {
        let img = json!({"Id": "x", "Config": {"Entrypoint": null, "Env": ["A=b"]}, "RepoDigests": null});
        let t = Template::parse(
            "{{.Config.Entrypoint}} {{.Config.Cmd}} {{.Config.Labels}} {{len .RepoDigests}} {{.RepoTags}} {{json .Config.Entrypoint}} {{json .Config.Labels}} {{.Config.Env}} {{range .Config.Cmd}}x{{end}}|{{json .Config}}",
        )
        .unwrap();
        let mut s = String::new();
        t.execute_typed(&img, IMAGE_INSPECT_TYPES, &mut s).unwrap();
        assert_eq!(s, "[] [] map[] 0 [] null null [A=b] |{\"Entrypoint\":null,\"Env\":[\"A=b\"]}");
        // Without hints: Go's interface{} behaviour.
        assert!(t.execute(&img).unwrap_err().to_string().contains("len"));
    }

    #[test]
    fn go_json_helper() {
        assert_eq!(
            to_go_json(&json!({"z": 1, "a": [true, null, "x\u{2028}"]})),
            "{\"z\":1,\"a\":[true,null,\"x\\u2028\"]}"
        );
    }
}
