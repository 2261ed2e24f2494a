//! Planning is data: `plan(desired, observed)` compares the IR with what exists and returns the
//! steps that would make them equal. `igloo plan` prints a plan; apply runs exactly its steps.
//! Pure: observing the engines is the caller's job.
//!
//! What is planned, per model:
//! - missing topic → create it; missing table → create it;
//! - new field → `ADD COLUMN` with its default (online, safe);
//! - removed field → `DROP COLUMN` (destructive);
//! - changed type of a non-key column → `MODIFY COLUMN` (destructive: values may not convert);
//! - changed sorting key, engine, or type of a key column → rebuild: create the new table, copy
//!   the rows, and swap names, keeping the old table as `_igloo_old_<table>_<n>` (needs consent).
//!
//! A table with no model → `DROP TABLE` (destructive). Topics are never deleted (some brokers
//! lose other topics' data on DeleteTopics); a partition-count change is reported, not planned.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dialect::Dialect;
use crate::ir::{Engine, Ir, Model, Topic};
use crate::sql::timeseries::Rollup;
use crate::sql::{
    AlterAction, AlterTable, ColumnDef, CopyRows, CreateDatabase, CreateTable, DropTable, RenameTables, Statement,
};
use crate::sql::{Cluster, MaterializedView};

pub use crate::internal::INTERNAL_PREFIX;

/// What exists on the engines. `Observed::default()` is an empty cluster (offline planning).
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub database_exists: bool,
    /// On a cluster, igloo's tables as the pairs fold them (see [`Observed::fold_pairs`]); the
    /// nodes that lack a table or the database, by name (`""` for the database).
    pub missing_on: BTreeMap<String, Vec<String>>,
    pub tables: BTreeMap<String, ObservedTable>,
    /// Topic name → partition count.
    pub topics: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedTable {
    /// `system.tables.engine`, e.g. `ReplacingMergeTree`.
    pub engine: String,
    /// `system.tables.sorting_key`, e.g. `tag, time`.
    pub sorting_key: String,
    /// `(name, type)` in table order, types as `system.columns.type` shows them.
    pub columns: Vec<(String, String)>,
}

impl Observed {
    /// On a cluster each table is a `<t>_local` replicated table and a `Distributed` `<t>`
    /// ([`crate::sql::cluster`]): the pair is seen as one table `<t>`, with the local table's
    /// engine (unreplicated), sorting key and columns, which is what the schema describes.
    pub fn fold_pairs(&mut self) {
        let locals: Vec<String> =
            self.tables.keys().filter(|n| n.ends_with(crate::sql::cluster::LOCAL_SUFFIX)).cloned().collect();
        for local in locals {
            let name = local[..local.len() - crate::sql::cluster::LOCAL_SUFFIX.len()].to_string();
            if self.tables.get(&name).is_some_and(|t| t.engine == "Distributed") {
                let mut t = self.tables.remove(&local).expect("listed above");
                t.engine = crate::sql::cluster::unreplicated(&t.engine).to_string();
                self.tables.insert(name, t);
            }
        }
    }
}

