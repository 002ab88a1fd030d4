//! docker/cli's formatter for list commands (`images`, `history`, `search`, ...) and inspect.
//!
//! List commands: the `--format` value (or the command's default) is one of
//! - `table` alone: the command's default table template;
//! - `table <template>`: a header row plus one row per item, aligned by [`crate::tabwriter`];
//! - `json`: one JSON object per line (`{{json .}}` with keys sorted, as docker/cli marshals its
//!   row contexts through a map);
//! - anything else: a bare template, one line per item, no header.
//!
//! In every template the two-character sequences `\t` and `\n` are turned into a tab and a
//! newline, and surrounding spaces are trimmed, as docker/cli does.
//!
//! Inspect: no format prints an indented JSON array (4 spaces); `json` a compact array; a template
//! prints one line per object.

use std::io::Write;

use serde_json::Value;

use crate::tabwriter::DOCKER_TABLE;
use crate::template::{Funcs, Template, TemplateError};

/// Column headers of a list command: Docker field name → header text
/// (`("ID", "IMAGE ID")`, `("Repository", "REPOSITORY")`). Fields without an entry get their
/// name upper-cased (`Containers` → `CONTAINERS`).
pub type Headers<'a> = &'a [(&'a str, &'a str)];

/// The kinds of `--format` a list command understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFormat {
    /// `table ...`: the template after the `table` keyword (already unescaped).
    Table(String),
    /// `json`: one JSON object per line.
    Json,
    /// A bare template, one line per item.
    Template(String),
}

impl ListFormat {
    /// Interprets a `--format` value. `None` or an empty string selects `default_table`
    /// (which itself usually starts with `table`); `table` alone also selects it.
    pub fn parse(format: Option<&str>, default_table: &str) -> ListFormat {
        let f = match format {
            None => default_table,
            Some(f) if f.trim().is_empty() || f == "table" => default_table,
            Some(f) => f,
        };
        if f == "json" {
            return ListFormat::Json;
        }
        if let Some(rest) = f.strip_prefix("table") {
            return ListFormat::Table(unescape(rest));
        }
        ListFormat::Template(unescape(f))
    }
}

/// docker/cli's `preFormat`: trim spaces, turn the literal `\t` and `\n` into tab and newline.
fn unescape(s: &str) -> String {
    s.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n")
}

/// A parsed list format, reusable across calls.
#[derive(Debug)]
pub struct ListFormatter {
    format: ListFormat,
    template: Template,
    header: Option<(Template, Value)>,
}

impl ListFormatter {
    /// Parses `format` (see [`ListFormat::parse`]) and prepares the header row from `headers`.
    pub fn new(format: Option<&str>, default_table: &str, headers: Headers<'_>) -> Result<Self, TemplateError> {
        let format = ListFormat::parse(format, default_table);
        let src = match &format {
            ListFormat::Json => "{{json .}}",
            ListFormat::Table(t) | ListFormat::Template(t) => t.as_str(),
        };
        let template = Template::parse(src)?;
        let header = match &format {
            ListFormat::Table(t) => {
                let mut map = serde_json::Map::new();
                for field in crate::template::referenced_fields(t) {
                    let text = headers
                        .iter()
                        .find(|(f, _)| *f == field)
                        .map_or_else(|| field.to_uppercase(), |(_, h)| (*h).to_string());
                    map.insert(field, Value::String(text));
                }
                Some((Template::parse_with(t, Funcs::Header)?, Value::Object(map)))
            }
            _ => None,
        };
        Ok(ListFormatter { format, template, header })
    }

    /// The format in use.
    pub fn format(&self) -> &ListFormat {
        &self.format
    }

    /// Renders `rows` (JSON objects with Docker's field names) and returns the text.
    /// A table with no rows still prints its header, as Docker does.
    pub fn render(&self, rows: &[Value]) -> Result<String, TemplateError> {
        let mut body = String::new();
        for row in rows {
            self.template.execute_ordered(row, &mut body, false)?;
            body.push('\n');
        }
        match &self.header {
            None => Ok(body),
            Some((tmpl, data)) => {
                let mut text = String::new();
                // docker/cli ignores header execution errors (the header is best effort).
                let _ = tmpl.execute_ordered(data, &mut text, false);
                text.push('\n');
                text.push_str(&body);
                Ok(DOCKER_TABLE.format(&text))
            }
        }
    }

    /// Renders `rows` into `out`.
    pub fn write<W: Write>(&self, out: &mut W, rows: &[Value]) -> Result<(), TemplateError> {
        let text = self.render(rows)?;
        out.write_all(text.as_bytes()).map_err(|e| TemplateError::Io { message: e.to_string() })
    }
}

