//! TypeScript: one module of interfaces and functions over `IglooClient` from `igloo-sdk`.
//! Passes `tsc --strict`.

use std::fmt::Write;

use crate::consumption::{ConsumptionApi, ParamType};
use crate::ir::{Arity, BaseType, Field, Ir, Model, ScalarType};

use super::{pascal, row_shape, RowShape, SdkInput};

pub fn typescript(input: &SdkInput) -> String {
    let mut out = String::new();
    out += "// Typed igloo calls for this project, generated from schema/*.prisma and apis/*.sql.\n";
    out += "// Do not edit: `igloo generate sdk --lang ts` (and `igloo dev`) rewrite this file.\n\n";
    out += "import type { IglooClient, IngestResult, SampleAgg } from \"igloo-sdk\";\n";
    for e in &input.ir.enums {
        let variants: Vec<String> = e.variants.iter().map(|v| format!("{:?}", v.name)).collect();
        let _ = writeln!(out, "\nexport type {} = {};", e.name, variants.join(" | "));
    }
    for model in &input.ir.models {
        model_type(&mut out, input.ir, model);
        record_type(&mut out, model);
        if model.ingest {
            let n = &model.name;
            let f = super::ingest_fn(n).ts;
            let _ = write!(
                out,
                "\n/** POST /ingest/{n}: resolves once the broker has every record. */\nexport function {f}(client: IglooClient, records: {n} | {n}[]): Promise<IngestResult> {{\n  return client.ingest(\"{n}\", records);\n}}\n"
            );
        }
        if model.timeseries.is_some() {
            samples_fn(&mut out, input.ir, model);
        }
    }
    for api in input.apis {
        api_fn(&mut out, api, input.columns.get(&api.name));
    }
    out
}

fn field_type(ir: &Ir, f: &Field) -> String {
    let base = match &f.ty.base {
        BaseType::Enum(e) if ir.enum_def(e).is_some() => e.clone(),
        BaseType::Enum(_) => "string".into(),
        BaseType::Scalar(s) => match s {
            ScalarType::String | ScalarType::Bytes | ScalarType::Uuid | ScalarType::Date => "string",
            ScalarType::Boolean => "boolean",
            ScalarType::Int | ScalarType::Float => "number",
            // 64-bit integers: exact as bigint or a string of digits.
            ScalarType::BigInt => "number | bigint | string",
            ScalarType::Decimal => "number | string",
            // RFC 3339 text, `YYYY-MM-DD hh:mm:ss`, or epoch seconds.
            ScalarType::DateTime => "string | number",
            ScalarType::Json => "unknown",
        }
        .into(),
    };
    match f.ty.arity {
        Arity::Required => base,
        Arity::Optional => format!("{base} | null"),
        Arity::List => format!("Array<{base}>"),
    }
}

fn doc(out: &mut String, indent: &str, doc: Option<&str>) {
    if let Some(d) = doc {
        let _ = writeln!(out, "{indent}/** {} */", d.replace("*/", "* /"));
    }
}

fn model_type(out: &mut String, ir: &Ir, m: &Model) {
    out.push('\n');
    doc(out, "", m.doc.as_deref());
    let _ = writeln!(out, "export interface {} {{", m.name);
    for f in &m.fields {
        doc(out, "  ", f.doc.as_deref());
        // Ingest fills absent optional fields with null, lists with [] and the rest with defaults.
        let optional = f.ty.arity != Arity::Required || f.default.is_some();
        let _ = writeln!(out, "  {}{}: {};", f.name, if optional { "?" } else { "" }, field_type(ir, f));
    }
    out.push_str("}\n");
}

