//! Ingest validation: a JSON record → a row for ClickHouse (column names, defaults filled,
//! values normalized) or every problem in it. Pure: the clock and the UUID source are handed in.
//!
//! What clients send, per field type (documented in README):
//! - `String`, `Json` (any JSON value, stored as its text), `Bytes` (base64 text, stored as is),
//!   `Uuid` (canonical text), enums (the value's name);
//! - `Int`/`BigInt` and `@db` integer types: JSON integers in the column's range; 64-bit
//!   columns also take a string of digits (JavaScript cannot hold them exactly);
//! - `Float`, `Decimal`: JSON numbers (`Decimal` also a numeric string);
//! - `Boolean`: `true`/`false`;
//! - `DateTime`: RFC 3339 text (`2024-01-31T23:59:59Z`, any offset), ClickHouse's text form
//!   `2024-01-31 23:59:59[.fff]` (read as UTC), or epoch **seconds** (fractional seconds kept
//!   for `@db.DateTime64(p)`); stored in UTC. `Date`: `YYYY-MM-DD`;
//! - `T?`: `null` or absent; `T[]`: an array of `T` (absent: `[]`);
//! - an absent field with `@default(…)` gets its default; unknown fields are errors;
//!   `@ignore`d fields are accepted and dropped.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use igloo_schemas::ir::{Arity, BaseType, DefaultValue, Field, Ir, Model, NativeType, ScalarType};
use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Number, Value};

use crate::kafka::wire::KeyedRow;
use crate::strict_json::{FieldValue, Fields, Raw};

/// One problem with one record, as the API reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordError {
    /// The record's position in the request (0 for a single object).
    pub index: usize,
    /// `field`, or `field[2]` inside a list.
    pub path: String,
    pub reason: String,
}

/// A value as validated: the client's own when it is already what ClickHouse reads (most are),
/// else a normalized copy. Borrowing saves a copy and a free per field (BENCHMARKS.md, issue 20).
type Checked<'v> = Cow<'v, Value>;

/// What a validation run needs from outside: the time for `now()` and UUIDs for `uuid()`.
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub uuid: &'a mut dyn FnMut() -> String,
}

/// A valid record becomes its message key and its row: a JSON object keyed by column name
/// (columns in name order), written straight from the checked values.
pub fn validate_record(
    ir: &Ir,
    model: &Model,
    value: &Value,
    index: usize,
    ctx: &mut Context,
) -> Result<KeyedRow, Vec<RecordError>> {
    match value {
        Value::Object(obj) => validate_object(ir, model, obj, index, ctx),
        other => Err(vec![not_an_object(other, index)]),
    }
}

/// The error for a record that is not a JSON object.
pub fn not_an_object(value: &Value, index: usize) -> RecordError {
    RecordError { index, path: String::new(), reason: format!("expected a JSON object, found {}", kind(value)) }
}

/// A JSON object's fields, however they were read: a `serde_json` map, or ingest's
/// [`Fields`] (names borrowed from the request, most values as the text sent).
pub trait Object {
    fn field(&self, name: &str) -> Option<Given<'_>>;
    fn names(&self) -> impl Iterator<Item = &str>;
}

/// A field's value as the record holds it.
#[derive(Clone, Copy)]
pub enum Given<'v> {
    Value(&'v Value),
    /// The JSON text sent ([`Raw`]).
    Raw(Raw<'v>),
}

impl Object for serde_json::Map<String, Value> {
    fn field(&self, name: &str) -> Option<Given<'_>> {
        self.get(name).map(Given::Value)
    }
    fn names(&self) -> impl Iterator<Item = &str> {
        self.keys().map(String::as_str)
    }
}

impl Object for Fields<'_> {
    fn field(&self, name: &str) -> Option<Given<'_>> {
        self.get(name).map(|v| match v {
            FieldValue::Raw(raw) => Given::Raw(*raw),
            FieldValue::Value(v) => Given::Value(v),
        })
    }
    fn names(&self) -> impl Iterator<Item = &str> {
        Fields::names(self)
    }
}

