//! ClickHouse column types as values, and the mapping from IR field types to them.
//! Rendering picks a fallback where the dialect lacks a type (Bool → UInt8, LowCardinality(T) → T).

use crate::dialect::{Dialect, Feature};
use crate::ir::{Arity, BaseType, FieldType, Ir, NativeType, ScalarType};

use super::quote;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChType {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: u8,
    },
    String,
    FixedString(u32),
    Date,
    Date32,
    /// Always with an explicit `'UTC'` time zone, so the server's zone never shifts values.
    DateTime,
    DateTime64(u8),
    Uuid,
    Bool,
    /// Enum8 or Enum16, values numbered from 1 in declaration order.
    Enum(Vec<String>),
    Nullable(Box<ChType>),
    Array(Box<ChType>),
    LowCardinality(Box<ChType>),
    /// `AggregateFunction(name, args…)`: a partial aggregation state (rollup tables).
    AggregateFunction(&'static str, Vec<ChType>),
}

/// Precision and scale of a `Decimal` field without `@db.Decimal(p, s)`.
pub const DEFAULT_DECIMAL: (u8, u8) = (38, 9);

impl ChType {
    /// The column type of a field.
    pub fn of_field(ty: &FieldType, ir: &Ir) -> ChType {
        let base = match (&ty.base, &ty.native) {
            (BaseType::Enum(name), _) => ChType::Enum(
                ir.enum_def(name).map(|e| e.variants.iter().map(|v| v.name.clone()).collect()).unwrap_or_default(),
            ),
            (BaseType::Scalar(_), Some(native)) => ChType::of_native(native),
            (BaseType::Scalar(s), None) => ChType::of_scalar(*s),
        };
        match ty.arity {
            Arity::Required => base,
            Arity::List => ChType::Array(Box::new(base)),
            // ClickHouse wants LowCardinality(Nullable(T)), not Nullable(LowCardinality(T)).
            Arity::Optional => match base {
                ChType::LowCardinality(inner) => ChType::LowCardinality(Box::new(ChType::Nullable(inner))),
                other => ChType::Nullable(Box::new(other)),
            },
        }
    }

    fn of_scalar(s: ScalarType) -> ChType {
        match s {
            ScalarType::String | ScalarType::Json | ScalarType::Bytes => ChType::String,
            ScalarType::Boolean => ChType::Bool,
            ScalarType::Int => ChType::Int32,
            ScalarType::BigInt => ChType::Int64,
            ScalarType::Float => ChType::Float64,
            ScalarType::Decimal => ChType::Decimal { precision: DEFAULT_DECIMAL.0, scale: DEFAULT_DECIMAL.1 },
            ScalarType::DateTime => ChType::DateTime,
            ScalarType::Date => ChType::Date,
            ScalarType::Uuid => ChType::Uuid,
        }
    }

    fn of_native(n: &NativeType) -> ChType {
        match n {
            NativeType::Int8 => ChType::Int8,
            NativeType::Int16 => ChType::Int16,
            NativeType::Int32 => ChType::Int32,
            NativeType::Int64 => ChType::Int64,
            NativeType::UInt8 => ChType::UInt8,
            NativeType::UInt16 => ChType::UInt16,
            NativeType::UInt32 => ChType::UInt32,
            NativeType::UInt64 => ChType::UInt64,
            NativeType::Float32 => ChType::Float32,
            NativeType::Float64 => ChType::Float64,
            NativeType::Decimal { precision, scale } => ChType::Decimal { precision: *precision, scale: *scale },
            NativeType::DateTime => ChType::DateTime,
            NativeType::DateTime64 { precision } => ChType::DateTime64(*precision),
            NativeType::Date => ChType::Date,
            NativeType::Date32 => ChType::Date32,
            NativeType::String => ChType::String,
            NativeType::FixedString { length } => ChType::FixedString(*length),
            NativeType::LowCardinality => ChType::LowCardinality(Box::new(ChType::String)),
            NativeType::Uuid => ChType::Uuid,
        }
    }

    pub fn render(&self, dialect: Dialect) -> String {
        match self {
            ChType::Int8 => "Int8".into(),
            ChType::Int16 => "Int16".into(),
            ChType::Int32 => "Int32".into(),
            ChType::Int64 => "Int64".into(),
            ChType::UInt8 => "UInt8".into(),
            ChType::UInt16 => "UInt16".into(),
            ChType::UInt32 => "UInt32".into(),
            ChType::UInt64 => "UInt64".into(),
            ChType::Float32 => "Float32".into(),
            ChType::Float64 => "Float64".into(),
            ChType::Decimal { precision, scale } => format!("Decimal({precision}, {scale})"),
            ChType::String => "String".into(),
            ChType::FixedString(n) => format!("FixedString({n})"),
            ChType::Date => "Date".into(),
            ChType::Date32 => "Date32".into(),
            ChType::DateTime => format!("DateTime({})", quote::string("UTC")),
            ChType::DateTime64(p) => format!("DateTime64({p}, {})", quote::string("UTC")),
            ChType::Uuid => "UUID".into(),
            ChType::Bool if dialect.supports(Feature::Bool) => "Bool".into(),
            ChType::Bool => "UInt8".into(),
            ChType::Enum(variants) => {
                let width = 8 * ChType::enum_bytes(variants);
                let items: Vec<String> =
                    variants.iter().enumerate().map(|(i, v)| format!("{} = {}", quote::string(v), i + 1)).collect();
                format!("Enum{width}({})", items.join(", "))
            }
            ChType::Nullable(inner) => format!("Nullable({})", inner.render(dialect)),
            ChType::Array(inner) => format!("Array({})", inner.render(dialect)),
            ChType::LowCardinality(inner) if dialect.supports(Feature::LowCardinality) => {
                format!("LowCardinality({})", inner.render(dialect))
            }
            ChType::LowCardinality(inner) => inner.render(dialect),
            ChType::AggregateFunction(name, args) => {
                let args: Vec<String> =
                    std::iter::once(name.to_string()).chain(args.iter().map(|a| a.render(dialect))).collect();
                format!("AggregateFunction({})", args.join(", "))
            }
        }
    }

    /// The bytes of an enum's value: Enum8 up to 127 variants, else Enum16.
    pub fn enum_bytes(variants: &[String]) -> usize {
        if variants.len() <= i8::MAX as usize {
            1
        } else {
            2
        }
    }

    /// The type with `Nullable`, `Array` and `LowCardinality` taken off.
    pub fn innermost(&self) -> &ChType {
        match self {
            ChType::Nullable(t) | ChType::Array(t) | ChType::LowCardinality(t) => t.innermost(),
            t => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallbacks_by_dialect() {
        let lc = ChType::LowCardinality(Box::new(ChType::Nullable(Box::new(ChType::String))));
        assert_eq!(lc.render(Dialect::CURRENT), "LowCardinality(Nullable(String))");
        assert_eq!(lc.render(Dialect::V18_16), "Nullable(String)");
        assert_eq!(ChType::Bool.render(Dialect::V18_16), "UInt8");
        assert_eq!(ChType::Bool.render(Dialect::CURRENT), "Bool");
        assert_eq!(
            ChType::Enum(vec!["A".into(), "it's".into()]).render(Dialect::V18_16),
            "Enum8('A' = 1, 'it\\'s' = 2)"
        );
        assert!(ChType::Enum((0..200).map(|i| format!("v{i}")).collect())
            .render(Dialect::CURRENT)
            .starts_with("Enum16("));
    }
}
