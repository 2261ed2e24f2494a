//! `@default(…)`: literal, `now()`, `uuid()` or `[]`, checked against the field's type.

use crate::ast::{ArgAst, AttributeAst, Expr};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::ir::{Arity, BaseType, DefaultValue, FieldType, NativeType, ScalarType};

use super::{native, suggest, Names};

pub(super) fn validate_default(
    field: &str,
    attr: &AttributeAst,
    ty: &FieldType,
    names: &Names,
    diags: &mut Diagnostics,
) -> Option<DefaultValue> {
    // Prisma allows `@default(value: …)` and a constraint name, `map: "…"` (SQL Server).
    let mut args = Vec::new();
    for arg in &attr.args {
        match arg.name.as_ref().map(|n| n.name.as_str()) {
            Some("map") => diags.push(Diagnostic::ignored_argument("@default", "map", super::INDEX_TUNING, arg.span)),
            None | Some("value") => args.push(arg),
            Some(other) => {
                diags.push(Diagnostic::unknown_argument("@default", other, "`value` and `map`", arg.span));
                return None;
            }
        }
    }
    let [arg] = args.as_slice() else {
        diags.push(Diagnostic::attribute_arguments(
            "@",
            "default",
            "one value, e.g. `@default(0)`, `@default(\"none\")` or `@default(now())`",
            attr.span,
        ));
        return None;
    };
    let value = &arg.value;
    let result = match ty.arity {
        Arity::List => match value {
            Expr::Array(items, _) if items.is_empty() => Ok(DefaultValue::EmptyList),
            _ => Err(Diagnostic::default_type_mismatch(
                field,
                "`[]` (lists default to empty)",
                value.describe(),
                value.span(),
            )),
        },
        Arity::Required | Arity::Optional => match &ty.base {
            BaseType::Enum(name) => enum_default(field, value, name, names),
            BaseType::Scalar(s) => scalar_default(field, value, *s, ty.native.as_ref()),
        },
    };
    result.map_err(|d| diags.push(d)).ok()
}

fn enum_default(field: &str, value: &Expr, enum_name: &str, names: &Names) -> Result<DefaultValue, Diagnostic> {
    let Expr::Constant(id) = value else {
        return Err(Diagnostic::default_type_mismatch(
            field,
            &format!("a value of enum `{enum_name}`"),
            value.describe(),
            value.span(),
        ));
    };
    let variants = names.enums.get(enum_name).map(|e| e.variants.as_slice()).unwrap_or_default();
    if let Some(v) = variants.iter().find(|v| v.name.name == id.name) {
        Ok(DefaultValue::Enum(super::variant_value(v).to_string()))
    } else {
        let variants = variants.iter().map(|v| v.name.name.as_str());
        Err(Diagnostic::unknown_enum_default(field, &id.name, enum_name, suggest(&id.name, variants), id.span))
    }
}

fn scalar_default(
    field: &str,
    value: &Expr,
    scalar: ScalarType,
    native: Option<&NativeType>,
) -> Result<DefaultValue, Diagnostic> {
    use ScalarType as S;
    let mismatch = |expected: &str| Diagnostic::default_type_mismatch(field, expected, value.describe(), value.span());
    if let Expr::Call(name, args, span) = value {
        // `uuid(4)` is Prisma's explicit spelling of `uuid()`.
        let no_args = match args.as_slice() {
            [] => true,
            [ArgAst { name: None, value: Expr::Number(n, _), .. }] => name.name == "uuid" && n == "4",
            _ => false,
        };
        return function_default(field, &name.name, no_args, scalar, *span);
    }
    match (scalar, value) {
        (S::String | S::Bytes, Expr::String(s, _)) => Ok(DefaultValue::String(s.clone())),
        (S::Json, Expr::String(s, span)) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(_) => Ok(DefaultValue::String(s.clone())),
            Err(_) => Err(Diagnostic::default_type_mismatch(
                field,
                "a string holding valid JSON",
                "a string that is not JSON",
                *span,
            )),
        },
        (S::Int | S::BigInt, Expr::Number(n, span)) => {
            let (min, max) = native::int_range(scalar, native);
            match n.parse::<i128>() {
                Ok(v) if (min..=max).contains(&v) => Ok(DefaultValue::Number(n.clone())),
                Ok(_) => Err(Diagnostic::default_out_of_range(field, n, &native::int_type_name(scalar, native), *span)),
                Err(_) => Err(Diagnostic::default_type_mismatch(field, "a whole number", "a decimal number", *span)),
            }
        }
        (S::Float | S::Decimal, Expr::Number(n, _)) => Ok(DefaultValue::Number(n.clone())),
        (S::Boolean, Expr::Constant(id)) if id.name == "true" || id.name == "false" => {
            Ok(DefaultValue::Boolean(id.name == "true"))
        }
        (S::DateTime, Expr::String(s, span)) => {
            // Prisma writes ISO 8601 (`2024-01-31T23:59:59.123Z`); stored as ClickHouse reads it.
            let fractions = matches!(native, Some(NativeType::DateTime64 { .. }));
            match normalize_datetime(s) {
                Some(t) if fractions || !t.contains('.') => Ok(DefaultValue::String(t)),
                Some(_) => Err(Diagnostic::default_type_mismatch(
                    field,
                    "whole seconds (a `DateTime`; `@db.DateTime64(p)` holds fractions)",
                    "a fraction of a second",
                    *span,
                )),
                None => Err(Diagnostic::default_type_mismatch(
                    field,
                    "`now()` or a UTC time like \"2024-01-31 23:59:59\" or \"2024-01-31T23:59:59Z\"",
                    "another string",
                    *span,
                )),
            }
        }
        (S::Date, Expr::String(s, span)) => {
            if looks_like_date(s) {
                Ok(DefaultValue::String(s.clone()))
            } else {
                Err(Diagnostic::default_type_mismatch(
                    field,
                    "`now()` or a date like \"2024-01-31\"",
                    "another string",
                    *span,
                ))
            }
        }
        (S::Uuid, Expr::String(s, span)) => {
            if looks_like_uuid(s) {
                Ok(DefaultValue::String(s.clone()))
            } else {
                Err(Diagnostic::default_type_mismatch(field, "`uuid()` or a UUID string", "another string", *span))
            }
        }
        (S::String | S::Bytes | S::Json, _) => Err(mismatch("a string")),
        (S::Int | S::BigInt, _) => Err(mismatch("a whole number")),
        (S::Float | S::Decimal, _) => Err(mismatch("a number")),
        (S::Boolean, _) => Err(mismatch("`true` or `false`")),
        (S::DateTime | S::Date, _) => Err(mismatch("`now()` or a string")),
        (S::Uuid, _) => Err(mismatch("`uuid()` or a UUID string")),
    }
}

