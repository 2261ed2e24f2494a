//! One description of the SDK surface, built from the IR and the APIs: what each generated
//! module offers (model types, record types, ingest, samples and API functions), with each
//! type already written in the target language by a [`Target`]. The templates
//! (`templates/ts.hbs`, `templates/py.hbs`) turn it into text; nothing here writes code.

use handlebars::Handlebars;
use serde::Serialize;

use crate::consumption::{ConsumptionApi, ParamType};
use crate::ir::{Arity, BaseType, Field, Ir, Model, ScalarType};

use super::{pascal, row_shape, FnName, RowShape, SdkInput};

/// How one language writes types, names and comments.
pub(super) trait Target {
    /// A scalar as the ingest API accepts it, before arity.
    fn scalar_type(&self, s: ScalarType) -> &'static str;
    /// A stored shape (what transforms receive), before arity; `Enum` is handled by the caller.
    fn shape_type(&self, shape: RowShape) -> &'static str;
    /// Text, for an enum the schema does not define.
    fn text_type(&self) -> &'static str;
    fn optional(&self, ty: &str) -> String;
    fn list(&self, ty: &str) -> String;
    fn param_type(&self, t: ParamType) -> &'static str;
    /// A ClickHouse result type.
    fn ch_type(&self, ty: &str) -> String;
    /// A comment's text, escaped for the language's comment syntax.
    fn doc(&self, text: &str) -> String;
    fn fn_name(&self, name: FnName) -> String;
    /// An API's one-line summary, escaped for where the template puts it.
    fn summary(&self, text: &str) -> String;
    /// Whether a result column can be a typed field of a row type.
    fn valid_column(&self, name: &str) -> bool;
    /// A result column's name as a row type's key.
    fn column_key(&self, name: &str) -> String;
    /// Parameters in the order the language's function signature needs.
    fn order_params<'a>(&self, params: Vec<&'a crate::consumption::Param>) -> Vec<&'a crate::consumption::Param>;
}

/// A field as the ingest API accepts it.
fn field_type(t: &dyn Target, ir: &Ir, f: &Field) -> String {
    let base = match &f.ty.base {
        BaseType::Enum(e) if ir.enum_def(e).is_some() => e.clone(),
        BaseType::Enum(_) => t.text_type().to_string(),
        BaseType::Scalar(s) => t.scalar_type(*s).to_string(),
    };
    with_arity(t, f, base)
}

/// A field as transforms receive it from the model's topic.
fn record_type(t: &dyn Target, f: &Field) -> String {
    let base = match (row_shape(f), &f.ty.base) {
        (RowShape::Enum, BaseType::Enum(e)) => e.clone(),
        (shape, _) => t.shape_type(shape).to_string(),
    };
    with_arity(t, f, base)
}

fn with_arity(t: &dyn Target, f: &Field, base: String) -> String {
    match f.ty.arity {
        Arity::Required => base,
        Arity::Optional => t.optional(&base),
        Arity::List => t.list(&base),
    }
}

#[derive(Serialize)]
pub(super) struct Surface {
    enums: Vec<EnumDef>,
    models: Vec<ModelDef>,
    apis: Vec<ApiDef>,
}

#[derive(Serialize)]
struct EnumDef {
    name: String,
    /// Quoted.
    variants: Vec<String>,
}

#[derive(Serialize)]
struct ModelDef {
    name: String,
    doc: Option<String>,
    fields: Vec<FieldDef>,
    /// Fields a client must send (no default, not `?`), and the others.
    required: Vec<FieldDef>,
    optional: Vec<FieldDef>,
    record_fields: Vec<Typed>,
    ingest_fn: Option<String>,
    samples: Option<SamplesDef>,
}

#[derive(Serialize)]
struct FieldDef {
    name: String,
    ty: String,
    doc: Option<String>,
    /// May be left out by the client.
    optional: bool,
}

#[derive(Serialize)]
struct Typed {
    name: String,
    ty: String,
}

#[derive(Serialize)]
struct SamplesDef {
    fn_name: String,
    unit: &'static str,
    series_ty: String,
    values: Vec<Typed>,
}

#[derive(Serialize)]
struct ApiDef {
    name: String,
    fn_name: String,
    pascal: String,
    summary: String,
    params: Vec<FieldDef>,
    /// Typed result columns, when ClickHouse described them; else rows are generic records.
    columns: Option<Vec<Typed>>,
}

