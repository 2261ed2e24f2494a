//! `@db.X` native types: which exist, what arguments they take, which scalars they fit.

use crate::ast::{AttributeAst, Expr};
use crate::diagnostics::Diagnostic;
use crate::ir::{NativeType, ScalarType};
use crate::prisma::Provider;

use super::suggest;

const NAMES: &[&str] = &[
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Float32",
    "Float64",
    "Decimal",
    "DateTime",
    "DateTime64",
    "Date",
    "Date32",
    "String",
    "FixedString",
    "LowCardinality",
    "UUID",
];

/// Parses `@db.<name>(args)` for a field of type `scalar`, in a schema whose `datasource`
/// names `provider` (if any).
pub(super) fn native_type(
    attr: &AttributeAst,
    name: &str,
    scalar: ScalarType,
    provider: Option<Provider>,
) -> Result<NativeType, Diagnostic> {
    let span = attr.span;
    // CockroachDB's INT8 is 64 bits; igloo's `@db.Int8` would silently narrow it.
    if provider == Some(Provider::CockroachDb) && name == "Int8" {
        return Err(foreign(name, scalar, provider, attr).expect("CockroachDB's Int8 is known"));
    }
    let numbers: Vec<Option<u64>> = attr
        .args
        .iter()
        .map(|a| match &a.value {
            Expr::Number(n, _) if a.name.is_none() => n.parse::<u64>().ok(),
            _ => None,
        })
        .collect();
    let no_args = || {
        if attr.args.is_empty() {
            Ok(())
        } else {
            Err(Diagnostic::bad_native_argument(name, "no arguments", span).with_foreign_meaning(name))
        }
    };
    let native = match name {
        "Int8" => no_args().map(|_| NativeType::Int8)?,
        "Int16" => no_args().map(|_| NativeType::Int16)?,
        "Int32" => no_args().map(|_| NativeType::Int32)?,
        "Int64" => no_args().map(|_| NativeType::Int64)?,
        "UInt8" => no_args().map(|_| NativeType::UInt8)?,
        "UInt16" => no_args().map(|_| NativeType::UInt16)?,
        "UInt32" => no_args().map(|_| NativeType::UInt32)?,
        "UInt64" => no_args().map(|_| NativeType::UInt64)?,
        "Float32" => no_args().map(|_| NativeType::Float32)?,
        "Float64" => no_args().map(|_| NativeType::Float64)?,
        "DateTime" => no_args().map(|_| NativeType::DateTime)?,
        "Date" => no_args().map(|_| NativeType::Date)?,
        "Date32" => no_args().map(|_| NativeType::Date32)?,
        "String" => no_args().map(|_| NativeType::String)?,
        "LowCardinality" => no_args().map(|_| NativeType::LowCardinality)?,
        "UUID" => no_args().map(|_| NativeType::Uuid)?,
        "Decimal" => match numbers.as_slice() {
            [Some(p), Some(s)] if (1..=76).contains(p) && s <= p => {
                NativeType::Decimal { precision: *p as u8, scale: *s as u8 }
            }
            _ => {
                return Err(Diagnostic::bad_native_argument(
                    name,
                    "a precision from 1 to 76 and a scale no larger than it, e.g. `@db.Decimal(18, 4)`",
                    span,
                ))
            }
        },
        "DateTime64" => match numbers.as_slice() {
            [Some(p)] if *p <= 9 => NativeType::DateTime64 { precision: *p as u8 },
            _ => {
                return Err(Diagnostic::bad_native_argument(
                    name,
                    "a precision from 0 to 9 (digits after the second), e.g. `@db.DateTime64(3)`",
                    span,
                ))
            }
        },
        "FixedString" => match numbers.as_slice() {
            [Some(n)] if (1..=65535).contains(n) => NativeType::FixedString { length: *n as u32 },
            _ => {
                return Err(Diagnostic::bad_native_argument(
                    name,
                    "a length in bytes from 1 to 65535, e.g. `@db.FixedString(16)`",
                    span,
                ))
            }
        },
        _ => {
            return Err(foreign(name, scalar, provider, attr).unwrap_or_else(|| {
                Diagnostic::unknown_native_type(name, suggest(name, NAMES.iter().copied()), attr.name.span)
            }))
        }
    };
    let allowed = allowed_scalars(&native);
    if !allowed.contains(&scalar) {
        let list = allowed.iter().map(|s| format!("`{}`", s.name())).collect::<Vec<_>>().join(" or ");
        return Err(Diagnostic::native_type_mismatch(name, scalar.name(), &format!("{list} fields"), span)
            .with_foreign_meaning(name));
    }
    Ok(native)
}

/// The diagnostic for another database's native type, if `name` is one.
fn foreign(name: &str, scalar: ScalarType, provider: Option<Provider>, attr: &AttributeAst) -> Option<Diagnostic> {
    let mut foreign = crate::prisma::foreign_native(name, provider)?;
    foreign.mapping = foreign.mapping.for_scalar(scalar);
    Some(Diagnostic::foreign_native_type(name, &foreign, attr.span))
}

fn allowed_scalars(native: &NativeType) -> &'static [ScalarType] {
    use ScalarType as S;
    match native {
        NativeType::Int8
        | NativeType::Int16
        | NativeType::Int32
        | NativeType::Int64
        | NativeType::UInt8
        | NativeType::UInt16
        | NativeType::UInt32
        | NativeType::UInt64 => &[S::Int, S::BigInt],
        NativeType::Float32 | NativeType::Float64 => &[S::Float],
        NativeType::Decimal { .. } => &[S::Decimal],
        NativeType::DateTime | NativeType::DateTime64 { .. } => &[S::DateTime],
        NativeType::Date | NativeType::Date32 => &[S::Date],
        NativeType::String => &[S::String, S::Json, S::Bytes],
        NativeType::FixedString { .. } => &[S::String, S::Bytes],
        NativeType::LowCardinality => &[S::String],
        NativeType::Uuid => &[S::Uuid],
    }
}

/// The inclusive integer range of an integer column, for checking defaults.
pub(crate) fn int_range(scalar: ScalarType, native: Option<&NativeType>) -> (i128, i128) {
    match native {
        Some(NativeType::Int8) => (i8::MIN.into(), i8::MAX.into()),
        Some(NativeType::Int16) => (i16::MIN.into(), i16::MAX.into()),
        Some(NativeType::Int32) => (i32::MIN.into(), i32::MAX.into()),
        Some(NativeType::Int64) => (i64::MIN.into(), i64::MAX.into()),
        Some(NativeType::UInt8) => (0, u8::MAX.into()),
        Some(NativeType::UInt16) => (0, u16::MAX.into()),
        Some(NativeType::UInt32) => (0, u32::MAX.into()),
        Some(NativeType::UInt64) => (0, u64::MAX.into()),
        _ if scalar == ScalarType::Int => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    }
}

/// How the integer type reads in messages.
pub(crate) fn int_type_name(scalar: ScalarType, native: Option<&NativeType>) -> String {
    match native {
        Some(n) => n.to_string(),
        None if scalar == ScalarType::Int => "Int (Int32)".into(),
        None => "BigInt (Int64)".into(),
    }
}
