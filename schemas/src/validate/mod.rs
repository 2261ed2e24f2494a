//! AST → IR. Checks names, types and attributes and collects every problem; it returns an IR
//! even when there are errors (with the bad parts left out) so that later checks still run.
//! Version-specific checks live in [`crate::target`], not here.

mod attributes;
mod defaults;
mod fields;
mod native;
mod timeseries;

use std::collections::{HashMap, HashSet};

use crate::ast::{AttributeAst, EnumAst, Ident, SchemaAst};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::ir::{Enum, EnumVariant, Ir};
use crate::source::{SourceFile, Span};

/// Why Prisma's constraint names and index tuning (`map:`, `sort:`, `length:`, `clustered:`)
/// are ignored.
pub(crate) const INDEX_TUNING: &str =
    "it names or tunes a database constraint or index; ClickHouse has neither (the sorting key is `@id` / `@@orderBy`)";

/// Names known before models are validated: what a field type can refer to.
pub(crate) struct Names<'a> {
    pub enums: HashMap<&'a str, &'a EnumAst>,
    pub models: HashSet<&'a str>,
    /// Prisma's composite types (`type` blocks): known, so a field of one gets a precise error.
    pub composites: HashSet<&'a str>,
    /// The `provider` of a Prisma `datasource` block, where one names it.
    pub provider: Option<crate::prisma::Provider>,
}

pub fn validate(asts: &[SchemaAst], files: &[SourceFile], diags: &mut Diagnostics) -> Ir {
    let names = collect_names(asts, files, diags);
    report_prisma_only_blocks(asts, diags);
    let mut ir = Ir::default();
    for e in asts.iter().flat_map(|a| &a.enums) {
        if names.enums.get(e.name.name.as_str()).is_some_and(|first| std::ptr::eq(*first, e)) {
            ir.enums.extend(validate_enum(e, diags));
        }
    }
    let mut seen_models = HashSet::new();
    for m in asts.iter().flat_map(|a| &a.models) {
        if seen_models.insert(m.name.name.as_str()) {
            ir.models.extend(attributes::validate_model(m, &names, diags));
        }
    }
    check_unique_tables_and_topics(&ir, diags);
    warn_unused_enums(&ir, diags);
    ir
}

fn collect_names<'a>(asts: &'a [SchemaAst], files: &[SourceFile], diags: &mut Diagnostics) -> Names<'a> {
    let mut first: HashMap<&str, Span> = HashMap::new();
    let provider = crate::prisma::provider_of(asts);
    let mut names = Names { enums: HashMap::new(), models: HashSet::new(), composites: HashSet::new(), provider };
    let blocks = asts.iter().flat_map(|a| {
        a.models
            .iter()
            .map(|m| ("model", &m.name, None))
            .chain(a.enums.iter().map(|e| ("enum", &e.name, Some(e))))
            .chain(a.composites.iter().map(|t| ("type", &t.name, None)))
            .chain(a.views.iter().map(|v| ("view", &v.name, None)))
    });
    for (kind, name, enum_ast) in blocks {
        check_name(kind, name, diags);
        if let Some(prev) = first.get(name.name.as_str()) {
            diags.push(Diagnostic::duplicate_definition(kind, &name.name, &location(files, *prev), name.span));
            continue;
        }
        first.insert(&name.name, name.span);
        match (kind, enum_ast) {
            (_, Some(e)) => {
                names.enums.insert(&name.name, e);
            }
            ("type", None) => {
                names.composites.insert(&name.name);
            }
            (_, None) => {
                // A view is a model to Prisma: a field referring to one is a relation.
                names.models.insert(&name.name);
            }
        }
    }
    names
}

/// Prisma blocks igloo reads but does not use: each gets a warning saying what to do instead.
fn report_prisma_only_blocks(asts: &[SchemaAst], diags: &mut Diagnostics) {
    for a in asts {
        for c in &a.configs {
            let hint = format!("{}; remove this block", c.igloo_instead());
            diags.push(Diagnostic::ignored_block(&c.keyword.name, &hint, c.keyword.span));
        }
        for t in &a.composites {
            diags.push(Diagnostic::composite_type_block(&t.name.name, t.name.span));
        }
        for v in &a.views {
            diags.push(Diagnostic::view_block(&v.name.name, v.name.span));
        }
    }
}

fn location(files: &[SourceFile], span: Span) -> String {
    let file = &files[span.file.0 as usize];
    let (line, col) = file.line_col(span.start);
    format!("{}:{line}:{col}", file.path)
}

/// Reports names igloo cannot use as-is. Returns false when the name was reported.
pub(crate) fn check_name(what: &str, name: &Ident, diags: &mut Diagnostics) -> bool {
    match name_problem(what, name) {
        Some(d) => {
            diags.push(d);
            false
        }
        None => true,
    }
}

pub(crate) fn name_problem(what: &str, name: &Ident) -> Option<Diagnostic> {
    if name.name.to_ascii_lowercase().starts_with("_igloo") {
        return Some(Diagnostic::reserved_name(what, &name.name, name.span));
    }
    if !name.name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Some(Diagnostic::invalid_name(what, &name.name, name.span));
    }
    None
}

