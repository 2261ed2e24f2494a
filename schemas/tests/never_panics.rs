//! Property tests: checking and `igloo import prisma` never panic, whatever the input, and
//! every diagnostic's span lies inside its file.

use igloo_schemas::import::{import_prisma, ImportOptions};
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

/// `IGLOO_FUZZ_CASES` (scripts/fuzz.sh: 10 million), else `default`.
fn cases(default: u32) -> u32 {
    env_cases("IGLOO_FUZZ_CASES", default)
}

/// `IGLOO_FUZZ_IMPORT_CASES` (scripts/fuzz.sh: 1 million: each case is four imports and four
/// checks), else `default`.
fn import_cases(default: u32) -> u32 {
    env_cases("IGLOO_FUZZ_IMPORT_CASES", default)
}

fn env_cases(var: &str, default: u32) -> u32 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

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

/// `base` with `len` bytes at `cut` replaced by `insert` (both ends moved to char boundaries).
fn mutate(base: &str, cut: usize, len: usize, insert: &str) -> String {
    let mut text = base.to_string();
    let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    let end = (start + len).min(text.len());
    let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    text.replace_range(start..end, insert);
    text
}

/// A Prisma application schema with every form the importer rewrites.
const PRISMA: &str = r#"
datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

type Address {
  city String
}

enum Role {
  USER  @map("user")
  ADMIN
  @@map("roles")
}

model User {
  id        String   @id @default(cuid()) @db.Uuid
  email     String   @unique @db.VarChar(320) /// login
  role      Role     @default(USER)
  address   Address?
  at        DateTime @updatedAt @db.Timestamptz(6)
  posts     Post[]
  tags      Unsupported("tsvector")?
  @@index([email, at])
  @@schema("auth")
}

model Post {
  id       Int    @id @default(autoincrement())
  author   User   @relation(fields: [authorId], references: [id])
  authorId String
  @@unique([authorId, id], name: "k")
}

view V {
  id Int @unique
}
"#;

/// Imports with and without a model selection, for both targets; the result is checked.
fn import_all_ways(text: &str) {
    let files = [SourceFile::new("app.prisma", text)];
    for dialect in [Dialect::V18_16, Dialect::CURRENT] {
        for models in [None, Some(vec!["User".to_string()])] {
            if let Ok(imported) = import_prisma(&files, &ImportOptions { models, dialect }) {
                let _ = imported.report.render();
                let _ = check_for(&[SourceFile::new("out.prisma", imported.schema.as_str())], dialect);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), ..ProptestConfig::default() })]

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
        check_all_targets(&mutate(VALID, cut, len, &insert));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: import_cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn import_of_arbitrary_text(text in "\\PC*") {
        import_all_ways(&text);
    }

    #[test]
    fn import_of_mutated_application_schemas(cut in 0..PRISMA.len(), len in 0usize..30, insert in "\\PC{0,8}") {
        import_all_ways(&mutate(PRISMA, cut, len, &insert));
    }
}

#[test]
fn the_unmutated_application_schema_imports_into_a_valid_one() {
    for dialect in [Dialect::V18_16, Dialect::CURRENT] {
        let imported =
            import_prisma(&[SourceFile::new("app.prisma", PRISMA)], &ImportOptions { models: None, dialect })
                .expect("imports");
        let out = [SourceFile::new("out.prisma", imported.schema.as_str())];
        let (ir, diags) = check_for(&out, dialect);
        assert!(!diags.has_errors(), "{}\n{}", imported.schema, diags.render(&out));
        assert_eq!(ir.models.len(), 2);
    }
}

#[test]
fn the_unmutated_schema_is_valid() {
    let files = [SourceFile::new("p.prisma", VALID)];
    let (ir, diags) = check_for(&files, Dialect::CURRENT);
    assert!(!diags.has_errors(), "{}", diags.render(&files));
    assert_eq!(ir.models.len(), 1);
}
