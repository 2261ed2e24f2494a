//! igloo's runtime. Knows nothing of clap or terminals: it takes typed configuration and runs.
//! Today it owns the project configuration; the ingest server, table writer and query API
//! will live here too.

pub mod config;
pub mod validate;
