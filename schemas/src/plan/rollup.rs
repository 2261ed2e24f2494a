//! Planning the rollups of time-series models: create missing ones (backfilled from the rows
//! already in the table), recreate changed ones, drop those no model wants. Rollups hold only
//! derived data, so none of this needs consent.

use crate::ir::{Ir, Model};
use crate::sql::timeseries::{is_rollup_name, Rollup, TimeSeriesTables};

use super::{Observed, Plan, PlanStep};

/// Steps for one model's rollups; `rebuilt` when the model's table is rebuilt by this plan
/// (its views would point at the old table) or created by it (nothing to backfill).
pub(super) fn plan_model(p: &mut Plan, ir: &Ir, model: &Model, observed: &Observed, table_replaced: bool) {
    let Some(tables) = TimeSeriesTables::for_model(model, ir, &p.database) else { return };
    let source_exists = observed.tables.contains_key(&model.table);
    for rollup in tables.rollups() {
        let desired = rollup.create_table();
        let current = observed.tables.get(&rollup.table_name());
        let view_exists = observed.tables.contains_key(&rollup.view_name());
        let same = current.is_some_and(|t| {
            t.columns.len() == desired.columns.len()
                && t.columns
                    .iter()
                    .zip(&desired.columns)
                    .all(|((n, ty), c)| *n == c.name && *ty == c.ty.render(p.dialect))
        });
        let complete = [rollup.table_name(), rollup.view_name()].iter().all(|n| !observed.missing_on.contains_key(n));
        if same && view_exists && complete && !table_replaced {
            continue;
        }
        if current.is_some() || view_exists {
            p.steps.push(PlanStep::DropRollup { table: rollup.table_name(), view: rollup.view_name() });
        }
        p.steps.push(PlanStep::CreateRollup {
            model: model.name.clone(),
            rollup: Box::new(rollup),
            backfill: source_exists,
        });
    }
}

/// Rollup tables and views that no model wants any more.
pub(super) fn plan_removed(p: &mut Plan, ir: &Ir, observed: &Observed) {
    let wanted: Vec<Rollup> = ir
        .models
        .iter()
        .filter_map(|m| TimeSeriesTables::for_model(m, ir, &p.database))
        .flat_map(|t| t.rollups())
        .collect();
    for name in observed.tables.keys() {
        if !is_rollup_name(name) || name.ends_with("_mv") || wanted.iter().any(|r| &r.table_name() == name) {
            continue;
        }
        p.steps.push(PlanStep::DropRollup { table: name.clone(), view: format!("{name}_mv") });
    }
}
