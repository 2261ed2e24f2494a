//! RowBinary, ClickHouse's binary row format: how the table writer inserts a model's rows
//! when every column has a type encoded here (BENCHMARKS.md, issue 20).
//!
//! Why not the rows' own JSON text: ClickHouse 18.16 reads floats from text with a fast
//! parser that is not correctly rounded (about 1.5% of doubles, and some three-decimal values
//! such as 7.137, are stored one unit in the last place away from what was sent), and it
//! spends about a fifth more CPU per row on JSONEachRow. Binary doubles are stored as sent.
//!
//! The rows come from the topic as JSON objects. [`RowEncoder::encode`] refuses a row it cannot
//! encode exactly as ClickHouse would read its text (a missing or unknown column, a value of
//! another shape): the writer then sends that batch as JSONEachRow, as before, and ClickHouse
//! decides (a rejected row still reaches the dead-letter queue).

use chrono::{NaiveDate, NaiveDateTime};
use igloo_schemas::sql::ChType;
use igloo_schemas::Dialect;
use serde_json::Value;

use crate::strict_json::{self, Record};

/// How one column's values are written.
#[derive(Clone, Debug, PartialEq)]
enum Column {
    Int {
        bytes: usize,
        min: i128,
        max: i128,
    },
    Float64,
    /// The value times 10^scale, as a signed integer of `bytes` (4, 8 or 16).
    Decimal {
        bytes: usize,
        precision: u32,
        scale: u32,
    },
    String,
    FixedString(usize),
    /// Days since 1970-01-01, UInt16.
    Date,
    /// Seconds since the epoch, UInt32 (`DateTime('UTC')`).
    DateTime,
    Uuid,
    /// `true`/`false` as one byte (`Bool`, or `UInt8` where the dialect has no Bool).
    Bool,
    /// The variant's number (its position from 1), one or two bytes.
    Enum {
        bytes: usize,
        variants: Vec<String>,
    },
    Nullable(Box<Column>),
    Array(Box<Column>),
}

