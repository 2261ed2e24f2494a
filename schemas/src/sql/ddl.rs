//! DDL statements as typed values, built from the IR, and their rendering for a dialect.

use crate::dialect::{Dialect, Feature};
use crate::ir::{DefaultValue, Engine, Field, Ir, Model};

use super::cluster::{local_name, Cluster};
use super::quote::{ident, string};
use super::types::ChType;

#[derive(Clone, Debug, PartialEq)]
pub struct CreateDatabase {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateTable {
    pub database: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub engine: TableEngine,
    /// Raw ClickHouse expression from `@@partitionBy`.
    pub partition_by: Option<String>,
    /// Column names; empty means `tuple()` (no sorting).
    pub order_by: Vec<String>,
    /// A time series' `(time column, units per second)`: `intDiv(time, units)` joins the
    /// sorting key right after the series column. The rows' order is unchanged, but ClickHouse
    /// can then use the index for `intDiv(time, units) IN (…)` (the samples query's reads of
    /// the seconds that period boundaries cut). The primary key is then the whole sorting key.
    pub second_key: Option<(String, i64)>,
    /// Column names, rendered only when it differs from `order_by`.
    pub primary_key: Vec<String>,
    /// Raw ClickHouse expression from `@@ttl`.
    pub ttl: Option<String>,
    pub comment: Option<String>,
    /// MergeTree settings igloo chooses, e.g. a time series' `index_granularity`.
    pub settings: Vec<(&'static str, u64)>,
    /// Where the rows live on a cluster ([`super::cluster`]).
    pub placement: Placement,
    /// On a cluster, the name in the keeper path when it is not the table's (a rebuilt table's
    /// new local table needs a path of its own).
    pub keeper_name: Option<String>,
}

/// Where a table's rows live on a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Spread over the shards: a replicated local table per shard under a `Distributed` one.
    Sharded,
    /// One replicated table holding every row on every node: igloo's small control tables
    /// (the offsets log, the claims, the migrations), read and written locally by the node
    /// igloo talks to, whichever shards are down.
    EveryNode,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: ChType,
    pub default: Option<ValueExpr>,
    pub comment: Option<String>,
}

/// The expressions igloo itself writes (column defaults). User expressions stay raw strings.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueExpr {
    String(String),
    /// Text already validated as a number.
    Number(String),
    Bool(bool),
    EmptyArray,
    /// `name(args…)` of a fixed function name.
    Call(&'static str, Vec<ValueExpr>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableEngine {
    MergeTree,
    ReplacingMergeTree(Option<String>),
    SummingMergeTree(Vec<String>),
    AggregatingMergeTree,
    CollapsingMergeTree(String),
    VersionedCollapsingMergeTree(String, String),
}

impl CreateTable {
    /// The table of a model in `database`.
    pub fn for_model(model: &Model, ir: &Ir, database: &str) -> CreateTable {
        let col = |field: &String| model.field(field).map_or_else(|| field.clone(), |f| f.column.clone());
        let cols = |fields: &[String]| fields.iter().map(col).collect::<Vec<_>>();
        CreateTable {
            database: database.to_string(),
            name: model.table.clone(),
            columns: model
                .fields
                .iter()
                .map(|f| ColumnDef::for_field(f, ir))
                // A table filled by a user view has no table writer, so no Kafka bookkeeping.
                .chain(if ir.filled_by_view(&model.name) { vec![] } else { crate::internal::hidden_columns() })
                .collect(),
            engine: match &model.engine {
                Engine::MergeTree => TableEngine::MergeTree,
                Engine::ReplacingMergeTree { version } => TableEngine::ReplacingMergeTree(version.as_ref().map(col)),
                Engine::SummingMergeTree { columns } => TableEngine::SummingMergeTree(cols(columns)),
                Engine::AggregatingMergeTree => TableEngine::AggregatingMergeTree,
                Engine::CollapsingMergeTree { sign } => TableEngine::CollapsingMergeTree(col(sign)),
                Engine::VersionedCollapsingMergeTree { sign, version } => {
                    TableEngine::VersionedCollapsingMergeTree(col(sign), col(version))
                }
            },
            partition_by: model.partition_by.clone(),
            order_by: cols(&model.order_by),
            second_key: second_key(model),
            primary_key: cols(&model.primary_key),
            ttl: model.ttl.clone(),
            comment: model.doc.clone(),
            settings: match model.timeseries {
                Some(_) => vec![("index_granularity", crate::sql::timeseries::RAW_GRANULE)],
                None => vec![],
            },
            placement: Placement::Sharded,
            keeper_name: None,
        }
    }

