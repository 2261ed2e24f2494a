//! Observe → plan → apply. Observation reads ClickHouse's system tables and the broker's
//! metadata; planning is `igloo_schemas::plan`; apply runs exactly the plan's steps, in order,
//! and records each apply in `_igloo_migrations`. Steps that need consent run only with it.

use std::time::{Duration, Instant};

use igloo_schemas::internal::{
    migrations_fingerprint_column, migrations_table, MIGRATIONS_TABLE, MIGRATION_COLUMNS, MIGRATION_FINGERPRINT,
};
use igloo_schemas::plan::{plan, Observed, ObservedTable, Plan, PlanStep, Risk};
use igloo_schemas::sql::{self, InsertJsonRows, Statement};
use igloo_schemas::Ir;
use serde::Deserialize;

use super::engines::Endpoints;
use crate::infra::clickhouse::ClickHouseError;
use igloo_server::kafka::admin::KafkaAdminError;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot observe ClickHouse: {0}")]
    ObserveClickHouse(ClickHouseError),
    #[error("cannot observe the broker: {0}")]
    ObserveBroker(KafkaAdminError),
    #[error("step `{step}` failed: {source}")]
    ClickHouseStep { step: String, source: ClickHouseError },
    #[error("step `{step}` failed: {source}")]
    BrokerStep { step: String, source: KafkaAdminError },
    #[error("cannot record the applied plan in {MIGRATIONS_TABLE}: {0}")]
    Record(ClickHouseError),
    #[error("views/{model}.sql: {problem}")]
    ViewColumns { model: String, problem: String },
    #[error("node {node} of cluster {cluster} does not answer ({source}); statements ON CLUSTER wait for every node, so start it (or remove it from the cluster) before migrating")]
    NodeDown { cluster: String, node: String, source: Box<ClickHouseError> },
}

/// What to do with steps that need consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    /// `--allow-destructive`: apply everything.
    Granted,
    /// Apply safe steps only; hold back the others.
    Withheld,
}

/// The outcome of one sync.
#[derive(Debug, Default)]
pub struct Applied {
    pub applied: Vec<String>,
    pub held_back: Vec<String>,
    pub notes: Vec<String>,
    pub elapsed: Duration,
}

#[derive(Deserialize)]
struct TableRow {
    name: String,
    engine: String,
    sorting_key: String,
}

#[derive(Deserialize)]
struct ColumnRow {
    table: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Deserialize)]
struct NameRow {
    name: String,
}

pub fn observe(endpoints: &Endpoints, database: &str) -> Result<Observed, MigrateError> {
    let started = Instant::now();
    let ch = &endpoints.clickhouse;
    let database_exists =
        !ch.rows::<NameRow>(&sql::database_query(database)).map_err(MigrateError::ObserveClickHouse)?.is_empty();
    let mut observed = Observed { database_exists, ..Observed::default() };
    if database_exists {
        for t in ch.rows::<TableRow>(&sql::tables_query(database)).map_err(MigrateError::ObserveClickHouse)? {
            observed
                .tables
                .insert(t.name, ObservedTable { engine: t.engine, sorting_key: t.sorting_key, columns: vec![] });
        }
        for c in ch.rows::<ColumnRow>(&sql::columns_query(database)).map_err(MigrateError::ObserveClickHouse)? {
            if let Some(t) = observed.tables.get_mut(&c.table) {
                t.columns.push((c.name, c.ty));
            }
        }
    }
    if let Some(cluster) = &endpoints.cluster {
        observed.fold_pairs();
        observed.missing_on = missing_on_nodes(endpoints, cluster, database, &observed)?;
    }
    let clickhouse_ms = started.elapsed().as_millis();
    observed.topics = endpoints.admin.topics(Duration::from_secs(10)).map_err(MigrateError::ObserveBroker)?;
    tracing::debug!(clickhouse_ms, total_ms = started.elapsed().as_millis(), "observed");
    Ok(observed)
}