/// A table or column name from `@map` / `@@map`: any non-empty text without control chars.
pub(crate) fn valid_mapped_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.chars().any(char::is_control)
        && !name.to_ascii_lowercase().starts_with("_igloo")
}

fn validate_enum(e: &EnumAst, diags: &mut Diagnostics) -> Option<Enum> {
    for attr in &e.attributes {
        let hint = match attr.name.name.as_str() {
            "map" => "ClickHouse enums are column types without a name of their own",
            "schema" => "the ClickHouse database is set in `igloo.yaml`",
            _ => {
                diags.push(unknown_attribute("@@", attr, &[]));
                continue;
            }
        };
        diags.push(Diagnostic::ignored_attribute("@@", &attr.name.name, hint, attr.span));
    }
    let (mut seen, mut values) = (HashSet::new(), HashSet::new());
    let mut variants = Vec::new();
    for v in &e.variants {
        let mut value = v.name.name.clone();
        for attr in &v.attributes {
            if attr.name.name == "map" {
                let expected = "the value's name in ClickHouse, e.g. `@map(\"admin\")`";
                if let Some(mapped) = fields::single_string(attr, expected, diags) {
                    value = mapped;
                }
            } else {
                diags.push(unknown_attribute("@", attr, &["map"]));
            }
        }
        if !seen.insert(v.name.name.as_str()) || !values.insert(value.clone()) {
            diags.push(Diagnostic::duplicate_variant(&e.name.name, &value, v.name.span));
            continue;
        }
        if check_name("enum value", &v.name, diags) {
            variants.push(EnumVariant { name: value, doc: v.doc.clone() });
        }
    }
    if e.variants.is_empty() {
        diags.push(Diagnostic::empty_enum(&e.name.name, e.name.span));
        return None;
    }
    if variants.len() > i16::MAX as usize {
        diags.push(Diagnostic::too_many_variants(&e.name.name, variants.len(), e.name.span));
        return None;
    }
    if name_problem("enum", &e.name).is_some() {
        return None;
    }
    Some(Enum { name: e.name.name.clone(), doc: e.doc.clone(), variants, span: e.name.span })
}

/// An enum value as ClickHouse, events and queries see it: its `@map("…")`, else its name.
pub(crate) fn variant_value(v: &crate::ast::VariantAst) -> &str {
    v.attributes
        .iter()
        .filter(|a| a.name.name == "map")
        .find_map(|a| match a.args.as_slice() {
            [crate::ast::ArgAst { value: crate::ast::Expr::String(s, _), .. }] if valid_mapped_name(s) => {
                Some(s.as_str())
            }
            _ => None,
        })
        .unwrap_or(&v.name.name)
}

fn check_unique_tables_and_topics(ir: &Ir, diags: &mut Diagnostics) {
    let mut tables: HashMap<String, &str> = HashMap::new();
    let mut topics: HashMap<&str, &str> = HashMap::new();
    for m in &ir.models {
        // ClickHouse table names are case-sensitive, but two tables differing only in case
        // are a trap on case-insensitive file systems (table data directories).
        if let Some(other) = tables.insert(m.table.to_lowercase(), &m.name) {
            diags.push(Diagnostic::duplicate_table(&m.table, other, m.spans.name));
        } else if let Some(other) = topics.insert(&m.topic.name, &m.name) {
            diags.push(Diagnostic::duplicate_topic(&m.topic.name, other, m.spans.name));
        }
    }
}

fn warn_unused_enums(ir: &Ir, diags: &mut Diagnostics) {
    let used: HashSet<&str> = ir
        .models
        .iter()
        .flat_map(|m| &m.fields)
        .filter_map(|f| match &f.ty.base {
            crate::ir::BaseType::Enum(name) => Some(name.as_str()),
            crate::ir::BaseType::Scalar(_) => None,
        })
        .collect();
    for e in &ir.enums {
        if !used.contains(e.name.as_str()) {
            diags.push(Diagnostic::unused_enum(&e.name, e.span));
        }
    }
}

/// The closest candidate to a misspelt name, if one is close enough to be a likely typo.
pub(crate) fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::damerau_levenshtein(&lower, &c.to_lowercase())))
        .filter(|(c, d)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(_, d)| *d)
        .map(|(c, _)| c)
}

pub(crate) fn unknown_attribute(prefix: &str, attr: &AttributeAst, known: &[&'static str]) -> Diagnostic {
    let suggestion = suggest(&attr.name.name, known.iter().copied());
    Diagnostic::unknown_attribute(prefix, &attr.name.name, suggestion, attr.name.span)
}

#[cfg(test)]
mod tests {
    use super::suggest;

    #[test]
    fn suggests_close_names_only() {
        let types = ["String", "Int", "BigInt", "DateTime"];
        assert_eq!(suggest("Strng", types), Some("String"));
        assert_eq!(suggest("string", types), Some("String"));
        assert_eq!(suggest("Datetime", types), Some("DateTime"));
        assert_eq!(suggest("Frobnicate", types), None);
    }
}
