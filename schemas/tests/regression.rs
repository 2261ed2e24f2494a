//! One test per bug found, named after what went wrong.

use igloo_schemas::plan::{plan, Observed};
use igloo_schemas::{check_for, Dialect, SourceFile};

fn ddl(schema: &str, dialect: Dialect) -> String {
    let files = [SourceFile::new("r.prisma", schema)];
    let (ir, diags) = check_for(&files, dialect);
    assert!(!diags.has_errors(), "{}", diags.render(&files));
    let p = plan(&ir, &Observed::default(), "db", dialect, None);
    p.steps.iter().flat_map(|s| p.sql(s)).collect::<Vec<_>>().join(";\n")
}

/// A model without a key rendered `ORDER BY ()`, which ClickHouse 18.16 rejects.
#[test]
fn keyless_model_orders_by_empty_tuple() {
    for dialect in [Dialect::V18_16, Dialect::CURRENT] {
        let sql = ddl("model Log {\n  line String\n}\n", dialect);
        assert!(sql.ends_with("ORDER BY tuple()"), "{sql}");
    }
}
