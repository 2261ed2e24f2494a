use super::*;
use igloo_schemas::{check, SourceFile};
use serde_json::json;

pub(crate) const SCHEMA: &str = r#"
enum Level {
  Low
  High
}
model Event {
  id      String   @id
  at      DateTime @default(now())
  precise DateTime? @db.DateTime64(3)
  day     Date?
  n       Int      @default(7)
  big     BigInt?  @db.UInt64
  small   Int?     @db.UInt8
  ratio   Float?
  price   Decimal?
  ok      Boolean  @default(false)
  level   Level    @default(Low)
  tags    String[]
  meta    Json?
  blob    Bytes?
  ref     Uuid     @default(uuid())
  code    String?  @db.FixedString(2)
  debug   String   @ignore
}
"#;

fn ir() -> Ir {
    let files = [SourceFile::new("s.prisma", SCHEMA)];
    let (ir, d) = check(&files);
    assert!(!d.has_errors(), "{}", d.render(&files));
    ir
}

/// A valid record with its row read back as a map.
#[derive(Debug)]
struct ValidRow {
    key: String,
    row: serde_json::Map<String, Value>,
}

fn run(v: Value) -> Result<ValidRow, Vec<RecordError>> {
    let ir = ir();
    let model = ir.model("Event").unwrap().clone();
    let mut uuid = || "00000000-0000-4000-8000-000000000000".to_string();
    let mut ctx = Context { now: DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap(), uuid: &mut uuid };
    // Ingest reads records with names borrowed from the body and most values as the text sent:
    // the same outcome as the value read from the same text, numbers in the form sent.
    let text = v.to_string();
    same_as_the_value(&ir, &model, &text, &mut ctx);
    let r = validate_record(&ir, &model, &v, 3, &mut ctx)?;
    let row: serde_json::Map<String, Value> = serde_json::from_str(&r.row).expect("a JSON object");
    // The text is what serde_json writes for that map: same key order, escaping and numbers.
    assert_eq!(r.row, Value::Object(row.clone()).to_string());
    Ok(ValidRow { key: r.key, row })
}

/// Validating `text` as ingest reads it ([`crate::strict_json::parse_record`]) has the outcome
/// of validating the strict value read from it: the same errors, or the same key and a row with
/// the same values.
fn same_as_the_value(ir: &Ir, model: &Model, text: &str, ctx: &mut Context) {
    let reread = validate_record(ir, model, &crate::strict_json::parse(text.as_bytes()).unwrap(), 3, ctx);
    let read = match crate::strict_json::parse_record(text.as_bytes()).unwrap() {
        crate::strict_json::Record::Object(fields) => validate_object(ir, model, &fields, 3, ctx),
        crate::strict_json::Record::Other(other) => Err(vec![not_an_object(&other, 3)]),
    };
    match (read, reread) {
        (Ok(read), Ok(reread)) => {
            assert_eq!(read.key, reread.key, "{text}");
            assert!(!read.row.contains('\n'), "{text}: a row is one line");
            let (a, b): (Value, Value) =
                (serde_json::from_str(&read.row).unwrap(), serde_json::from_str(&reread.row).unwrap());
            assert_eq!(a, b, "{text}");
        }
        (read, reread) => assert_eq!(read, reread, "{text}"),
    }
}

