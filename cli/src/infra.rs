//! Local engines igloo runs for a project, and the clients igloo uses to reach any engine:
//! native child processes (`process`, `clickhouse`, `broker`), the Kafka admin client
//! (`kafka`).

pub mod broker;
pub mod clickhouse;
pub mod process;
