//! One field: its type (scalar, enum, list, optional, `@db.X`) and field attributes.

use std::collections::HashSet;

use crate::ast::{AttributeAst, FieldAst};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::ir::{Arity, BaseType, Field, FieldSpans, FieldType, ScalarType};

use super::{check_name, defaults, native, suggest, unknown_attribute, valid_mapped_name, Names};

const FIELD_ATTRIBUTES: &[&str] = &["id", "default", "map", "ignore", "db"];

/// What a field declares beyond its IR: whether it is stored and whether it is `@id`.
pub(super) struct FieldDecl {
    pub field: Option<Field>,
    pub ignored: bool,
    pub id: bool,
}

pub(super) fn validate_field(f: &FieldAst, names: &Names, diags: &mut Diagnostics) -> FieldDecl {
    let mut decl = FieldDecl { field: None, ignored: false, id: false };
    let ignored = f.attributes.iter().any(|a| a.name.name == "ignore");
    if let Some(db_type) = f.ty.unsupported() {
        // Prisma's own escape hatch: such a field is only usable when ignored.
        if ignored {
            decl.ignored = true;
        } else {
            diags.push(Diagnostic::unsupported_type(&f.name.name, db_type, f.ty.span));
        }
        return decl;
    }
    let name_ok = check_name("field", &f.name, diags);
    let ty = resolve_type(f, names, diags);
    let mut column = f.name.name.clone();
    let mut default_attr = None;
    let mut native_attr = None;
    let mut seen = HashSet::new();
    for attr in &f.attributes {
        let name = attr.name.name.as_str();
        let key = if name.starts_with("db.") { "db" } else { name };
        if !seen.insert(key) {
            diags.push(Diagnostic::duplicate_attribute("@", name, attr.span));
            continue;
        }
        match name {
            "id" => decl.id = id_arguments(attr, diags),
            "ignore" => decl.ignored = no_arguments(attr, diags),
            "map" => {
                if let Some(col) = single_string(attr, "a column name, e.g. `@map(\"user_id\")`", diags) {
                    column = col;
                }
            }
            "default" => default_attr = Some(attr),
            // A field whose type is a model was reported as a relation already.
            "relation" if !names.models.contains(f.ty.name.name.as_str()) => {
                diags.push(Diagnostic::relation_attribute(attr.span))
            }
            "relation" => {}
            "unique" => diags.push(Diagnostic::unique_unsupported("@", attr.span)),
            "updatedAt" => diags.push(Diagnostic::unsupported_attribute(
                "@",
                name,
                "rows are immutable in igloo; use `@default(now())` for an insert time",
                attr.span,
            )),
            _ if name.starts_with("db.") => native_attr = Some(attr),
            _ => diags.push(unknown_attribute("@", attr, FIELD_ATTRIBUTES)),
        }
    }
    if decl.id && decl.ignored {
        diags.push(Diagnostic::ignored_key(&f.name.name, f.name.span));
    }
    let Some(mut ty) = ty else { return decl };
    if let Some(attr) = native_attr {
        match &ty.base {
            BaseType::Enum(_) => diags.push(Diagnostic::native_type_on_enum(&attr.name.name[3..], attr.span)),
            BaseType::Scalar(s) => match native::native_type(attr, &attr.name.name[3..], *s, names.provider) {
                Ok(n) => ty.native = Some(n),
                Err(d) => diags.push(d),
            },
        }
    }
    let default = default_attr.and_then(|attr| defaults::validate_default(&f.name.name, attr, &ty, names, diags));
    if decl.ignored || !name_ok {
        return decl;
    }
    decl.field = Some(Field {
        name: f.name.name.clone(),
        column,
        doc: f.doc.clone(),
        ty,
        default,
        spans: FieldSpans { field: f.span, native: native_attr.map(|a| a.span) },
    });
    decl
}

