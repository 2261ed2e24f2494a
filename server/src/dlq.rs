//! The dead-letter queue: records igloo could not deliver, with the reason, kept on the
//! `_igloo_dlq` topic and in the `_igloo_dlq` table (what `igloo peek _igloo_dlq` and the console
//! read). Used by the table writer (rows ClickHouse rejects) and by transforms (records whose
//! code throws, crashes its worker, or returns a record the destination model rejects).

use igloo_schemas::internal::{self, DLQ};
use igloo_schemas::sql::InsertJsonRows;
use igloo_schemas::sql::{Cluster, Statement};
use igloo_schemas::Dialect;

use crate::clickhouse::{ClickHouse, ClickHouseError};
use crate::kafka::producer::Producer;
use crate::kafka::wire::KeyedRow;

/// One record that could not be delivered, and where it came from.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub error: String,
    /// The original record, as read from the topic.
    pub payload: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("cannot send to the dead-letter topic: {0}")]
    Topic(#[source] crate::kafka::producer::ProduceError),
    #[error("cannot write to the dead-letter table {DLQ}: {0}")]
    Table(#[from] ClickHouseError),
}

#[derive(Clone)]
pub struct DeadLetters {
    producer: Producer,
    /// The dead-letter topic (`_igloo_dlq` under the project's topic prefix).
    topic: String,
    ch: ClickHouse,
    database: String,
    dialect: Dialect,
    cluster: Option<Cluster>,
}

impl DeadLetters {
    pub fn new(
        producer: Producer,
        topic: &str,
        ch: ClickHouse,
        database: &str,
        dialect: Dialect,
        cluster: Option<Cluster>,
    ) -> DeadLetters {
        DeadLetters { producer, topic: topic.into(), ch, database: database.into(), dialect, cluster }
    }

    /// Creates the table if it is missing.
    pub async fn ensure_table(&self) -> Result<(), ClickHouseError> {
        let table = Statement::CreateTable(Box::new(internal::dlq_table(&self.database)));
        self.ch.execute_all(table.render_for(self.dialect, self.cluster.as_ref())).await
    }

    /// Ok once the broker acknowledged every letter and ClickHouse stored them.
    pub async fn send(&self, letters: &[DeadLetter]) -> Result<(), DeadLetterError> {
        if letters.is_empty() {
            return Ok(());
        }
        let rows: Vec<KeyedRow> = letters
            .iter()
            .map(|l| {
                let key = format!("{}/{}/{}", l.topic, l.partition, l.offset);
                let row = serde_json::json!({
                    "topic": l.topic, "partition": l.partition, "offset": l.offset,
                    "error": l.error, "payload": l.payload,
                });
                KeyedRow { key, row: row.to_string() }
            })
            .collect();
        self.producer.send_records(&self.topic, &rows).await.map_err(DeadLetterError::Topic)?;
        let columns = internal::DLQ_COLUMNS.map(String::from).to_vec();
        let insert = InsertJsonRows { database: self.database.clone(), table: DLQ.into(), columns }.render();
        let body: String = rows.into_iter().map(|r| r.row + "\n").collect();
        self.ch.insert(&insert, body).await?;
        Ok(())
    }
}