/// [`validate_record`] of an object.
pub fn validate_object(
    ir: &Ir,
    model: &Model,
    obj: &impl Object,
    index: usize,
    ctx: &mut Context,
) -> Result<KeyedRow, Vec<RecordError>> {
    let err = |path: &str, reason: String| RecordError { index, path: path.to_string(), reason };
    let mut errors = Vec::new();
    for name in obj.names() {
        if model.field(name).is_none() && !model.ignored_fields.iter().any(|f| f == name) {
            let known = model.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
            errors.push(err(name, format!("unknown field; {} has {known}", model.name)));
        }
    }
    // On the stack for models of up to 16 fields: no allocation per record for these two lists.
    let mut columns: smallvec::SmallVec<[(&str, Column); 16]> = smallvec::SmallVec::new();
    for field in &model.fields {
        match field_value(ir, field, obj.field(&field.name), ctx) {
            Ok(v) => columns.push((&field.column, v)),
            Err((path, reason)) => errors.push(err(&path, reason)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let key = {
        let column = |name: &str| columns.iter().find(|(c, _)| *c == name).map(|(_, v)| v);
        let key_columns: smallvec::SmallVec<[&Column; 4]> =
            model.topic.key.iter().filter_map(|f| model.field(f)).filter_map(|f| column(&f.column)).collect();
        match key_columns.as_slice() {
            // A string sent without escapes: its text between the quotes.
            [Column::Text(t)] if t.starts_with('"') => t[1..t.len() - 1].to_string(),
            key_columns => {
                let values: smallvec::SmallVec<[Cow<Value>; 4]> = key_columns.iter().map(|c| c.value()).collect();
                let values: smallvec::SmallVec<[&Value; 4]> = values.iter().map(|v| &**v).collect();
                crate::kafka::wire::message_key(&values)
            }
        }
    };
    columns.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(KeyedRow { key, row: object_text(&columns) })
}

/// A column's value in a row: a checked value, or JSON text taken as the client sent it.
enum Column<'v> {
    Value(Checked<'v>),
    Text(Cow<'v, str>),
}

impl Column<'_> {
    fn value(&self) -> Cow<'_, Value> {
        match self {
            Column::Value(v) => Cow::Borrowed(&**v),
            Column::Text(t) => Cow::Owned(serde_json::from_str(t).expect("raw values are valid JSON")),
        }
    }
}

/// `{"column":value,…}` as serde_json writes a map (the same escaping and number forms),
/// except that values taken as sent are written as sent.
fn object_text(columns: &[(&str, Column)]) -> String {
    let mut out = Vec::with_capacity(64 * columns.len());
    out.push(b'{');
    for (i, (name, value)) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, name).expect("writing to a Vec");
        out.push(b':');
        match value {
            Column::Value(v) => serde_json::to_writer(&mut out, &**v).expect("writing to a Vec"),
            Column::Text(t) => out.extend_from_slice(t.as_bytes()),
        }
    }
    out.push(b'}');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

type FieldResult<'v> = Result<Checked<'v>, (String, String)>;

/// A field's column. Text sent as a [`Raw`] value goes into the row as sent for floats, float
/// lists, strings and plain integers (the reference event's fields, checked without reading a
/// value), and for any string the check accepts unchanged (an enum's name, a UUID); else the
/// check's value. The outcome is the same as for the [`Value`] read from that text: the same
/// errors, and a row that reads back the same (numbers in the form sent).
fn field_value<'v>(
    ir: &Ir,
    field: &Field,
    given: Option<Given<'v>>,
    ctx: &mut Context,
) -> Result<Column<'v>, (String, String)> {
    let raw = match given {
        Some(Given::Raw(raw)) => raw,
        Some(Given::Value(v)) => return checked_value(ir, field, Some(v), ctx).map(Column::Value),
        None => return checked_value(ir, field, None, ctx).map(Column::Value),
    };
    let float = field.ty.base == BaseType::Scalar(ScalarType::Float);
    let integer = match field.ty.base {
        BaseType::Scalar(s @ (ScalarType::Int | ScalarType::BigInt)) => Some(s),
        _ => None,
    };
    match (raw, field.ty.arity, integer) {
        (Raw::Number(t), Arity::Required | Arity::Optional, Some(scalar)) => {
            if let Some(checked) = integer_as_sent(field, scalar, t) {
                return checked.map(Column::Text).map_err(|reason| (field.name.clone(), reason));
            }
        }
        (Raw::Number(t), Arity::Required | Arity::Optional, _) if float => return Ok(Column::Text(Cow::Borrowed(t))),
        (Raw::Numbers(_), Arity::List, _) if float => return Ok(Column::Text(raw.compact())),
        (Raw::Text(t), Arity::Required | Arity::Optional, _)
            if field.ty.base == BaseType::Scalar(ScalarType::String) =>
        {
            return fits(field.ty.native.as_ref(), t.len() - 2)
                .map(|()| Column::Text(Cow::Borrowed(t)))
                .map_err(|reason| (field.name.clone(), reason));
        }
        _ => {}
    }
    let value = raw.to_value();
    let normalized = match checked_value(ir, field, Some(&value), ctx)? {
        Cow::Owned(v) => Some(v),
        Cow::Borrowed(_) => None,
    };
    Ok(match normalized {
        Some(v) => Column::Value(Cow::Owned(v)),
        // Accepted unchanged: a string as sent; other shapes as the value read (so a decimal
        // or an integer list is written as before).
        None if matches!(raw, Raw::Text(_)) => Column::Text(Cow::Borrowed(raw.text())),
        None => Column::Value(Cow::Owned(value)),
    })
}