/// One call for list commands: parse `format` (or use `default_table`), render `rows`, write.
///
/// ```
/// use serde_json::json;
/// let rows = vec![json!({"Repository": "nginx", "Tag": "latest", "ID": "abc123def456",
///                        "CreatedSince": "2 days ago", "Size": "187MB"})];
/// let mut out = Vec::new();
/// berth_output::write_list(&mut out, None,
///     "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
///     &[("ID", "IMAGE ID"), ("CreatedSince", "CREATED")], &rows).unwrap();
/// assert_eq!(String::from_utf8(out).unwrap(),
///     "REPOSITORY   TAG       IMAGE ID       CREATED      SIZE\n\
///      nginx        latest    abc123def456   2 days ago   187MB\n");
/// ```
pub fn write_list<W: Write>(
    out: &mut W,
    format: Option<&str>,
    default_table: &str,
    headers: Headers<'_>,
    rows: &[Value],
) -> Result<(), TemplateError> {
    ListFormatter::new(format, default_table, headers)?.write(out, rows)
}

/// All errors of an inspect run, joined by newlines (Docker reports every failing object).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", messages.join("\n"))]
pub struct InspectError {
    /// One message per failing object (or one for a bad template).
    pub messages: Vec<String>,
}

/// `docker inspect` output: `format` `None`/empty → indented JSON array; `json` → compact JSON
/// array; otherwise the template is executed for each object, one output line each. Objects are
/// printed in their key order. Every object is attempted; errors are collected, the output that
/// succeeded is written, then the errors are returned (so the command exits 1).
pub fn write_inspect<W: Write>(out: &mut W, format: Option<&str>, items: &[Value]) -> Result<(), InspectError> {
    write_inspect_typed(out, format, items, &[])
}

