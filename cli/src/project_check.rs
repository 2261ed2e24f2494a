//! The one project-check path, shared by the commands (`check`, `plan`, `generate`, `serve`,
//! `ls`, `test`, `init`) and `igloo dev`: read the schema files, check them for a ClickHouse
//! version, attach `views/`, load `apis/`, find the transforms — and report what is wrong.

use std::path::PathBuf;

use crate::schema_files::SchemaFilesError;
use crate::ui::plural;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Config(#[from] igloo_server::config::ConfigError),
    #[error(transparent)]
    Files(#[from] SchemaFilesError),
    /// The project has errors (already printed).
    #[error("{0}")]
    Invalid(String),
}

/// A checked schema: the files read, the IR and every diagnostic.
pub struct Checked {
    pub files: Vec<igloo_schemas::SourceFile>,
    pub ir: igloo_schemas::Ir,
    pub diags: igloo_schemas::Diagnostics,
    pub target: igloo_schemas::Dialect,
    /// Problems in the project's `views/*.sql` files (checked only for a valid schema).
    pub view_errors: Vec<igloo_schemas::consumption::ApiFileError>,
    /// Problems in the project's `apis/*.sql` files.
    pub api_errors: Vec<igloo_schemas::consumption::ApiFileError>,
    /// The valid APIs of `apis/`.
    pub apis: Vec<igloo_schemas::consumption::ConsumptionApi>,
    /// Files of `transforms/` named like transforms that cannot be (unknown model, …).
    pub transform_errors: Vec<igloo_server::transform::spec::SpecError>,
}

/// Reads the schema files (explicit `paths`, else the project's `schema/`) and checks them
/// for `target` (else the project's configured target).
pub fn load_and_check(
    cwd: &std::path::Path,
    paths: &[PathBuf],
    target: Option<igloo_schemas::Dialect>,
) -> Result<(Option<igloo_server::config::Project>, Checked), CheckError> {
    if paths.is_empty() {
        let project = igloo_server::config::Project::discover(cwd)?;
        let checked = check_project(&project, Some(target.unwrap_or_else(|| project.config.target())))?;
        return Ok((Some(project), checked));
    }
    let files = crate::schema_files::load_paths(&paths.iter().map(|p| cwd.join(p)).collect::<Vec<_>>(), cwd)?;
    let target = target.unwrap_or(igloo_schemas::Dialect::CURRENT);
    let (ir, diags) = igloo_schemas::check_for(&files, target);
    Ok((
        None,
        Checked {
            files,
            ir,
            diags,
            target,
            view_errors: Vec::new(),
            api_errors: Vec::new(),
            apis: Vec::new(),
            transform_errors: Vec::new(),
        },
    ))
}

/// Reads a project's `schema/` and checks it, against `target` when given (else without the
/// version checks, shown as the project's target).
pub fn check_project(
    project: &igloo_server::config::Project,
    target: Option<igloo_schemas::Dialect>,
) -> Result<Checked, SchemaFilesError> {
    let files = crate::schema_files::load_dir(&project.schema_dir(), &project.root)?;
    let (ir, diags) = match target {
        Some(t) => igloo_schemas::check_for(&files, t),
        None => igloo_schemas::check(&files),
    };
    let (mut ir, diags) = (ir.with_topic_prefix(&project.config.broker.topic_prefix), diags);
    let mut view_errors = Vec::new();
    if !diags.has_errors() {
        view_errors = crate::sql_files::attach_views(&project.root, &mut ir);
    }
    let (apis, api_errors) = crate::sql_files::load(&project.root);
    let transform_errors = if diags.has_errors() {
        Vec::new()
    } else {
        igloo_server::transform::discover(&project.root.join("transforms"), &ir).1
    };
    let target = target.unwrap_or_else(|| project.config.target());
    Ok(Checked { files, ir, diags, target, view_errors, api_errors, apis, transform_errors })
}

impl Checked {
    /// Problems of `views/` and `apis/`.
    pub fn sql_errors(&self) -> impl Iterator<Item = &igloo_schemas::consumption::ApiFileError> {
        self.view_errors.iter().chain(&self.api_errors)
    }

    fn has_errors(&self) -> bool {
        self.diags.has_errors() || self.sql_errors().next().is_some() || !self.transform_errors.is_empty()
    }

    /// Prints the diagnostics and fails with `message` when the project has errors.
    pub fn ensure_valid(&self, message: &str) -> Result<(), CheckError> {
        if self.has_errors() {
            eprintln!("{}", self.diags.render(&self.files));
            for e in self.sql_errors() {
                eprintln!("error: {e}");
            }
            for e in &self.transform_errors {
                eprintln!("error: {e}");
            }
            return Err(CheckError::Invalid(message.to_string()));
        }
        Ok(())
    }
}

/// Prints diagnostics to stderr and a one-line summary; true when there were errors.
pub fn report(checked: &Checked) -> bool {
    let d = &checked.diags;
    if !d.is_empty() {
        eprintln!("{}", d.render(&checked.files));
    }
    for e in checked.sql_errors() {
        eprintln!("error: {e}");
    }
    for e in &checked.transform_errors {
        eprintln!("error: {e}");
    }
    let (errors, warnings) =
        (d.errors().len() + checked.sql_errors().count() + checked.transform_errors.len(), d.warnings().len());
    if errors > 0 {
        eprintln!("✗ {} in {}", counts(errors, warnings), plural(checked.files.len(), "file"));
    } else {
        eprintln!(
            "✓ {}, {} in {} (ClickHouse {}){}",
            plural(checked.ir.models.len(), "model"),
            plural(checked.ir.enums.len(), "enum"),
            plural(checked.files.len(), "file"),
            checked.target,
            if warnings > 0 { format!(", {}", plural(warnings, "warning")) } else { String::new() }
        );
    }
    errors > 0
}

fn counts(errors: usize, warnings: usize) -> String {
    if warnings == 0 {
        plural(errors, "error")
    } else {
        format!("{}, {}", plural(errors, "error"), plural(warnings, "warning"))
    }
}