fn checked_value<'v>(ir: &Ir, field: &Field, given: Option<&'v Value>, ctx: &mut Context) -> FieldResult<'v> {
    let name = &field.name;
    match (given, field.ty.arity) {
        (Some(Value::Null), Arity::Optional) => return Ok(Cow::Owned(Value::Null)),
        (Some(Value::Null), Arity::List) => return Ok(Cow::Owned(Value::Array(vec![]))),
        (Some(Value::Null), Arity::Required) => return Err((name.clone(), "must not be null".into())),
        _ => {}
    }
    let Some(value) = given else {
        if let Some(default) = &field.default {
            return default_value(field, default, ctx).map(Cow::Owned).map_err(|r| (name.clone(), r));
        }
        return match field.ty.arity {
            Arity::Optional => Ok(Cow::Owned(Value::Null)),
            Arity::List => Ok(Cow::Owned(Value::Array(vec![]))),
            Arity::Required => Err((name.clone(), "required field is missing".into())),
        };
    };
    match field.ty.arity {
        Arity::List => {
            let Value::Array(items) = value else {
                return Err((name.clone(), format!("expected an array, found {}", kind(value))));
            };
            // The client's array as it is, unless an item had to be normalized: then a copy,
            // begun at the first such item.
            let mut normalized: Option<Vec<Value>> = None;
            for (i, v) in items.iter().enumerate() {
                let checked = scalar(ir, field, v).map_err(|r| (format!("{name}[{i}]"), r))?;
                match (&mut normalized, checked) {
                    (None, Cow::Borrowed(_)) => {}
                    (None, Cow::Owned(c)) => normalized = Some(items[..i].iter().cloned().chain([c]).collect()),
                    (Some(copy), c) => copy.push(c.into_owned()),
                }
            }
            Ok(normalized.map_or(Cow::Borrowed(value), |copy| Cow::Owned(Value::Array(copy))))
        }
        _ => scalar(ir, field, value).map_err(|r| (name.clone(), r)),
    }
}

fn default_value(field: &Field, default: &DefaultValue, ctx: &mut Context) -> Result<Value, String> {
    Ok(match default {
        DefaultValue::String(s) | DefaultValue::Enum(s) => Value::String(s.clone()),
        DefaultValue::Number(n) => Value::Number(n.parse::<Number>().map_err(|e| e.to_string())?),
        DefaultValue::Boolean(b) => Value::Bool(*b),
        DefaultValue::EmptyList => Value::Array(vec![]),
        DefaultValue::Uuid => Value::String((ctx.uuid)()),
        DefaultValue::Now => match (&field.ty.base, &field.ty.native) {
            (BaseType::Scalar(ScalarType::Date), _) => Value::String(ctx.now.format("%Y-%m-%d").to_string()),
            (_, Some(NativeType::DateTime64 { precision })) => Value::String(format_time(ctx.now, *precision)),
            _ => Value::String(format_time(ctx.now, 0)),
        },
    })
}

