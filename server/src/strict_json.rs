//! JSON as ingest reads it: serde_json's grammar (which already refuses invalid UTF-8, NaN and
//! numbers out of range), plus two refusals of its own: an object with the same key twice
//! (serde_json would keep the last silently) and nesting deeper than [`MAX_DEPTH`].
//!
//! Ingest reads records with [`parse_records`]: each top-level object becomes a [`Record`], its
//! fields in a list with their names borrowed from the request body, not a map of copied names
//! (a third of the cost of a batched event went to those, BENCHMARKS.md, issue 20).

use std::borrow::Cow;
use std::collections::HashSet;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Arrays and objects inside each other at most this deep.
pub const MAX_DEPTH: usize = 64;

/// Parses one JSON document strictly.
pub fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict { depth: 0 }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
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
pub struct Fields<'a>(pub Vec<(Cow<'a, str>, Value)>);

impl Fields<'_> {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| &**n)
    }
}

/// The records of one JSON document: an object is one record, an array holds one per item.
/// Anything else is an error.
pub fn parse_records(bytes: &[u8]) -> Result<Vec<Record<'_>>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let records = TopLevel.deserialize(&mut de)?;
    de.end()?;
    Ok(records)
}

/// One record: one JSON document (an NDJSON line).
pub fn parse_record(bytes: &[u8]) -> Result<Record<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
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
        let mut fields: Vec<(Cow<'de, str>, Value)> = Vec::with_capacity(8);
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
            let value = map.next_value_seed(inner)?;
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
                Record::Object(f) => Value::Object(f.0.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()),
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
        assert_eq!(fields.get("b\""), Some(&Value::from(2)));
        assert_eq!(fields.names().collect::<Vec<_>>(), ["a", "b\""]);
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
        assert!(parse_record(b"{\"a\": 1}\n{\"b\": 2}").is_err());
    }
}
