//! JSON as ingest reads it: the body checked as UTF-8 once, as a whole, then serde_json's
//! grammar (which refuses NaN and numbers out of range), plus two refusals of its own: an object
//! with the same key twice (serde_json would keep the last silently) and nesting deeper than
//! [`MAX_DEPTH`].
//!
//! Ingest reads records with [`parse_records`]: each top-level object becomes a [`Record`], its
//! fields in a list with their names borrowed from the request body, not a map of copied names
//! (a third of the cost of a batched event went to those, BENCHMARKS.md, issue 20). A field's
//! value is kept as the text sent when it is a number, a string without escapes or an array of
//! numbers only ([`Raw`]): validation can take those as written, so most values of most events
//! are never built into a [`Value`], and numbers are not parsed and formatted again. Anything
//! else is read into a strict [`Value`], as [`parse`] would.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Arrays and objects inside each other at most this deep.
pub const MAX_DEPTH: usize = 64;

/// Parses one JSON document strictly.
pub fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(utf8(bytes)?);
    let value = Strict { depth: 0 }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The document as text, checked once as a whole. serde_json reading bytes checks each
/// string, and each raw value's text again (2.3% of a batched load, BENCHMARKS.md); reading
/// text it checks neither.
fn utf8(bytes: &[u8]) -> Result<&str, serde_json::Error> {
    std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.len() - before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        de::Error::custom(format!("invalid UTF-8 at line {line} column {column}"))
    })
}

/// One record as the client sent it: an object's fields in their order, or anything else (which
/// validation refuses, naming what it is).
#[derive(Debug, PartialEq)]
pub enum Record<'a> {
    Object(Fields<'a>),
    Other(Value),
}

/// An object's fields, in the order sent, names unique.
#[derive(Debug, Default, PartialEq)]
pub struct Fields<'a>(pub Vec<(Cow<'a, str>, FieldValue<'a>)>);

impl Fields<'_> {
    pub fn get(&self, name: &str) -> Option<&FieldValue<'_>> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| &**n)
    }
}

/// A field's value: the text sent, for the shapes kept as written, or a strict [`Value`].
#[derive(Debug, PartialEq)]
pub enum FieldValue<'a> {
    Raw(Raw<'a>),
    Value(Value),
}

/// A value's JSON text as sent, for three shapes. Each is already valid JSON and holds no
/// newline outside whitespace, so a row can carry it as it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Raw<'a> {
    /// A finite number.
    Number(&'a str),
    /// A string without escapes, quotes included: its bytes between the quotes are its value.
    Text(&'a str),
    /// An array of finite numbers only (possibly empty), whitespace as sent.
    Numbers(&'a str),
}

impl<'a> Raw<'a> {
    /// What [`parse`] reads from the same text.
    pub fn to_value(self) -> Value {
        serde_json::from_str(self.text()).expect("raw values are valid JSON")
    }

    /// The JSON text, as sent.
    pub fn text(self) -> &'a str {
        match self {
            Raw::Number(t) | Raw::Text(t) | Raw::Numbers(t) => t,
        }
    }

    /// The JSON text without whitespace (only an array of numbers can hold any).
    pub fn compact(self) -> Cow<'a, str> {
        let t = self.text();
        if t.bytes().any(|b| b.is_ascii_whitespace()) {
            // Byte by byte, into one allocation (collecting chars grows a String char by char:
            // 4% of a batched load sent with spaces, BENCHMARKS.md). Whitespace is ASCII, so
            // what is left is still UTF-8.
            let mut bytes = Vec::with_capacity(t.len());
            bytes.extend(t.bytes().filter(|b| !b.is_ascii_whitespace()));
            Cow::Owned(String::from_utf8(bytes).expect("removing ASCII bytes keeps UTF-8 valid"))
        } else {
            Cow::Borrowed(t)
        }
    }

    /// The raw shape of a value's text as serde_json scanned it (valid JSON), if it has one.
    fn of(text: &'a str) -> Option<Raw<'a>> {
        match text.as_bytes().first()? {
            b'"' if !text.as_bytes().contains(&b'\\') => Some(Raw::Text(text)),
            b'-' | b'0'..=b'9' if finite(text) => Some(Raw::Number(text)),
            b'[' if only_finite_numbers(&text.as_bytes()[1..text.len() - 1]) => Some(Raw::Numbers(text)),
            _ => None,
        }
    }
}

/// A JSON number's text (valid JSON grammar) names a finite double: without an exponent, any
/// number of fewer than 300 digits does; else it is parsed.
fn finite(number: &str) -> bool {
    (number.len() < 300 && !number.bytes().any(|b| b == b'e' || b == b'E'))
        || number.parse::<f64>().is_ok_and(f64::is_finite)
}

/// The inside of a valid JSON array holds only finite numbers (or nothing): one pass over its
/// bytes, which is all the reference event's ten values cost.
fn only_finite_numbers(inside: &[u8]) -> bool {
    // One number, with whitespace around it: finite unless it has an exponent or 300 characters.
    let ok = |number: &[u8], plain: bool| {
        (plain && number.len() < 300) || std::str::from_utf8(number).is_ok_and(|n| finite(n.trim()))
    };
    let (mut start, mut plain) = (0, true);
    for (i, &b) in inside.iter().enumerate() {
        match b {
            b'0'..=b'9' | b'.' | b'-' | b'+' | b' ' | b'\t' | b'\n' | b'\r' => {}
            b'e' | b'E' => plain = false,
            b',' => {
                if !ok(&inside[start..i], plain) {
                    return false;
                }
                (start, plain) = (i + 1, true);
            }
            _ => return false,
        }
    }
    ok(&inside[start..], plain)
}

impl FieldValue<'_> {
    /// What [`parse`] reads from the same text.
    pub fn to_value(&self) -> Value {
        match self {
            FieldValue::Raw(raw) => raw.to_value(),
            FieldValue::Value(v) => v.clone(),
        }
    }
}

