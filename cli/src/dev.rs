//! `igloo dev`'s machinery: engines for every infra mode, observe/plan/apply, the state file
//! other commands read, and the watch loop that keeps the engines in step with the schema.

pub mod engines;
pub mod lock;
pub mod migrate;
pub mod server;
pub mod state;
pub mod watch;
