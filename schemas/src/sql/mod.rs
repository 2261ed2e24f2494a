//! SQL text for ClickHouse. **The only module that produces SQL.** Callers build typed
//! statements ([`Statement`]) and render them for a [`Dialect`]; quoting lives in [`quote`].
//! Raw user expressions (`@@partitionBy`, `@@ttl`) are validated upstream and passed through.

mod alter;
pub mod cluster;
pub mod consumption;
mod ddl;
pub mod internal;
mod introspect;
pub mod quote;
pub mod timeseries;
mod types;
mod view;

pub use alter::{AlterAction, AlterTable, CopyRows, DropTable, InsertJsonRows, RenameTables, RowFormat};
pub use cluster::Cluster;
pub use ddl::{ColumnDef, CreateDatabase, CreateTable, Placement, TableEngine, ValueExpr};
pub use introspect::{
    cluster_nodes_query, columns_query, database_query, latest_rows, node_ping_query, node_tables_query,
    row_counts_query, tables_query, version_query,
};
pub use types::{ChType, DEFAULT_DECIMAL};
pub use view::MaterializedView;

use crate::dialect::Dialect;

#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    CreateDatabase(CreateDatabase),
    CreateTable(Box<CreateTable>),
    AlterTable(Box<AlterTable>),
    DropTable(DropTable),
    RenameTables(RenameTables),
    CopyRows(CopyRows),
    CreateView(Box<MaterializedView>),
    /// Fills a view's target from the rows already stored.
    Backfill(Box<MaterializedView>),
    /// On a cluster, the `Distributed` table of a table made again over its local table, after
    /// a rebuild swapped the local tables; nothing on one server.
    Redistribute(Box<CreateTable>),
}

impl Statement {
    fn render(&self, dialect: Dialect) -> String {
        match self {
            Statement::CreateDatabase(s) => s.render(),
            Statement::CreateTable(s) => s.render(dialect),
            Statement::AlterTable(s) => s.render(dialect),
            Statement::DropTable(s) => s.render(),
            Statement::RenameTables(s) => s.render(),
            Statement::CopyRows(s) => s.render(),
            Statement::CreateView(v) => v.render(),
            Statement::Backfill(v) => v.backfill(),
            Statement::Redistribute(_) => String::new(),
        }
    }

    /// The SQL that carries the statement out on one server (`None`) or on a cluster: each
    /// table a pair, each DDL statement `ON CLUSTER` ([`cluster`]).
    pub fn render_for(&self, dialect: Dialect, on: Option<&Cluster>) -> Vec<String> {
        let Some(c) = on else {
            return Some(self.render(dialect)).filter(|s| !s.is_empty()).into_iter().collect();
        };
        let pair = |t: &str| [cluster::local_name(t), t.to_string()];
        match self {
            Statement::CreateDatabase(s) => vec![s.render_on(on)],
            Statement::CreateTable(s) => c.create_table(s, dialect),
            Statement::AlterTable(s) => pair(&s.table)
                .into_iter()
                .map(|table| AlterTable { table, ..s.as_ref().clone() }.render_on(dialect, on))
                .collect(),
            // A view has no local part; `IF EXISTS` makes its drop a no-op.
            Statement::DropTable(s) => pair(&s.table)
                .into_iter()
                .rev()
                .map(|table| DropTable { table, database: s.database.clone() }.render_on(on))
                .collect(),
            Statement::RenameTables(s) => {
                let renames = s.renames.iter().flat_map(|(from, to)| pair(from).into_iter().zip(pair(to))).collect();
                vec![RenameTables { renames, database: s.database.clone() }.render_on(on)]
            }
            Statement::CopyRows(s) => vec![s.render()],
            Statement::CreateView(v) => vec![v.render_on(on)],
            Statement::Backfill(v) => vec![v.backfill()],
            Statement::Redistribute(t) => c.redistribute(t),
        }
    }
}