/// The records of one JSON document: an object is one record, an array holds one per item.
/// Anything else is an error.
pub fn parse_records(bytes: &[u8]) -> Result<Vec<Record<'_>>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(utf8(bytes)?);
    let records = TopLevel.deserialize(&mut de)?;
    de.end()?;
    Ok(records)
}

/// One record: one JSON document (an NDJSON line).
pub fn parse_record(bytes: &[u8]) -> Result<Record<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(utf8(bytes)?);
    let record = OneRecord { depth: 0 }.deserialize(&mut de)?;
    de.end()?;
    Ok(record)
}

struct TopLevel;

impl<'de> DeserializeSeed<'de> for TopLevel {
    type Value = Vec<Record<'de>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = Vec<Record<'de>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object or an array of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(r) = seq.next_element_seed(OneRecord { depth: 1 })? {
            records.push(r);
        }
        Ok(records)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(vec![OneRecord { depth: 0 }.visit_map(map)?])
    }
}

/// A record: an object read into [`Fields`], anything else into a strict [`Value`]; `depth`
/// counts the arrays around it, as [`Strict`] does.
#[derive(Clone, Copy)]
struct OneRecord {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for OneRecord {
    type Value = Record<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Objects with more fields than this check names for duplicates in a set, not by a scan.
const SCANNED_FIELDS: usize = 16;

impl<'de> Visitor<'de> for OneRecord {
    type Value = Record<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let inner = Strict { depth: self.depth }.deeper()?;
        let mut fields: Vec<(Cow<'de, str>, FieldValue<'de>)> = Vec::with_capacity(8);
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key_seed(Name)? {
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => fields.iter().any(|(n, _)| *n == key),
            };
            if duplicate {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            if seen.is_none() && fields.len() == SCANNED_FIELDS {
                seen = Some(fields.iter().map(|(n, _)| n.clone()).chain([key.clone()]).collect());
            }
            let value = map.next_value_seed(Field { inner })?;
            fields.push((key, value));
        }
        Ok(Record::Object(Fields(fields)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Strict { depth: self.depth }.visit_seq(seq).map(Record::Other)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Record::Other(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Record::Other(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Record::Other(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Strict { depth: self.depth }.visit_f64(v).map(Record::Other)
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Record::Other(Value::String(v.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Record::Other(Value::Null))
    }
}

/// A field's value: scanned as raw JSON text (no value built), kept as it is when it has a
/// [`Raw`] shape, else read into a strict value (`inner` counts the nesting around it).
struct Field {
    inner: Strict,
}

impl<'de> DeserializeSeed<'de> for Field {
    type Value = FieldValue<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        use serde::Deserialize;
        let text = <&serde_json::value::RawValue>::deserialize(d)?.get();
        match text.as_bytes().first() {
            Some(b't') => return Ok(FieldValue::Value(Value::Bool(true))),
            Some(b'f') => return Ok(FieldValue::Value(Value::Bool(false))),
            Some(b'n') => return Ok(FieldValue::Value(Value::Null)),
            _ => {}
        }
        if let Some(raw) = Raw::of(text) {
            return Ok(FieldValue::Raw(raw));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let value = self.inner.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
        // The error, without the position inside the value (serde_json adds the value's own).
        value.map(FieldValue::Value).map_err(|e| {
            let message = e.to_string();
            let at = format!(" at line {} column {}", e.line(), e.column());
            de::Error::custom(message.strip_suffix(&at).unwrap_or(&message))
        })
    }
}

/// A field's name, borrowed from the input when it has no escapes.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl Strict {
    fn deeper<E: de::Error>(self) -> Result<Strict, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(Strict { depth: self.depth + 1 })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        // Short arrays (a record's list fields) are gathered on the stack and allocated once,
        // at their length, not grown 4 → 8 → 16 (serde_json gives no length hint).
        let mut items: smallvec::SmallVec<[Value; 16]> = smallvec::SmallVec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            items.push(v);
        }
        Ok(Value::Array(items.into_vec()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = map.next_value_seed(inner)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Record<'_> {
        /// The record as a `serde_json::Value`, to compare with what [`parse`] reads.
        fn to_value(&self) -> Value {
            match self {
                Record::Object(f) => Value::Object(f.0.iter().map(|(k, v)| (k.to_string(), v.to_value())).collect()),
                Record::Other(v) => v.clone(),
            }
        }
    }

    #[test]
    fn strict_json_refuses_what_serde_json_lets_through() {
        assert_eq!(
            parse(br#"{"a": [1, 2.5, "x", null, true, {"b": -3}]}"#).unwrap(),
            serde_json::json!({"a": [1, 2.5, "x", null, true, {"b": -3}]})
        );
        let err = |s: &[u8]| parse(s).unwrap_err().to_string();
        assert!(err(br#"{"a": 1, "a": 2}"#).contains("duplicate key `a`"));
        assert!(err(br#"{"a": {"b": 1, "b": 1}}"#).contains("duplicate key `b`"));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(err(deep.as_bytes()).contains("nested deeper than 64 levels"));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        assert!(!err(b"{\"a\": NaN}").is_empty());
        assert!(!err(b"{\"a\": 1e400}").is_empty());
        assert!(!err(b"{\"a\": \"\xff\"}").is_empty());
        assert!(!err(b"{\"a\": 1} x").is_empty());
        // Far deeper than the stack would allow without the limit.
        let abyss = "[".repeat(1_000_000);
        assert!(err(abyss.as_bytes()).contains("nested deeper"));
    }

    #[test]
    fn records_read_as_the_strict_value_would() {
        let cases: &[&[u8]] = &[
            br#"{"a": [1, 2.5, "x", null, true, {"b": -3}], "\u0062": "\n"}"#,
            br#"[{"a": 1}, {"b": {"c": [1]}}, [1], 2, "s", null, false, -1, 1.5, 18446744073709551615]"#,
            br#"[]"#,
            br#"{}"#,
        ];
        for &case in cases {
            let strict = parse(case).unwrap();
            let items = match &strict {
                Value::Array(items) => items.clone(),
                v => vec![v.clone()],
            };
            let records = parse_records(case).unwrap();
            assert_eq!(
                records.iter().map(Record::to_value).collect::<Vec<_>>(),
                items,
                "{}",
                String::from_utf8_lossy(case)
            );
            for item in &items {
                let text = item.to_string();
                assert_eq!(parse_record(text.as_bytes()).unwrap().to_value(), *item);
            }
        }
        let Record::Object(fields) = parse_record(br#"{"a": 1, "b\"": 2}"#).unwrap() else { panic!() };
        assert!(matches!(fields.0[0].0, Cow::Borrowed("a")), "names without escapes are borrowed");
        assert_eq!(fields.get("b\""), Some(&FieldValue::Raw(Raw::Number("2"))));
        assert_eq!(fields.names().collect::<Vec<_>>(), ["a", "b\""]);
    }

    #[test]
    fn numbers_and_plain_strings_are_kept_as_sent() {
        let Record::Object(fields) =
            parse_record(b"{\"n\": -1.5e3, \"s\": \"a b\", \"l\": [1, 2.5 ,\n-3E-2], \"e\": [], \"x\": \"a\\nb\", \"m\": [1, \"2\"], \"t\": true}")
                .unwrap()
        else {
            panic!("an object")
        };
        let raw = |name: &str| match fields.get(name).unwrap() {
            FieldValue::Raw(r) => Some(*r),
            FieldValue::Value(_) => None,
        };
        assert_eq!(raw("n"), Some(Raw::Number("-1.5e3")));
        assert_eq!(raw("s"), Some(Raw::Text("\"a b\"")));
        assert_eq!(raw("l"), Some(Raw::Numbers("[1, 2.5 ,\n-3E-2]")));
        assert_eq!(raw("l").unwrap().compact(), "[1,2.5,-3E-2]");
        assert_eq!(raw("e"), Some(Raw::Numbers("[]")));
        assert_eq!((raw("x"), raw("m"), raw("t")), (None, None, None), "escapes, mixed arrays and booleans are values");
        assert_eq!(fields.get("x").unwrap().to_value(), Value::from("a\nb"));
        // Numbers that are not finite doubles are refused, alone or in an array, as before.
        for body in [&b"{\"a\": 1e400}"[..], b"{\"a\": [1, -1E+999]}", b"{\"a\": [[1e400]]}"] {
            let e = parse_record(body).unwrap_err().to_string();
            assert!(e.contains("number out of range"), "{e}");
        }
        // A raw string never holds a raw newline (a row is one line in `batch` framing).
        assert!(parse_record(b"{\"s\": \"a\nb\"}").unwrap_err().to_string().contains("control character"));
        let long = format!("{{\"a\": [{}]}}", "9".repeat(400));
        assert!(parse_record(long.as_bytes()).unwrap_err().to_string().contains("number out of range"));
    }

    #[test]
    fn records_refuse_what_the_strict_value_refuses() {
        let err = |s: &[u8]| parse_records(s).unwrap_err().to_string();
        assert!(err(br#"{"a": 1, "a": 2}"#).contains("duplicate key `a`"));
        assert!(err(br#"[{"a": {"b": 1, "b": 1}}]"#).contains("duplicate key `b`"));
        // Past the scanned prefix, duplicates are found by the set.
        let many: Vec<String> = (0..40).map(|i| format!("\"f{i}\": {i}")).collect();
        let wide = format!("{{{}, \"f3\": 0}}", many.join(", "));
        assert!(err(wide.as_bytes()).contains("duplicate key `f3`"));
        let late = format!("{{{}, \"f39\": 0}}", many.join(", "));
        assert!(err(late.as_bytes()).contains("duplicate key `f39`"));
        assert!(parse_records(format!("{{{}}}", many.join(", ")).as_bytes()).is_ok());
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(err(deep.as_bytes()).contains("nested deeper than 64 levels"));
        let ok = format!("{{\"a\": {}{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse_records(ok.as_bytes()).is_ok());
        let deep_array = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(err(deep_array.as_bytes()).contains("nested deeper"));
        assert!(!err(b"{\"a\": NaN}").is_empty());
        assert!(!err(b"{\"a\": 1e400}").is_empty());
        assert!(!err(b"{\"a\": \"\xff\"}").is_empty());
        assert!(!err(b"{\"a\": 1} x").is_empty());
        assert_eq!(err(b"[{\"a\": 1},\n {\"b\": \"\xc3(\"}]"), "invalid UTF-8 at line 2 column 9");
        assert_eq!(parse_record(b"\xff").unwrap_err().to_string(), "invalid UTF-8 at line 1 column 1");
        assert!(parse_record(b"{\"a\": 1}\n{\"b\": 2}").is_err());
    }
}