/// One value of the field's base type.
fn scalar<'v>(ir: &Ir, field: &Field, v: &'v Value) -> Result<Checked<'v>, String> {
    let scalar = match &field.ty.base {
        BaseType::Enum(name) => {
            let variants: Vec<&str> =
                ir.enum_def(name).map(|e| e.variants.iter().map(|v| v.name.as_str()).collect()).unwrap_or_default();
            return match v {
                Value::String(s) if variants.contains(&s.as_str()) => Ok(Cow::Borrowed(v)),
                Value::String(s) => Err(format!("`{s}` is not a value of {name} ({})", variants.join(", "))),
                other => Err(format!("expected one of {} as a string, found {}", variants.join(", "), kind(other))),
            };
        }
        BaseType::Scalar(s) => *s,
    };
    let native = field.ty.native.as_ref();
    match scalar {
        ScalarType::String => match v {
            Value::String(s) => {
                fits(native, s.len())?;
                Ok(Cow::Borrowed(v))
            }
            other => Err(format!("expected a string, found {}", kind(other))),
        },
        ScalarType::Json => Ok(Cow::Owned(Value::String(v.to_string()))),
        ScalarType::Bytes => match v {
            Value::String(s) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map(|_| Cow::Borrowed(v))
                    .map_err(|_| "expected base64 text".to_string())
            }
            other => Err(format!("expected base64 text, found {}", kind(other))),
        },
        ScalarType::Uuid => match v {
            Value::String(s) if uuid::Uuid::try_parse(s).is_ok() => Ok(Cow::Borrowed(v)),
            _ => Err("expected a UUID such as \"123e4567-e89b-12d3-a456-426614174000\"".into()),
        },
        ScalarType::Boolean => match v {
            Value::Bool(_) => Ok(Cow::Borrowed(v)),
            other => Err(format!("expected true or false, found {}", kind(other))),
        },
        ScalarType::Int | ScalarType::BigInt => integer(scalar, native, v).map(Cow::Owned),
        ScalarType::Float => match v {
            Value::Number(_) => Ok(Cow::Borrowed(v)),
            other => Err(format!("expected a number, found {}", kind(other))),
        },
        ScalarType::Decimal => match v {
            Value::Number(_) => Ok(Cow::Borrowed(v)),
            Value::String(s) if s.parse::<f64>().is_ok() && !s.contains(['e', 'E', 'n', 'N', 'i', 'I']) => {
                Ok(Cow::Borrowed(v))
            }
            other => Err(format!("expected a number or a numeric string, found {}", kind(other))),
        },
        ScalarType::DateTime => datetime(native, v).map(Cow::Owned),
        ScalarType::Date => match v {
            Value::String(s) if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => Ok(Cow::Borrowed(v)),
            _ => Err("expected a date as \"YYYY-MM-DD\"".into()),
        },
    }
}

/// A text of `bytes` bytes fits the string column (a `FixedString` holds at most its length).
fn fits(native: Option<&NativeType>, bytes: usize) -> Result<(), String> {
    match native {
        Some(NativeType::FixedString { length }) if bytes > *length as usize => {
            Err(format!("text is {bytes} bytes; the column holds at most {length}"))
        }
        _ => Ok(()),
    }
}

/// An integer sent as a plain JSON integer (what serde_json reads as an `i64` or a `u64`),
/// checked as [`integer`] checks its value: the column's text, or None for any other number.
fn integer_as_sent<'v>(field: &Field, scalar: ScalarType, t: &'v str) -> Option<Result<Cow<'v, str>, String>> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    if t == "-0" || digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // What serde_json reads as an i64 or a u64 (parsed as such: an i128 parse costs twice).
    let n = match t.starts_with('-') {
        true => i128::from(t.parse::<i64>().ok()?),
        false => i128::from(t.parse::<u64>().ok()?),
    };
    let column = IntegerColumn::of(scalar, field.ty.native.as_ref());
    Some(column.check(n).map(|()| match column.wide {
        true => {
            let mut quoted = String::with_capacity(t.len() + 2);
            quoted.push('"');
            quoted.push_str(t);
            quoted.push('"');
            Cow::Owned(quoted)
        }
        false => Cow::Borrowed(t),
    }))
}

/// An integer column: its range and ClickHouse type, and whether it is wide (64-bit: values
/// written as strings of digits, and such strings accepted).
struct IntegerColumn {
    min: i128,
    max: i128,
    name: &'static str,
    wide: bool,
}