impl Column {
    /// The encoding of a column type, or `None` when rows of it keep going as JSON text:
    /// `Float32` (a double rounded again is not always the float ClickHouse parses),
    /// `DateTime64`/`Date32` (not on 18.16), aggregate states.
    fn of(ty: &ChType) -> Option<Column> {
        let int = |bytes: usize, signed: bool| {
            let bits = 8 * bytes as u32;
            let (min, max) =
                if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) };
            Some(Column::Int { bytes, min, max })
        };
        match ty {
            ChType::Int8 => int(1, true),
            ChType::Int16 => int(2, true),
            ChType::Int32 => int(4, true),
            ChType::Int64 => int(8, true),
            ChType::UInt8 => int(1, false),
            ChType::UInt16 => int(2, false),
            ChType::UInt32 => int(4, false),
            ChType::UInt64 => int(8, false),
            ChType::Float64 => Some(Column::Float64),
            ChType::Decimal { precision, scale } if *precision <= 38 && scale <= precision => Some(Column::Decimal {
                bytes: match precision {
                    0..=9 => 4,
                    10..=18 => 8,
                    _ => 16,
                },
                precision: u32::from(*precision),
                scale: u32::from(*scale),
            }),
            ChType::String => Some(Column::String),
            ChType::FixedString(n) => Some(Column::FixedString(*n as usize)),
            ChType::Date => Some(Column::Date),
            ChType::DateTime => Some(Column::DateTime),
            ChType::Uuid => Some(Column::Uuid),
            ChType::Bool => Some(Column::Bool),
            ChType::Enum(variants) => Some(Column::Enum {
                bytes: if variants.len() <= i8::MAX as usize { 1 } else { 2 },
                variants: variants.clone(),
            }),
            ChType::Nullable(inner) => Some(Column::Nullable(Box::new(Column::of(inner)?))),
            ChType::Array(inner) => Some(Column::Array(Box::new(Column::of(inner)?))),
            // RowBinary writes a LowCardinality column as its inner type.
            ChType::LowCardinality(inner) => Column::of(inner),
            ChType::Float32
            | ChType::Decimal { .. }
            | ChType::Date32
            | ChType::DateTime64(_)
            | ChType::AggregateFunction(..) => None,
        }
    }

    /// Appends `v`; `None` (and `out` in any state: the caller drops the batch's body) when `v`
    /// is not a value this column reads the same way from JSON text.
    fn write(&self, v: &Value, out: &mut Vec<u8>) -> Option<()> {
        match (self, v) {
            (Column::Nullable(_), Value::Null) => out.push(1),
            (Column::Nullable(inner), v) => {
                out.push(0);
                inner.write(v, out)?;
            }
            (Column::Array(inner), Value::Array(items)) => {
                leb128(out, items.len() as u64);
                for item in items {
                    inner.write(item, out)?;
                }
            }
            (Column::Int { bytes, min, max }, v) => {
                let n: i128 = match v {
                    Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))?,
                    Value::String(s) if *bytes == 8 => s.parse().ok()?,
                    _ => return None,
                };
                if n < *min || n > *max {
                    return None;
                }
                out.extend_from_slice(&n.to_le_bytes()[..*bytes]);
            }
            (Column::Float64, Value::Number(n)) => out.extend_from_slice(&n.as_f64()?.to_le_bytes()),
            (Column::Decimal { bytes, precision, scale }, v) => {
                // The number's text (a JSON number is written the way igloo's row has it).
                let text = match v {
                    Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                    Value::Number(n) => std::borrow::Cow::Owned(n.to_string()),
                    _ => return None,
                };
                let scaled = decimal(&text, *precision, *scale)?;
                out.extend_from_slice(&scaled.to_le_bytes()[..*bytes]);
            }
            (Column::String, Value::String(s)) => {
                leb128(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            (Column::FixedString(n), Value::String(s)) if s.len() <= *n => {
                out.extend_from_slice(s.as_bytes());
                out.resize(out.len() + n - s.len(), 0);
            }
            (Column::Date, Value::String(s)) => {
                let days = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.signed_duration_since(epoch_day()).num_days();
                out.extend_from_slice(&u16::try_from(days).ok()?.to_le_bytes());
            }
            (Column::DateTime, Value::String(s)) => {
                let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
                out.extend_from_slice(&u32::try_from(t.and_utc().timestamp()).ok()?.to_le_bytes());
            }
            (Column::Uuid, Value::String(s)) => {
                // ClickHouse holds a UUID as two UInt64 halves, the high one first.
                let (high, low) = uuid::Uuid::try_parse(s).ok()?.as_u64_pair();
                out.extend_from_slice(&high.to_le_bytes());
                out.extend_from_slice(&low.to_le_bytes());
            }
            (Column::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
            (Column::Enum { bytes, variants }, Value::String(s)) => {
                let number = variants.iter().position(|v| v == s)? as i16 + 1;
                out.extend_from_slice(&number.to_le_bytes()[..*bytes]);
            }
            _ => return None,
        }
        Some(())
    }
}

/// `text` (`-?digits[.digits]`) times 10^scale, when it has at most `scale` decimals and at
/// most `precision` digits in all; else `None` (ClickHouse then judges the text).
fn decimal(text: &str, precision: u32, scale: u32) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !plain(whole) || !plain(fraction) || (digits.contains('.') && fraction.is_empty()) {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    let whole = whole.trim_start_matches('0');
    if fraction.len() > scale as usize || whole.len() + scale as usize > precision as usize {
        return None;
    }
    let mut n: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        n = n * 10 + i128::from(b - b'0');
    }
    n *= 10i128.pow(scale - fraction.len() as u32);
    Some(if negative { -n } else { n })
}

fn epoch_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date")
}

