//! `@@timeseries(time: t, series: tag, values: [v], unit: "ns")`: checks that a model can be
//! rolled up and sampled, and produces its [`TimeSeries`]. Values default to every required
//! number or list of numbers other than the time and the series.

use crate::ast::{AttributeAst, Expr};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::ir::{Arity, BaseType, Field, NativeType, ScalarType, TimeSeries, TimeUnit};

use super::attributes::ModelCtx;

const KNOWN: &str = "`time`, `series`, `values` and `unit`";

pub(super) fn timeseries(
    ctx: &ModelCtx,
    attr: &AttributeAst,
    order_by: &[String],
    diags: &mut Diagnostics,
) -> Option<TimeSeries> {
    let model = &ctx.model.name.name;
    let mut time = None;
    let mut series = None;
    let mut values = None;
    let mut unit = None;
    let mut ok = true;
    for arg in &attr.args {
        let Some(name) = &arg.name else {
            diags.push(Diagnostic::attribute_arguments(
                "@@",
                "timeseries",
                &format!("named arguments: {KNOWN}, e.g. `@@timeseries(time: time, series: tag)`"),
                arg.span,
            ));
            ok = false;
            continue;
        };
        match (name.name.as_str(), &arg.value) {
            ("time", Expr::Constant(id)) => time = Some(id),
            ("series", Expr::Constant(id)) => series = Some(id),
            ("values", Expr::Array(items, _)) => {
                let mut ids = Vec::new();
                for item in items {
                    match item {
                        Expr::Constant(id) => ids.push(id),
                        other => {
                            diags.push(Diagnostic::attribute_arguments(
                                "@@",
                                "timeseries",
                                &format!("field names in `values`, found {}", other.describe()),
                                other.span(),
                            ));
                            ok = false;
                        }
                    }
                }
                values = Some(ids);
            }
            ("unit", Expr::String(s, span)) => match TimeUnit::ALL.into_iter().find(|u| u.name() == s) {
                Some(u) => unit = Some((u, *span)),
                None => {
                    diags.push(Diagnostic::timeseries_unit(s, *span));
                    ok = false;
                }
            },
            ("time" | "series", v) => {
                diags.push(Diagnostic::attribute_arguments("@@", "timeseries", "a field name", v.span()));
                ok = false;
            }
            ("values", v) => {
                diags.push(Diagnostic::attribute_arguments("@@", "timeseries", "a list of fields", v.span()));
                ok = false;
            }
            ("unit", v) => {
                diags.push(Diagnostic::attribute_arguments("@@", "timeseries", "a unit string like \"ns\"", v.span()));
                ok = false;
            }
            (other, _) => {
                diags.push(Diagnostic::unknown_argument("@@timeseries", other, KNOWN, name.span));
                ok = false;
            }
        }
    }
    let (Some(time), Some(series)) = (time, series) else {
        diags.push(Diagnostic::attribute_arguments(
            "@@",
            "timeseries",
            "the time and series fields, e.g. `@@timeseries(time: time, series: tag)`",
            attr.span,
        ));
        return None;
    };
    let label = "@@timeseries";
    let time_field = ctx.check_field_ref(label, time, true, diags);
    let series_field = ctx.check_field_ref(label, series, true, diags);
    let (time_field, series_field) = (time_field?, series_field?);
    let unit = match (time_kind(time_field), unit) {
        (Some(TimeKind::DateTime), None) => Some(TimeUnit::S),
        (Some(TimeKind::DateTime), Some((_, span))) => {
            diags.push(Diagnostic::timeseries_unit_on_datetime(&time.name, span));
            None
        }
        (Some(TimeKind::Integer), u) => Some(u.map_or(TimeUnit::Ns, |(u, _)| u)),
        (None, _) => {
            diags.push(Diagnostic::timeseries_field_type(
                "time",
                &time.name,
                "an integer (`BigInt`, counted in `unit`s since the Unix epoch) or a `DateTime`",
                time.span,
            ));
            None
        }
    };
    if !is_series_type(series_field) {
        diags.push(Diagnostic::timeseries_field_type(
            "series",
            &series.name,
            "a String, an integer, a UUID or an enum",
            series.span,
        ));
        return None;
    }
    let unit = unit?;
    let values: Vec<String> = match values {
        Some(ids) => {
            for id in &ids {
                let f = ctx.check_field_ref(label, id, false, diags)?;
                if !is_value_type(f) || id.name == time.name || id.name == series.name {
                    diags.push(Diagnostic::timeseries_field_type(
                        "value",
                        &id.name,
                        "a required Int, BigInt or Float, or a list of them, other than the time and the series",
                        id.span,
                    ));
                    ok = false;
                }
            }
            ids.iter().map(|id| id.name.clone()).collect()
        }
        None => ctx
            .fields
            .iter()
            .filter(|f| f.name != time.name && f.name != series.name && is_value_type(f))
            .map(|f| f.name.clone())
            .collect(),
    };
    if values.is_empty() {
        diags.push(Diagnostic::timeseries_no_values(model, attr.span));
        return None;
    }
    if order_by.len() < 2 || order_by[0] != series.name || order_by[1] != time.name {
        diags.push(Diagnostic::timeseries_sorting_key(model, &series.name, &time.name, attr.span));
        ok = false;
    }
    ok.then(|| TimeSeries { time: time.name.clone(), unit, series: series.name.clone(), values })
}

enum TimeKind {
    Integer,
    DateTime,
}

fn time_kind(f: &Field) -> Option<TimeKind> {
    if f.ty.arity != Arity::Required {
        return None;
    }
    match (&f.ty.base, &f.ty.native) {
        (BaseType::Scalar(ScalarType::Int | ScalarType::BigInt), _) => Some(TimeKind::Integer),
        (BaseType::Scalar(ScalarType::DateTime), None | Some(NativeType::DateTime)) => Some(TimeKind::DateTime),
        _ => None,
    }
}

fn is_series_type(f: &Field) -> bool {
    f.ty.arity == Arity::Required
        && match &f.ty.base {
            BaseType::Enum(_) => true,
            BaseType::Scalar(s) => {
                matches!(s, ScalarType::String | ScalarType::Int | ScalarType::BigInt | ScalarType::Uuid)
            }
        }
}

/// Numbers ClickHouse's min/max/avg/argMax states handle the same on every version.
fn is_value_type(f: &Field) -> bool {
    f.ty.arity != Arity::Optional
        && matches!(f.ty.base, BaseType::Scalar(ScalarType::Int | ScalarType::BigInt | ScalarType::Float))
}