/// How much consent a step needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Additive: applied without asking.
    Safe,
    /// Rewrites a table but keeps the old one: applied only with consent.
    Rebuild,
    /// Can lose data: applied only with consent.
    Destructive,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Safe => "safe",
            Risk::Rebuild => "rebuild",
            Risk::Destructive => "destructive",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum PlanStep {
    CreateDatabase {
        /// On a cluster, the nodes that lack an existing database (empty: a new database).
        missing_on: Vec<String>,
    },
    CreateTopic {
        model: String,
        topic: Topic,
    },
    CreateTable {
        model: String,
        table: Box<CreateTable>,
        /// On a cluster, the nodes that lack an existing table (empty: a new table).
        missing_on: Vec<String>,
    },
    AddColumn {
        model: String,
        table: String,
        column: ColumnDef,
        after: Option<String>,
    },
    DropColumn {
        model: String,
        table: String,
        column: String,
    },
    ModifyColumn {
        model: String,
        table: String,
        column: ColumnDef,
        before: String,
        after: String,
    },
    RebuildTable {
        model: String,
        table: Box<CreateTable>,
        reason: String,
        copy: Vec<String>,
        backup: String,
    },
    DropTable {
        table: String,
    },
    /// A time-series rollup table and its materialized view, backfilled when the model's table
    /// already has rows.
    CreateRollup {
        model: String,
        rollup: Box<Rollup>,
        backfill: bool,
    },
    /// Drops a rollup's view and table (derived data only).
    DropRollup {
        table: String,
        view: String,
    },
    /// A user view (`views/<Model>.sql`) writing into its model's table.
    CreateView {
        model: String,
        view: Box<MaterializedView>,
        backfill: bool,
        /// The target's columns and types, for checking what the SELECT produces before the
        /// view is created (a mismatched view would fail every insert into its sources).
        columns: Vec<(String, String)>,
    },
    /// Drops a user view; the rows it wrote stay.
    DropView {
        name: String,
    },
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub dialect: Dialect,
    /// The cluster every statement runs on, or `None` for one server.
    pub cluster: Option<Cluster>,
    pub database: String,
    pub steps: Vec<PlanStep>,
    /// Differences igloo saw but will not act on, for the user to read.
    pub notes: Vec<String>,
}

/// The plan for one server (`cluster` None) or a cluster, whose `observed` tables are folded
/// ([`Observed::fold_pairs`]).
pub fn plan(ir: &Ir, observed: &Observed, database: &str, dialect: Dialect, cluster: Option<&Cluster>) -> Plan {
    let mut p = Plan {
        dialect,
        cluster: cluster.cloned(),
        database: database.to_string(),
        steps: Vec::new(),
        notes: Vec::new(),
    };
    let missing_on = |name: &str| observed.missing_on.get(name).cloned().unwrap_or_default();
    if !observed.database_exists || !missing_on("").is_empty() {
        p.steps.push(PlanStep::CreateDatabase { missing_on: missing_on("") });
    }
    if !ir.models.is_empty() && !observed.topics.contains_key(&ir.dlq_topic()) {
        p.steps.push(PlanStep::CreateTopic {
            model: crate::internal::DLQ.into(),
            topic: crate::internal::dlq_topic(&ir.dlq_topic()),
        });
    }
    for model in &ir.models {
        match observed.topics.get(&model.topic.name) {
            None => p.steps.push(PlanStep::CreateTopic { model: model.name.clone(), topic: model.topic.clone() }),
            Some(&n) if n != model.topic.partitions => p.notes.push(format!(
                "topic {} has {n} partitions and the schema asks for {}; igloo does not change partition counts (recreate the topic by hand if you need to)",
                model.topic.name, model.topic.partitions
            )),
            Some(_) => {}
        }
        let desired = CreateTable::for_model(model, ir, database);
        match observed.tables.get(&model.table) {
            None => p.steps.push(PlanStep::CreateTable {
                model: model.name.clone(),
                table: Box::new(desired),
                missing_on: vec![],
            }),
            // Changes to the table wait until every node has it: an ALTER ON CLUSTER fails on a
            // node without the table.
            Some(_) if !missing_on(&model.table).is_empty() => {
                p.notes.push(format!(
                    "table {} is missing on some nodes: this plan creates it there; any other change to it is planned by the next run",
                    model.table
                ));
                p.steps.push(PlanStep::CreateTable {
                    model: model.name.clone(),
                    table: Box::new(desired),
                    missing_on: missing_on(&model.table),
                })
            }
            Some(table) => diff_table(&mut p, model, desired, table, observed),
        }
        let rebuilt = p.steps.iter().any(|s| matches!(s, PlanStep::RebuildTable { model: m, .. } if *m == model.name));
        rollup::plan_model(&mut p, ir, model, observed, rebuilt);
    }
    rollup::plan_removed(&mut p, ir, observed);
    user_views::plan_views(&mut p, ir, observed);
    for name in observed.tables.keys() {
        if !name.starts_with(INTERNAL_PREFIX) && !ir.models.iter().any(|m| &m.table == name) {
            p.steps.push(PlanStep::DropTable { table: name.clone() });
        }
    }
    // Topics outside the prefix belong to other projects or environments sharing the broker.
    for topic in observed.topics.keys().filter(|t| ir.owns_topic(t)) {
        let own_name = &topic[ir.topic_prefix.len()..];
        if !own_name.starts_with(INTERNAL_PREFIX) && !ir.models.iter().any(|m| &m.topic.name == topic) {
            p.notes.push(format!("topic {topic} has no model any more; igloo leaves topics in place"));
        }
    }
    p
}

