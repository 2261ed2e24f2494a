//! `igloo keys create | list | revoke`: the server's API keys, kept in the project's
//! ClickHouse database (`_igloo_keys`) where every replica reads them. A key is printed once;
//! only a salted argon2id hash of its secret is stored.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use igloo_server::auth::keys::{self, KeyRecord, KeyScope, KeysTable};
use igloo_server::config::{InfraMode, Project};
use serde_json::json;

use crate::dev::engines::{connect_clickhouse, resolve_mode};
use crate::ui;

/// Manage the API keys of `igloo serve` (server.auth: required)
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    /// Where the engines are: native, docker or external (default: igloo.yaml's infra.mode).
    #[arg(long, global = true)]
    pub mode: Option<InfraMode>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create a key and print it (once)
    #[command(
        after_help = "Examples:\n  igloo keys create --name shop-frontend --scope ingest --model PageView --rate 100/s\n  igloo keys create --name dashboards --scope query --api top_pages --expires 30d\n  igloo --env prod keys create --name ops --scope admin\n\nClients send it as `Authorization: Bearer <key>`. Scopes: ingest (POST /ingest), query (samples,\nconsumption APIs, export, subscribe), admin (everything, with /console, /metrics, /openapi.json)."
    )]
    Create(CreateArgs),
    /// List the keys: name, scope, limits, state (never the keys themselves)
    List {
        /// As JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: every server refuses it within seconds
    Revoke {
        /// The key's name (or id).
        name: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// A name to list and revoke it by (unique among current keys).
    #[arg(long)]
    pub name: String,
    #[arg(long, value_parser = ["ingest", "query", "admin"])]
    pub scope: String,
    /// Only these models (repeat; default: all).
    #[arg(long = "model", value_name = "MODEL")]
    pub models: Vec<String>,
    /// Only these consumption APIs, for the query scope (repeat; default: all).
    #[arg(long = "api", value_name = "API")]
    pub apis: Vec<String>,
    /// Requests per second, per server process: `100/s` or `100` (default: unlimited).
    #[arg(long, value_name = "N/s")]
    pub rate: Option<String>,
    /// Refuse it after this long: `90m`, `12h`, `30d` (default: never).
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
}

struct Ctx {
    table: KeysTable,
    rt: tokio::runtime::Runtime,
}

impl Ctx {
    fn keys(&self) -> anyhow::Result<Vec<KeyRecord>> {
        Ok(self.rt.block_on(keys::load(&self.table.clickhouse, &self.table.database))?)
    }
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let mode = args.mode.unwrap_or_else(|| resolve_mode(&project));
    let ch = connect_clickhouse(&project, mode).context("igloo keys needs the project's ClickHouse")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let table = KeysTable {
        clickhouse: ch.clickhouse.client().clone(),
        database: project.config.database(),
        dialect: ch.dialect,
        cluster: ch.cluster,
    };
    rt.block_on(async {
        let create_db = igloo_schemas::sql::Statement::CreateDatabase(igloo_schemas::sql::CreateDatabase {
            name: table.database.clone(),
        });
        table.clickhouse.execute_all(create_db.render_for(table.dialect, table.cluster.as_ref())).await?;
        table.create().await
    })
    .context("cannot create the keys table")?;
    let ctx = Ctx { table, rt };
    match args.action {
        Action::Create(args) => create(&ctx, &project, args),
        Action::List { json } => list(&ctx, json),
        Action::Revoke { name, yes } => revoke(&ctx, &name, yes),
    }
}

fn create(ctx: &Ctx, project: &Project, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let CreateArgs { name, scope, models, apis, rate, expires } = args;
    let scope: KeyScope = scope.parse().map_err(anyhow::Error::msg)?;
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        bail!("--name must be 1 to 100 characters without control characters");
    }
    let rate = match rate {
        None => 0.0,
        Some(r) => match r.trim_end_matches("/s").parse::<f64>() {
            Ok(n) if n > 0.0 && n.is_finite() => n,
            _ => bail!("--rate `{r}` must be a positive number of requests per second, e.g. `100/s`"),
        },
    };
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let expires_at = match &expires {
        None => 0,
        Some(e) => match igloo_schemas::duration_ms(e) {
            Some(ms) => now + ms / 1000,
            None => bail!("--expires `{e}` must be a duration like `90m`, `12h` or `30d`"),
        },
    };
    if !apis.is_empty() && scope != KeyScope::Query {
        bail!("--api narrows a query key; this key's scope is {scope}");
    }
    let checked = crate::project_check::check_project(project, None)?;
    let known_models: Vec<&str> = checked.ir.models.iter().map(|m| m.name.as_str()).collect();
    if let Some(m) = models.iter().find(|m| !known_models.contains(&m.as_str())) {
        bail!("--model `{m}` is not a model of the schema ({})", known_models.join(", "));
    }
    let known_apis: Vec<&str> = checked.apis.iter().map(|a| a.name.as_str()).collect();
    if let Some(a) = apis.iter().find(|a| !known_apis.contains(&a.as_str())) {
        bail!(
            "--api `{a}` is not an API of apis/ ({})",
            if known_apis.is_empty() { "none".into() } else { known_apis.join(", ") }
        );
    }
    if ctx.keys()?.iter().any(|k| k.name == name && !k.revoked) {
        bail!("a key named `{name}` exists; revoke it first (`igloo keys revoke {name}`) or choose another name");
    }
    let key = keys::generate()?;
    let row = json!({
        "id": key.id, "name": name, "scope": scope.to_string(), "models": models, "apis": apis,
        "rate": rate, "expires_at": expires_at, "hash": key.hash, "revoked": 0,
    });
    ctx.rt.block_on(ctx.table.append(&[row])).context("cannot store the key")?;
    eprintln!(
        "✓ created key `{name}` ({}); servers accept it within {} s. It is shown this once, store it now:",
        describe(scope, &models, &apis, rate, expires_at),
        keys::REFRESH.as_secs() + 1
    );
    println!("{}", key.token);
    Ok(ExitCode::SUCCESS)
}

