//! SQL text for ClickHouse. **The only module that produces SQL.** Callers build typed
//! statements ([`Statement`]) and render them for a [`Dialect`]; quoting lives in [`quote`].
//! Raw user expressions (`@@partitionBy`, `@@ttl`) are validated upstream and passed through.

mod ddl;
pub mod quote;
mod types;

pub use ddl::{ColumnDef, CreateDatabase, CreateTable, TableEngine, ValueExpr};
pub use types::{ChType, DEFAULT_DECIMAL};

use crate::dialect::Dialect;

#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    CreateDatabase(CreateDatabase),
    CreateTable(Box<CreateTable>),
}

impl Statement {
    pub fn render(&self, dialect: Dialect) -> String {
        match self {
            Statement::CreateDatabase(s) => s.render(),
            Statement::CreateTable(s) => s.render(dialect),
        }
    }
}