fn diff_table(p: &mut Plan, model: &Model, desired: CreateTable, observed: &ObservedTable, all: &Observed) {
    let dialect = p.dialect;
    let key_columns: Vec<&String> = desired.order_by.iter().chain(&desired.primary_key).collect();
    let observed_type = |name: &str| observed.columns.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str());
    let mut rebuild_reason = None;
    if observed.engine != engine_name(&model.engine) {
        rebuild_reason = Some(format!("engine {} → {}", observed.engine, engine_name(&model.engine)));
    } else if !sorting_key_matches(&observed.sorting_key, &desired) {
        rebuild_reason = Some(format!("sorting key ({}) → ({})", observed.sorting_key, expected_sorting_key(&desired)));
    }
    let mut column_steps = Vec::new();
    let mut previous: Option<String> = None;
    for column in &desired.columns {
        let rendered = column.ty.render(dialect);
        match observed_type(&column.name) {
            None => column_steps.push(PlanStep::AddColumn {
                model: model.name.clone(),
                table: desired.name.clone(),
                column: column.clone(),
                after: previous.clone(),
            }),
            Some(before) if before != rendered => {
                if key_columns.contains(&&column.name) {
                    rebuild_reason
                        .get_or_insert_with(|| format!("key column {} type {before} → {rendered}", column.name));
                } else {
                    column_steps.push(PlanStep::ModifyColumn {
                        model: model.name.clone(),
                        table: desired.name.clone(),
                        column: column.clone(),
                        before: before.to_string(),
                        after: rendered.clone(),
                    });
                }
            }
            Some(_) => {}
        }
        previous = Some(column.name.clone());
    }
    for (name, _) in &observed.columns {
        if !desired.columns.iter().any(|c| &c.name == name) {
            column_steps.push(PlanStep::DropColumn {
                model: model.name.clone(),
                table: desired.name.clone(),
                column: name.clone(),
            });
        }
    }
    match rebuild_reason {
        Some(reason) => {
            let copy =
                desired.columns.iter().filter(|c| observed_type(&c.name).is_some()).map(|c| c.name.clone()).collect();
            let backup = (1..)
                .map(|n| format!("{INTERNAL_PREFIX}_old_{}_{n}", desired.name))
                .find(|b| !all.tables.contains_key(b));
            let backup = backup.expect("an unused backup name exists");
            p.steps.push(PlanStep::RebuildTable {
                model: model.name.clone(),
                table: Box::new(desired),
                reason,
                copy,
                backup,
            });
        }
        None => p.steps.extend(column_steps),
    }
}

fn engine_name(engine: &Engine) -> &'static str {
    match engine {
        Engine::MergeTree => "MergeTree",
        Engine::ReplacingMergeTree { .. } => "ReplacingMergeTree",
        Engine::SummingMergeTree { .. } => "SummingMergeTree",
        Engine::AggregatingMergeTree => "AggregatingMergeTree",
        Engine::CollapsingMergeTree { .. } => "CollapsingMergeTree",
        Engine::VersionedCollapsingMergeTree { .. } => "VersionedCollapsingMergeTree",
    }
}

/// Whether the table's key is the desired one. A time series' `intDiv(time, units)` part only
/// speeds up samples queries, so a table created before it still matches (no rebuild).
fn sorting_key_matches(observed: &str, desired: &CreateTable) -> bool {
    let observed = normalize_key(observed);
    let without = CreateTable { second_key: None, ..desired.clone() };
    let bare = expected_sorting_key(&without);
    observed == expected_sorting_key(desired) || observed == bare || without_second_key(&observed) == bare
}

