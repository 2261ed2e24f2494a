//! A record the ingest API accepts for a model, for the console's ingest playground: every
//! field without a default, with a plausible value of its type. A time series gets the current
//! time in its unit, so the record shows up in the live chart.

use chrono::{DateTime, SecondsFormat, Utc};
use igloo_schemas::ir::{Arity, BaseType, Field, Ir, Model, NativeType, ScalarType, TimeUnit};
use serde_json::{json, Map, Value};

pub fn example_record(ir: &Ir, model: &Model, now: DateTime<Utc>) -> Value {
    let mut out = Map::new();
    for f in model.fields.iter().filter(|f| f.default.is_none()) {
        let ts = model.timeseries.as_ref();
        let value = if ts.is_some_and(|t| t.time == f.name) && f.ty.arity != Arity::List {
            time_value(f, ts.map(|t| t.unit).unwrap_or(TimeUnit::S), now)
        } else if ts.is_some_and(|t| t.series == f.name) {
            json!("example")
        } else {
            let one = scalar(ir, f, now);
            match (f.ty.arity, one.as_f64()) {
                // Numbers differ, so each element is visible in a chart or a table.
                (Arity::List, Some(x)) if one.is_f64() => json!([x, x + 1.0, x + 2.0]),
                (Arity::List, _) => json!([one.clone(), one]),
                _ => one,
            }
        };
        out.insert(f.name.clone(), value);
    }
    Value::Object(out)
}

fn time_value(f: &Field, unit: TimeUnit, now: DateTime<Utc>) -> Value {
    let nanos = now.timestamp_nanos_opt().unwrap_or(0);
    match f.ty.base {
        BaseType::Scalar(ScalarType::Int | ScalarType::BigInt) => json!(match unit {
            TimeUnit::S => nanos / 1_000_000_000,
            TimeUnit::Ms => nanos / 1_000_000,
            TimeUnit::Us => nanos / 1_000,
            TimeUnit::Ns => nanos,
        }),
        _ => json!(now.to_rfc3339_opts(SecondsFormat::Millis, true)),
    }
}

fn scalar(ir: &Ir, f: &Field, now: DateTime<Utc>) -> Value {
    let s = match &f.ty.base {
        BaseType::Enum(name) => {
            let first = ir.enums.iter().find(|e| &e.name == name).and_then(|e| e.variants.first());
            return json!(first.map(|v| v.name.as_str()).unwrap_or(""));
        }
        BaseType::Scalar(s) => *s,
    };
    match s {
        ScalarType::String => match f.ty.native {
            Some(NativeType::FixedString { length }) => json!("x".repeat(length as usize)),
            _ => json!(format!("{} 1", f.name)),
        },
        ScalarType::Boolean => json!(true),
        ScalarType::Int | ScalarType::BigInt => json!(1),
        ScalarType::Float => json!(1.5),
        ScalarType::Decimal => json!("1.50"),
        ScalarType::DateTime => json!(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ScalarType::Date => json!(now.format("%Y-%m-%d").to_string()),
        ScalarType::Json => json!({ "example": true }),
        ScalarType::Bytes => json!("aWdsb28="),
        ScalarType::Uuid => json!(uuid::Uuid::new_v4().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{validate_record, Context};
    use igloo_schemas::{check, SourceFile};

    /// Every field type (the ingest validator's fixture), and a time series.
    fn schema() -> String {
        let point = "model Point {\n  time BigInt\n  tag String\n  values Float[]\n  @@id([tag, time])\n  @@timeseries(time: time, series: tag)\n}\n";
        format!("{}{point}", crate::validate::tests::SCHEMA)
    }

    #[test]
    fn every_example_passes_ingest_validation() {
        let files = [SourceFile::new("s.prisma", schema())];
        let (ir, d) = check(&files);
        assert!(!d.has_errors(), "{}", d.render(&files));
        let now = DateTime::from_timestamp(1_700_000_000, 5).unwrap();
        for model in &ir.models {
            let record = example_record(&ir, model, now);
            let mut uuid = || "00000000-0000-4000-8000-000000000000".to_string();
            let mut ctx = Context { now, uuid: &mut uuid };
            let row = validate_record(&ir, model, &record, 0, &mut ctx)
                .unwrap_or_else(|e| panic!("{}: {record} rejected: {e:?}", model.name));
            if model.name == "Event" {
                assert!(!record.as_object().unwrap().contains_key("at"), "fields with defaults are left out");
                assert!(record.as_object().unwrap().contains_key("id"));
            }
            if model.name == "Point" {
                assert_eq!(record["time"], json!(1_700_000_000_000_000_005_i64), "now, in ns");
                let row: Value = serde_json::from_str(&row.row).unwrap();
                assert_eq!(row["tag"], "example");
            }
        }
    }
}
