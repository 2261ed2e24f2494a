use super::*;
use crate::source::SourceFile;

fn ir(schema: &str) -> Ir {
    let files = [SourceFile::new("a.prisma", schema)];
    let (ir, diags) = crate::check(&files);
    assert!(!diags.has_errors(), "{}", diags.render(&files));
    ir
}

/// What the engines would report after applying `schema` on an empty cluster.
fn observed_after(schema: &str, dialect: Dialect) -> Observed {
    let ir = ir(schema);
    let mut observed = Observed { database_exists: true, ..Observed::default() };
    observed.topics.insert(crate::internal::DLQ.into(), 1);
    for m in &ir.models {
        let t = CreateTable::for_model(m, &ir, "db");
        let columns = t.columns.iter().map(|c| (c.name.clone(), c.ty.render(dialect))).collect();
        let sorting_key = expected_sorting_key(&t).replace(',', ", ");
        observed
            .tables
            .insert(m.table.clone(), ObservedTable { engine: engine_name(&m.engine).into(), sorting_key, columns });
        observed.topics.insert(m.topic.name.clone(), m.topic.partitions);
        let rollups = crate::sql::timeseries::TimeSeriesTables::for_model(m, &ir, "db").map(|t| t.rollups());
        for r in rollups.unwrap_or_default() {
            let t = r.create_table();
            let columns = t.columns.iter().map(|c| (c.name.clone(), c.ty.render(dialect))).collect();
            let engine = "AggregatingMergeTree".to_string();
            observed
                .tables
                .insert(r.table_name(), ObservedTable { engine, sorting_key: "tag, _bucket".into(), columns });
            let view = ObservedTable { engine: "MaterializedView".into(), ..ObservedTable::default() };
            observed.tables.insert(r.view_name(), view);
        }
    }
    observed
}

fn summaries(p: &Plan) -> Vec<String> {
    p.steps.iter().map(|s| s.summary(&p.database)).collect()
}

const BASE: &str = "model A {\n  id String @id\n  n Int\n}\n";

#[test]
fn empty_cluster_gets_everything_created() {
    let p = plan(
        &ir("model A {\n  id Int @id\n}\nmodel B {\n  id Int @id\n}\n"),
        &Observed::default(),
        "db",
        Dialect::CURRENT,
        None,
    );
    assert_eq!(
        summaries(&p),
        [
            "+ database db",
            "+ topic _igloo_dlq (1 partition, retention 7d)",
            "+ topic A (3 partitions, retention 7d)",
            "+ table db.A (1 columns)",
            "+ topic B (3 partitions, retention 7d)",
            "+ table db.B (1 columns)"
        ]
    );
    assert_eq!(p.risk(), Risk::Safe);
}

#[test]
fn applied_schema_plans_nothing_on_both_dialects() {
    let schema = "enum K {\n  X\n}\nmodel A {\n  id String @id @db.LowCardinality\n  k K\n  at DateTime\n  b Boolean?\n  v Float[]\n  d Decimal\n  @@orderBy([id, at])\n}\nmodel V {\n  id String @id\n  s Int @db.Int8\n  ver DateTime\n  @@engine(VersionedCollapsingMergeTree(s, ver))\n}\n";
    for dialect in [Dialect::V18_16, Dialect::CURRENT] {
        let p = plan(&ir(schema), &observed_after(schema, dialect), "db", dialect, None);
        assert!(p.is_empty() && p.notes.is_empty(), "{dialect}: {:?} {:?}", summaries(&p), p.notes);
    }
}

#[test]
fn new_field_is_added_after_its_predecessor() {
    let p = plan(
        &ir("model A {\n  id String @id\n  m Int @default(7)\n  n Int\n}\n"),
        &observed_after(BASE, Dialect::V18_16),
        "db",
        Dialect::V18_16,
        None,
    );
    assert_eq!(summaries(&p), ["+ column A.m"]);
    assert_eq!(p.sql(&p.steps[0]), ["ALTER TABLE `db`.`A` ADD COLUMN `m` Int32 DEFAULT 7 AFTER `id`"]);
    assert_eq!(p.risk(), Risk::Safe);
}

