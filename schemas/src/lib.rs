//! igloo's schema language. Takes `(path, text)` pairs and returns `(Ir, Diagnostics)`; from
//! the IR it derives ClickHouse DDL ([`sql`]) and plans ([`plan`]).
//!
//! Architecture invariant: **this crate does no IO** (no files, no network, no clocks) and
//! never panics on any input. Parsing collects every diagnostic instead of stopping at the
//! first.

pub mod ast;
pub mod diagnostics;
pub mod dialect;
pub mod ir;
mod lexer;
mod parser;
pub mod plan;
pub mod source;
pub mod sql;
pub mod target;
mod validate;

pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use dialect::Dialect;
pub use ir::Ir;
pub use source::{FileId, SourceFile, Span};

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
