//! User transforms: functions in `transforms/<Source>__<Destination>.ts|.py` that turn each
//! record of one model into zero, one or many records of another.
//!
//! - `spec`: which files are transforms and whether their models exist (no IO but listing).
//! - `protocol`: the frames exchanged with a worker process over its stdin/stdout.
//! - `worker`: one worker process (Node.js with tsx, or Python 3): start, load check, batches.
//! - `runner`: one slot of a transform: its share of the source partitions, a worker, and the
//!   loop consume → transform → validate → produce → commit.
//! - `set`: the running transforms, started, reloaded and stopped as files change.
//!
//! **Delivery: at least once, nothing lost.** A slot commits a source offset to the broker only
//! after the broker acknowledged every output of the records before it (and every
//! dead-lettered record). A crash between the acknowledgement and the commit replays that
//! batch: its outputs can reach the destination topic twice. The destination's table writer
//! then writes each of its topic's messages exactly once.

pub mod protocol;
pub mod runner;
pub mod set;
pub mod spec;
pub mod worker;

pub use set::{TransformReport, Transforms};
pub use spec::{discover, TransformSpec};