#[test]
fn removed_field_and_changed_type_are_destructive() {
    let p = plan(
        &ir("model A {\n  id String @id\n  n BigInt\n}\n"),
        &observed_after("model A {\n  id String @id\n  n Int\n  gone String\n}\n", Dialect::CURRENT),
        "db",
        Dialect::CURRENT,
        None,
    );
    assert_eq!(
        summaries(&p),
        [
            "~ column A.n: Int32 → Int64 (destructive: values that do not convert are lost)",
            "- column A.gone (destructive: its data is deleted)"
        ]
    );
    assert_eq!(p.sql(&p.steps[0]), ["ALTER TABLE `db`.`A` MODIFY COLUMN `n` Int64"]);
    assert_eq!(p.sql(&p.steps[1]), ["ALTER TABLE `db`.`A` DROP COLUMN `gone`"]);
    assert_eq!(p.risk(), Risk::Destructive);
}

#[test]
fn sorting_key_change_rebuilds_and_keeps_the_old_table() {
    let mut observed = observed_after(BASE, Dialect::V18_16);
    observed.tables.insert("_igloo_old_A_1".into(), ObservedTable::default());
    let p = plan(
        &ir("model A {\n  id String @id\n  n Int\n  @@orderBy([id, n])\n}\n"),
        &observed,
        "db",
        Dialect::V18_16,
        None,
    );
    assert_eq!(summaries(&p), ["~ table db.A: rebuild for sorting key (id) → (id,n); rows are copied and the old table kept as _igloo_old_A_2"]);
    let sql = p.sql(&p.steps[0]);
    assert_eq!(sql[0], "DROP TABLE IF EXISTS `db`.`_igloo_new_A`");
    assert!(
        sql[1].starts_with("CREATE TABLE IF NOT EXISTS `db`.`_igloo_new_A`")
            && sql[1].ends_with("PRIMARY KEY (`id`)\nORDER BY (`id`, `n`)"),
        "{}",
        sql[1]
    );
    // The hidden offset columns travel with the rows, so the writer's bookkeeping survives.
    assert_eq!(
        sql[2],
        "INSERT INTO `db`.`_igloo_new_A` (`id`, `n`, `_igloo_partition`, `_igloo_offset`, `_igloo_epoch`) SELECT `id`, `n`, `_igloo_partition`, `_igloo_offset`, `_igloo_epoch` FROM `db`.`A`"
    );
    assert_eq!(sql[3], "RENAME TABLE `db`.`A` TO `db`.`_igloo_old_A_2`, `db`.`_igloo_new_A` TO `db`.`A`");
    assert_eq!(p.risk(), Risk::Rebuild);
}

#[test]
fn key_column_type_change_and_engine_change_rebuild() {
    let p = plan(
        &ir("model A {\n  id BigInt @id\n  n Int\n}\n"),
        &observed_after("model A {\n  id Int @id\n  n Int\n}\n", Dialect::CURRENT),
        "db",
        Dialect::CURRENT,
        None,
    );
    assert_eq!(p.steps.len(), 1);
    assert!(summaries(&p)[0].contains("rebuild for key column id type Int32 → Int64"), "{:?}", summaries(&p));
    let p = plan(
        &ir("model A {\n  id String @id\n  n Int\n  @@engine(ReplacingMergeTree)\n}\n"),
        &observed_after(BASE, Dialect::CURRENT),
        "db",
        Dialect::CURRENT,
        None,
    );
    assert!(summaries(&p)[0].contains("rebuild for engine MergeTree → ReplacingMergeTree"), "{:?}", summaries(&p));
}

#[test]
fn removed_model_drops_its_table_but_never_its_topic_or_internal_tables() {
    let mut observed =
        observed_after("model A {\n  id String @id\n}\nmodel B {\n  id String @id\n}\n", Dialect::CURRENT);
    observed.tables.insert("_igloo_migrations".into(), ObservedTable::default());
    observed.topics.insert("_igloo_dlq".into(), 1);
    let p = plan(&ir("model A {\n  id String @id\n}\n"), &observed, "db", Dialect::CURRENT, None);
    assert_eq!(summaries(&p), ["- table db.B (destructive: no model uses it; its data is deleted)"]);
    assert_eq!(p.notes, ["topic B has no model any more; igloo leaves topics in place"]);
}