/// On a cluster: the nodes that lack the database (key `""`) or a table the node igloo talks
/// to has, by name (a node added to the cluster, or one that missed a statement). A node that
/// does not answer is an error: statements `ON CLUSTER` would wait for it.
fn missing_on_nodes(
    endpoints: &Endpoints,
    cluster: &sql::Cluster,
    database: &str,
    observed: &Observed,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, MigrateError> {
    let mut missing: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    if !observed.database_exists {
        return Ok(missing); // created everywhere by the plan
    }
    let ch = &endpoints.clickhouse;
    let nodes = ch.cluster_nodes(&cluster.name).map_err(MigrateError::ObserveClickHouse)?;
    // Each name the node igloo talks to has, with the table it belongs to (the database is
    // `""`): a pair is two tables.
    let mut expected: Vec<(String, &str)> = vec![(String::new(), "")];
    for (name, t) in &observed.tables {
        expected.push((name.clone(), name));
        // A pair was folded into its schema engine; a table on every node stays replicated.
        if t.engine.ends_with("MergeTree") && !t.engine.starts_with("Replicated") {
            expected.push((sql::cluster::local_name(name), name));
        }
    }
    for node in nodes {
        let address = node.address();
        let present: Vec<String> = ch
            .rows::<NameRow>(&sql::node_tables_query(&address, database))
            .map_err(|source| MigrateError::NodeDown {
                cluster: cluster.name.clone(),
                node: address.clone(),
                source: Box::new(source),
            })?
            .into_iter()
            .map(|r| r.name)
            .collect();
        for (name, owner) in &expected {
            let entry = missing.entry(owner.to_string()).or_default();
            if !present.contains(name) && !entry.contains(&address) {
                entry.push(address.clone());
            }
        }
    }
    missing.retain(|_, nodes| !nodes.is_empty());
    Ok(missing)
}

/// The plan that would bring the engines in line with `ir`.
pub fn plan_for(endpoints: &Endpoints, ir: &Ir, database: &str) -> Result<Plan, MigrateError> {
    let observed = observe(endpoints, database)?;
    Ok(plan(ir, &observed, database, endpoints.dialect, endpoints.cluster.as_ref()))
}

/// Applies `plan`'s steps in order, skipping those that need consent unless it is granted.
/// `on_step` is called after each applied step. Every apply is recorded, failed ones with
/// their error.
pub fn apply(
    endpoints: &Endpoints,
    plan: &Plan,
    fingerprint: &str,
    consent: Consent,
    mut on_step: impl FnMut(&PlanStep),
) -> Result<Applied, MigrateError> {
    let started = Instant::now();
    let mut out = Applied { notes: plan.notes.clone(), ..Applied::default() };
    let (run, held): (Vec<usize>, Vec<usize>) =
        (0..plan.steps.len()).partition(|&i| plan.steps[i].risk() == Risk::Safe || consent == Consent::Granted);
    out.held_back = held.iter().map(|&i| plan.steps[i].summary(&plan.database)).collect();
    if run.is_empty() {
        out.elapsed = started.elapsed();
        return Ok(out);
    }
    let mut result = Ok(());
    for &i in &run {
        let step = &plan.steps[i];
        if let Err(e) = apply_step(endpoints, plan, step) {
            result = Err(e);
            break;
        }
        out.applied.push(step.summary(&plan.database));
        on_step(step);
    }
    let error = result.as_ref().err().map(ToString::to_string);
    record(endpoints, plan, fingerprint, &run, error.as_deref())?;
    out.elapsed = started.elapsed();
    result.map(|_| out)
}

fn apply_step(endpoints: &Endpoints, plan: &Plan, step: &PlanStep) -> Result<(), MigrateError> {
    if let PlanStep::CreateTopic { topic, .. } = step {
        return endpoints
            .admin
            .create_topic(topic)
            .map_err(|source| MigrateError::BrokerStep { step: step.summary(&plan.database), source });
    }
    if let PlanStep::CreateView { model, view, columns, .. } = step {
        check_view_columns(endpoints, &plan.database, model, view, columns)?;
    }
    // A user view's SELECT names tables without their database; backfills may run for minutes.
    let in_database = matches!(step, PlanStep::CreateView { .. });
    for statement in step.statements(&plan.database) {
        for sql in statement.render_for(plan.dialect, plan.cluster.as_ref()) {
            tracing::debug!(sql = %sql, "applying");
            let ch = &endpoints.clickhouse;
            let result = match statement {
                Statement::Backfill(ref view) => {
                    let pb = crate::ui::spinner(format!("backfilling {} from the rows already stored", view.target));
                    let result = ch.execute_long(&plan.database, &sql, BACKFILL_TIMEOUT);
                    pb.finish_and_clear();
                    result
                }
                _ if in_database => ch.execute_in(&plan.database, &sql),
                _ => ch.execute(&sql),
            };
            result.map_err(|source| MigrateError::ClickHouseStep { step: step.summary(&plan.database), source })?;
        }
    }
    Ok(())
}

/// The longest a backfill may take.
const BACKFILL_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A view must produce the target's columns with their exact types: ClickHouse 18.16 does not
/// convert, and a mismatch would fail every insert into the tables the view reads.
fn check_view_columns(
    endpoints: &Endpoints,
    database: &str,
    model: &str,
    view: &igloo_schemas::sql::MaterializedView,
    columns: &[(String, String)],
) -> Result<(), MigrateError> {
    let problem = |problem: String| MigrateError::ViewColumns { model: model.to_string(), problem };
    let described = endpoints.clickhouse.describe(database, &view.describe()).map_err(|e| problem(e.to_string()))?;
    let base = |t: &str| t.replace("('UTC')", "");
    let mut problems = Vec::new();
    for (name, got) in &described {
        match columns.iter().find(|(c, _)| c == name) {
            None => problems.push(format!("produces `{name}`, which {model} has not")),
            Some((c, ty)) if base(ty) != base(got) => problems
                .push(format!("`{c}` is {got} but {model}.{c} is {ty}; cast it, e.g. `to{}(…) AS {c}`", base(ty))),
            Some(_) => {}
        }
    }
    for (c, _) in columns {
        if !described.iter().any(|(name, _)| name == c) {
            problems.push(format!("does not produce `{c}`; every column of {model} must come from the view"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problem(problems.join("; ")))
    }
}

/// Appends one row to `_igloo_migrations` (creating the table on first use).
fn record(
    endpoints: &Endpoints,
    plan: &Plan,
    fingerprint: &str,
    steps: &[usize],
    error: Option<&str>,
) -> Result<(), MigrateError> {
    let ch = &endpoints.clickhouse;
    let db_exists = !ch.rows::<NameRow>(&sql::database_query(&plan.database)).map_err(MigrateError::Record)?.is_empty();
    if !db_exists {
        // The plan failed before creating its database: nothing to record into.
        return Ok(());
    }
    ensure_migrations_table(endpoints, &plan.database).map_err(MigrateError::Record)?;
    let json = plan.to_json().steps;
    let applied: Vec<_> = steps.iter().map(|&i| &json[i]).collect();
    let risk = steps.iter().map(|&i| plan.steps[i].risk()).max().unwrap_or(Risk::Safe);
    let row = serde_json::json!({
        MIGRATION_COLUMNS[0]: env!("CARGO_PKG_VERSION"),
        MIGRATION_COLUMNS[1]: plan.dialect.to_string(),
        MIGRATION_COLUMNS[2]: risk.as_str(),
        MIGRATION_COLUMNS[3]: steps.len(),
        MIGRATION_COLUMNS[4]: serde_json::to_string(&applied).expect("plan serializes"),
        MIGRATION_COLUMNS[5]: error.unwrap_or(""),
        MIGRATION_COLUMNS[6]: fingerprint,
    });
    let insert = InsertJsonRows {
        database: plan.database.clone(),
        table: MIGRATIONS_TABLE.into(),
        columns: MIGRATION_COLUMNS.map(String::from).to_vec(),
    };
    ch.insert(&insert.render(), &row.to_string()).map_err(MigrateError::Record)
}

/// Creates `_igloo_migrations` if it is missing, and adds the `fingerprint` column to one
/// created before it existed.
pub fn ensure_migrations_table(endpoints: &Endpoints, database: &str) -> Result<(), ClickHouseError> {
    let ch = &endpoints.clickhouse;
    run(endpoints, Statement::CreateTable(Box::new(migrations_table(database))))?;
    let has_fingerprint = ch
        .rows::<ColumnRow>(&sql::columns_query(database))?
        .iter()
        .any(|c| c.table == MIGRATIONS_TABLE && c.name == MIGRATION_FINGERPRINT);
    if !has_fingerprint {
        run(endpoints, Statement::AlterTable(Box::new(migrations_fingerprint_column(database))))?;
    }
    Ok(())
}

/// Runs one of igloo's own statements on the server or, `ON CLUSTER`, on the cluster.
pub fn run(endpoints: &Endpoints, statement: Statement) -> Result<(), ClickHouseError> {
    for sql in statement.render_for(endpoints.dialect, endpoints.cluster.as_ref()) {
        endpoints.clickhouse.execute(&sql)?;
    }
    Ok(())
}

/// Consent for `plan`'s risky steps: given by `allow` (`--allow-destructive`), not needed for a
/// safe plan, else asked for on a terminal (`out` prints the question), withheld without one.
pub fn ask_consent(plan: &igloo_schemas::plan::Plan, allow: bool, out: impl Fn(&str)) -> Consent {
    if allow || plan.risk() == Risk::Safe {
        return Consent::Granted;
    }
    if !crate::ui::interactive() {
        return Consent::Withheld;
    }
    out("This change needs your consent:");
    for s in plan.steps.iter().filter(|s| s.risk() != Risk::Safe) {
        out(&format!("  {}", s.summary(&plan.database)));
    }
    let yes = dialoguer::Confirm::new().with_prompt("Apply these steps?").default(false).interact().unwrap_or(false);
    if yes {
        Consent::Granted
    } else {
        Consent::Withheld
    }
}

/// What an apply did, for a person: the steps held back, the plan's notes, how many steps were
/// applied (`detail` follows the count), and how to give consent to `command`.
pub fn print_report(applied: &Applied, command: &str, detail: &str) {
    for h in &applied.held_back {
        println!("  held back: {h}");
    }
    for n in &applied.notes {
        println!("  note: {n}");
    }
    if !applied.applied.is_empty() {
        println!(
            "✓ applied {} in {} ms{detail}",
            crate::ui::plural(applied.applied.len(), "step"),
            applied.elapsed.as_millis()
        );
    }
    if !applied.held_back.is_empty() {
        println!(
            "! {} not applied: run `{command} --allow-destructive`, or answer yes on a terminal",
            crate::ui::plural(applied.held_back.len(), "step")
        );
    }
}
