//! Planning is data: `plan(desired, observed)` compares the IR with what exists and returns the
//! steps that would make them equal. `igloo plan` prints a plan; apply runs exactly its steps.
//! Pure: observing the engines is the caller's job.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::dialect::Dialect;
use crate::ir::{Ir, Topic};
use crate::sql::{CreateDatabase, CreateTable, Statement};

/// What exists on the engines. `Observed::default()` is an empty cluster (offline planning).
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub database_exists: bool,
    pub tables: BTreeSet<String>,
    pub topics: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PlanStep {
    CreateTopic { model: String, topic: Topic },
    Sql { model: Option<String>, statement: Statement },
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub dialect: Dialect,
    pub database: String,
    pub steps: Vec<PlanStep>,
}

pub fn plan(ir: &Ir, observed: &Observed, database: &str, dialect: Dialect) -> Plan {
    let mut steps = Vec::new();
    if !observed.database_exists {
        steps.push(PlanStep::Sql {
            model: None,
            statement: Statement::CreateDatabase(CreateDatabase { name: database.to_string() }),
        });
    }
    for model in &ir.models {
        if !observed.topics.contains(&model.topic.name) {
            steps.push(PlanStep::CreateTopic { model: model.name.clone(), topic: model.topic.clone() });
        }
        if !observed.tables.contains(&model.table) {
            let table = CreateTable::for_model(model, ir, database);
            steps.push(PlanStep::Sql {
                model: Some(model.name.clone()),
                statement: Statement::CreateTable(Box::new(table)),
            });
        }
    }
    Plan { dialect, database: database.to_string(), steps }
}

impl PlanStep {
    /// Whether applying the step can lose data. (No step planned today can.)
    pub fn is_destructive(&self) -> bool {
        false
    }

    /// One line for humans: `+ topic Reading (3 partitions, retention 7d)`.
    pub fn summary(&self) -> String {
        match self {
            PlanStep::CreateTopic { topic, .. } => {
                format!(
                    "+ topic {} ({} partitions, retention {})",
                    topic.name,
                    topic.partitions,
                    format_retention(topic.retention_ms)
                )
            }
            PlanStep::Sql { statement: Statement::CreateDatabase(db), .. } => format!("+ database {}", db.name),
            PlanStep::Sql { statement: Statement::CreateTable(t), .. } => {
                format!("+ table {}.{} ({} columns)", t.database, t.name, t.columns.len())
            }
        }
    }

    pub fn sql(&self, dialect: Dialect) -> Option<String> {
        match self {
            PlanStep::CreateTopic { .. } => None,
            PlanStep::Sql { statement, .. } => Some(statement.render(dialect)),
        }
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

/// The JSON form of a plan (`igloo plan --json`).
#[derive(Serialize)]
pub struct PlanJson {
    pub clickhouse: String,
    pub database: String,
    pub steps: Vec<PlanStepJson>,
}

#[derive(Serialize)]
pub struct PlanStepJson {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub summary: String,
    pub destructive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
}

impl Plan {
    pub fn to_json(&self) -> PlanJson {
        let steps = self
            .steps
            .iter()
            .map(|s| PlanStepJson {
                kind: match s {
                    PlanStep::CreateTopic { .. } => "create_topic",
                    PlanStep::Sql { statement: Statement::CreateDatabase(_), .. } => "create_database",
                    PlanStep::Sql { statement: Statement::CreateTable(_), .. } => "create_table",
                },
                model: match s {
                    PlanStep::CreateTopic { model, .. } => Some(model.clone()),
                    PlanStep::Sql { model, .. } => model.clone(),
                },
                summary: s.summary(),
                destructive: s.is_destructive(),
                sql: s.sql(self.dialect),
                topic: match s {
                    PlanStep::CreateTopic { topic, .. } => Some(topic.clone()),
                    PlanStep::Sql { .. } => None,
                },
            })
            .collect();
        PlanJson { clickhouse: self.dialect.to_string(), database: self.database.clone(), steps }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    #[test]
    fn plans_only_what_is_missing() {
        let files = [SourceFile::new("a.prisma", "model A {\n  id Int @id\n}\nmodel B {\n  id Int @id\n}\n")];
        let (ir, diags) = crate::check(&files);
        assert!(!diags.has_errors());
        let empty = plan(&ir, &Observed::default(), "db", Dialect::CURRENT);
        let kinds: Vec<String> = empty.steps.iter().map(PlanStep::summary).collect();
        assert_eq!(
            kinds,
            [
                "+ database db",
                "+ topic A (3 partitions, retention 7d)",
                "+ table db.A (1 columns)",
                "+ topic B (3 partitions, retention 7d)",
                "+ table db.B (1 columns)"
            ]
        );
        let observed = Observed {
            database_exists: true,
            tables: ["A".to_string()].into(),
            topics: ["A".to_string(), "B".to_string()].into(),
        };
        let partial = plan(&ir, &observed, "db", Dialect::CURRENT);
        assert_eq!(partial.steps.iter().map(PlanStep::summary).collect::<Vec<_>>(), ["+ table db.B (1 columns)"]);
    }

    #[test]
    fn retention_formats() {
        assert_eq!(format_retention(Some(604_800_000)), "7d");
        assert_eq!(format_retention(Some(5_400_000)), "90m");
        assert_eq!(format_retention(Some(1_500)), "1500ms");
        assert_eq!(format_retention(None), "forever");
    }
}
