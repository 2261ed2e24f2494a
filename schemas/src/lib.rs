//! igloo's schema language. Takes `(path, text)` pairs and returns `(Ir, Diagnostics)`; from
//! the IR it derives ClickHouse DDL ([`sql`]) and plans ([`plan`]).
//!
//! Architecture invariant: **this crate does no IO** (no files, no network, no clocks) and
//! never panics on any input. Parsing collects every diagnostic instead of stopping at the
//! first.

pub mod ast;
pub mod codegen;
pub mod consumption;
pub mod diagnostics;
pub mod dialect;
pub mod import;
pub mod internal;
pub mod ir;
mod lexer;
mod parser;
pub mod plan;
pub mod prisma;
pub mod source;
pub mod sql;
pub mod target;
pub(crate) mod validate;
pub mod views;

pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use dialect::Dialect;
pub use ir::Ir;
pub use source::{FileId, SourceFile, Span};

/// A positive duration written `90s`, `30m`, `12h` or `7d`, in milliseconds (`@@topic`
/// retention, `igloo keys create --expires`).
pub fn duration_ms(s: &str) -> Option<u64> {
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().ok().filter(|n| *n > 0)?;
    let ms = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms)
}

/// Parses and validates all schema files as one namespace. The IR leaves out whatever had
/// errors; callers must not use it for anything but display when `has_errors()`.
pub fn check(files: &[SourceFile]) -> (Ir, Diagnostics) {
    let mut diags = Diagnostics::default();
    let asts: Vec<ast::SchemaAst> =
        files.iter().enumerate().map(|(i, f)| parser::parse(FileId(i as u32), &f.text, &mut diags)).collect();
    let ir = validate::validate(&asts, files, &mut diags);
    (ir, diags)
}

/// [`check`], plus the checks against one ClickHouse version when the schema itself is valid.
pub fn check_for(files: &[SourceFile], dialect: Dialect) -> (Ir, Diagnostics) {
    let (ir, mut diags) = check(files);
    if !diags.has_errors() {
        diags.extend(target::check_target(&ir, dialect));
    }
    (ir, diags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_share_one_namespace() {
        let files = [
            SourceFile::new("schema/a.prisma", "enum Kind {\n  A\n}\nmodel User {\n  id String @id\n}\n"),
            SourceFile::new(
                "schema/b.prisma",
                "model Event {\n  id String @id\n  kind Kind\n}\nmodel User {\n  id String @id\n}\n",
            ),
        ];
        let (ir, diags) = check(&files);
        // `Kind` from a.prisma resolves in b.prisma; the second `User` is reported in b.prisma
        // and points back at a.prisma.
        assert_eq!(diags.errors().len(), 1, "{}", diags.render(&files));
        let located = diags.located(&files);
        assert_eq!((located[0].file.as_str(), located[0].line), ("schema/b.prisma", 5));
        assert_eq!(located[0].hint.as_deref(), Some("first defined at schema/a.prisma:4:7"));
        assert_eq!(ir.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["User", "Event"]);
    }
}