/// Text that reads as the value does not, as serde_json writes it: numbers in other forms,
/// whitespace inside arrays, escapes.
#[test]
fn values_kept_as_sent_validate_as_their_value_does() {
    let ir = ir();
    let model = ir.model("Event").unwrap().clone();
    let mut uuid = || "00000000-0000-4000-8000-000000000000".to_string();
    let mut ctx = Context { now: DateTime::from_timestamp(1_700_000_000, 0).unwrap(), uuid: &mut uuid };
    for fields in [
        r#""id":"a","ratio":1e5,"n":-0,"small":2E1"#,
        r#""id":"a","ratio":-0.0,"price":1.50,"big":18446744073709551615"#,
        r#""id":"a","ratio":1E400"#,
        r#""id":"a","ratio":"1.5""#,
        r#""id":"a\u0062","code":"abc""#,
        r#""id":"a","code":"ab","level":"High","ref":"123e4567-e89b-12d3-a456-426614174000""#,
        r#""id":"a","tags":[ "x" , "y\n" ],"meta":{"k":[1, 2 ,{"j":null}]}"#,
        r#""id":"a","tags":[1,2]"#,
        r#""id":"a","at":1.7e9,"precise":1700000000.5,"day":"2024-01-31""#,
        r#""id":"a","n":1.5,"small":256"#,
        r#""id":"a","n":2147483648,"small":-1"#,
        r#""id":"a","n":-2147483648,"small":255,"big":0"#,
        r#""id":"a","big":"12","n":99999999999999999999"#,
        r#""id":7,"ratio":[1,2]"#,
    ] {
        let text = format!(r#"{{{fields},"debug":""}}"#);
        match crate::strict_json::parse(text.as_bytes()) {
            Ok(_) => same_as_the_value(&ir, &model, &text, &mut ctx),
            Err(_) => assert!(crate::strict_json::parse_record(text.as_bytes()).is_err(), "{text}"),
        }
    }
    // The reference event's shape: a key string, an integer and a list of floats.
    // Keyed by the pair (a JSON array) and by the series alone (its text).
    let schema = "model M {\n time BigInt\n tag String\n values Float[]\n @@id([tag, time])\n}\n\
                  model T {\n time BigInt\n tag String\n values Float[]\n @@id([tag, time])\n @@timeseries(time: time, series: tag)\n}";
    let (ir, d) = check(&[SourceFile::new("m.prisma", schema)]);
    assert!(!d.has_errors());
    for (model, text) in ["M", "T"].into_iter().flat_map(|m| {
        [
            r#"{"time": 1700000000000000000, "tag": "pump-1", "values": [0.1, -2e-3, 3 , 1E+2,
            5.000000000000000000001, 0]}"#,
            r#"{"time": 1, "tag": "p", "values": []}"#,
            r#"{"time": 1, "tag": "p", "values": [ ]}"#,
            r#"{"time": 1, "tag": "p", "values": [1, "2"]}"#,
            r#"{"time": 1, "tag": "p", "values": [1, null]}"#,
            r#"{"time": 1, "tag": "p", "values": [[1]]}"#,
            r#"{"time": 1, "tag": "p", "values": 1.5}"#,
        ]
        .map(move |t| (m, t))
    }) {
        same_as_the_value(&ir, ir.model(model).unwrap(), text, &mut ctx);
    }
    let t = ir.model("T").unwrap();
    let crate::strict_json::Record::Object(fields) =
        crate::strict_json::parse_record(br#"{"time":1,"tag":"p-1","values":[1]}"#).unwrap()
    else {
        panic!("an object")
    };
    assert_eq!(validate_object(&ir, t, &fields, 0, &mut ctx).unwrap().key, "p-1");
}

fn reasons(v: Value) -> Vec<(String, String)> {
    run(v).unwrap_err().into_iter().map(|e| (e.path, e.reason)).collect()
}

#[test]
fn fills_defaults_and_normalizes() {
    let r = run(json!({"id": "a", "debug": "dropped"})).unwrap();
    assert_eq!(
        Value::Object(r.row),
        json!({"id": "a", "at": "2023-11-14 22:13:20", "precise": null, "day": null, "n": 7, "big": null, "small": null,
               "ratio": null, "price": null, "ok": false, "level": "Low", "tags": [], "meta": null, "blob": null,
               "ref": "00000000-0000-4000-8000-000000000000", "code": null})
    );
    assert_eq!(r.key, "a", "one key field: its value as text");
}

#[test]
fn accepts_every_documented_form() {
    let r = run(json!({
        "id": "b", "at": "2024-01-31T23:59:59+02:00", "precise": 1700000000.25, "day": "2024-02-29",
        "n": -5, "big": "18446744073709551615", "small": 255, "ratio": 1.5, "price": "12.34", "ok": true,
        "level": "High", "tags": ["x", "y"], "meta": {"a": [1, 2]}, "blob": "aGk=", "ref": "123e4567-e89b-12d3-a456-426614174000",
        "code": "ab"
    }))
    .unwrap()
    .row;
    assert_eq!(r["at"], "2024-01-31 21:59:59");
    assert_eq!(r["precise"], "2023-11-14 22:13:20.250");
    assert_eq!(r["big"], "18446744073709551615");
    assert_eq!(r["meta"], "{\"a\":[1,2]}");
    assert_eq!(r["tags"], json!(["x", "y"]));
}

#[test]
fn reports_every_bad_field_with_its_path() {
    let got = reasons(json!({
        "at": "yesterday", "n": 1.5, "big": -1, "small": 256, "ok": "yes", "level": "Mid",
        "tags": ["x", 3], "blob": "***", "ref": "nope", "code": "abc", "day": "2024-02-30", "extra": 1
    }));
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["extra", "id", "at", "day", "n", "big", "small", "ok", "level", "tags[1]", "blob", "ref", "code"]
    );
    let reason = |p: &str| got.iter().find(|(q, _)| q == p).unwrap().1.clone();
    assert!(reason("extra").starts_with("unknown field; Event has id, at,"));
    assert_eq!(reason("id"), "required field is missing");
    assert_eq!(reason("small"), "256 is out of range for UInt8 (0 to 255)");
    assert_eq!(reason("big"), "-1 is out of range for UInt64 (0 to 18446744073709551615)");
    assert_eq!(reason("n"), "expected a whole number, found 1.5");
    assert_eq!(reason("level"), "`Mid` is not a value of Level (Low, High)");
    assert_eq!(reason("tags[1]"), "expected a string, found a number");
    assert_eq!(reason("code"), "text is 3 bytes; the column holds at most 2");
}

