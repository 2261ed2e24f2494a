//! SQL text for ClickHouse. **The only module that produces SQL.** Callers build typed
//! statements ([`Statement`]) and render them for a [`Dialect`]; quoting lives in [`quote`].
//! Raw user expressions (`@@partitionBy`, `@@ttl`) are validated upstream and passed through.

mod alter;
pub mod consumption;
mod ddl;
pub mod internal;
mod introspect;
pub mod quote;
pub mod timeseries;
mod types;
mod view;

pub use alter::{AlterAction, AlterTable, CopyRows, DropTable, InsertJsonRows, RenameTables};
pub use ddl::{ColumnDef, CreateDatabase, CreateTable, TableEngine, ValueExpr};
pub use introspect::{columns_query, database_query, latest_rows, row_counts_query, tables_query, version_query};
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
}

impl Statement {
    pub fn render(&self, dialect: Dialect) -> String {
        match self {
            Statement::CreateDatabase(s) => s.render(),
            Statement::CreateTable(s) => s.render(dialect),
            Statement::AlterTable(s) => s.render(dialect),
            Statement::DropTable(s) => s.render(),
            Statement::RenameTables(s) => s.render(),
            Statement::CopyRows(s) => s.render(),
            Statement::CreateView(v) => v.render(),
            Statement::Backfill(v) => v.backfill(),
        }
    }
}
