//! Materialized views (`CREATE MATERIALIZED VIEW … TO …`) and the one-off `INSERT … SELECT`
//! that backfills their target from rows already stored.

use super::quote::ident;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaterializedView {
    pub database: String,
    pub name: String,
    /// The table the view writes to.
    pub target: String,
    /// Validated upstream (generated for rollups, one SELECT for user views). Unqualified table
    /// names resolve in `database`: the statement runs with it as the default database.
    pub select: String,
    /// The target's columns the SELECT produces, by name (a backfill names them: the target
    /// may have more, such as igloo's hidden columns).
    pub columns: Vec<String>,
    /// On a cluster, a view that runs on every shard: this SELECT over the source's local
    /// table, into the target's local table, so that a shard's rows and the view's rows of
    /// them are written by the same insert (rollups). `None`: the view reads the source's
    /// `Distributed` table on the node that receives an insert (user views).
    pub local_select: Option<String>,
}

impl MaterializedView {
    pub fn render(&self) -> String {
        self.render_on(None)
    }

    /// On a cluster, `ON CLUSTER`, over the local tables when the view has a
    /// [`MaterializedView::local_select`], else over the `Distributed` ones.
    pub fn render_on(&self, cluster: Option<&super::Cluster>) -> String {
        let db = ident(&self.database);
        let (target, select) = match (cluster, &self.local_select) {
            (Some(_), Some(local)) => (super::cluster::local_name(&self.target), local),
            _ => (self.target.clone(), &self.select),
        };
        format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{}{} TO {db}.{} AS {select}",
            ident(&self.name),
            cluster.map(super::Cluster::on).unwrap_or_default(),
            ident(&target),
        )
    }

    /// No rows, and the SELECT's column names and types in the `meta` of ClickHouse's JSON
    /// output (18.16 has no `DESCRIBE (subquery)`).
    pub fn describe(&self) -> String {
        format!("SELECT * FROM ({}) LIMIT 0 FORMAT JSON", self.select)
    }

    /// Runs the view's SELECT once over the rows already stored, into its target.
    pub fn backfill(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(c)).collect();
        let cols = cols.join(", ");
        format!(
            "INSERT INTO {}.{} ({cols}) SELECT {cols} FROM ({})",
            ident(&self.database),
            ident(&self.target),
            self.select
        )
    }
}
