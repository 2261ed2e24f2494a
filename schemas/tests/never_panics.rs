//! Property tests: checking never panics, whatever the input, and every diagnostic's span lies
//! inside its file.

use igloo_schemas::{check_for, Dialect, SourceFile};
use proptest::prelude::*;

const VALID: &str = r#"
enum Kind {
  A
  B
}

/// doc
model Event {
  id    String   @id @default(uuid())
  kind  Kind     @default(A)
  at    DateTime @default(now()) @db.DateTime64(3)
  tags  String[] @default([])
  n     Int?     @map("num")

  @@orderBy([id, at])
  @@partitionBy("toYYYYMM(at)")
  @@engine(ReplacingMergeTree(at))
  @@topic(partitions: 2, retention: "1d")
}
"#;

fn check_all_targets(text: &str) {
    let files = [SourceFile::new("p.prisma", text)];
    for dialect in [Dialect::V18_16, Dialect::CURRENT] {
        let (_, diags) = check_for(&files, dialect);
        for d in diags.sorted() {
            assert!(d.span.start <= d.span.end && d.span.end as usize <= text.len(), "span out of bounds: {d:?}");
        }
        let _ = diags.render(&files);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(text in "\\PC*") {
        check_all_targets(&text);
    }

    #[test]
    fn schema_like_tokens(tokens in prop::collection::vec(prop::sample::select(vec![
        "model", "enum", "M", "x", "String", "Int?", "Float[]", "@id", "@@id", "@default", "@db.UInt8", "@db.Decimal",
        "(", ")", "[", "]", "{", "}", ",", ":", "\"s\"", "\"", "1", "-1", "1.5", "now()", "\n", " ", "///", "//", "@", "@@",
        "@@engine", "ReplacingMergeTree", "@@topic", "partitions", "é", "\t",
    ]), 0..80)) {
        check_all_targets(&tokens.concat());
    }

    #[test]
    fn mutations_of_a_valid_schema(cut in 0..VALID.len(), len in 0usize..20, insert in "\\PC{0,5}") {
        let mut text = VALID.to_string();
        let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        check_all_targets(&text);
    }
}

#[test]
fn the_unmutated_schema_is_valid() {
    let files = [SourceFile::new("p.prisma", VALID)];
    let (ir, diags) = check_for(&files, Dialect::CURRENT);
    assert!(!diags.has_errors(), "{}", diags.render(&files));
    assert_eq!(ir.models.len(), 1);
}
