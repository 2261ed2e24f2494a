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
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// How one column's values are written.
#[derive(Clone, Debug, PartialEq)]
enum Column {
    Int {
        bytes: usize,
        min: i128,
        max: i128,
    },
    Float64,
    /// Read from the number's own text: a double rounded again to a float is not always the
    /// float nearest the text.
    Float32,
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
    /// `DateTime64` and `Date32` (not on 18.16), aggregate states.
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
            ChType::Float32 => Some(Column::Float32),
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
            ChType::Enum(variants) => {
                Some(Column::Enum { bytes: ChType::enum_bytes(variants), variants: variants.clone() })
            }
            ChType::Nullable(inner) => Some(Column::Nullable(Box::new(Column::of(inner)?))),
            ChType::Array(inner) => Some(Column::Array(Box::new(Column::of(inner)?))),
            // RowBinary writes a LowCardinality column as its inner type.
            ChType::LowCardinality(inner) => Column::of(inner),
            ChType::Decimal { .. } | ChType::Date32 | ChType::DateTime64(_) | ChType::AggregateFunction(..) => None,
        }
    }
}

/// Writes one value of `column` to `out` as it is read from the row's text, without building
/// a JSON value (BENCHMARKS.md, issue 20). A value of another shape, or out of the column's
/// range, is an error: the row is not encoded.
struct Seed<'c, 'o> {
    column: &'c Column,
    out: &'o mut Vec<u8>,
}

type Refused<E> = Result<(), E>;

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.column {
            Column::Nullable(_) => d.deserialize_option(self),
            Column::Array(_) => d.deserialize_seq(self),
            Column::Float32 => {
                // The number's text, nearest float: what correct parsing of the text gives.
                let text = <&serde_json::value::RawValue>::deserialize(d)?.get();
                let x: f32 = text.parse().map_err(|_| de::Error::custom("not a number"))?;
                if !x.is_finite() {
                    return Err(de::Error::custom("out of Float32's range"));
                }
                self.out.extend_from_slice(&x.to_le_bytes());
                Ok(())
            }
            _ => d.deserialize_any(self),
        }
    }
}

impl Seed<'_, '_> {
    fn integer<E: de::Error>(self, n: i128) -> Refused<E> {
        match self.column {
            Column::Int { bytes, min, max } if (*min..=*max).contains(&n) => {
                self.out.extend_from_slice(&n.to_le_bytes()[..*bytes]);
                Ok(())
            }
            Column::Float64 => {
                // What `serde_json` makes of the same integer as a float.
                let x = if let Ok(i) = i64::try_from(n) { i as f64 } else { n as u64 as f64 };
                self.out.extend_from_slice(&x.to_le_bytes());
                Ok(())
            }
            Column::Decimal { .. } => self.decimal(&n.to_string()),
            _ => Err(E::custom("another type")),
        }
    }

    fn decimal<E: de::Error>(self, text: &str) -> Refused<E> {
        let Column::Decimal { bytes, precision, scale } = self.column else { return Err(E::custom("another type")) };
        let scaled = decimal(text, *precision, *scale).ok_or_else(|| E::custom("not an exact decimal"))?;
        self.out.extend_from_slice(&scaled.to_le_bytes()[..*bytes]);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a value of {:?}", self.column)
    }

