//! `igloo import prisma`: an application's Prisma schema → an igloo schema, with a report of
//! every change. The conversion itself is `igloo_schemas::import`; this reads and writes files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use igloo_schemas::import::{import_prisma, ImportError, ImportOptions};
use igloo_schemas::{Dialect, SourceFile};

/// Bring schemas from other tools into igloo
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub from: From,
}

#[derive(Debug, clap::Subcommand)]
pub enum From {
    /// Convert a Prisma schema (a schema.prisma file, or a prismaSchemaFolder directory) into
    /// an igloo schema that passes `igloo check`, printing a report of every change
    #[command(
        after_help = "Examples:\n  igloo import prisma ../app/prisma/schema.prisma --out schema/app.prisma\n  igloo import prisma ../app/prisma/schema/ --models Order,PageView --out schema/app.prisma\n  igloo import prisma schema.prisma > app.prisma      # the schema on stdout, the report on stderr\n\nWhat changes: datasource/generator/view/type blocks are left out; relation fields go and their\nkey fields stay; native types map to ClickHouse types; cuid()/autoincrement() defaults become\nuuid() or a value the client sends; @updatedAt becomes @default(now()); the first @@index leads\nthe sorting key. The report lists every change, and models that may not belong in analytics."
    )]
    Prisma {
        /// A `.prisma` file, or a directory of them (Prisma's `prismaSchemaFolder` layout).
        path: PathBuf,
        /// Write the igloo schema to this file (default: stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Keep only these models, comma-separated (default: all).
        #[arg(long, value_name = "A,B", value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// ClickHouse version the schema must run on: `current` or e.g. `18.16` (default:
        /// igloo.yaml's clickhouse.target inside a project, else current).
        #[arg(long, value_name = "VERSION")]
        target: Option<Dialect>,
        /// Overwrite --out if it exists.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(args: Args, cwd: &Path) -> anyhow::Result<ExitCode> {
    let From::Prisma { path, out, models, target, force } = args.from;
    let target = target.unwrap_or_else(|| {
        igloo_server::config::Project::discover(cwd).map_or(Dialect::CURRENT, |p| p.config.target())
    });
    let files = crate::schema_files::load_paths(&[cwd.join(&path)], cwd)?;
    let options = ImportOptions { models, dialect: target };
    let imported = match import_prisma(&files, &options) {
        Ok(i) => i,
        Err(ImportError::Syntax(diags)) => {
            eprint!("{}", diags.render(&files));
            anyhow::bail!(
                "{} has syntax errors; fix them (`npx prisma validate` agrees) and import again",
                path.display()
            );
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot import {}", path.display()))),
    };
    eprint!("{}", imported.report.render());
    let out_name = out.as_ref().map_or_else(|| "imported.prisma".to_string(), |o| o.display().to_string());
    let result = [SourceFile::new(out_name.as_str(), imported.schema.as_str())];
    let (_, diags) = igloo_schemas::check_for(&result, target);
    match &out {
        Some(out) => write_out(&cwd.join(out), &imported.schema, force)?,
        None => print!("{}", imported.schema),
    }
    let what =
        format!("{} and {}", crate::ui::plural(imported.models, "model"), crate::ui::plural(imported.enums, "enum"));
    if diags.has_errors() {
        eprint!("{}", diags.render(&result));
        eprintln!(
            "imported {what}, but the result does not pass `igloo check` for ClickHouse {target}: fix the problems above{}. If the source passes `npx prisma validate`, please report it: the import should have handled it",
            if out.is_some() { " in the written file" } else { "" }
        );
        return Ok(ExitCode::FAILURE);
    }
    let into = out.map_or_else(|| "stdout".to_string(), |o| o.display().to_string());
    eprintln!(
        "✓ imported {what} into {into}; it passes `igloo check` for ClickHouse {target}{}",
        match diags.warnings().len() {
            0 => String::new(),
            n => format!(" ({})", crate::ui::plural(n, "warning")),
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn write_out(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        anyhow::bail!("{} exists; pass --force to overwrite it", path.display());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
