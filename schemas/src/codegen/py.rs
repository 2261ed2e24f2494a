//! Python: one module of `TypedDict`s and functions over `igloo_sdk.Client` / `AsyncClient`.
//! Passes `mypy --strict`; Python ≥ 3.10, standard library only.

use std::fmt::Write;

use crate::consumption::{ConsumptionApi, ParamType};
use crate::ir::{Arity, BaseType, Field, Ir, Model, ScalarType};

use super::{pascal, row_shape, RowShape, SdkInput};

pub fn python(input: &SdkInput) -> String {
    let mut out = String::new();
    out += "\"\"\"Typed igloo calls for this project, generated from schema/*.prisma and apis/*.sql.\n\nDo not edit: `igloo generate sdk --lang py` (and `igloo dev`) rewrite this file.\n\"\"\"\n\n";
    out += "from __future__ import annotations\n\n";
    out += "from typing import TYPE_CHECKING, Any, Literal, TypedDict, Union, cast\n\n";
    // Only annotations use the runtime: transforms import the model types without it.
    out += "if TYPE_CHECKING:\n    from igloo_sdk import AsyncClient, Client, IngestResult\n\n";
    for e in &input.ir.enums {
        let variants: Vec<String> = e.variants.iter().map(|v| format!("{:?}", v.name)).collect();
        let _ = writeln!(out, "\n{} = Literal[{}]\n", e.name, variants.join(", "));
    }
    for model in &input.ir.models {
        model_types(&mut out, input.ir, model);
        record_type(&mut out, model);
        if model.ingest {
            ingest_fns(&mut out, model);
        }
        if model.timeseries.is_some() {
            samples_fns(&mut out, input.ir, model);
        }
    }
    for api in input.apis {
        api_fns(&mut out, api, input.columns.get(&api.name));
    }
    out.trim_end().to_string() + "\n"
}

fn field_type(ir: &Ir, f: &Field) -> String {
    let base = match &f.ty.base {
        BaseType::Enum(e) if ir.enum_def(e).is_some() => e.clone(),
        BaseType::Enum(_) => "str".into(),
        BaseType::Scalar(s) => match s {
            ScalarType::String | ScalarType::Bytes | ScalarType::Uuid | ScalarType::Date => "str",
            ScalarType::Boolean => "bool",
            ScalarType::Int => "int",
            // 64-bit integers may also travel as strings of digits.
            ScalarType::BigInt => "Union[int, str]",
            ScalarType::Float => "float",
            ScalarType::Decimal => "Union[float, str]",
            // RFC 3339 text, `YYYY-MM-DD hh:mm:ss`, or epoch seconds.
            ScalarType::DateTime => "Union[str, int, float]",
            ScalarType::Json => "Any",
        }
        .into(),
    };
    match f.ty.arity {
        Arity::Required => base,
        Arity::Optional => format!("Union[{base}, None]"),
        Arity::List => format!("list[{base}]"),
    }
}

fn docstring(out: &mut String, indent: &str, doc: Option<&str>) {
    if let Some(d) = doc {
        let _ = writeln!(out, "{indent}\"\"\"{}\"\"\"", d.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\""));
    }
}

/// `class M(TypedDict)` for the required fields, `class M(_MRequired, total=False)` adding
/// those with a default or `?`.
fn model_types(out: &mut String, ir: &Ir, m: &Model) {
    let (required, optional): (Vec<&Field>, Vec<&Field>) =
        m.fields.iter().partition(|f| f.ty.arity == Arity::Required && f.default.is_none());
    let _ = writeln!(out, "\nclass _{}Required(TypedDict):", m.name);
    if required.is_empty() {
        out.push_str("    pass\n");
    }
    for f in &required {
        let _ = writeln!(out, "    {}: {}", f.name, field_type(ir, f));
        docstring(out, "    ", f.doc.as_deref());
    }
    let _ = writeln!(out, "\n\nclass {}(_{}Required, total=False):", m.name, m.name);
    docstring(out, "    ", m.doc.as_deref());
    if optional.is_empty() && m.doc.is_none() {
        out.push_str("    pass\n");
    }
    for f in &optional {
        let _ = writeln!(out, "    {}: {}", f.name, field_type(ir, f));
        docstring(out, "    ", f.doc.as_deref());
    }
    out.push('\n');
}

/// `<Model>Record`: a record as transforms receive it from the model's topic.
fn record_type(out: &mut String, m: &Model) {
    let n = &m.name;
    let _ = writeln!(out, "\nclass {n}Record(TypedDict):");
    let _ = writeln!(
        out,
        "    \"\"\"A {n} as transforms receive it: every field present, times as \"YYYY-MM-DD hh:mm:ss\" (UTC), 64-bit integers and Json as text.\"\"\""
    );
    for f in &m.fields {
        let base = match row_shape(f) {
            RowShape::Text => "str".to_string(),
            RowShape::Bool => "bool".into(),
            RowShape::Int => "int".into(),
            RowShape::Float => "float".into(),
            RowShape::Decimal => "Union[float, str]".into(),
            RowShape::Enum => match &f.ty.base {
                BaseType::Enum(e) => e.clone(),
                BaseType::Scalar(_) => "str".into(),
            },
        };
        let ty = match f.ty.arity {
            Arity::Required => base,
            Arity::Optional => format!("Union[{base}, None]"),
            Arity::List => format!("list[{base}]"),
        };
        let _ = writeln!(out, "    {}: {ty}", f.name);
    }
    out.push('\n');
}

