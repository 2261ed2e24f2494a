//! The `igloo` command line: one module per command under [`commands`], each with its clap
//! arguments and a short `run` that calls library code. Knows nothing of HTTP handlers.

pub mod commands;
pub mod deploy;
pub mod dev;
pub mod infra;
pub mod project_check;
pub mod schema_files;
pub mod sdk;
pub mod sql_files;
pub mod templates;
pub mod ui;
