//! Generated SDK modules are stable: the same schema and APIs give the same text (snapshots),
//! so users' diffs stay small. That the text type-checks and works is tested in
//! cli/tests/sdk.rs with mypy, tsc and a running `igloo dev`.

use igloo_schemas::codegen::{python, typescript, SdkInput};
use igloo_schemas::consumption::parse;
use igloo_schemas::{check, SourceFile};

const SCHEMA: &str = r#"
enum Level {
  Low
  High
}

/// One measurement of a tag.
model Measurement {
  /// Nanoseconds since the epoch.
  time   BigInt
  tag    String
  values Float[]

  @@id([tag, time])
  @@timeseries(time: time, series: tag)
}

model Reading {
  id      String   @id
  at      DateTime
  level   Level
  note    String?
  count   Int      @default(0)
  payload Json?
}
"#;

const API: &str = "-- Events per tag.\n-- @param start BigInt  window start\n-- @param limit Int = 10\nSELECT tag, count() AS events FROM Measurement WHERE time >= {start} GROUP BY tag LIMIT {limit}\n";

#[test]
fn generated_modules_are_stable() {
    let files = [SourceFile::new("schema.prisma", SCHEMA)];
    let (ir, diags) = check(&files);
    assert!(!diags.has_errors(), "{}", diags.render(&files));
    let apis = vec![parse("apis/tag_stats.sql", "tag_stats", API).unwrap()];
    // As ClickHouse describes the API when engines run; without, rows are generic records.
    let described: std::collections::BTreeMap<String, Vec<(String, String)>> =
        [("tag_stats".to_string(), vec![("tag".into(), "String".into()), ("events".into(), "UInt64".into())])].into();
    let input = SdkInput { ir: &ir, apis: &apis, columns: &described };
    insta::assert_snapshot!("python", python(&input));
    insta::assert_snapshot!("typescript", typescript(&input));
    let generic = SdkInput { ir: &ir, apis: &apis, columns: &Default::default() };
    assert!(python(&generic).contains("TagStatsRow = dict[str, Any]"));
    assert!(typescript(&generic).contains("export type TagStatsRow = Record<string, unknown>;"));
}
