//! `igloo-bench-validate`: what reading and validating a reference event costs ingest, against
//! the same work on the event read whole into a JSON value (what transforms' outputs still go
//! through), in the same run. One thread, no I/O: nanoseconds per event, the median of rounds
//! that alternate between the two. Three event shapes: the reference benchmark's (values with
//! three decimals), values in full precision (17 digits, as a sensor's doubles print), and the
//! reference's with a space after each comma and colon (Python's `json.dumps` default).
//! Then what the table writer's RowBinary encoding of the rows ingest made costs per event.

use std::time::Instant;

use clap::Parser;
use igloo_bench::{event, tag};
use igloo_schemas::sql::ChType;
use igloo_schemas::{check, SourceFile};
use igloo_server::strict_json::{self, Record};
use igloo_server::validate::{validate_object, validate_record, Context};
use igloo_server::writer::RowEncoder;

#[derive(Parser)]
struct Args {
    /// Rounds of each path (each round reads every event once).
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Events in the batch (one JSON array).
    #[arg(long, default_value_t = 1000)]
    events: u64,
}

const SCHEMA: &str = include_str!("../../templates/timeseries/schema/measurement.prisma");

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let files = [SourceFile::new("measurement.prisma", SCHEMA)];
    let (ir, diagnostics) = check(&files);
    anyhow::ensure!(!diagnostics.has_errors(), "{}", diagnostics.render(&files));
    let model = ir.model("Measurement").expect("the template's model");
    let mut uuid = || String::new();
    let mut ctx = Context { now: chrono::Utc::now(), uuid: &mut uuid };

    let reference: Vec<String> = (0..a.events).map(|i| event(i, &tag(i))).collect();
    let full: Vec<String> = (0..a.events)
        .map(|i| {
            let values: Vec<String> = (0..10).map(|k| (((i * 10 + k) as f64 + 0.5).sqrt() * 1e3).to_string()).collect();
            format!(
                "{{\"time\":{},\"tag\":\"{}\",\"values\":[{}]}}",
                1_700_000_000_000_000_000u64 + i,
                tag(i),
                values.join(",")
            )
        })
        .collect();

    let mut encodings = Vec::new();
    println!("| event | read whole into a value, then validated | ingest's reading and validation | ratio |");
    println!("|---|---|---|---|");
    // As Python's `json.dumps` writes by default: a space after each comma and colon.
    let spaced: Vec<String> = reference.iter().map(|e| e.replace(',', ", ").replace(':', ": ")).collect();
    for (name, events) in
        [("reference (3 decimals)", &reference), ("full-precision values", &full), ("reference, with spaces", &spaced)]
    {
        let body = format!("[{}]", events.join(","));
        // Both paths accept every event and make rows with the same keys and values.
        let whole = whole_value(&ir, model, &body, &mut ctx);
        let ingest = ingest_path(&ir, model, &body, &mut ctx);
        anyhow::ensure!(whole.len() == events.len() && ingest.len() == events.len(), "an event was refused");
        for (w, i) in whole.iter().zip(&ingest) {
            let parsed = |t: &str| serde_json::from_str::<serde_json::Value>(t).expect("a row is JSON");
            anyhow::ensure!(w.key == i.key && parsed(&w.row) == parsed(&i.row), "rows differ: {} / {}", w.row, i.row);
        }
        let (mut a_ns, mut b_ns) = (Vec::new(), Vec::new());
        for _ in 0..a.rounds {
            let t = Instant::now();
            std::hint::black_box(whole_value(&ir, model, &body, &mut ctx));
            a_ns.push(t.elapsed().as_nanos() as f64 / events.len() as f64);
            let t = Instant::now();
            std::hint::black_box(ingest_path(&ir, model, &body, &mut ctx));
            b_ns.push(t.elapsed().as_nanos() as f64 / events.len() as f64);
        }
        let (a_med, b_med) = (median(&mut a_ns), median(&mut b_ns));
        println!("| {name} | {a_med:.0} ns | {b_med:.0} ns | {:.2} |", b_med / a_med);
        encodings.push((name, ingest));
    }

    // The table writer: each row ingest made, as RowBinary (what it inserts into ClickHouse).
    let columns: Vec<(String, ChType)> =
        model.fields.iter().map(|f| (f.column.clone(), ChType::of_field(&f.ty, &ir))).collect();
    let encoder = RowEncoder::new(&columns).expect("the template's columns have a RowBinary form");
    println!();
    println!("| rows ingest made from the event | the table writer's RowBinary encoding |");
    println!("|---|---|");
    for (name, rows) in &encodings {
        let mut out = Vec::new();
        let mut ns = Vec::new();
        for _ in 0..a.rounds {
            out.clear();
            let t = Instant::now();
            for (offset, r) in rows.iter().enumerate() {
                anyhow::ensure!(encoder.encode(&r.row, 0, offset as i64, None, &mut out), "a row was not encoded");
            }
            std::hint::black_box(&out);
            ns.push(t.elapsed().as_nanos() as f64 / rows.len() as f64);
        }
        println!("| {name} | {:.0} ns |", median(&mut ns));
    }
    Ok(())
}

type Row = igloo_server::kafka::wire::KeyedRow;

fn whole_value(ir: &igloo_schemas::Ir, model: &igloo_schemas::ir::Model, body: &str, ctx: &mut Context) -> Vec<Row> {
    let serde_json::Value::Array(items) = strict_json::parse(body.as_bytes()).expect("valid JSON") else {
        return Vec::new();
    };
    items.iter().enumerate().filter_map(|(i, v)| validate_record(ir, model, v, i, ctx).ok()).collect()
}

fn ingest_path(ir: &igloo_schemas::Ir, model: &igloo_schemas::ir::Model, body: &str, ctx: &mut Context) -> Vec<Row> {
    let records = strict_json::parse_records(body.as_bytes()).expect("valid JSON");
    records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Record::Object(fields) => validate_object(ir, model, fields, i, ctx).ok(),
            Record::Other(_) => None,
        })
        .collect()
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
