//! Turns schema text into tokens. Never fails: characters it does not know become
//! [`TokenKind::Unknown`] and the parser reports them with a span.

use crate::source::{FileId, Span};

#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    Ident(String),
    Str(String),
    /// A string literal with no closing quote before the end of the line.
    UnterminatedStr(String),
    Number(String),
    DocComment(String),
    At,
    AtAt,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Equals,
    Question,
    Dot,
    Newline,
    Unknown(char),
    Eof,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

impl TokenKind {
    /// How the token reads in an "expected X, found Y" message.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Ident(s) => format!("`{s}`"),
            TokenKind::Str(_) | TokenKind::UnterminatedStr(_) => "a string".into(),
            TokenKind::Number(n) => format!("`{n}`"),
            TokenKind::DocComment(_) => "a doc comment".into(),
            TokenKind::At => "`@`".into(),
            TokenKind::AtAt => "`@@`".into(),
            TokenKind::LBrace => "`{`".into(),
            TokenKind::RBrace => "`}`".into(),
            TokenKind::LParen => "`(`".into(),
            TokenKind::RParen => "`)`".into(),
            TokenKind::LBracket => "`[`".into(),
            TokenKind::RBracket => "`]`".into(),
            TokenKind::Comma => "`,`".into(),
            TokenKind::Colon => "`:`".into(),
            TokenKind::Equals => "`=`".into(),
            TokenKind::Question => "`?`".into(),
            TokenKind::Dot => "`.`".into(),
            TokenKind::Newline => "the end of the line".into(),
            TokenKind::Unknown(c) => format!("`{c}`"),
            TokenKind::Eof => "the end of the file".into(),
        }
    }
}

pub fn lex(file: FileId, text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = text[i..].chars().next().unwrap_or(' ');
        let kind = match c {
            ' ' | '\t' | '\r' | '\u{feff}' => {
                i += c.len_utf8();
                continue;
            }
            '\n' => {
                i += 1;
                TokenKind::Newline
            }
            '/' if text[i..].starts_with("///") => {
                let end = line_end(text, i);
                let body = &text[i + 3..end];
                i = end;
                TokenKind::DocComment(body.strip_prefix(' ').unwrap_or(body).trim_end().to_string())
            }
            '/' if text[i..].starts_with("//") => {
                i = line_end(text, i);
                continue;
            }
            '"' => {
                let (kind, end) = lex_string(text, i);
                i = end;
                kind
            }
            '0'..='9' | '-' if c != '-' || next_is_digit(bytes, i + 1) => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                TokenKind::Number(text[start..i].to_string())
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                TokenKind::Ident(text[start..i].to_string())
            }
            '@' if text[i..].starts_with("@@") => {
                i += 2;
                TokenKind::AtAt
            }
            _ => {
                i += c.len_utf8();
                match c {
                    '@' => TokenKind::At,
                    '{' => TokenKind::LBrace,
                    '}' => TokenKind::RBrace,
                    '(' => TokenKind::LParen,
                    ')' => TokenKind::RParen,
                    '[' => TokenKind::LBracket,
                    ']' => TokenKind::RBracket,
                    ',' => TokenKind::Comma,
                    ':' => TokenKind::Colon,
                    '=' => TokenKind::Equals,
                    '?' => TokenKind::Question,
                    '.' => TokenKind::Dot,
                    other => TokenKind::Unknown(other),
                }
            }
        };
        tokens.push(Token { kind, span: Span::new(file, start, i) });
    }
    tokens.push(Token { kind: TokenKind::Eof, span: Span::new(file, text.len(), text.len()) });
    tokens
}

fn next_is_digit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_some_and(u8::is_ascii_digit)
}

fn line_end(text: &str, from: usize) -> usize {
    text[from..].find('\n').map_or(text.len(), |n| from + n)
}

/// Lexes `"…"` starting at the opening quote; returns the token and the offset after it.
fn lex_string(text: &str, start: usize) -> (TokenKind, usize) {
    let mut value = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        let at = start + 1 + off;
        match c {
            '"' => return (TokenKind::Str(value), at + 1),
            '\n' => return (TokenKind::UnterminatedStr(value), at),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, other)) if other != '\n' => value.push(other),
                _ => return (TokenKind::UnterminatedStr(value), at + 1),
            },
            c => value.push(c),
        }
    }
    (TokenKind::UnterminatedStr(value), text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        lex(FileId(0), text).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn lexes_a_field_line() {
        use TokenKind::*;
        assert_eq!(
            kinds("  id Int @default(-1) // note\n"),
            vec![
                Ident("id".into()),
                Ident("Int".into()),
                At,
                Ident("default".into()),
                LParen,
                Number("-1".into()),
                RParen,
                Newline,
                Eof
            ]
        );
    }

    #[test]
    fn doc_comments_strings_and_escapes() {
        use TokenKind::*;
        assert_eq!(
            kinds("/// Hello\n\"a\\\"b\" \"open\n"),
            vec![DocComment("Hello".into()), Newline, Str("a\"b".into()), UnterminatedStr("open".into()), Newline, Eof]
        );
    }
}