    fn visit_none<E: de::Error>(self) -> Refused<E> {
        match self.column {
            Column::Nullable(_) => {
                self.out.push(1);
                Ok(())
            }
            _ => Err(E::custom("null")),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Refused<E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let Column::Nullable(inner) = self.column else { return Err(de::Error::custom("another type")) };
        self.out.push(0);
        Seed { column: inner, out: self.out }.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Column::Array(inner) = self.column else { return Err(de::Error::custom("another type")) };
        // The count goes first: one byte is kept for it (what fewer than 128 items take), and
        // a longer count moves the items it precedes.
        let start = self.out.len();
        self.out.push(0);
        let mut n = 0u64;
        while seq.next_element_seed(Seed { column: inner, out: &mut *self.out })?.is_some() {
            n += 1;
        }
        if n < 0x80 {
            self.out[start] = n as u8;
        } else {
            let mut count = Vec::new();
            leb128(&mut count, n);
            self.out.splice(start..=start, count);
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Refused<E> {
        match self.column {
            Column::Bool => {
                self.out.push(u8::from(b));
                Ok(())
            }
            _ => Err(E::custom("a boolean")),
        }
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Refused<E> {
        self.integer(i128::from(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Refused<E> {
        self.integer(i128::from(n))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Refused<E> {
        match self.column {
            Column::Float64 => {
                self.out.extend_from_slice(&x.to_le_bytes());
                Ok(())
            }
            // The number as igloo's row has it, the text ClickHouse would read.
            Column::Decimal { .. } => {
                let text = serde_json::Number::from_f64(x).ok_or_else(|| E::custom("not finite"))?.to_string();
                self.decimal(&text)
            }
            _ => Err(E::custom("a fraction")),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Refused<E> {
        let bad = || E::custom("another text");
        let out = self.out;
        match self.column {
            Column::String => {
                leb128(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Column::FixedString(n) if s.len() <= *n => {
                out.extend_from_slice(s.as_bytes());
                out.resize(out.len() + n - s.len(), 0);
            }
            Column::Int { bytes: 8, min, max } => {
                let n: i128 = s.parse().map_err(|_| bad())?;
                if !(*min..=*max).contains(&n) {
                    return Err(bad());
                }
                out.extend_from_slice(&n.to_le_bytes()[..8]);
            }
            Column::Decimal { .. } => return Seed { column: self.column, out }.decimal(s),
            Column::Date => {
                let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
                let days = u16::try_from(day.signed_duration_since(epoch_day()).num_days()).map_err(|_| bad())?;
                out.extend_from_slice(&days.to_le_bytes());
            }
            Column::DateTime => {
                let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").map_err(|_| bad())?;
                out.extend_from_slice(&u32::try_from(t.and_utc().timestamp()).map_err(|_| bad())?.to_le_bytes());
            }
            Column::Uuid => {
                // ClickHouse holds a UUID as two UInt64 halves, the high one first.
                let (high, low) = uuid::Uuid::try_parse(s).map_err(|_| bad())?.as_u64_pair();
                out.extend_from_slice(&high.to_le_bytes());
                out.extend_from_slice(&low.to_le_bytes());
            }
            Column::Enum { bytes, variants } => {
                let number = variants.iter().position(|v| v == s).ok_or_else(bad)? as i16 + 1;
                out.extend_from_slice(&number.to_le_bytes()[..*bytes]);
            }
            _ => return Err(bad()),
        }
        Ok(())
    }
}

/// The index of a row's field among the encoder's columns, read without copying its name.
struct Key<'e>(&'e [(String, Column)]);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
        self.0.iter().position(|(c, _)| c == name).ok_or_else(|| E::custom("an unknown column"))
    }
}

/// A row's values, each encoded where it comes in the text, and where each column's lies.
struct Row<'e, 's> {
    columns: &'e [(String, Column)],
    scratch: &'s mut Vec<u8>,
    at: &'s mut [Option<(usize, usize)>],
}

impl<'de> DeserializeSeed<'de> for Row<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Row<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(i) = map.next_key_seed(Key(self.columns))? {
            if self.at[i].is_some() {
                return Err(de::Error::custom("a duplicate column"));
            }
            let start = self.scratch.len();
            map.next_value_seed(Seed { column: &self.columns[i].1, out: &mut *self.scratch })?;
            self.at[i] = Some((start, self.scratch.len()));
        }
        Ok(())
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
        thread_local! {
            /// Values as they come in the row's text (name order), before they go in table order.
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let (Ok(partition), Ok(offset)) = (u32::try_from(partition), u64::try_from(offset)) else { return false };
        let mut at: smallvec::SmallVec<[Option<(usize, usize)>; 16]> = smallvec::smallvec![None; self.columns.len()];
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            let mut de = serde_json::Deserializer::from_str(row);
            let read = Row { columns: &self.columns, scratch: &mut *scratch, at: &mut at }.deserialize(&mut de);
            if read.and_then(|()| de.end()).is_err() {
                return false;
            }
            for range in &at {
                let Some((start, end)) = *range else { return false }; // a column missing
                out.extend_from_slice(&scratch[start..end]);
            }
            out.extend_from_slice(&partition.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            if let Some(e) = epoch {
                out.extend_from_slice(&e.to_le_bytes());
            }
            true
        })
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
            (ChType::Float32, "0.1", 0.1f32.to_le_bytes().to_vec()),
            (ChType::Float32, "-3", (-3f32).to_le_bytes().to_vec()),
            // Between two floats: rounded once, from the text.
            (ChType::Float32, "16777217", 16_777_216f32.to_le_bytes().to_vec()),
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
    fn values_go_in_table_order_whatever_the_order_of_the_text() {
        let e = encoder(&[
            ("z", ChType::Array(Box::new(ChType::Nullable(Box::new(ChType::Int32))))),
            ("a", ChType::Nullable(Box::new(ChType::String))),
        ]);
        let mut want = vec![2, 0, 1, 0, 0, 0, 1, 0, 1, b'x'];
        want.extend(HIDDEN);
        assert_eq!(encode(&e, r#"{"a":"x","z":[1,null]}"#), Some(want.clone()));
        assert_eq!(encode(&e, r#" { "z" : [ 1 , null ] , "a" : "x" } "#), Some(want));
        assert_eq!(encode(&e, r#"{"a":"x","z":[1],"a":"y"}"#), None, "a duplicate name");
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
            (ChType::Float32, "1e39"),
            (ChType::Float32, "\"1\""),
            (ChType::Float32, "null"),
            (ChType::Float64, "1e400"),
            (ChType::Float64, "\"1\""),
            (ChType::Float64, "null"),
            (ChType::Float64, "[1]"),
        ] {
            assert_eq!(encode(&encoder(&[("c", ty.clone())]), &format!("{{\"c\":{json}}}")), None, "{ty:?} {json}");
        }
    }

    #[test]
    fn doubles_are_the_ones_serde_json_reads_from_the_same_text() {
        // serde_json with `float_roundtrip` reads the nearest double to the text, an integer's
        // too: what the encoder writes for a Float64, bit for bit (ClickHouse 18.16's own text
        // parsing is not correctly rounded, which is why rows go as RowBinary).
        let e = encoder(&[("x", ChType::Float64)]);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1",
            "-1",
            "0.1",
            "7.137",
            "1e-320",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
            "9007199254740993",
            "18446744073709551615",
            "18446744073709551617",
            "-9223372036854775808",
            "123456789012345678901234567890",
            "1E5",
            "1e+5",
            "5e-324",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        for _ in 0..20_000 {
            let x = f64::from_bits(next());
            if x.is_finite() {
                texts.push(serde_json::to_string(&x).unwrap());
                texts.push(format!("{x:.17e}"));
            }
            texts.push(format!("{}.{:03}", next() % 100_000, next() % 1000));
            texts.push((next() as i64).to_string());
        }
        for text in texts {
            let want: f64 = serde_json::from_str(&text).unwrap();
            let got = encode(&e, &format!("{{\"x\":{text}}}")).unwrap_or_else(|| panic!("{text} refused"));
            assert_eq!(got[..8], want.to_le_bytes(), "{text}");
        }
    }

    #[test]
    fn an_array_of_128_items_or_more_has_a_longer_count() {
        let e = encoder(&[("v", ChType::Array(Box::new(ChType::UInt8))), ("s", ChType::String)]);
        for n in [0usize, 1, 127, 128, 300, 20_000] {
            let items = vec!["7"; n].join(",");
            let got = encode(&e, &format!("{{\"v\":[{items}],\"s\":\"z\"}}")).unwrap();
            let mut want = Vec::new();
            leb128(&mut want, n as u64);
            want.extend(std::iter::repeat_n(7u8, n));
            want.extend([1, b'z']);
            want.extend(HIDDEN);
            assert_eq!(got, want, "{n} items");
        }
    }

    #[test]
    fn types_without_an_exact_encoding_keep_json() {
        for ty in [ChType::DateTime64(3), ChType::Date32, ChType::Array(Box::new(ChType::DateTime64(3)))] {
            assert!(RowEncoder::new(&[("c".into(), ty.clone())]).is_none(), "{ty:?}");
        }
    }
}