/// [`write_inspect`] with Go type hints, so `null` slices and maps print as `[]` and `map[]` in
/// templates like Docker's typed inspect structs do (e.g. [`crate::template::IMAGE_INSPECT_TYPES`]).
pub fn write_inspect_typed<W: Write>(
    out: &mut W,
    format: Option<&str>,
    items: &[Value],
    types: crate::template::GoTypes<'_>,
) -> Result<(), InspectError> {
    let io_err = |e: std::io::Error| InspectError { messages: vec![format!("writing inspect output: {e}")] };
    let format = format.unwrap_or("");
    if format.is_empty() || format == "json" {
        let arr = Value::Array(items.to_vec());
        let text = if format.is_empty() {
            if items.is_empty() { "[]".to_string() } else { go_indent_json(&arr) }
        } else {
            crate::template::to_go_json(&arr)
        };
        out.write_all(text.as_bytes()).map_err(io_err)?;
        out.write_all(b"\n").map_err(io_err)?;
        return Ok(());
    }
    let tmpl = Template::parse(format).map_err(|e| InspectError { messages: vec![e.to_string()] })?;
    let mut buf = String::new();
    let mut errors = Vec::new();
    for item in items {
        let mut one = String::new();
        match tmpl.execute_typed(item, types, &mut one) {
            Ok(()) => {
                buf.push_str(&one);
                buf.push('\n');
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if buf.is_empty() {
        buf.push('\n');
    }
    out.write_all(buf.as_bytes()).map_err(io_err)?;
    if errors.is_empty() { Ok(()) } else { Err(InspectError { messages: errors }) }
}

/// Go's `json.MarshalIndent(v, "", "    ")` without HTML escaping (what `docker inspect` prints).
pub fn go_indent_json(v: &Value) -> String {
    let compact = crate::template::to_go_json(v);
    indent_json(&compact, "    ")
}

/// Go's `json.Indent` on compact JSON text.
fn indent_json(src: &str, indent: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = src.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Empty containers stay compact: `[]`, `{}`.
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IMAGES_DEFAULT: &str =
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
    const IMAGE_HEADERS: &[(&str, &str)] = &[
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("VirtualSize", "SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
    ];

    fn rows() -> Vec<Value> {
        vec![
            json!({"Containers": "N/A", "CreatedAt": "2024-03-01 10:04:05 +0000 UTC", "CreatedSince": "2 days ago",
                   "Digest": "<none>", "ID": "a1b2c3d4e5f6", "Repository": "nginx", "SharedSize": "N/A",
                   "Size": "187MB", "Tag": "latest", "UniqueSize": "N/A", "VirtualSize": "187.3MB"}),
            json!({"Containers": "N/A", "CreatedAt": "2024-01-01 00:00:00 +0000 UTC", "CreatedSince": "",
                   "Digest": "<none>", "ID": "0123456789ab", "Repository": "registry.example.com/team/app", "SharedSize": "N/A",
                   "Size": "5.58kB", "Tag": "v1.2.3", "UniqueSize": "N/A", "VirtualSize": "5.583kB"}),
        ]
    }

    fn list(format: Option<&str>) -> String {
        let mut out = Vec::new();
        write_list(&mut out, format, IMAGES_DEFAULT, IMAGE_HEADERS, &rows()).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn images_default_table() {
        let want = "\
REPOSITORY                      TAG       IMAGE ID       CREATED      SIZE
nginx                           latest    a1b2c3d4e5f6   2 days ago   187MB
registry.example.com/team/app   v1.2.3    0123456789ab   N/A          5.58kB
";
        assert_eq!(list(None), want);
        assert_eq!(list(Some("table")), want);
        assert_eq!(list(Some("")), want);
    }

    #[test]
    fn custom_table_with_escapes_and_unknown_header() {
        let got = list(Some(r"table {{.ID}}\t{{.Repository}}:{{.Tag}}\t{{.Containers}}"));
        let want = "\
IMAGE ID       REPOSITORY:TAG                         CONTAINERS
a1b2c3d4e5f6   nginx:latest                           N/A
0123456789ab   registry.example.com/team/app:v1.2.3   N/A
";
        assert_eq!(got, want);
        let got = list(Some("table {{.ID}}\t{{.Whatever}}"));
        assert!(got.starts_with("IMAGE ID       WHATEVER\n"), "{got}");
        assert!(got.contains("a1b2c3d4e5f6   <no value>\n"), "{got}");
    }

    #[test]
    fn bare_template_and_json_lines() {
        assert_eq!(list(Some("{{.Repository}}:{{.Tag}}")), "nginx:latest\nregistry.example.com/team/app:v1.2.3\n");
        let got = list(Some("json"));
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"{"Containers":"N/A","CreatedAt":"2024-03-01 10:04:05 +0000 UTC","CreatedSince":"2 days ago","Digest":"<none>","ID":"a1b2c3d4e5f6","Repository":"nginx","SharedSize":"N/A","Size":"187MB","Tag":"latest","UniqueSize":"N/A","VirtualSize":"187.3MB"}"#
        );
        assert_eq!(list(Some("{{json .}}")), got);
    }

    #[test]
    fn empty_lists() {
        let mut out = Vec::new();
        write_list(&mut out, None, IMAGES_DEFAULT, IMAGE_HEADERS, &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
        let mut out = Vec::new();
        write_list(&mut out, Some("json"), IMAGES_DEFAULT, IMAGE_HEADERS, &[]).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn header_functions_and_pad() {
        let got = list(Some(r"table {{upper .Repository}}\t{{pad .Tag 1 1}}|"));
        let want = "\
REPOSITORY                      TAG|
NGINX                           latest|
REGISTRY.EXAMPLE.COM/TEAM/APP   v1.2.3|
";
        assert_eq!(got, want.replace("TAG|", " TAG |").replace("latest|", " latest |").replace("v1.2.3|", " v1.2.3 |"));
    }

    #[test]
    fn list_errors() {
        let mut out = Vec::new();
        let e = write_list(&mut out, Some("{{.ID | nope}}"), IMAGES_DEFAULT, IMAGE_HEADERS, &rows()).unwrap_err();
        assert_eq!(e.to_string(), "template parsing error: template: :1: function \"nope\" not defined");
    }

    fn inspect(format: Option<&str>, items: &[Value]) -> (String, Result<(), InspectError>) {
        let mut out = Vec::new();
        let r = write_inspect(&mut out, format, items);
        (String::from_utf8(out).unwrap(), r)
    }

    #[test]
    fn inspect_outputs() {
        let img = json!({"Id": "sha256:abc", "RepoTags": ["nginx:latest"], "Config": {"Env": ["A=b"], "Labels": {}, "Cmd": null}, "Size": 42});
        let (s, r) = inspect(None, std::slice::from_ref(&img));
        assert!(r.is_ok());
        assert_eq!(
            s,
            "[\n    {\n        \"Id\": \"sha256:abc\",\n        \"RepoTags\": [\n            \"nginx:latest\"\n        ],\n        \"Config\": {\n            \"Env\": [\n                \"A=b\"\n            ],\n            \"Labels\": {},\n            \"Cmd\": null\n        },\n        \"Size\": 42\n    }\n]\n"
        );
        let (s, _) = inspect(None, &[]);
        assert_eq!(s, "[]\n");
        let (s, _) = inspect(Some("json"), std::slice::from_ref(&img));
        assert_eq!(
            s,
            "[{\"Id\":\"sha256:abc\",\"RepoTags\":[\"nginx:latest\"],\"Config\":{\"Env\":[\"A=b\"],\"Labels\":{},\"Cmd\":null},\"Size\":42}]\n"
        );
        let (s, _) = inspect(Some("{{.Config.Env}} {{.Size}} {{json .Config}}"), &[img.clone(), img.clone()]);
        assert_eq!(s, "[A=b] 42 {\"Env\":[\"A=b\"],\"Labels\":{},\"Cmd\":null}\n".repeat(2));
        let (s, r) = inspect(Some("{{upper .Size}}"), std::slice::from_ref(&img));
        assert_eq!(s, "\n");
        assert_eq!(r.unwrap_err().messages.len(), 1);
        let (_, r) = inspect(Some("{{bad"), &[img]);
        assert!(r.unwrap_err().to_string().starts_with("template parsing error: "));
    }

    #[test]
    fn indent_handles_strings_with_brackets() {
        let v = json!({"a": "x{,}[:]\"y", "b": [[], {}]});
        assert_eq!(
            go_indent_json(&v),
            "{\n    \"a\": \"x{,}[:]\\\"y\",\n    \"b\": [\n        [],\n        {}\n    ]\n}"
        );
    }
}
