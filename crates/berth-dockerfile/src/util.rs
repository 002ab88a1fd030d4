//! Small helpers that reproduce Go standard-library behaviour the reference
//! implementation relies on (quoting, Unicode classes, lower-casing, edit
//! distance for "did you mean" suggestions).

use unicode_general_category::{GeneralCategory, get_general_category};

/// `unicode.IsSpace` (identical to Rust's `char::is_whitespace`).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// `unicode.IsSpace(rune(b))` applied to a single byte, as Go code does when
/// it iterates a string byte by byte. Bytes 0x85 and 0xA0 count as spaces.
pub(crate) fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0x85 | 0xa0)
}

/// `unicode.IsLetter`: general category L.
pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    matches!(
        get_general_category(c),
        GeneralCategory::UppercaseLetter
            | GeneralCategory::LowercaseLetter
            | GeneralCategory::TitlecaseLetter
            | GeneralCategory::ModifierLetter
            | GeneralCategory::OtherLetter
    )
}

/// `unicode.IsDigit`: general category Nd.
pub(crate) fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    get_general_category(c) == GeneralCategory::DecimalNumber
}

/// `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the
/// ASCII space.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    use GeneralCategory::*;
    !matches!(
        get_general_category(c),
        Control | Format | Surrogate | PrivateUse | Unassigned | SpaceSeparator | LineSeparator | ParagraphSeparator
    )
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `strings.ToLower` (simple case mapping, one rune to one rune).
pub fn go_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| {
            let mut l = c.to_lowercase();
            match (l.next(), l.next()) {
                (Some(a), None) => a,
                // Multi-rune full mappings (only U+0130) map to their first
                // rune under Go's simple mapping.
                (Some(a), Some(_)) => a,
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper` (simple case mapping).
pub fn go_upper(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars()
        .map(|c| {
            let mut u = c.to_uppercase();
            match (u.next(), u.next()) {
                (Some(a), None) => a,
                _ => c,
            }
        })
        .collect()
}

/// Levenshtein distance over runes.
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// BuildKit's `suggest.WrapError`: the closest option within edit distance 2,
/// or `None` if the value equals an option or nothing is close.
pub fn suggest(val: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let orig = val;
    let val = if case_sensitive { val.to_string() } else { go_lower(val) };
    let mut best: Option<String> = None;
    let mut mindist = 3;
    for opt in options {
        let o = if case_sensitive { (*opt).to_string() } else { go_lower(opt) };
        if val == o {
            return None;
        }
        let d = levenshtein(&val, &o);
        if d < mindist {
            best = Some(if case_sensitive {
                o
            } else if orig == go_lower(orig) {
                go_lower(&o)
            } else if orig == go_upper(orig) {
                go_upper(&o)
            } else {
                o
            });
            mindist = d;
        }
    }
    best
}

/// Appends ` (did you mean X?)` when a suggestion exists.
pub(crate) fn with_suggestion(msg: String, val: &str, options: &[&str], cs: bool) -> String {
    match suggest(val, options, cs) {
        Some(m) => format!("{msg} (did you mean {m}?)"),
        None => msg,
    }
}

/// Go's `path.Clean` for slash-separated paths.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(go_quote("a\"b\\"), r#""a\"b\\""#);
        assert_eq!(go_quote("\u{0}\t♥\u{a0}"), r#""\x00\t♥\u00a0""#);
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path("a//b/./c/.."), "a/b");
        assert_eq!(clean_path("/../a/"), "/a");
        assert_eq!(clean_path("../../a"), "../../a");
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("a/.."), ".");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("mont", &["mount", "network"], true).as_deref(), Some("mount"));
        assert_eq!(suggest("RUNN", &["run", "cmd"], false).as_deref(), Some("RUN"));
        assert_eq!(suggest("xyzzy", &["run"], false), None);
    }
}