fn describe(scope: KeyScope, models: &[String], apis: &[String], rate: f64, expires_at: u64) -> String {
    let mut parts = vec![scope.to_string()];
    if !models.is_empty() {
        parts.push(format!("models {}", models.join(", ")));
    }
    if !apis.is_empty() {
        parts.push(format!("APIs {}", apis.join(", ")));
    }
    if rate > 0.0 {
        parts.push(format!("{rate}/s"));
    }
    if expires_at > 0 {
        parts.push(format!("expires {}", ui::utc(expires_at)));
    }
    parts.join("; ")
}

fn list(ctx: &Ctx, as_json: bool) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let keys = ctx.keys()?;
    let state = |k: &KeyRecord| {
        if k.revoked {
            "revoked"
        } else if k.expires_at != 0 && k.expires_at <= now {
            "expired"
        } else {
            "active"
        }
    };
    if as_json {
        for k in &keys {
            let line = json!({
                "name": k.name, "id": k.id, "scope": k.scope, "models": k.models, "apis": k.apis,
                "rate": k.rate, "expires_at": k.expires_at, "created": k.created, "state": state(k),
            });
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if keys.is_empty() {
        eprintln!("no keys yet; create one with `igloo keys create --name NAME --scope ingest|query|admin`");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.name.clone(),
                k.id.clone(),
                describe(k.scope, &k.models, &k.apis, k.rate, k.expires_at),
                ui::utc(k.created),
                state(k).to_string(),
            ]
        })
        .collect();
    ui::print_table(&["NAME", "ID", "GRANTS", "CREATED", "STATE"], &rows);
    Ok(ExitCode::SUCCESS)
}

fn revoke(ctx: &Ctx, name: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let keys = ctx.keys()?;
    let Some(key) = keys.iter().find(|k| !k.revoked && (k.name == name || k.id == name)) else {
        let current: Vec<&str> = keys.iter().filter(|k| !k.revoked).map(|k| k.name.as_str()).collect();
        bail!(
            "no current key named `{name}` (current: {})",
            if current.is_empty() { "none".into() } else { current.join(", ") }
        );
    };
    let question = format!("Revoke key `{}` ({})? Clients using it are refused from now on.", key.name, key.scope);
    let confirmed = if yes {
        true
    } else if ui::interactive() {
        dialoguer::Confirm::new().with_prompt(&question).default(false).interact()?
    } else {
        bail!("{question} Pass --yes to confirm when not on a terminal");
    };
    if !confirmed {
        eprintln!("not revoked");
        return Ok(ExitCode::FAILURE);
    }
    let row = json!({
        "id": key.id, "name": "", "scope": "", "models": [], "apis": [],
        "rate": 0.0, "expires_at": 0, "hash": "", "revoked": 1,
    });
    ctx.rt.block_on(ctx.table.append(&[row])).context("cannot record the revocation")?;
    eprintln!("✓ revoked `{}`; every server refuses it within {} s", key.name, keys::REFRESH.as_secs() + 1);
    Ok(ExitCode::SUCCESS)
}
