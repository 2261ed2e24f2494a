//! Checks of a valid IR against one ClickHouse version: types and clauses the version lacks
//! are errors, types with a safe fallback are warnings. Pure: the version is handed in.

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::dialect::{Dialect, Feature};
use crate::ir::{Arity, Ir, NativeType};

pub fn check_target(ir: &Ir, dialect: Dialect) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let version = dialect.to_string();
    let missing = |feature: Feature| (!dialect.supports(feature)).then(|| feature.min_version().to_string());
    for model in &ir.models {
        if let (Some(span), Some(min)) = (model.spans.ttl, missing(Feature::TableTtl)) {
            diags.push(Diagnostic::not_available_on(Feature::TableTtl.describe(), &version, &min, span));
        }
        for field in &model.fields {
            let Some(native) = &field.ty.native else { continue };
            let span = field.spans.native.unwrap_or(field.spans.field);
            let required = match native {
                NativeType::DateTime64 { .. } => Some(Feature::DateTime64),
                NativeType::Date32 => Some(Feature::Date32),
                NativeType::Decimal { precision, .. } if *precision > 38 => Some(Feature::WideDecimal),
                _ => None,
            };
            if let Some(feature) = required {
                if let Some(min) = missing(feature) {
                    diags.push(Diagnostic::not_available_on(&format!("`@db.{native}`"), &version, &min, span));
                }
            }
            if *native == NativeType::LowCardinality && missing(Feature::LowCardinality).is_some() {
                let plain = if field.ty.arity == Arity::Optional { "Nullable(String)" } else { "String" };
                diags.push(Diagnostic::fallback_on("`@db.LowCardinality`", &version, plain, span));
            }
        }
    }
    diags
}