/// `tag,intDiv(time,1000000000),time` → `tag,time`.
fn without_second_key(key: &str) -> String {
    match key.find("intDiv(") {
        Some(start) => match key[start..].find(')') {
            Some(len) => {
                let rest = key[start + len + 1..].trim_start_matches(',');
                format!("{}{rest}", &key[..start])
            }
            None => key.to_string(),
        },
        None => key.to_string(),
    }
}

/// The sorting key as ClickHouse reports it, normalized: VersionedCollapsingMergeTree appends
/// its version column to the key.
fn expected_sorting_key(t: &CreateTable) -> String {
    let mut cols: Vec<String> = t.sorting_key_parts().iter().map(|p| p.replace(['`', ' '], "")).collect();
    if let crate::sql::TableEngine::VersionedCollapsingMergeTree(_, version) = &t.engine {
        if !cols.contains(version) {
            cols.push(version.clone());
        }
    }
    cols.join(",")
}

/// `tag, time` / `(\`tag\`, time)` / `tuple()` → `tag,time` / `` (empty).
fn normalize_key(key: &str) -> String {
    let k: String = key.chars().filter(|c| !c.is_whitespace() && *c != '`').collect();
    let k = k.strip_prefix('(').and_then(|k| k.strip_suffix(')')).map(str::to_string).unwrap_or(k);
    if k == "tuple()" {
        String::new()
    } else {
        k
    }
}

impl PlanStep {
    pub fn risk(&self) -> Risk {
        match self {
            PlanStep::CreateDatabase { .. }
            | PlanStep::CreateTopic { .. }
            | PlanStep::CreateTable { .. }
            | PlanStep::AddColumn { .. }
            | PlanStep::CreateRollup { .. }
            | PlanStep::DropRollup { .. }
            | PlanStep::CreateView { .. }
            | PlanStep::DropView { .. } => Risk::Safe,
            PlanStep::RebuildTable { .. } => Risk::Rebuild,
            // igloo's own bookkeeping columns (a model now filled by a view) hold no user data.
            PlanStep::DropColumn { column, .. } if column.starts_with(INTERNAL_PREFIX) => Risk::Safe,
            PlanStep::DropColumn { .. } | PlanStep::ModifyColumn { .. } | PlanStep::DropTable { .. } => {
                Risk::Destructive
            }
        }
    }

    /// Whether applying the step can lose data.
    pub fn is_destructive(&self) -> bool {
        self.risk() == Risk::Destructive
    }

    /// One line for humans: `+ topic Reading (3 partitions, retention 7d)`.
    pub fn summary(&self, database: &str) -> String {
        match self {
            PlanStep::CreateDatabase { missing_on } => format!("+ database {database}{}", on_nodes(missing_on)),
            PlanStep::CreateTopic { topic, .. } => {
                let s = if topic.partitions == 1 { "" } else { "s" };
                let retention = format_retention(topic.retention_ms);
                format!("+ topic {} ({} partition{s}, retention {retention})", topic.name, topic.partitions)
            }
            PlanStep::CreateTable { table, missing_on, .. } => {
                let user_columns = table.columns.iter().filter(|c| !c.name.starts_with(INTERNAL_PREFIX)).count();
                format!("+ table {database}.{} ({user_columns} columns){}", table.name, on_nodes(missing_on))
            }
            PlanStep::AddColumn { table, column, .. } => format!("+ column {table}.{}", column.name),
            PlanStep::DropColumn { table, column, .. } => {
                format!("- column {table}.{column} (destructive: its data is deleted)")
            }
            PlanStep::ModifyColumn { table, column, before, after, .. } => {
                format!(
                    "~ column {table}.{}: {before} → {after} (destructive: values that do not convert are lost)",
                    column.name
                )
            }
            PlanStep::RebuildTable { table, reason, backup, .. } => {
                format!(
                    "~ table {database}.{}: rebuild for {reason}; rows are copied and the old table kept as {backup}",
                    table.name
                )
            }
            PlanStep::DropTable { table } => {
                format!("- table {database}.{table} (destructive: no model uses it; its data is deleted)")
            }
            PlanStep::CreateRollup { rollup, backfill, .. } => {
                let fill = if *backfill { ", backfilled from the table" } else { "" };
                format!(
                    "+ rollup {database}.{} ({} buckets of {}{fill})",
                    rollup.table_name(),
                    rollup.tier.name,
                    rollup.tables.source
                )
            }
            PlanStep::DropRollup { table, .. } => {
                format!("- rollup {database}.{table} (derived data, rebuilt on demand)")
            }
            PlanStep::CreateView { view, backfill, .. } => {
                let fill = if *backfill { ", backfilled from the rows already stored" } else { "" };
                format!("+ view {database}.{} → {}{fill}", view.name, view.target)
            }
            PlanStep::DropView { name } => format!("- view {database}.{name} (the rows it wrote stay)"),
        }
    }

