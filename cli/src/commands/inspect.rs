//! `igloo ls`, `igloo peek` and `igloo query`: look inside a project and its running engines.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use igloo_schemas::plan::format_retention;
use igloo_schemas::Ir;
use igloo_server::config::Project;
use igloo_server::peek::latest_messages;

use crate::dev::engines::{connect, resolve_mode, Endpoints};
use crate::ui::print_table;

/// List the models with their ingest route, topic and table
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  igloo ls\n  igloo ls --json")]
pub struct LsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Show a model's latest rows (or its topic's latest messages)
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo peek Measurement\n  igloo peek Measurement -n 50\n  igloo peek Measurement --topic   # the messages, before the table writer"
)]
pub struct PeekArgs {
    pub model: String,
    /// How many rows or messages.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub count: usize,
    /// Read the model's topic instead of its table.
    #[arg(long)]
    pub topic: bool,
}

/// Run SQL against the project's ClickHouse
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  igloo query \"SELECT tag, count() FROM Measurement GROUP BY tag\"\n  igloo query \"SELECT * FROM Measurement LIMIT 5\" --format json\n\nThe project's database is the default database."
)]
pub struct QueryArgs {
    pub sql: String,
    /// Output format.
    #[arg(long, value_parser = ["table", "json", "csv"], default_value = "table")]
    pub format: String,
}

fn load(cwd: &Path) -> anyhow::Result<(Project, Ir)> {
    let project = Project::discover(cwd)?;
    let checked = crate::project_check::check_project(&project, None)?;
    checked.ensure_valid("the schema has errors; `igloo check` lists them")?;
    Ok((project, checked.ir))
}

fn engines(project: &Project) -> anyhow::Result<Endpoints> {
    connect(project, resolve_mode(project)).context("this needs the running engines")
}

pub fn ls(args: LsArgs, cwd: &Path) -> anyhow::Result<ExitCode> {
    let (project, ir) = load(cwd)?;
    let db = project.config.database();
    let (transforms, _) = igloo_server::transform::discover(&project.root.join("transforms"), &ir);
    let rows: Vec<serde_json::Value> = ir
        .models
        .iter()
        .map(|m| {
            let mut routes: Vec<String> = if m.ingest { vec![format!("POST /ingest/{}", m.name)] } else { vec![] };
            let samples = format!("{}.samples", m.name);
            for (path, target) in &project.config.server.routes {
                if *target == m.name {
                    routes.push(format!("POST {path}"));
                } else if *target == samples {
                    routes.push(format!("GET {path}"));
                }
            }
            if m.timeseries.is_some() {
                routes.push(format!("GET /api/{}/samples", m.name));
            }
            if ir.filled_by_view(&m.name) {
                routes.push(format!("filled by views/{}.sql", m.name));
            }
            for t in transforms.iter().filter(|t| t.destination == m.name) {
                let file = t.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                routes.push(format!("written by transforms/{file}"));
            }
            serde_json::json!({
                "model": m.name,
                "routes": routes,
                "topic": m.topic.name,
                "partitions": m.topic.partitions,
                "retention": format_retention(m.topic.retention_ms),
                "table": format!("{db}.{}", m.table),
            })
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let routes =
                r["routes"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ");
            let topic = format!(
                "{} ({} partitions, {})",
                r["topic"].as_str().unwrap(),
                r["partitions"],
                r["retention"].as_str().unwrap()
            );
            vec![
                r["model"].as_str().unwrap().to_string(),
                if routes.is_empty() { "-".into() } else { routes },
                topic,
                r["table"].as_str().unwrap().to_string(),
            ]
        })
        .collect();
    print_table(&["MODEL", "ROUTES", "TOPIC", "TABLE"], &table);
    Ok(ExitCode::SUCCESS)
}

pub fn peek(args: PeekArgs, cwd: &Path) -> anyhow::Result<ExitCode> {
    let (project, ir) = load(cwd)?;
    let Some(model) = ir.model(&args.model) else {
        let known = ir.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
        bail!("unknown model `{}`; the models are {known}", args.model);
    };
    let endpoints = engines(&project)?;
    if args.topic {
        let rows = latest_messages(&endpoints.broker, &model.topic.name, args.count, Duration::from_secs(10))?;
        if rows.is_empty() {
            println!("(topic {} is empty)", model.topic.name);
        }
        for r in rows {
            println!("{}/{} {}", r.partition, r.offset, r.row);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let columns: Vec<String> = model.fields.iter().map(|f| f.column.clone()).collect();
    let sql = igloo_schemas::sql::latest_rows(&project.config.database(), &model.table, &columns, args.count);
    print!("{}", endpoints.clickhouse.execute(&sql)?);
    Ok(ExitCode::SUCCESS)
}

pub fn query(args: QueryArgs, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let endpoints = engines(&project)?;
    let format = match args.format.as_str() {
        "json" => "JSONEachRow",
        "csv" => "CSVWithNames",
        _ => "TabSeparatedWithNames",
    };
    let sql = format!("{} FORMAT {format}", args.sql.trim().trim_end_matches(';'));
    let out = endpoints.clickhouse.execute_in(&project.config.database(), &sql)?;
    if args.format != "table" {
        print!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut lines = out.lines().map(|l| l.split('\t').map(unescape_tsv).collect::<Vec<_>>());
    let header = lines.next().unwrap_or_default();
    let rows: Vec<Vec<String>> = lines.collect();
    print_table(&header.iter().map(String::as_str).collect::<Vec<_>>(), &rows);
    eprintln!("({} rows)", rows.len());
    Ok(ExitCode::SUCCESS)
}

fn unescape_tsv(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}