/// `<Model>Record`: a record as transforms receive it from the model's topic.
fn record_type(out: &mut String, m: &Model) {
    let n = &m.name;
    let _ = writeln!(
        out,
        "\n/** A {n} as transforms receive it: every field present, times as \"YYYY-MM-DD hh:mm:ss\" (UTC), 64-bit integers and Json as text. */\nexport interface {n}Record {{"
    );
    for f in &m.fields {
        let base = match row_shape(f) {
            RowShape::Text => "string".to_string(),
            RowShape::Bool => "boolean".into(),
            RowShape::Int | RowShape::Float => "number".into(),
            RowShape::Decimal => "number | string".into(),
            RowShape::Enum => match &f.ty.base {
                BaseType::Enum(e) => e.clone(),
                BaseType::Scalar(_) => "string".into(),
            },
        };
        let ty = match f.ty.arity {
            Arity::Required => base,
            Arity::Optional => format!("{base} | null"),
            Arity::List => format!("Array<{base}>"),
        };
        let _ = writeln!(out, "  {}: {ty};", f.name);
    }
    out.push_str("}\n");
}

fn samples_fn(out: &mut String, ir: &Ir, m: &Model) {
    let ts = m.timeseries.as_ref().expect("a time series");
    let n = &m.name;
    let _ = writeln!(out, "\nexport interface {n}Sample {{\n  time: number;");
    for v in &ts.values {
        let f = m.field(v).expect("validated");
        let _ = writeln!(out, "  {v}: {} | null;", field_type(ir, f));
    }
    out.push_str("}\n");
    let series = m.field(&ts.series).map(|f| field_type(ir, f)).unwrap_or_else(|| "string".into());
    let _ = write!(
        out,
        "\n/** GET /api/{n}/samples: `points` samples of one series between start and end ({unit}). */\nexport async function {f}(\n  client: IglooClient,\n  series: {series},\n  start: number | bigint,\n  end: number | bigint,\n  options: {{ points?: number; agg?: SampleAgg }} = {{}},\n): Promise<{n}Sample[]> {{\n  const response = await client.samples(\"{n}\", String(series), start, end, options);\n  return response.samples as unknown as {n}Sample[];\n}}\n",
        f = super::samples_fn(n).ts,
        unit = ts.unit.name()
    );
}

fn param_type(t: ParamType) -> &'static str {
    match t {
        ParamType::String | ParamType::Date => "string",
        ParamType::Int | ParamType::Float => "number",
        ParamType::BigInt => "number | bigint",
        ParamType::Boolean => "boolean",
        ParamType::DateTime => "string | number",
    }
}

fn api_fn(out: &mut String, api: &ConsumptionApi, columns: Option<&Vec<(String, String)>>) {
    let p = pascal(&api.name);
    let f = super::api_fn(&api.name).ts;
    let _ = writeln!(out, "\nexport interface {p}Params {{");
    for q in &api.params {
        doc(out, "  ", q.doc.as_deref());
        let _ = writeln!(out, "  {}{}: {};", q.name, if q.default.is_some() { "?" } else { "" }, param_type(q.ty));
    }
    out.push_str("}\n");
    let summary = api.doc.clone().unwrap_or_else(|| format!("apis/{}.sql", api.name));
    let _ = write!(
        out,
        "\n{}\n\n/** GET /consumption/{name}: {summary} */\nexport async function {f}(client: IglooClient, params: {p}Params): Promise<{p}Row[]> {{\n  return (await client.query(\"{name}\", {{ ...params }})) as unknown as {p}Row[];\n}}\n",
        row_type(&p, columns),
        name = api.name,
        summary = summary.replace("*/", "* /"),
    );
}

/// `export interface XRow` from described columns, else a generic record.
fn row_type(name: &str, columns: Option<&Vec<(String, String)>>) -> String {
    match columns {
        Some(cols) if !cols.is_empty() => {
            let mut s = format!("export interface {name}Row {{\n");
            for (c, ty) in cols {
                s += &format!("  {:?}: {};\n", c, super::ch_type(ty, super::Lang::Ts));
            }
            s + "}"
        }
        _ => format!("export type {name}Row = Record<string, unknown>;"),
    }
}