fn function_default(
    field: &str,
    name: &str,
    no_args: bool,
    scalar: ScalarType,
    span: crate::source::Span,
) -> Result<DefaultValue, Diagnostic> {
    match (name, scalar) {
        ("now", ScalarType::DateTime | ScalarType::Date) if no_args => Ok(DefaultValue::Now),
        ("uuid", ScalarType::Uuid | ScalarType::String) if no_args => Ok(DefaultValue::Uuid),
        ("now", _) => Err(Diagnostic::default_type_mismatch(
            field,
            "a literal (`now()` is for DateTime and Date fields)",
            "`now()`",
            span,
        )),
        ("uuid", ScalarType::Uuid | ScalarType::String) => Err(Diagnostic::unsupported_default_function(
            "uuid(7)",
            "use `uuid()` (a random, version 4 UUID) or send the id from the client",
            span,
        )),
        ("uuid", _) => Err(Diagnostic::default_type_mismatch(
            field,
            "a literal (`uuid()` is for Uuid and String fields)",
            "`uuid()`",
            span,
        )),
        ("autoincrement", _) => Err(Diagnostic::unsupported_default_function(
            name,
            "ClickHouse has no auto-increment; use `@default(uuid())` or send an id from the client",
            span,
        )),
        ("cuid" | "nanoid" | "ulid" | "auto" | "dbgenerated" | "sequence", _) => {
            Err(Diagnostic::unsupported_default_function(name, "use `@default(uuid())`", span))
        }
        _ => Err(Diagnostic::unsupported_default_function(name, "defaults are literals, `now()` or `uuid()`", span)),
    }
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// `2024-01-31 23:59:59`, `2024-01-31T23:59:59`, with an optional fraction (1–9 digits) and
/// an optional UTC designator (`Z`, `+00:00`) → `2024-01-31 23:59:59[.fff]`. Other offsets
/// are refused: igloo's times are UTC.
fn normalize_datetime(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let whole = s.is_ascii()
        && b.len() >= 19
        && looks_like_date(&s[..10])
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && b[16] == b':'
        && [11, 12, 14, 15, 17, 18].iter().all(|&i| b[i].is_ascii_digit());
    if !whole {
        return None;
    }
    let mut rest = &s[19..];
    let mut fraction = "";
    if let Some(after) = rest.strip_prefix('.') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        fraction = &rest[..=digits];
        rest = &after[digits..];
    }
    if !matches!(rest, "" | "Z" | "+00:00" | "+0000") {
        return None;
    }
    Some(format!("{} {}{fraction}", &s[..10], &s[11..19]))
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

#[cfg(test)]
mod tests {
    use super::normalize_datetime;

    #[test]
    fn datetime_defaults_take_prisma_iso_and_clickhouse_forms() {
        assert_eq!(normalize_datetime("2024-01-31 23:59:59").as_deref(), Some("2024-01-31 23:59:59"));
        assert_eq!(normalize_datetime("2024-01-31T23:59:59Z").as_deref(), Some("2024-01-31 23:59:59"));
        assert_eq!(normalize_datetime("2024-01-31T23:59:59.123Z").as_deref(), Some("2024-01-31 23:59:59.123"));
        assert_eq!(normalize_datetime("2024-01-31T23:59:59+00:00").as_deref(), Some("2024-01-31 23:59:59"));
        assert_eq!(normalize_datetime("2024-01-31T23:59:59+02:00"), None);
        assert_eq!(normalize_datetime("2024-01-31T23:59:59."), None);
        assert_eq!(normalize_datetime("2024-01-31T23:59:59.1234567890Z"), None);
        assert_eq!(normalize_datetime("2024-01-31"), None);
        assert_eq!(normalize_datetime("2024-01-31T23:59:5é"), None);
    }
}
