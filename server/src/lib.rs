//! igloo's runtime. Knows nothing of clap or terminals: it takes typed configuration and runs
//! the ingest API (`ingest`: validate, produce, acknowledge) and one table writer per model
//! (`writer`: topic → ClickHouse, exactly once), assembled in `runtime`.

pub mod api_error;
pub mod app_state;
pub mod auth;
pub mod backoff;
pub mod clickhouse;
pub mod config;
pub mod console;
pub mod dlq;
pub mod http;
pub mod ingest;
pub mod kafka;
pub mod metrics;
pub mod openapi;
pub mod peek;
pub mod query_api;
pub mod roles;
pub mod runtime;
pub mod samples;
pub mod strict_json;
pub mod subscribe;
pub mod tls;
pub mod transform;
pub mod validate;
pub mod writer;