fn ingest_fns(out: &mut String, m: &Model) {
    let s = super::ingest_fn(&m.name).py;
    let n = &m.name;
    let _ = write!(
        out,
        "\ndef {s}(client: Client, records: Union[{n}, list[{n}]]) -> IngestResult:\n    \"\"\"POST /ingest/{n}: acknowledged once the broker has every record.\"\"\"\n    return client.ingest({n:?}, records)\n\n\nasync def {s}_async(client: AsyncClient, records: Union[{n}, list[{n}]]) -> IngestResult:\n    return await client.ingest({n:?}, records)\n\n"
    );
}

fn samples_fns(out: &mut String, ir: &Ir, m: &Model) {
    let ts = m.timeseries.as_ref().expect("a time series");
    let n = &m.name;
    let s = super::samples_fn(n).py;
    let _ = writeln!(out, "\nclass {n}Sample(TypedDict):\n    time: int");
    for v in &ts.values {
        let f = m.field(v).expect("validated");
        let _ = writeln!(out, "    {v}: Union[{}, None]", field_type(ir, f));
    }
    let series = m.field(&ts.series).map(|f| field_type(ir, f)).unwrap_or_else(|| "str".into());
    let agg = "Literal[\"last\", \"min\", \"max\", \"avg\"]";
    let _ = write!(
        out,
        "\n\ndef {s}(\n    client: Client, series: {series}, start: int, end: int, points: int = 1000, agg: {agg} = \"last\"\n) -> list[{n}Sample]:\n    \"\"\"GET /api/{n}/samples: `points` samples of one series between start and end ({unit}).\"\"\"\n    return cast(\"list[{n}Sample]\", client.samples({n:?}, series, start, end, points, agg)[\"samples\"])\n\n\nasync def {s}_async(\n    client: AsyncClient, series: {series}, start: int, end: int, points: int = 1000, agg: {agg} = \"last\"\n) -> list[{n}Sample]:\n    response = await client.samples({n:?}, series, start, end, points, agg)\n    return cast(\"list[{n}Sample]\", response[\"samples\"])\n\n",
        unit = ts.unit.name()
    );
}

fn param_type(t: ParamType) -> &'static str {
    match t {
        ParamType::String | ParamType::Date => "str",
        ParamType::Int | ParamType::BigInt => "int",
        ParamType::Float => "float",
        ParamType::Boolean => "bool",
        ParamType::DateTime => "Union[str, int]",
    }
}

fn api_fns(out: &mut String, api: &ConsumptionApi, columns: Option<&Vec<(String, String)>>) {
    let f = super::api_fn(&api.name).py;
    let p = pascal(&api.name);
    let mut args = vec!["client: Client".to_string()];
    let mut async_args = vec!["client: AsyncClient".to_string()];
    let mut pass = Vec::new();
    let mut params: Vec<_> = api.params.iter().filter(|p| p.default.is_none()).collect();
    params.extend(api.params.iter().filter(|p| p.default.is_some()));
    for q in params {
        let arg = match &q.default {
            None => format!("{}: {}", q.name, param_type(q.ty)),
            Some(_) => format!("{}: Union[{}, None] = None", q.name, param_type(q.ty)),
        };
        args.push(arg.clone());
        async_args.push(arg);
        pass.push(format!("{n:?}: {n}", n = q.name));
    }
    let doc = api.doc.clone().unwrap_or_else(|| format!("apis/{}.sql", api.name));
    let _ = write!(
        out,
        "\n{}\n\n\ndef {f}({}) -> list[{p}Row]:\n    \"\"\"GET /consumption/{name}: {doc}\"\"\"\n    return cast(\"list[{p}Row]\", client.query({name:?}, {{{}}}))\n\n\nasync def {f}_async({}) -> list[{p}Row]:\n    return cast(\"list[{p}Row]\", await client.query({name:?}, {{{}}}))\n\n",
        row_type(&p, columns),
        args.join(", "),
        pass.join(", "),
        async_args.join(", "),
        pass.join(", "),
        name = api.name,
        doc = doc.replace('"', "'"),
    );
}

/// `class XRow(TypedDict)` from described columns, else `XRow = dict[str, Any]`.
fn row_type(name: &str, columns: Option<&Vec<(String, String)>>) -> String {
    let valid = |c: &str| {
        c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') && !c.starts_with(|ch: char| ch.is_ascii_digit())
    };
    match columns {
        Some(cols) if !cols.is_empty() && cols.iter().all(|(c, _)| valid(c)) => {
            let mut s = format!("class {name}Row(TypedDict):\n");
            for (c, ty) in cols {
                s += &format!("    {c}: {}\n", super::ch_type(ty, super::Lang::Py));
            }
            s.trim_end().to_string()
        }
        _ => format!("{name}Row = dict[str, Any]"),
    }
}
