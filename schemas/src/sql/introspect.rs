//! Queries igloo runs to observe what exists. Results come back as JSONEachRow (unambiguous,
//! unlike TSV, which escapes the quotes inside type names).

use super::quote::string;

pub fn version_query() -> String {
    "SELECT version()".into()
}

/// Rows `{"name"}` when the database exists.
pub fn database_query(database: &str) -> String {
    format!("SELECT name FROM system.databases WHERE name = {} FORMAT JSONEachRow", string(database))
}

/// Rows `{"name", "engine", "sorting_key"}`, one per table in `database`.
pub fn tables_query(database: &str) -> String {
    format!(
        "SELECT name, engine, sorting_key FROM system.tables WHERE database = {} ORDER BY name FORMAT JSONEachRow",
        string(database)
    )
}

/// Rows `{"table", "name", "type"}`, one per column in `database`, in table order.
pub fn columns_query(database: &str) -> String {
    format!("SELECT table, name, type FROM system.columns WHERE database = {} FORMAT JSONEachRow", string(database))
}
