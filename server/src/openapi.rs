//! `GET /openapi.json`: an OpenAPI 3.0 document of every route the running project serves —
//! ingest, alias routes, time-series samples, consumption APIs, exports and subscriptions —
//! built from the IR, the routes and the APIs currently loaded (so it follows hot reloads).

use std::collections::BTreeMap;

use igloo_schemas::consumption::{ConsumptionApi, ParamType};
use igloo_schemas::ir::{Arity, BaseType, Field, Ir, Model, ScalarType};
use serde_json::{json, Map, Value};

use crate::app_state::Route;

pub fn document(ir: &Ir, routes: &BTreeMap<String, Route>, apis: &[ConsumptionApi]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for model in &ir.models {
        schemas.insert(model.name.clone(), model_schema(ir, model));
        if model.ingest {
            paths.insert(format!("/ingest/{}", model.name), json!({ "post": ingest_op(model) }));
        }
        paths.insert(format!("/export/{}", model.name), json!({ "get": export_op(model) }));
        paths.insert(format!("/subscribe/{}", model.name), json!({ "get": subscribe_op(model) }));
        if model.timeseries.is_some() {
            paths.insert(format!("/api/{}/samples", model.name), json!({ "get": samples_op(model, false) }));
        }
    }
    for (path, route) in routes {
        let op = match route {
            Route::Ingest(m) => ir.model(m).map(|m| json!({ "post": ingest_op(m) })),
            Route::Samples(m) => ir.model(m).map(|m| json!({ "get": samples_op(m, true) })),
        };
        if let Some(op) = op {
            paths.insert(path.clone(), op);
        }
    }
    for api in apis {
        paths.insert(format!("/consumption/{}", api.name), json!({ "get": consumption_op(api) }));
    }
    for (path, summary) in [
        ("/health", "The server is up."),
        ("/ready", "The broker and ClickHouse answer (503 naming what does not)."),
        ("/metrics", "Prometheus metrics."),
    ] {
        paths.insert(
            path.into(),
            json!({ "get": { "summary": summary, "responses": { "200": { "description": "OK" } } } }),
        );
    }
    schemas.insert(
        "Error".into(),
        json!({ "type": "object", "required": ["error", "details"], "properties": {
            "error": { "type": "string" }, "details": { "type": "array", "items": {} } } }),
    );
    json!({
        "openapi": "3.0.3",
        "info": { "title": "igloo project API", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn model_ref(model: &Model) -> Value {
    json!({ "$ref": format!("#/components/schemas/{}", model.name) })
}

fn model_schema(ir: &Ir, model: &Model) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in &model.fields {
        props.insert(f.name.clone(), field_schema(ir, f));
        if f.ty.arity == Arity::Required && f.default.is_none() {
            required.push(f.name.clone());
        }
    }
    let mut s = json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false });
    if let Some(doc) = &model.doc {
        s["description"] = json!(doc);
    }
    s
}

fn field_schema(ir: &Ir, f: &Field) -> Value {
    let mut base = match &f.ty.base {
        BaseType::Enum(e) => {
            let values: Vec<&str> =
                ir.enum_def(e).map(|e| e.variants.iter().map(|v| v.name.as_str()).collect()).unwrap_or_default();
            json!({ "type": "string", "enum": values })
        }
        BaseType::Scalar(s) => scalar_schema(*s),
    };
    if let Some(doc) = &f.doc {
        base["description"] = json!(doc);
    }
    match f.ty.arity {
        Arity::Required => base,
        Arity::Optional => {
            base["nullable"] = json!(true);
            base
        }
        Arity::List => json!({ "type": "array", "items": base }),
    }
}

fn scalar_schema(s: ScalarType) -> Value {
    match s {
        ScalarType::String | ScalarType::Bytes => json!({ "type": "string" }),
        ScalarType::Boolean => json!({ "type": "boolean" }),
        ScalarType::Int => json!({ "type": "integer", "format": "int32" }),
        ScalarType::BigInt => json!({ "type": "integer", "format": "int64" }),
        ScalarType::Float => json!({ "type": "number", "format": "double" }),
        ScalarType::Decimal => json!({ "oneOf": [{ "type": "number" }, { "type": "string" }] }),
        ScalarType::DateTime => json!({ "type": "string", "format": "date-time" }),
        ScalarType::Date => json!({ "type": "string", "format": "date" }),
        ScalarType::Json => json!({}),
        ScalarType::Uuid => json!({ "type": "string", "format": "uuid" }),
    }
}

fn ingest_op(model: &Model) -> Value {
    let one = model_ref(model);
    json!({
        "summary": format!("Ingest {} events: acknowledged once the broker has them", model.name),
        "parameters": [{ "name": "partial", "in": "query", "schema": { "type": "boolean" },
            "description": "Accept the valid records of a batch and return the rejected ones." },
            { "name": "wait", "in": "query", "schema": { "type": "boolean", "default": true },
            "description": "false: answer 202 once the records are valid and queued, before the broker acknowledges them. Faster and not durable: queued records are lost if the server dies or the broker never acknowledges them." }],
        "requestBody": { "required": true, "content": {
            "application/json": { "schema": { "oneOf": [one, { "type": "array", "items": one }] } },
            "application/x-ndjson": { "schema": one } } },
        "responses": {
            "200": { "description": "Accepted", "content": { "application/json": { "schema": {
                "type": "object", "properties": { "accepted": { "type": "integer" }, "rejected": { "type": "array", "items": {} } } } } } },
            "202": { "description": "Valid and queued, not yet acknowledged (?wait=false)" },
            "400": error("Malformed or invalid records (every bad record is listed)"),
            "413": error("Body too large"),
            "415": error("Unsupported content type or encoding"),
            "503": error("The broker is unavailable; nothing was acknowledged"),
        }
    })
}

fn query_param(name: &str, schema: Value, required: bool, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": required, "schema": schema, "description": description })
}

fn formats() -> Value {
    query_param(
        "format",
        json!({ "type": "string", "enum": ["json", "ndjson", "csv"], "default": "json" }),
        false,
        "Output format; results are streamed.",
    )
}

fn streamed(item: Value) -> Value {
    json!({ "description": "Rows", "content": {
        "application/json": { "schema": { "type": "array", "items": item } },
        "application/x-ndjson": { "schema": item },
        "text/csv": { "schema": { "type": "string" } } } })
}

fn samples_op(model: &Model, reference: bool) -> Value {
    let ts = model.timeseries.as_ref().expect("a time series");
    let series = if reference { ts.series.as_str() } else { "series" };
    let unit = ts.unit.name();
    let mut sample = Map::new();
    sample.insert("time".into(), json!({ "type": "integer", "format": "int64", "description": "End of the period" }));
    for v in &ts.values {
        let field = model.field(v).expect("validated");
        let mut s = json!({ "type": "number" });
        if field.ty.arity == Arity::List {
            s = json!({ "type": "array", "items": s });
        }
        s["nullable"] = json!(true);
        sample.insert(v.clone(), s);
    }
    let mut params = vec![
        query_param(series, json!({ "type": "string" }), true, &format!("The series (`{}`)", ts.series)),
        query_param("start", json!({ "type": "integer", "format": "int64" }), true, &format!("Window start, exclusive ({unit})")),
        query_param("end", json!({ "type": "integer", "format": "int64" }), true, &format!("Window end, inclusive ({unit})")),
        query_param("points", json!({ "type": "integer", "default": 1000, "maximum": 10000, "minimum": 1 }), false, "Number of equal periods"),
        query_param("agg", json!({ "type": "string", "enum": ["last", "min", "max", "avg"], "default": "last" }), false,
            "last: the latest event at or before each period's end (carried forward); min/max/avg: over the period, null when empty"),
    ];
    if reference {
        params.truncate(3);
    }
    let series_key = if reference { format!("{}Name", ts.series) } else { "series".into() };
    json!({
        "summary": format!("Samples of one {} series: one per period, exactly `points` of them", model.name),
        "parameters": params,
        "responses": {
            "200": { "description": "Samples", "content": { "application/json": { "schema": {
                "type": "object", "properties": {
                    series_key: { "type": "string" }, "start": { "type": "integer" }, "end": { "type": "integer" },
                    "samples": { "type": "array", "items": { "type": "object", "properties": sample } } } } } } },
            "400": error("Missing or bad parameter, unknown series"),
        }
    })
}

fn consumption_op(api: &ConsumptionApi) -> Value {
    let mut params: Vec<Value> = api
        .params
        .iter()
        .map(|p| {
            let mut schema = match p.ty {
                ParamType::String => json!({ "type": "string" }),
                ParamType::Int => json!({ "type": "integer", "format": "int32" }),
                ParamType::BigInt => json!({ "type": "integer", "format": "int64" }),
                ParamType::Float => json!({ "type": "number" }),
                ParamType::Boolean => json!({ "type": "boolean" }),
                ParamType::DateTime => {
                    json!({ "type": "string", "description": "epoch seconds or YYYY-MM-DD HH:MM:SS (UTC)" })
                }
                ParamType::Date => json!({ "type": "string", "format": "date" }),
            };
            if let Some(d) = &p.default {
                schema["default"] = json!(d);
            }
            query_param(&p.name, schema, p.default.is_none(), p.doc.as_deref().unwrap_or(""))
        })
        .collect();
    params.push(formats());
    json!({
        "summary": api.doc.clone().unwrap_or_else(|| format!("apis/{}.sql", api.name)),
        "parameters": params,
        "responses": { "200": streamed(json!({ "type": "object" })), "400": error("Bad parameter") },
    })
}

fn export_op(model: &Model) -> Value {
    let mut params = vec![formats()];
    if let Some(ts) = &model.timeseries {
        params.push(query_param(
            "start",
            json!({ "type": "integer" }),
            false,
            &format!("`{}` from (inclusive)", ts.time),
        ));
        params.push(query_param(
            "end",
            json!({ "type": "integer" }),
            false,
            &format!("`{}` until (exclusive)", ts.time),
        ));
    }
    json!({
        "summary": format!("Raw rows of {}, streamed", model.name),
        "parameters": params,
        "responses": { "200": streamed(model_ref(model)), "400": error("Bad parameter") },
    })
}

fn subscribe_op(model: &Model) -> Value {
    let filters: Vec<Value> = model
        .primary_key
        .iter()
        .map(|k| query_param(k, json!({ "type": "string" }), false, "Only records whose key field has this value"))
        .collect();
    json!({
        "summary": format!("New {} records as they are ingested (server-sent events, one `record` event each)", model.name),
        "parameters": filters,
        "responses": { "200": { "description": "An event stream", "content": { "text/event-stream": { "schema": { "type": "string" } } } } },
    })
}