    /// The typed statements that carry the step out (none for topics).
    pub fn statements(&self, database: &str) -> Vec<Statement> {
        let alter = |table: &String, action| {
            Statement::AlterTable(Box::new(AlterTable { database: database.to_string(), table: table.clone(), action }))
        };
        match self {
            PlanStep::CreateDatabase { .. } => {
                vec![Statement::CreateDatabase(CreateDatabase { name: database.to_string() })]
            }
            PlanStep::CreateTopic { .. } => vec![],
            PlanStep::CreateTable { table, .. } => vec![Statement::CreateTable(table.clone())],
            PlanStep::AddColumn { table, column, after, .. } => {
                vec![alter(table, AlterAction::AddColumn { column: column.clone(), after: after.clone() })]
            }
            PlanStep::DropColumn { table, column, .. } => {
                vec![alter(table, AlterAction::DropColumn { name: column.clone() })]
            }
            PlanStep::ModifyColumn { table, column, .. } => {
                vec![alter(table, AlterAction::ModifyColumn { column: column.clone() })]
            }
            PlanStep::RebuildTable { table, copy, backup, .. } => {
                let staging = format!("{INTERNAL_PREFIX}_new_{}", table.name);
                let mut create = table.as_ref().clone();
                create.name = staging.clone();
                // On a cluster: a keeper path of its own, `<table>_rebuild_<n>` as the backup is
                // `_igloo_old_<table>_<n>`; then the Distributed tables over the swapped locals.
                create.keeper_name =
                    Some(format!("{}_rebuild_{}", table.name, backup.rsplit('_').next().unwrap_or("1")));
                let backup_table = CreateTable { name: backup.clone(), ..table.as_ref().clone() };
                vec![
                    Statement::DropTable(DropTable { database: database.to_string(), table: staging.clone() }),
                    Statement::CreateTable(Box::new(create)),
                    Statement::CopyRows(CopyRows {
                        database: database.to_string(),
                        from: table.name.clone(),
                        to: staging.clone(),
                        columns: copy.clone(),
                    }),
                    Statement::RenameTables(RenameTables {
                        database: database.to_string(),
                        renames: vec![(table.name.clone(), backup.clone()), (staging, table.name.clone())],
                    }),
                    Statement::Redistribute(table.clone()),
                    Statement::Redistribute(Box::new(backup_table)),
                ]
            }
            PlanStep::DropTable { table } => {
                vec![Statement::DropTable(DropTable { database: database.to_string(), table: table.clone() })]
            }
            PlanStep::CreateRollup { rollup, backfill, .. } => {
                let view = Box::new(rollup.view());
                let mut statements =
                    vec![Statement::CreateTable(Box::new(rollup.create_table())), Statement::CreateView(view.clone())];
                if *backfill {
                    statements.push(Statement::Backfill(view));
                }
                statements
            }
            PlanStep::CreateView { view, backfill, .. } => {
                let mut statements = vec![Statement::CreateView(view.clone())];
                if *backfill {
                    statements.push(Statement::Backfill(view.clone()));
                }
                statements
            }
            PlanStep::DropView { name } => {
                vec![Statement::DropTable(DropTable { database: database.to_string(), table: name.clone() })]
            }
            PlanStep::DropRollup { table, view } => [view, table]
                .into_iter()
                .map(|t| Statement::DropTable(DropTable { database: database.to_string(), table: t.clone() }))
                .collect(),
        }
    }

