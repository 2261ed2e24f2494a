//! User materialized views on real engines: `views/<Model>.sql` fills a model's table,
//! backfills on creation when asked, follows edits (a new view, no double counting), reports a
//! broken file without applying anything, and is dropped with its file.

use std::time::Duration;

mod support;
use support::*;

const COUNTS: &str = "\n/// Events per tag, filled by views/TagCounts.sql.\nmodel TagCounts {\n  tag    String @id\n  events BigInt\n\n  @@engine(SummingMergeTree(events))\n  @@ingest(false)\n}\n";

fn ingest(ports: &Ports, tags: &[&str]) {
    let body: String =
        tags.iter().enumerate().map(|(i, t)| format!("{{\"time\":{i},\"tag\":\"{t}\",\"values\":[1]}}\n")).collect();
    post_ndjson(&ports.api("/ingest/Measurement"), &body);
}

fn total(ports: &Ports, want: &str) {
    let ch = ports.clickhouse();
    eventually(Duration::from_secs(30), &format!("{want} events counted"), || {
        let got = ch.execute("SELECT sum(events) FROM devapp.TagCounts").ok()?;
        (got.trim() == want).then_some(())
    });
}

#[test]
fn views_fill_models_backfill_and_follow_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let schema = root.join("schema/measurement.prisma");
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(&schema, text + COUNTS).unwrap();
    let ports = Ports::free();
    let mut dev = Dev::start(&root, &ports, &[]);
    dev.expect("Ingest API", START);
    ingest(&ports, &["a"; 10]);
    let ch = ports.clickhouse();
    eventually(Duration::from_secs(30), "events written", || {
        (ch.execute("SELECT count() FROM devapp.Measurement").ok()?.trim() == "10").then_some(())
    });

    // count() is UInt64: the view is refused before anything is created, with the fix.
    let view = root.join("views/TagCounts.sql");
    std::fs::write(&view, "-- @backfill\nSELECT tag, count() AS events FROM Measurement GROUP BY tag\n").unwrap();
    dev.expect(
        "views/TagCounts.sql: `events` is UInt64 but TagCounts.events is Int64; cast it, e.g. `toInt64(…) AS events`",
        APPLY,
    );
    std::fs::write(
        &view,
        "-- Events per tag.\n-- @backfill\nSELECT tag, toInt64(count()) AS events FROM Measurement GROUP BY tag\n",
    )
    .unwrap();
    let line = dev.expect("+ view devapp._igloo_view_TagCounts_", APPLY);
    assert!(line.contains("backfilled from the rows already stored") && !line.contains('✗'), "{line}");
    total(&ports, "10");
    ingest(&ports, &["a", "b", "b", "c", "c"]);
    total(&ports, "15");

    // An edit is a new view: the old one goes, nothing is backfilled twice.
    std::fs::write(&view, "SELECT tag, toInt64(count() * 2) AS events FROM Measurement GROUP BY tag\n").unwrap();
    dev.expect("- view devapp._igloo_view_TagCounts_", APPLY);
    let line = dev.expect("+ view devapp._igloo_view_TagCounts_", APPLY);
    assert!(!line.contains("backfilled") && !line.contains('✗'), "{line}");
    ingest(&ports, &["d"]);
    total(&ports, "17");

    // A broken view is reported with its line; nothing changes.
    std::fs::write(&view, "DELETE FROM Measurement\n").unwrap();
    dev.expect("views/TagCounts.sql:1: a view is one SELECT", APPLY);
    dev.expect("nothing applied", APPLY);
    let views = || {
        ch.execute("SELECT count() FROM system.tables WHERE database = 'devapp' AND name LIKE '_igloo_view_%'").unwrap()
    };
    assert_eq!(views().trim(), "1");

    // No file, no view; the rows it wrote stay.
    std::fs::remove_file(&view).unwrap();
    dev.expect("- view devapp._igloo_view_TagCounts_", APPLY);
    assert_eq!(views().trim(), "0");
    total(&ports, "17");
}
