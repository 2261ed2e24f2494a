//! `igloo generate sdk`: the project's typed SDK module, from the schema and `apis/`.
//! `igloo generate dockerfile`: the Dockerfile `igloo build` uses, into the project to edit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use igloo_server::config::Project;

use crate::sdk::{module_path, write, Lang};

/// Generate code from the schema
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Typed model types and functions for ingest, samples and consumption APIs
    #[command(
        after_help = "Examples:\n  igloo generate sdk                 # igloo.yaml's language, into sdk/\n  igloo generate sdk --lang py --out src/\n\nThe module imports the runtime package: `npm install <igloo>/sdk-ts` or `pip install <igloo>/sdk-py`.\n`igloo dev` rewrites it on every save."
    )]
    Sdk {
        /// Language (default: igloo.yaml's `language`).
        #[arg(long, value_enum)]
        lang: Option<Lang>,
        /// Directory to write the module to (default: the project's sdk/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// The Dockerfile `igloo build` uses, written into the project to customise
    #[command(
        after_help = "Examples:\n  igloo generate dockerfile\n  igloo generate dockerfile --base-image registry.example.com/debian:bookworm --force\n\nOnce the project has a Dockerfile, `igloo build` builds with it."
    )]
    Dockerfile {
        /// The image to build on: Debian bookworm or newer.
        #[arg(long, env = "IGLOO_BASE_IMAGE", default_value = super::build::DEFAULT_BASE_IMAGE)]
        base_image: String,
        /// Replace an existing Dockerfile.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let (lang, out) = match args.what {
        What::Sdk { lang, out } => (lang, out),
        What::Dockerfile { base_image, force } => return dockerfile(cwd, &base_image, force),
    };
    let project = Project::discover(cwd)?;
    let checked = crate::project_check::check_project(&project, None)?;
    checked.ensure_valid("the project has errors; `igloo check` lists them")?;
    let lang = lang.unwrap_or_else(|| crate::sdk::project_lang(&project));
    let dir = out.map(|d| cwd.join(d)).unwrap_or_else(|| project.root.join("sdk"));
    let path = module_path(&dir, &project.config.name, lang);
    let apis = &checked.apis;
    // Result rows are typed from ClickHouse's description of each API, when engines run.
    let columns = match crate::dev::engines::connect(&project, crate::dev::engines::resolve_mode(&project)) {
        Ok(endpoints) => crate::sdk::describe(&endpoints.clickhouse, &project.config.database(), apis),
        Err(_) => Default::default(),
    };
    let changed =
        write(&path, &checked.ir, apis, &columns, lang).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{} {}", if changed { "✓ wrote" } else { "✓ unchanged:" }, path.display());
    if columns.len() < apis.len() {
        println!("  note: result rows of APIs ClickHouse could not describe are generic records; with `igloo dev` running they are typed");
    }
    Ok(ExitCode::SUCCESS)
}

fn dockerfile(cwd: &Path, base_image: &str, force: bool) -> anyhow::Result<ExitCode> {
    let project = Project::discover(cwd)?;
    let path = project.root.join("Dockerfile");
    if path.exists() && !force {
        anyhow::bail!("{} exists; pass --force to replace it", path.display());
    }
    std::fs::write(&path, super::build::dockerfile(&project, base_image)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("✓ wrote {} (based on {base_image}); `igloo build` now builds with it", path.display());
    Ok(ExitCode::SUCCESS)
}