    pub fn model(&self) -> Option<&str> {
        match self {
            PlanStep::CreateDatabase { .. }
            | PlanStep::DropTable { .. }
            | PlanStep::DropRollup { .. }
            | PlanStep::DropView { .. } => None,
            PlanStep::CreateTopic { model, .. }
            | PlanStep::CreateTable { model, .. }
            | PlanStep::AddColumn { model, .. }
            | PlanStep::DropColumn { model, .. }
            | PlanStep::ModifyColumn { model, .. }
            | PlanStep::RebuildTable { model, .. }
            | PlanStep::CreateRollup { model, .. }
            | PlanStep::CreateView { model, .. } => Some(model),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            PlanStep::CreateDatabase { .. } => "create_database",
            PlanStep::CreateTopic { .. } => "create_topic",
            PlanStep::CreateTable { .. } => "create_table",
            PlanStep::AddColumn { .. } => "add_column",
            PlanStep::DropColumn { .. } => "drop_column",
            PlanStep::ModifyColumn { .. } => "modify_column",
            PlanStep::RebuildTable { .. } => "rebuild_table",
            PlanStep::DropTable { .. } => "drop_table",
            PlanStep::CreateRollup { .. } => "create_rollup",
            PlanStep::DropRollup { .. } => "drop_rollup",
            PlanStep::CreateView { .. } => "create_view",
            PlanStep::DropView { .. } => "drop_view",
        }
    }
}

impl Plan {
    /// Each step's SQL, rendered for the plan's dialect.
    pub fn sql(&self, step: &PlanStep) -> Vec<String> {
        step.statements(&self.database).iter().flat_map(|s| s.render_for(self.dialect, self.cluster.as_ref())).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The highest risk of any step.
    pub fn risk(&self) -> Risk {
        self.steps.iter().map(PlanStep::risk).max().unwrap_or(Risk::Safe)
    }

    pub fn to_json(&self) -> PlanJson {
        let steps = self
            .steps
            .iter()
            .map(|s| PlanStepJson {
                kind: s.kind(),
                model: s.model().map(str::to_string),
                summary: s.summary(&self.database),
                risk: s.risk(),
                destructive: s.is_destructive(),
                sql: self.sql(s),
                topic: match s {
                    PlanStep::CreateTopic { topic, .. } => Some(topic.clone()),
                    _ => None,
                },
            })
            .collect();
        PlanJson {
            clickhouse: self.dialect.to_string(),
            database: self.database.clone(),
            steps,
            notes: self.notes.clone(),
        }
    }
}

/// ` on node-a, node-b (missing there)` for a step that completes a cluster, else nothing.
fn on_nodes(missing_on: &[String]) -> String {
    match missing_on {
        [] => String::new(),
        nodes => format!(" on {} (missing there; the other nodes have it)", nodes.join(", ")),
    }
}

/// `604800000` → `7d`; `None` → `forever`.
pub fn format_retention(ms: Option<u64>) -> String {
    let Some(ms) = ms else { return "forever".into() };
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// The JSON form of a plan (`igloo plan --json`, and the record in `_igloo_migrations`).
#[derive(Serialize)]
pub struct PlanJson {
    pub clickhouse: String,
    pub database: String,
    pub steps: Vec<PlanStepJson>,
    pub notes: Vec<String>,
}

#[derive(Serialize)]
pub struct PlanStepJson {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub summary: String,
    pub risk: Risk,
    pub destructive: bool,
    pub sql: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
}

mod rollup;
mod user_views;

#[cfg(test)]
mod tests;
