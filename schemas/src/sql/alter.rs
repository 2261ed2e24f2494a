//! Statements that change existing tables: ALTER, DROP, RENAME, INSERT … SELECT, and the
//! INSERT head used with a JSONEachRow body.

use crate::dialect::Dialect;

use super::cluster::Cluster;
use super::ddl::ColumnDef;
use super::quote::ident;

/// ` ON CLUSTER name`, or nothing on one server.
fn on(cluster: Option<&Cluster>) -> String {
    cluster.map(Cluster::on).unwrap_or_default()
}

fn table_ref(database: &str, table: &str) -> String {
    format!("{}.{}", ident(database), ident(table))
}

#[derive(Clone, Debug, PartialEq)]
pub enum AlterAction {
    /// `ADD COLUMN … [AFTER prev]` (no `IF NOT EXISTS`: 18.16 lacks it; plans only add what is missing).
    AddColumn {
        column: ColumnDef,
        after: Option<String>,
    },
    DropColumn {
        name: String,
    },
    ModifyColumn {
        column: ColumnDef,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct AlterTable {
    pub database: String,
    pub table: String,
    pub action: AlterAction,
}

impl AlterTable {
    pub fn render(&self, dialect: Dialect) -> String {
        self.render_on(dialect, None)
    }

    pub fn render_on(&self, dialect: Dialect, cluster: Option<&Cluster>) -> String {
        let action = match &self.action {
            AlterAction::AddColumn { column, after } => {
                let after = after.as_ref().map(|a| format!(" AFTER {}", ident(a))).unwrap_or_default();
                format!("ADD COLUMN {}{after}", column.render(dialect))
            }
            AlterAction::DropColumn { name } => format!("DROP COLUMN {}", ident(name)),
            AlterAction::ModifyColumn { column } => format!("MODIFY COLUMN {}", column.render(dialect)),
        };
        format!("ALTER TABLE {}{} {action}", table_ref(&self.database, &self.table), on(cluster))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropTable {
    pub database: String,
    pub table: String,
}

impl DropTable {
    pub fn render(&self) -> String {
        self.render_on(None)
    }

    pub fn render_on(&self, cluster: Option<&Cluster>) -> String {
        format!("DROP TABLE IF EXISTS {}{}", table_ref(&self.database, &self.table), on(cluster))
    }
}

/// `RENAME TABLE a TO b, c TO d`: atomic on one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenameTables {
    pub database: String,
    pub renames: Vec<(String, String)>,
}

impl RenameTables {
    pub fn render(&self) -> String {
        self.render_on(None)
    }

    pub fn render_on(&self, cluster: Option<&Cluster>) -> String {
        let pairs: Vec<String> = self
            .renames
            .iter()
            .map(|(from, to)| format!("{} TO {}", table_ref(&self.database, from), table_ref(&self.database, to)))
            .collect();
        format!("RENAME TABLE {}{}", pairs.join(", "), on(cluster))
    }
}

/// `INSERT INTO to (cols) SELECT cols FROM from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyRows {
    pub database: String,
    pub from: String,
    pub to: String,
    pub columns: Vec<String>,
}

impl CopyRows {
    pub fn render(&self) -> String {
        let cols = self.columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
        format!(
            "INSERT INTO {} ({cols}) SELECT {cols} FROM {}",
            table_ref(&self.database, &self.to),
            table_ref(&self.database, &self.from)
        )
    }
}

/// How an insert's rows follow its query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowFormat {
    /// One JSON object a line.
    JsonEachRow,
    /// ClickHouse's binary rows: every listed column, in order.
    RowBinary,
}

impl RowFormat {
    pub fn name(self) -> &'static str {
        match self {
            RowFormat::JsonEachRow => "JSONEachRow",
            RowFormat::RowBinary => "RowBinary",
        }
    }
}

/// The query part of an insert whose rows follow as JSONEachRow (or, [`Self::render_as`],
/// another [`RowFormat`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsertJsonRows {
    pub database: String,
    pub table: String,
    pub columns: Vec<String>,
}

impl InsertJsonRows {
    pub fn render(&self) -> String {
        self.render_as(RowFormat::JsonEachRow)
    }

    pub fn render_as(&self, format: RowFormat) -> String {
        let cols = self.columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
        format!("INSERT INTO {} ({cols}) FORMAT {}", table_ref(&self.database, &self.table), format.name())
    }
}