    pub fn render(&self, dialect: Dialect) -> String {
        self.render_as(dialect, None)
    }

    /// This table as the local, replicated part of its pair on `cluster`
    /// ([`super::cluster`]).
    pub fn render_replicated(&self, dialect: Dialect, cluster: &Cluster) -> String {
        self.render_as(dialect, Some(cluster))
    }

    fn render_as(&self, dialect: Dialect, cluster: Option<&Cluster>) -> String {
        let (name, on, engine) = match cluster {
            None => (self.name.clone(), String::new(), self.engine.render(None)),
            Some(c) if self.placement == Placement::EveryNode => {
                let replication = (c.path_everywhere(&self.database, &self.name), c.replica_everywhere());
                (self.name.clone(), c.on(), self.engine.render(Some(replication)))
            }
            Some(c) => {
                let local = local_name(&self.name);
                let keeper_name = self.keeper_name.as_deref().unwrap_or(&self.name);
                let replication = (c.path(&self.database, keeper_name), c.replica.clone());
                (local, c.on(), self.engine.render(Some(replication)))
            }
        };
        let mut sql = format!("CREATE TABLE IF NOT EXISTS {}.{}{on}\n(\n", ident(&self.database), ident(&name));
        // ClickHouse 18.16 rejects a replicated table whose column without a default has a
        // comment ("Table structure in ZooKeeper is too different"). Replicated tables go
        // without column comments on every version: newer ones are not checked on a cluster here.
        let keep_comments = cluster.is_none();
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| match keep_comments {
                true => format!("    {}", c.render(dialect)),
                false => format!("    {}", ColumnDef { comment: None, ..c.clone() }.render(dialect)),
            })
            .collect();
        sql += &columns.join(",\n");
        sql += "\n)\n";
        sql += &format!("ENGINE = {engine}\n");
        if let Some(p) = &self.partition_by {
            sql += &format!("PARTITION BY {p}\n");
        }
        if !self.primary_key.is_empty() && self.primary_key != self.order_by && self.second_key.is_none() {
            sql += &format!("PRIMARY KEY {}\n", column_tuple(&self.primary_key));
        }
        sql += &format!("ORDER BY {}", self.sorting_key());
        if let Some(ttl) = &self.ttl {
            sql += &format!("\nTTL {ttl}");
        }
        if !self.settings.is_empty() {
            let settings: Vec<String> = self.settings.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            sql += &format!("\nSETTINGS {}", settings.join(", "));
        }
        if let Some(comment) = self.comment.as_ref().filter(|_| dialect.supports(Feature::TableComment)) {
            sql += &format!("\nCOMMENT {}", string(comment));
        }
        sql
    }
}

impl CreateTable {
    /// This table, on a cluster replicated on every node ([`Placement::EveryNode`]).
    pub fn on_every_node(self) -> CreateTable {
        CreateTable { placement: Placement::EveryNode, ..self }
    }

    /// The rendered key parts, with a time series' `intDiv(time, units)` after the series.
    pub fn sorting_key_parts(&self) -> Vec<String> {
        let mut parts: Vec<String> = self.order_by.iter().map(|c| ident(c)).collect();
        if let Some((time, units)) = &self.second_key {
            parts.insert(1.min(parts.len()), format!("intDiv({}, {units})", ident(time)));
        }
        parts
    }

    fn sorting_key(&self) -> String {
        match self.sorting_key_parts() {
            parts if parts.is_empty() => "tuple()".into(),
            parts => format!("({})", parts.join(", ")),
        }
    }
}

/// A time series with an integer (64-bit) time below whole seconds gets the second in its key.
pub(crate) fn second_key(model: &Model) -> Option<(String, i64)> {
    let ts = model.timeseries.as_ref()?;
    let time = model.field(&ts.time)?;
    let wide = matches!(time.ty.base, crate::ir::BaseType::Scalar(crate::ir::ScalarType::BigInt))
        && matches!(time.ty.native, None | Some(crate::ir::NativeType::Int64));
    (wide && ts.unit.per_second() > 1).then(|| (time.column.clone(), ts.unit.per_second()))
}

/// `(a, b)`, or `tuple()` for no columns (18.16 rejects `()`).
fn column_tuple(columns: &[String]) -> String {
    if columns.is_empty() {
        return "tuple()".into();
    }
    format!("({})", columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", "))
}

impl ColumnDef {
    pub fn for_field(field: &Field, ir: &Ir) -> ColumnDef {
        let ty = ChType::of_field(&field.ty, ir);
        ColumnDef {
            name: field.column.clone(),
            default: field.default.as_ref().map(|d| default_expr(d, &ty)),
            ty,
            comment: field.doc.clone(),
        }
    }