#[test]
fn partition_count_change_is_a_note_not_a_step() {
    let observed = observed_after(BASE, Dialect::CURRENT);
    let p = plan(
        &ir("model A {\n  id String @id\n  n Int\n  @@topic(partitions: 8)\n}\n"),
        &observed,
        "db",
        Dialect::CURRENT,
        None,
    );
    assert!(p.is_empty());
    assert!(p.notes[0].starts_with("topic A has 3 partitions and the schema asks for 8"), "{:?}", p.notes);
}

#[test]
fn retention_formats() {
    assert_eq!(format_retention(Some(604_800_000)), "7d");
    assert_eq!(format_retention(Some(5_400_000)), "90m");
    assert_eq!(format_retention(Some(1_500)), "1500ms");
    assert_eq!(format_retention(None), "forever");
}

#[test]
fn keys_normalize() {
    assert_eq!(normalize_key("tag, time"), "tag,time");
    assert_eq!(normalize_key("(`a-b`, time)"), "a-b,time");
    assert_eq!(normalize_key("tuple()"), "");
    assert_eq!(normalize_key(""), "");
}

const SERIES: &str = "model M {\n  time BigInt\n  tag String\n  v Float\n  @@id([tag, time])\n  @@timeseries(time: time, series: tag)\n}\n";

#[test]
fn time_series_rollups_are_created_backfilled_kept_and_dropped() {
    let created = plan(&ir(SERIES), &Observed::default(), "db", Dialect::CURRENT, None);
    let rollups: Vec<String> = summaries(&created).into_iter().filter(|s| s.contains("rollup")).collect();
    assert_eq!(
        rollups,
        [
            "+ rollup db._igloo_rollup_M_1h (1h buckets of M)",
            "+ rollup db._igloo_rollup_M_1m (1m buckets of M)",
            "+ rollup db._igloo_rollup_M_1s (1s buckets of M)"
        ]
    );
    for dialect in [Dialect::V18_16, Dialect::CURRENT] {
        assert!(plan(&ir(SERIES), &observed_after(SERIES, dialect), "db", dialect, None).is_empty());
    }

    // Declaring a time series on a table that has rows backfills its rollups.
    let plain = SERIES.replace("  @@timeseries(time: time, series: tag)\n", "");
    let p = plan(&ir(SERIES), &observed_after(&plain, Dialect::CURRENT), "db", Dialect::CURRENT, None);
    assert_eq!(p.steps.len(), 3);
    assert!(summaries(&p).iter().all(|s| s.ends_with("backfilled from the table)")), "{:?}", summaries(&p));
    let sql = p.sql(&p.steps[0]).join(";\n");
    assert!(sql.contains("CREATE MATERIALIZED VIEW IF NOT EXISTS `db`.`_igloo_rollup_M_1h_mv` TO"), "{sql}");
    assert!(sql.contains("INSERT INTO `db`.`_igloo_rollup_M_1h` (`tag`, `_bucket`, `_time_last`, `_count`, "), "{sql}");
    assert_eq!(p.risk(), Risk::Safe);

    // A new value field changes every rollup: each is dropped and recreated from the table.
    let more = SERIES.replace("  v Float\n", "  v Float\n  w Int\n");
    let p = plan(&ir(&more), &observed_after(SERIES, Dialect::CURRENT), "db", Dialect::CURRENT, None);
    let s = summaries(&p);
    assert_eq!(s[0], "+ column M.w");
    assert_eq!(s[1], "- rollup db._igloo_rollup_M_1h (derived data, rebuilt on demand)");
    assert!(s[2].starts_with("+ rollup db._igloo_rollup_M_1h") && s[2].ends_with("backfilled from the table)"));
    assert_eq!(s.len(), 7);

    // No longer a time series: the rollups and their views go, the table stays.
    let p = plan(&ir(&plain), &observed_after(SERIES, Dialect::CURRENT), "db", Dialect::CURRENT, None);
    assert_eq!(p.steps.len(), 3);
    let sql: Vec<String> = p.steps.iter().flat_map(|s| p.sql(s)).collect();
    assert_eq!(sql[0], "DROP TABLE IF EXISTS `db`.`_igloo_rollup_M_1h_mv`");
    assert_eq!(sql[1], "DROP TABLE IF EXISTS `db`.`_igloo_rollup_M_1h`");
}

