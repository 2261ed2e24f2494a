//! Local engines igloo runs for a project. Today: a native ClickHouse server as a child
//! process; the broker and `igloo dev` build on this.

pub mod clickhouse;
