//! Planning user views (`views/<Model>.sql`): create the view a model's file describes, drop
//! views whose file changed (their name carries a hash of the SELECT) or went away.

use crate::internal::INTERNAL_PREFIX;
use crate::ir::Ir;
use crate::sql::{ColumnDef, MaterializedView};

use super::{Observed, Plan, PlanStep};

pub(super) fn plan_views(p: &mut Plan, ir: &Ir, observed: &Observed) {
    let wanted: Vec<String> = ir.views.iter().map(|v| v.name()).collect();
    let prefix = format!("{INTERNAL_PREFIX}_view_");
    for name in observed.tables.keys() {
        if name.starts_with(&prefix) && !wanted.contains(name) {
            p.steps.push(PlanStep::DropView { name: name.clone() });
        }
    }
    for view in &ir.views {
        let Some(model) = ir.model(&view.model) else { continue };
        let name = view.name();
        // A view some node lacks is created again: `IF NOT EXISTS` leaves the others alone.
        if observed.tables.contains_key(&name) && !observed.missing_on.contains_key(&name) {
            continue;
        }
        // Backfill only a view's first version: an edited view's target already holds the
        // rows its previous version computed.
        let first = !observed.tables.keys().any(|t| t.starts_with(&crate::views::view_prefix(&view.model)));
        p.steps.push(PlanStep::CreateView {
            model: model.name.clone(),
            view: Box::new(MaterializedView {
                database: p.database.clone(),
                name,
                target: model.table.clone(),
                select: view.select.clone(),
                columns: model.fields.iter().map(|f| f.column.clone()).collect(),
                local_select: None,
            }),
            backfill: view.backfill && first,
            columns: model
                .fields
                .iter()
                .map(|f| (f.column.clone(), ColumnDef::for_field(f, ir).ty.render(p.dialect)))
                .collect(),
        });
    }
}
