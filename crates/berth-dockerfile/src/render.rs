//! BuildKit-style rendering of Dockerfile locations: a `Dockerfile:LINE`
//! header, the lines with numbers and a `>>>` marker, and the message.

use crate::error::{Error, LineRange};

/// Prints the source block BuildKit prints for an error or lint warning
/// (`errdefs.Source.Print`): one line of context around a multi-line range,
/// two around a single line. Returns an empty string when the range lies
/// outside the source.
pub fn render_source(source: &str, filename: &str, range: LineRange) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let (mut start, mut end) = (range.start, range.end);
    if start > lines.len() || start < 1 {
        return String::new();
    }
    if end > lines.len() {
        end = lines.len();
    }
    let pad = if end == start { 4 } else { 2 };
    let header = start;
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != lines.len() {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let mut out = format!("{filename}:{header}\n--------------------\n");
    for i in start..=end {
        let pfx = if i >= range.start && i <= range.end { ">>>" } else { "   " };
        let text = lines[i - 1].trim_end_matches('\r');
        out.push_str(&format!(" {i:>3} | {pfx} {text}\n"));
    }
    out.push_str("--------------------\n");
    out
}

/// The message as BuildKit reports it (`dockerfile parse error on line N:`
/// for syntax and instruction errors).
pub fn error_message(err: &Error) -> String {
    match err {
        Error::Parse { range: Some(r), .. }
        | Error::UnknownInstruction { range: r, .. }
        | Error::Instruction { range: r, .. }
        | Error::Flag { range: r, .. } => {
            format!("dockerfile parse error on line {}: {}", r.start, err.message())
        }
        _ => err.message().to_string(),
    }
}

/// Renders an error like `docker build` does: the source block (when the
/// error has a location) followed by `ERROR: failed to solve: <message>`.
pub fn render_error(err: &Error, source: &str, filename: &str) -> String {
    let mut out = String::new();
    if let Some(r) = err.range() {
        out.push_str(&render_source(source, filename, r));
    }
    out.push_str(&format!("ERROR: failed to solve: {}\n", error_message(err)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_gets_two_lines_of_context() {
        let src = "FROM a\n\nRUNN x\nRUN y\nRUN z\nRUN w\n";
        let err = crate::plan::plan(src.as_bytes(), &Default::default()).unwrap_err();
        let s = render_error(&err, src, "Dockerfile");
        assert_eq!(
            s,
            "Dockerfile:3\n--------------------\n   1 |     FROM a\n   2 |     \n   3 | >>> RUNN x\n   4 |     RUN y\n   5 |     RUN z\n--------------------\nERROR: failed to solve: dockerfile parse error on line 3: unknown instruction: RUNN (did you mean RUN?)\n"
        );
    }

    #[test]
    fn multi_line_gets_one_line_of_context() {
        let s = render_source("a\nb\nc\nd\ne", "Dockerfile", LineRange::new(2, 3));
        assert_eq!(
            s,
            "Dockerfile:2\n--------------------\n   1 |     a\n   2 | >>> b\n   3 | >>> c\n   4 |     d\n--------------------\n"
        );
    }
}