impl Surface {
    pub(super) fn build(input: &SdkInput, t: &dyn Target) -> Surface {
        let enums = input
            .ir
            .enums
            .iter()
            .map(|e| EnumDef {
                name: e.name.clone(),
                variants: e.variants.iter().map(|v| format!("{:?}", v.name)).collect(),
            })
            .collect();
        let models = input.ir.models.iter().map(|m| model(input.ir, m, t)).collect();
        let apis = input.apis.iter().map(|a| api(a, input.columns.get(&a.name), t)).collect();
        Surface { enums, models, apis }
    }

    /// The module text from a template over this description.
    pub(super) fn render(&self, template: &str) -> String {
        let mut hb = Handlebars::new();
        hb.register_escape_fn(handlebars::no_escape);
        hb.set_strict_mode(true);
        hb.register_helper("join", Box::new(join));
        hb.render_template(template, self).expect("the SDK templates render every surface")
    }
}

/// `{{join list ", "}}`.
fn join(
    h: &handlebars::Helper,
    _: &Handlebars,
    _: &handlebars::Context,
    _: &mut handlebars::RenderContext,
    out: &mut dyn handlebars::Output,
) -> handlebars::HelperResult {
    let items = h.param(0).and_then(|p| p.value().as_array()).cloned().unwrap_or_default();
    let sep = h.param(1).and_then(|p| p.value().as_str()).unwrap_or(", ");
    let text: Vec<String> = items.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect();
    out.write(&text.join(sep))?;
    Ok(())
}

fn field(ir: &Ir, f: &Field, t: &dyn Target) -> FieldDef {
    FieldDef {
        name: f.name.clone(),
        ty: field_type(t, ir, f),
        doc: f.doc.as_deref().map(|d| t.doc(d)),
        // Ingest fills absent optional fields with null, lists with [] and the rest with defaults.
        optional: f.ty.arity != Arity::Required || f.default.is_some(),
    }
}

fn model(ir: &Ir, m: &Model, t: &dyn Target) -> ModelDef {
    let (required, optional): (Vec<&Field>, Vec<&Field>) =
        m.fields.iter().partition(|f| f.ty.arity == Arity::Required && f.default.is_none());
    let record_fields = m.fields.iter().map(|f| Typed { name: f.name.clone(), ty: record_type(t, f) }).collect();
    let samples = m.timeseries.as_ref().map(|ts| SamplesDef {
        fn_name: t.fn_name(super::samples_fn(&m.name)),
        unit: ts.unit.name(),
        series_ty: m.field(&ts.series).map(|f| field_type(t, ir, f)).unwrap_or_else(|| t.text_type().to_string()),
        values: ts
            .values
            .iter()
            .map(|v| Typed { name: v.clone(), ty: field_type(t, ir, m.field(v).expect("validated")) })
            .collect(),
    });
    ModelDef {
        name: m.name.clone(),
        doc: m.doc.as_deref().map(|d| t.doc(d)),
        fields: m.fields.iter().map(|f| field(ir, f, t)).collect(),
        required: required.into_iter().map(|f| field(ir, f, t)).collect(),
        optional: optional.into_iter().map(|f| field(ir, f, t)).collect(),
        record_fields,
        ingest_fn: m.ingest.then(|| t.fn_name(super::ingest_fn(&m.name))),
        samples,
    }
}

fn api(api: &ConsumptionApi, columns: Option<&Vec<(String, String)>>, t: &dyn Target) -> ApiDef {
    let params = t
        .order_params(api.params.iter().collect())
        .into_iter()
        .map(|q| FieldDef {
            name: q.name.clone(),
            ty: t.param_type(q.ty).to_string(),
            doc: q.doc.as_deref().map(|d| t.doc(d)),
            optional: q.default.is_some(),
        })
        .collect();
    let columns = columns
        .filter(|cols| !cols.is_empty() && cols.iter().all(|(c, _)| t.valid_column(c)))
        .map(|cols| cols.iter().map(|(c, ty)| Typed { name: t.column_key(c), ty: t.ch_type(ty) }).collect());
    ApiDef {
        name: api.name.clone(),
        fn_name: t.fn_name(super::api_fn(&api.name)),
        pascal: pascal(&api.name),
        summary: t.summary(&api.doc.clone().unwrap_or_else(|| format!("apis/{}.sql", api.name))),
        params,
        columns,
    }
}