#[test]
fn nulls_and_non_objects() {
    assert_eq!(reasons(json!({"id": null})), [("id".to_string(), "must not be null".to_string())]);
    let r = run(json!({"id": "a", "tags": null, "ratio": null})).unwrap().row;
    assert_eq!((r["tags"].clone(), r["ratio"].clone()), (json!([]), Value::Null));
    let e = run(json!([1])).unwrap_err();
    assert_eq!((e[0].index, e[0].reason.as_str()), (3, "expected a JSON object, found an array"));
}

#[test]
fn datetime_range_and_units() {
    assert_eq!(run(json!({"id": "a", "at": 0})).unwrap().row["at"], "1970-01-01 00:00:00");
    assert_eq!(
        reasons(json!({"id": "a", "at": -1}))[0].1,
        "time is outside DateTime's range (1970-01-01 to 2106-02-07)"
    );
    assert_eq!(run(json!({"id": "a", "at": 1700000000})).unwrap().row["at"], "2023-11-14 22:13:20");
    // ClickHouse's own text form (what `igloo query` prints) is accepted, as UTC.
    assert_eq!(run(json!({"id": "a", "at": "2024-01-31 23:59:59"})).unwrap().row["at"], "2024-01-31 23:59:59");
    assert_eq!(
        run(json!({"id": "a", "precise": "2024-01-31 23:59:59.5"})).unwrap().row["precise"],
        "2024-01-31 23:59:59.500"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// `IGLOO_FUZZ_CASES` (scripts/fuzz.sh: 10 million), else `default`.
    fn cases(default: u32) -> u32 {
        std::env::var("IGLOO_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            "\\PC{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "2024-01-31T23:59:59Z",
                "High",
                "aGk=",
                "123e4567-e89b-12d3-a456-426614174000",
                "2024-02-29",
                "18446744073709551615"
            ])
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (prop::sample::select(vec!["id", "at", "n", "big", "small", "tags", "level", "meta", "x"]), inner),
                    0..8
                )
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(3000), ..ProptestConfig::default() })]

        /// Any bytes as an ingest body: strict JSON refuses or parses them, and what parses
        /// validates to a row or errors; never a panic.
        #[test]
        fn raw_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(v) = crate::strict_json::parse(&bytes) {
                let _ = run(v);
            }
        }

        /// JSON-looking text: the same, with the grammar's own characters far more likely.
        #[test]
        fn json_like_bodies_never_panic(text in "[{}\\[\\]\":,0-9eE.+\\-a-z \\\\ntrufalsN]{0,120}") {
            if let Ok(v) = crate::strict_json::parse(text.as_bytes()) {
                let _ = run(v);
            }
        }

        /// Any JSON at all: a row or errors, never a panic; every error names the record.
        #[test]
        fn never_panics(v in json()) {
            match run(v) {
                Ok(row) => prop_assert_eq!(row.row.len(), 16),
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    prop_assert!(errors.iter().all(|e| e.index == 3 && !e.reason.is_empty()));
                }
            }
        }

        /// A valid record's row validates again to itself (normalization is idempotent).
        #[test]
        fn normalization_is_stable(n in any::<i32>(), small in any::<u8>(), secs in 0i64..4_000_000_000) {
            let first = run(json!({"id": "k", "n": n, "small": small, "at": secs, "tags": ["a"]})).unwrap().row;
            let again = run(Value::Object(first.clone())).unwrap().row;
            prop_assert_eq!(first, again);
        }
    }
}

/// A float reaches the row as the same double the client sent, bit for bit: ingest keeps it as
/// the text sent, and a value read whole (a transform's output) is read with correctly rounded
/// parsing (serde_json's `float_roundtrip`; its default parser rounds about 9% of
/// full-precision doubles to a neighbour) and written in shortest form.
#[test]
fn floats_keep_every_bit_from_request_to_row() {
    let ir = ir();
    let model = ir.model("Event").unwrap();
    let mut uuid = || "00000000-0000-4000-8000-000000000000".to_string();
    let mut ctx = Context { now: DateTime::from_timestamp(1_700_000_000, 0).unwrap(), uuid: &mut uuid };
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut changed = Vec::new();
    for i in 0..20_000 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let bits = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let sent = (bits >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi((bits % 9) as i32 - 4);
        let body = format!(r#"{{"id":"a","tags":[],"debug":"","ratio":{sent}}}"#);
        let crate::strict_json::Record::Object(fields) = crate::strict_json::parse_record(body.as_bytes()).unwrap()
        else {
            panic!("an object")
        };
        let whole = crate::strict_json::parse(body.as_bytes()).unwrap();
        for row in [
            validate_object(&ir, model, &fields, i, &mut ctx).unwrap().row,
            validate_record(&ir, model, &whole, i, &mut ctx).unwrap().row,
        ] {
            let text = row.split("\"ratio\":").nth(1).unwrap().split([',', '}']).next().unwrap();
            let stored: f64 = text.parse().unwrap(); // std's parsing is correctly rounded
            if stored.to_bits() != sent.to_bits() {
                changed.push(format!("{sent} became {text}"));
            }
        }
    }
    assert!(
        changed.is_empty(),
        "{} of 20000 floats (read two ways) changed, e.g. {:?}",
        changed.len(),
        &changed[..changed.len().min(3)]
    );
}