fn resolve_type(f: &FieldAst, names: &Names, diags: &mut Diagnostics) -> Option<FieldType> {
    let t = &f.ty;
    if t.args.is_some() {
        diags.push(Diagnostic::type_arguments(&t.name.name, t.span));
        return None;
    }
    if t.list && t.optional {
        let d = if t.optional_before_list {
            Diagnostic::list_of_optional(&f.name.name, t.span)
        } else {
            Diagnostic::optional_list(&f.name.name, t.span)
        };
        diags.push(d);
        return None;
    }
    let name = t.name.name.as_str();
    let base = if let Some(s) = ScalarType::from_name(name) {
        BaseType::Scalar(s)
    } else if names.enums.contains_key(name) {
        BaseType::Enum(name.to_string())
    } else if names.models.contains(name) {
        diags.push(Diagnostic::relation_field(&f.name.name, name, t.list, t.span));
        return None;
    } else if names.composites.contains(name) {
        diags.push(Diagnostic::composite_field(&f.name.name, name, t.span));
        return None;
    } else {
        let candidates = ScalarType::ALL.iter().map(|s| s.name()).chain(names.enums.keys().copied());
        let suggestion = alias_of(name).or_else(|| suggest(name, candidates));
        diags.push(Diagnostic::unknown_type(name, suggestion, t.name.span));
        return None;
    };
    let arity = match (t.list, t.optional) {
        (true, _) => Arity::List,
        (false, true) => Arity::Optional,
        (false, false) => Arity::Required,
    };
    Some(FieldType { base, arity, native: None })
}

/// `@ignore` takes no arguments (empty parentheses are fine); reports and returns false if
/// some were given.
fn no_arguments(attr: &AttributeAst, diags: &mut Diagnostics) -> bool {
    if !attr.args.is_empty() {
        diags.push(Diagnostic::attribute_arguments("@", &attr.name.name, "no arguments", attr.span));
        return false;
    }
    true
}

/// `@id`, `@id()`, or `@id(map: …, length: …, sort: …, clustered: …)`: Prisma's arguments
/// tune the database's index and constraint, which ClickHouse does not have; each is a warning.
fn id_arguments(attr: &AttributeAst, diags: &mut Diagnostics) -> bool {
    let mut ok = true;
    for arg in &attr.args {
        match arg.name.as_ref().map(|n| n.name.as_str()) {
            Some(name @ ("map" | "length" | "sort" | "clustered")) => {
                diags.push(Diagnostic::ignored_argument("@id", name, super::INDEX_TUNING, arg.span))
            }
            _ => ok = false,
        }
    }
    if !ok {
        diags.push(Diagnostic::attribute_arguments(
            "@",
            "id",
            "no arguments (Prisma's `map:`, `length:`, `sort:` and `clustered:` are ignored)",
            attr.span,
        ));
    }
    ok
}

/// The one string argument of `@map("…")` / `@@map("…")`.
pub(super) fn single_string(attr: &AttributeAst, expected: &str, diags: &mut Diagnostics) -> Option<String> {
    let prefix =
        if attr.span.end - attr.span.start > 1 && attr.name.span.start - attr.span.start == 2 { "@@" } else { "@" };
    match attr.args.as_slice() {
        // Prisma allows the argument to be named: `@map(name: "user_id")`.
        [arg] if arg.name.as_ref().is_none_or(|n| n.name == "name") => match &arg.value {
            crate::ast::Expr::String(s, span) => {
                let what = if prefix == "@@" { "table" } else { "column" };
                if s.to_ascii_lowercase().starts_with("_igloo") {
                    diags.push(Diagnostic::reserved_name(what, s, *span));
                    None
                } else if valid_mapped_name(s) {
                    Some(s.clone())
                } else {
                    let expected = "a non-empty name of at most 200 bytes without control characters";
                    diags.push(Diagnostic::attribute_arguments(prefix, &attr.name.name, expected, *span));
                    None
                }
            }
            _ => {
                diags.push(Diagnostic::attribute_arguments(prefix, &attr.name.name, expected, attr.span));
                None
            }
        },
        _ => {
            diags.push(Diagnostic::attribute_arguments(prefix, &attr.name.name, expected, attr.span));
            None
        }
    }
}

/// Type names from other languages and databases that users type by habit.
fn alias_of(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "integer" | "int32" | "smallint" => "Int",
        "long" | "int64" | "bigint" => "BigInt",
        "double" | "float64" | "real" | "number" => "Float",
        "bool" => "Boolean",
        "text" | "varchar" | "char" | "str" => "String",
        "timestamp" | "datetime64" | "instant" => "DateTime",
        "bytea" | "blob" | "binary" => "Bytes",
        "uuid" | "guid" => "Uuid",
        "numeric" => "Decimal",
        _ => return None,
    })
}