impl IntegerColumn {
    fn of(scalar: ScalarType, native: Option<&NativeType>) -> IntegerColumn {
        let (min, max, name) = integer_range(scalar, native);
        IntegerColumn { min, max, name, wide: max > i128::from(u32::MAX) }
    }

    fn check(&self, n: i128) -> Result<(), String> {
        let IntegerColumn { min, max, name, .. } = self;
        if n < *min || n > *max {
            return Err(format!("{n} is out of range for {name} ({min} to {max})"));
        }
        Ok(())
    }
}

fn integer_range(scalar: ScalarType, native: Option<&NativeType>) -> (i128, i128, &'static str) {
    match native {
        Some(NativeType::Int8) => (i8::MIN.into(), i8::MAX.into(), "Int8"),
        Some(NativeType::Int16) => (i16::MIN.into(), i16::MAX.into(), "Int16"),
        Some(NativeType::Int32) => (i32::MIN.into(), i32::MAX.into(), "Int32"),
        Some(NativeType::Int64) => (i64::MIN.into(), i64::MAX.into(), "Int64"),
        Some(NativeType::UInt8) => (0, u8::MAX.into(), "UInt8"),
        Some(NativeType::UInt16) => (0, u16::MAX.into(), "UInt16"),
        Some(NativeType::UInt32) => (0, u32::MAX.into(), "UInt32"),
        Some(NativeType::UInt64) => (0, u64::MAX.into(), "UInt64"),
        _ if scalar == ScalarType::Int => (i32::MIN.into(), i32::MAX.into(), "Int32"),
        _ => (i64::MIN.into(), i64::MAX.into(), "Int64"),
    }
}

fn integer(scalar: ScalarType, native: Option<&NativeType>, v: &Value) -> Result<Value, String> {
    let column = IntegerColumn::of(scalar, native);
    let wide = column.wide;
    let n: i128 = match v {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into(),
            (_, Some(u)) => u.into(),
            _ => return Err(format!("expected a whole number, found {n}")),
        },
        Value::String(s) if wide => s.parse::<i128>().map_err(|_| format!("expected a whole number, found \"{s}\""))?,
        other => return Err(format!("expected a whole number, found {}", kind(other))),
    };
    column.check(n)?;
    Ok(if wide { Value::String(n.to_string()) } else { Value::Number(Number::from(n as i64)) })
}

fn datetime(native: Option<&NativeType>, v: &Value) -> Result<Value, String> {
    let precision = match native {
        Some(NativeType::DateTime64 { precision }) => *precision,
        _ => 0,
    };
    let t: DateTime<Utc> = match v {
        Value::String(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            // ClickHouse's own text form (what queries return), read as UTC.
            Err(_) => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| t.and_utc())
                .map_err(|_| format!("expected RFC 3339 time such as \"2024-01-31T23:59:59Z\", found \"{s}\""))?,
        },
        Value::Number(n) => {
            let secs = n.as_f64().ok_or_else(|| format!("expected epoch seconds, found {n}"))?;
            let whole = secs.floor();
            let nanos = ((secs - whole) * 1e9).round() as u32;
            DateTime::from_timestamp(whole as i64, nanos.min(999_999_999))
                .ok_or_else(|| format!("{n} is out of range for a time"))?
        }
        other => return Err(format!("expected RFC 3339 text or epoch seconds, found {}", kind(other))),
    };
    if precision == 0 && !(0..=4_294_967_295).contains(&t.timestamp()) {
        return Err("time is outside DateTime's range (1970-01-01 to 2106-02-07)".into());
    }
    Ok(Value::String(format_time(t, precision)))
}

/// `YYYY-MM-DD hh:mm:ss[.fff…]` in UTC, the text ClickHouse parses for DateTime('UTC').
fn format_time(t: DateTime<Utc>, precision: u8) -> String {
    if precision == 0 {
        return t.format("%Y-%m-%d %H:%M:%S").to_string();
    }
    let full = t.to_rfc3339_opts(SecondsFormat::Nanos, true); // 2024-01-31T23:59:59.123456789Z
    let (date_time, frac) = full.trim_end_matches('Z').split_once('.').unwrap_or((&full, ""));
    format!("{} {}.{}", &date_time[..10], &date_time[11..], &frac[..(precision as usize).min(frac.len())])
}

#[cfg(test)]
pub(crate) mod tests;