#[test]
fn a_topic_prefix_keeps_projects_on_one_broker_apart() {
    let schema = "model A {\n  id String @id\n}\n";
    let ir = ir(schema).with_topic_prefix("staging.");
    let mut observed = Observed { database_exists: true, ..Observed::default() };
    // Another environment's topics, and one of this environment's that has no model now.
    observed.topics.insert("prod.A".into(), 3);
    observed.topics.insert("prod._igloo_dlq".into(), 1);
    observed.topics.insert("staging.Gone".into(), 3);
    let p = plan(&ir, &observed, "db", Dialect::V18_16, None);
    let topics: Vec<String> = p
        .steps
        .iter()
        .filter_map(|s| match s {
            PlanStep::CreateTopic { topic, .. } => Some(topic.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["staging._igloo_dlq", "staging.A"]);
    assert_eq!(p.notes, ["topic staging.Gone has no model any more; igloo leaves topics in place"]);
}

/// What the engines of a cluster would report after applying `schema`: every table a pair.
fn observed_pairs_after(schema: &str, dialect: Dialect) -> Observed {
    let mut observed = observed_after(schema, dialect);
    for (name, t) in std::mem::take(&mut observed.tables) {
        if !t.engine.ends_with("MergeTree") {
            observed.tables.insert(name, t);
            continue;
        }
        let distributed = ObservedTable { engine: "Distributed".into(), ..t.clone() };
        let local = ObservedTable { engine: format!("Replicated{}", t.engine), ..t };
        observed.tables.insert(format!("{name}_local"), local);
        observed.tables.insert(name, distributed);
    }
    observed
}

#[test]
fn on_a_cluster_every_table_is_a_replicated_local_table_under_a_distributed_one() {
    let cluster = Cluster::named("igloo");
    let p = plan(&ir(SERIES), &Observed::default(), "db", Dialect::V18_16, Some(&cluster));
    let sql: Vec<String> = p.steps.iter().flat_map(|s| p.sql(s)).collect();
    assert_eq!(sql[0], "CREATE DATABASE IF NOT EXISTS `db` ON CLUSTER `igloo`");
    assert!(sql[1].starts_with("CREATE TABLE IF NOT EXISTS `db`.`M_local` ON CLUSTER `igloo`\n("), "{}", sql[1]);
    assert!(
        sql[1].contains("ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/M', '{replica}')"),
        "{}",
        sql[1]
    );
    // Partition p of the topic lives on shard p mod shards.
    assert_eq!(
        sql[2],
        "CREATE TABLE IF NOT EXISTS `db`.`M` ON CLUSTER `igloo` AS `db`.`M_local` ENGINE = Distributed('igloo', 'db', 'M_local', `_igloo_partition`)"
    );
    // Rollups: replicated aggregates, spread at random, filled by views on the Distributed table.
    let rollup = sql.iter().position(|s| s.contains("`_igloo_rollup_M_1h_local`")).unwrap();
    assert!(sql[rollup].contains(
        "ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db/_igloo_rollup_M_1h', '{replica}')"
    ));
    assert!(sql[rollup + 1].ends_with("ENGINE = Distributed('igloo', 'db', '_igloo_rollup_M_1h_local', rand())"));
    let view = &sql[rollup + 2];
    assert!(view.starts_with(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS `db`.`_igloo_rollup_M_1h_mv` ON CLUSTER `igloo` TO `db`.`_igloo_rollup_M_1h_local` AS SELECT"
    ));
    assert!(view.contains(" FROM `db`.`M_local` GROUP BY"), "{view}");
    assert!(sql.iter().all(|s| s.contains(" ON CLUSTER `igloo`")), "{sql:#?}");

    // Applied, the pairs fold into the tables the schema describes: nothing to do.
    for dialect in [Dialect::V18_16, Dialect::CURRENT] {
        let mut observed = observed_pairs_after(SERIES, dialect);
        observed.fold_pairs();
        let p = plan(&ir(SERIES), &observed, "db", dialect, Some(&cluster));
        assert!(p.is_empty(), "{:?}", summaries(&p));
    }

    // A node without the table gets it, and other changes wait for the next run.
    let mut observed = observed_pairs_after(SERIES, Dialect::CURRENT);
    observed.fold_pairs();
    observed.missing_on.insert("M".into(), vec!["127.0.0.1:9004".into()]);
    let p = plan(&ir(SERIES), &observed, "db", Dialect::CURRENT, Some(&cluster));
    assert_eq!(summaries(&p), ["+ table db.M (3 columns) on 127.0.0.1:9004 (missing there; the other nodes have it)"]);
    assert!(p.sql(&p.steps[0])[0].starts_with("CREATE TABLE IF NOT EXISTS `db`.`M_local` ON CLUSTER"));

    // A new field alters both tables of the pair.
    observed.missing_on.clear();
    let more = SERIES.replace("  v Float\n", "  v Float\n  w Int\n");
    let p = plan(&ir(&more), &observed, "db", Dialect::CURRENT, Some(&cluster));
    let sql: Vec<String> = p.steps.iter().flat_map(|s| p.sql(s)).collect();
    assert!(
        sql.contains(&"ALTER TABLE `db`.`M_local` ON CLUSTER `igloo` ADD COLUMN `w` Int32 AFTER `v`".to_string()),
        "{sql:#?}"
    );
    assert!(
        sql.contains(&"ALTER TABLE `db`.`M` ON CLUSTER `igloo` ADD COLUMN `w` Int32 AFTER `v`".to_string()),
        "{sql:#?}"
    );

    // A rebuild: a new local table with a keeper path of its own, the rows copied through the
    // Distributed tables, the pairs swapped, and each Distributed table made again over its
    // local table.
    let keyed = SERIES.replace("  v Float\n", "  v Float\n  @@engine(ReplacingMergeTree)\n");
    let p = plan(&ir(&keyed), &observed, "db", Dialect::CURRENT, Some(&cluster));
    let rebuild = p.steps.iter().find(|s| matches!(s, PlanStep::RebuildTable { .. })).unwrap();
    let sql = p.sql(rebuild);
    let on = "ON CLUSTER `igloo`";
    assert_eq!(sql[0], format!("DROP TABLE IF EXISTS `db`.`_igloo_new_M` {on}"));
    assert_eq!(sql[1], format!("DROP TABLE IF EXISTS `db`.`_igloo_new_M_local` {on}"));
    assert!(sql[2].contains("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/M_rebuild_1', '{replica}')"));
    assert!(sql[3].ends_with("ENGINE = Distributed('igloo', 'db', '_igloo_new_M_local', `_igloo_partition`)"));
    assert!(sql[4].starts_with("INSERT INTO `db`.`_igloo_new_M` ("), "{}", sql[4]);
    assert_eq!(
        sql[5],
        format!("RENAME TABLE `db`.`M_local` TO `db`.`_igloo_old_M_1_local`, `db`.`M` TO `db`.`_igloo_old_M_1`, `db`.`_igloo_new_M_local` TO `db`.`M_local`, `db`.`_igloo_new_M` TO `db`.`M` {on}")
    );
    assert_eq!(sql[6], format!("DROP TABLE IF EXISTS `db`.`M` {on}"));
    assert_eq!(sql[7], format!("CREATE TABLE IF NOT EXISTS `db`.`M` {on} AS `db`.`M_local` ENGINE = Distributed('igloo', 'db', 'M_local', `_igloo_partition`)"));
    assert_eq!(sql[8], format!("DROP TABLE IF EXISTS `db`.`_igloo_old_M_1` {on}"));
    assert!(sql[9].contains("AS `db`.`_igloo_old_M_1_local` ENGINE = Distributed"), "{}", sql[9]);
    assert_eq!(sql.len(), 10);
    // On one server the same step has no Distributed tables to make again.
    let p = plan(&ir(&keyed), &observed_after(SERIES, Dialect::CURRENT), "db", Dialect::CURRENT, None);
    let rebuild = p.steps.iter().find(|s| matches!(s, PlanStep::RebuildTable { .. })).unwrap();
    assert_eq!(p.sql(rebuild).len(), 4);
}