    pub fn render(&self, dialect: Dialect) -> String {
        let mut sql = format!("{} {}", ident(&self.name), self.ty.render(dialect));
        if let Some(d) = &self.default {
            sql += &format!(" DEFAULT {}", d.render(dialect));
        }
        if let Some(c) = &self.comment {
            sql += &format!(" COMMENT {}", string(c));
        }
        sql
    }
}

/// The SQL default for a validated `@default`, typed so the server does not have to guess.
fn default_expr(default: &DefaultValue, ty: &ChType) -> ValueExpr {
    let inner = ty.innermost();
    let text = |s: &String| ValueExpr::String(s.clone());
    match default {
        DefaultValue::String(s) => match inner {
            ChType::DateTime => ValueExpr::Call("toDateTime", vec![text(s), ValueExpr::String("UTC".into())]),
            ChType::DateTime64(p) => ValueExpr::Call(
                "toDateTime64",
                vec![text(s), ValueExpr::Number(p.to_string()), ValueExpr::String("UTC".into())],
            ),
            ChType::Date => ValueExpr::Call("toDate", vec![text(s)]),
            ChType::Date32 => ValueExpr::Call("toDate32", vec![text(s)]),
            ChType::Uuid => ValueExpr::Call("toUUID", vec![text(s)]),
            _ => text(s),
        },
        DefaultValue::Number(n) => ValueExpr::Number(n.clone()),
        DefaultValue::Boolean(b) => ValueExpr::Bool(*b),
        DefaultValue::Enum(v) => ValueExpr::String(v.clone()),
        DefaultValue::EmptyList => ValueExpr::EmptyArray,
        DefaultValue::Now => match inner {
            ChType::Date | ChType::Date32 => ValueExpr::Call("today", vec![]),
            ChType::DateTime64(p) => ValueExpr::Call("now64", vec![ValueExpr::Number(p.to_string())]),
            _ => ValueExpr::Call("now", vec![]),
        },
        DefaultValue::Uuid => match inner {
            ChType::Uuid => ValueExpr::Call("generateUUIDv4", vec![]),
            _ => ValueExpr::Call("toString", vec![ValueExpr::Call("generateUUIDv4", vec![])]),
        },
    }
}

impl ValueExpr {
    pub fn render(&self, dialect: Dialect) -> String {
        match self {
            ValueExpr::String(s) => string(s),
            ValueExpr::Number(n) => n.clone(),
            ValueExpr::Bool(b) if dialect.supports(Feature::Bool) => b.to_string(),
            ValueExpr::Bool(b) => u8::from(*b).to_string(),
            ValueExpr::EmptyArray => "[]".into(),
            ValueExpr::Call(name, args) => {
                format!("{name}({})", args.iter().map(|a| a.render(dialect)).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

impl TableEngine {
    /// `Engine(args)`, or with a `(keeper path, replica)` `ReplicatedEngine('path', 'replica', args)`.
    fn render(&self, replication: Option<(String, String)>) -> String {
        let (name, args) = match self {
            TableEngine::MergeTree => ("MergeTree", vec![]),
            TableEngine::ReplacingMergeTree(v) => ("ReplacingMergeTree", v.iter().map(|v| ident(v)).collect()),
            TableEngine::SummingMergeTree(cols) if cols.is_empty() => ("SummingMergeTree", vec![]),
            TableEngine::SummingMergeTree(cols) => ("SummingMergeTree", vec![column_tuple(cols)]),
            TableEngine::AggregatingMergeTree => ("AggregatingMergeTree", vec![]),
            TableEngine::CollapsingMergeTree(s) => ("CollapsingMergeTree", vec![ident(s)]),
            TableEngine::VersionedCollapsingMergeTree(s, v) => {
                ("VersionedCollapsingMergeTree", vec![ident(s), ident(v)])
            }
        };
        match replication {
            None => format!("{name}({})", args.join(", ")),
            Some((path, replica)) => {
                let args: Vec<String> = [string(&path), string(&replica)].into_iter().chain(args).collect();
                format!("Replicated{name}({})", args.join(", "))
            }
        }
    }
}

impl CreateDatabase {
    pub fn render(&self) -> String {
        format!("CREATE DATABASE IF NOT EXISTS {}", ident(&self.name))
    }

    pub fn render_on(&self, cluster: Option<&Cluster>) -> String {
        self.render() + &cluster.map(Cluster::on).unwrap_or_default()
    }
}