/// ClickHouse's variable-length unsigned integer (lengths of strings and arrays).
fn leb128(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Writes a table's rows as RowBinary: the data columns, in table order, then the writer's
/// hidden columns.
#[derive(Clone, Debug)]
pub struct RowEncoder {
    columns: Vec<(String, Column)>,
}

impl RowEncoder {
    /// The encoder for `(column, type)` pairs in table order, or `None` when a type has no
    /// encoding here (the model's rows keep going as JSONEachRow).
    pub fn new(columns: &[(String, ChType)]) -> Option<RowEncoder> {
        let columns = columns.iter().map(|(name, ty)| Some((name.clone(), Column::of(ty)?))).collect::<Option<_>>()?;
        Some(RowEncoder { columns })
    }

    /// The types ClickHouse must report for the table's data columns (`system.columns`) for
    /// this encoder to apply: the writer checks them before using it.
    pub fn expected_types(columns: &[(String, ChType)], dialect: Dialect) -> Vec<(String, String)> {
        columns.iter().map(|(name, ty)| (name.clone(), ty.render(dialect))).collect()
    }

    /// Appends one row — a JSON object holding every data column and nothing else — then its
    /// hidden columns: partition (UInt32), offset (UInt64) and, when given, the claim epoch
    /// (UInt64). False when the row cannot be written exactly as its text would be read;
    /// `out` then holds a partial row and must be dropped.
    pub fn encode(&self, row: &str, partition: i32, offset: i64, epoch: Option<u64>, out: &mut Vec<u8>) -> bool {
        let Ok(Record::Object(fields)) = strict_json::parse_record(row.as_bytes()) else { return false };
        if fields.names().count() != self.columns.len() {
            return false;
        }
        for (name, column) in &self.columns {
            let Some(v) = fields.get(name) else { return false };
            if column.write(v, out).is_none() {
                return false;
            }
        }
        let (Ok(partition), Ok(offset)) = (u32::try_from(partition), u64::try_from(offset)) else { return false };
        out.extend_from_slice(&partition.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        if let Some(e) = epoch {
            out.extend_from_slice(&e.to_le_bytes());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder(columns: &[(&str, ChType)]) -> RowEncoder {
        RowEncoder::new(&columns.iter().map(|(n, t)| (n.to_string(), t.clone())).collect::<Vec<_>>()).unwrap()
    }

    fn encode(e: &RowEncoder, row: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        e.encode(row, 3, 9, None, &mut out).then_some(out)
    }

    const HIDDEN: [u8; 12] = [3, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn the_reference_row_is_little_endian_with_leb128_lengths() {
        let e = encoder(&[
            ("time", ChType::Int64),
            ("tag", ChType::String),
            ("values", ChType::Array(Box::new(ChType::Float64))),
        ]);
        let mut want = 1_700_000_000_000_000_001i64.to_le_bytes().to_vec();
        want.extend([5, b't', b'a', b'g', b'-', b'1', 2]);
        want.extend(0.1f64.to_le_bytes());
        want.extend(7.137f64.to_le_bytes());
        want.extend(HIDDEN);
        let got = encode(&e, r#"{"time":1700000000000000001,"tag":"tag-1","values":[0.1,7.137]}"#).unwrap();
        assert_eq!(got, want);
        // The claim epoch follows the offset when the writer has one.
        let mut out = Vec::new();
        assert!(e.encode(r#"{"time":1,"tag":"","values":[]}"#, 0, 0, Some(7), &mut out));
        assert_eq!(&out[out.len() - 8..], &7u64.to_le_bytes());
    }

    #[test]
    fn every_supported_type_has_its_binary_form() {
        let cases: Vec<(ChType, &str, Vec<u8>)> = vec![
            (ChType::Int8, "-2", vec![0xfe]),
            (ChType::UInt16, "513", vec![1, 2]),
            (ChType::Int32, "-1", vec![0xff; 4]),
            (ChType::UInt64, "\"18446744073709551615\"", vec![0xff; 8]),
            (ChType::Int64, "\"-9223372036854775808\"", i64::MIN.to_le_bytes().to_vec()),
            (ChType::String, "\"é\"", vec![2, 0xc3, 0xa9]),
            (ChType::FixedString(3), "\"ab\"", vec![b'a', b'b', 0]),
            (ChType::Date, "\"1970-01-03\"", vec![2, 0]),
            (ChType::DateTime, "\"1970-01-01 00:01:01\"", vec![61, 0, 0, 0]),
            (ChType::Bool, "true", vec![1]),
            (ChType::Enum(vec!["Low".into(), "High".into()]), "\"High\"", vec![2]),
            (ChType::Nullable(Box::new(ChType::UInt8)), "null", vec![1]),
            (ChType::Nullable(Box::new(ChType::UInt8)), "4", vec![0, 4]),
            (ChType::LowCardinality(Box::new(ChType::String)), "\"x\"", vec![1, b'x']),
            (ChType::Array(Box::new(ChType::String)), "[\"a\",\"\"]", vec![2, 1, b'a', 0]),
            (ChType::Decimal { precision: 9, scale: 2 }, "\"-12.3\"", (-1230i32).to_le_bytes().to_vec()),
            (ChType::Decimal { precision: 18, scale: 4 }, "12.5", 125_000i64.to_le_bytes().to_vec()),
            (
                ChType::Decimal { precision: 38, scale: 9 },
                "\"12345678901234567890123456789.123456789\"",
                12_345_678_901_234_567_890_123_456_789_123_456_789i128.to_le_bytes().to_vec(),
            ),
            (
                ChType::Uuid,
                "\"123e4567-e89b-12d3-a456-426614174000\"",
                [0x123e_4567_e89b_12d3u64.to_le_bytes(), 0xa456_4266_1417_4000u64.to_le_bytes()].concat(),
            ),
        ];
        for (ty, json, mut want) in cases {
            want.extend(HIDDEN);
            let e = encoder(&[("c", ty.clone())]);
            assert_eq!(encode(&e, &format!("{{\"c\":{json}}}")), Some(want), "{ty:?} {json}");
        }
        let long = "x".repeat(300);
        let got = encode(&encoder(&[("c", ChType::String)]), &format!("{{\"c\":\"{long}\"}}")).unwrap();
        assert_eq!(&got[..2], &[0xac, 0x02], "300 as LEB128");
    }

    #[test]
    fn rows_it_cannot_write_exactly_are_refused() {
        let e = encoder(&[("n", ChType::UInt8), ("s", ChType::String)]);
        for row in [
            r#"{"n":1}"#,                  // a column missing: ClickHouse would fill its default
            r#"{"n":1,"s":"a","x":2}"#,    // an unknown column
            r#"{"n":256,"s":"a"}"#,        // out of range
            r#"{"n":-1,"s":"a"}"#,         //
            r#"{"n":1.5,"s":"a"}"#,        // not an integer
            r#"{"n":"1","s":"a"}"#,        // a string for a narrow integer
            r#"{"n":1,"s":5}"#,            // a number for a string
            r#"[1,"a"]"#,                  // not an object
            r#"{"n":1,"s":"a"} trailing"#, // not JSON
        ] {
            assert_eq!(encode(&e, row), None, "{row}");
        }
        for (ty, json) in [
            (ChType::FixedString(1), "\"ab\""),
            (ChType::Date, "\"2024-13-01\""),
            (ChType::Date, "\"2200-01-01\""), // past Date's range
            (ChType::DateTime, "\"2024-01-01T00:00:00Z\""),
            (ChType::Enum(vec!["A".into()]), "\"B\""),
            (ChType::Uuid, "\"not-a-uuid\""),
            (ChType::Bool, "1"),
            (ChType::Decimal { precision: 9, scale: 2 }, "\"1.234\""), // more decimals than the scale
            (ChType::Decimal { precision: 4, scale: 2 }, "\"123.4\""), // more digits than the precision
            (ChType::Decimal { precision: 9, scale: 2 }, "\"+1\""),
            (ChType::Decimal { precision: 9, scale: 2 }, "\".5\""),
            (ChType::Decimal { precision: 9, scale: 2 }, "\"5.\""),
            (ChType::Decimal { precision: 9, scale: 2 }, "\"1e3\""),
            (ChType::Decimal { precision: 9, scale: 2 }, "1e300"),
        ] {
            assert_eq!(encode(&encoder(&[("c", ty.clone())]), &format!("{{\"c\":{json}}}")), None, "{ty:?} {json}");
        }
    }

    #[test]
    fn types_without_an_exact_encoding_keep_json() {
        for ty in [ChType::Float32, ChType::DateTime64(3), ChType::Array(Box::new(ChType::Float32))] {
            assert!(RowEncoder::new(&[("c".into(), ty.clone())]).is_none(), "{ty:?}");
        }
    }
}
