//! Quoting and escaping: the only place identifiers and string literals become SQL text.

/// A backquoted identifier: `` `name` `` with backslashes and backquotes escaped.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        match c {
            '`' => out.push_str("\\`"),
            '\\' => out.push_str("\\\\"),
            c => push_escaped_control(&mut out, c),
        }
    }
    out.push('`');
    out
}

/// A single-quoted string literal with backslash escapes.
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c => push_escaped_control(&mut out, c),
        }
    }
    out.push('\'');
    out
}

fn push_escaped_control(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\0' => out.push_str("\\0"),
        // ASCII controls as escapes; C1 controls (U+0080–U+009F) stay UTF-8 (`\x80` would
        // be one raw byte, not the character).
        c if c.is_ascii_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        assert_eq!(ident("plain"), "`plain`");
        assert_eq!(ident("we`ird\\"), "`we\\`ird\\\\`");
        assert_eq!(string("it's"), "'it\\'s'");
        assert_eq!(string("a\\b\nc\0"), "'a\\\\b\\nc\\0'");
        assert_eq!(string("'); DROP TABLE x; --"), "'\\'); DROP TABLE x; --'");
    }
}
