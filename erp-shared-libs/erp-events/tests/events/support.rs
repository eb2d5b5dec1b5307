//! Fixtures: a migrated database with an effect log, a recording handler whose failures
//! are scripted by the payload, staging helpers, and readers of what is on a topic.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use erp_events::{
    EventHandler, EventMetrics, HandlerError, KafkaConfig, Outbox, ReceivedEvent, Relay,
    RelayConfig,
};
use erp_kit::auth::TenantId;
use erp_proto::erp::events::v1::{EmployeeHired, EventEnvelope};
use erp_testkit::TestDatabase;
use prost::Message as _;
use rdkafka::{
    ClientConfig, Message,
    consumer::{BaseConsumer, Consumer, StreamConsumer},
    message::OwnedMessage,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult, Statement,
    TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub const TOPIC: &str = "erp.hrm.employee.v1";
pub const SERVICE: &str = "erp-hrm-service";
/// In the payload's `position`: fail this many times transiently, then succeed.
pub const FAIL_TWICE: &str = "fail-twice";
/// In the payload's `position`: fail permanently.
pub const POISON: &str = "poison";
/// In the payload's `position`: panic.
pub const PANIC: &str = "panic";
/// In the payload's `position`: stage a follow-up event for `<aggregate>-follow-up`.
pub const FOLLOW_UP: &str = "follow-up";

pub struct Migrator;

#[async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        erp_events::migrations()
    }
}

/// A fresh PostgreSQL database with the outbox, the inbox and an effect log.
pub async fn database() -> (TestDatabase, DatabaseConnection) {
    migrated(TestDatabase::postgres().await).await
}

/// `database` migrated, with the effect log.
pub async fn migrated(database: TestDatabase) -> (TestDatabase, DatabaseConnection) {
    let db = erp_db::connect_and_migrate::<Migrator>(&database.config())
        .await
        .expect("migrated");
    db.execute_unprepared(
        "CREATE TABLE effect_log (event_id TEXT NOT NULL, aggregate_id TEXT NOT NULL, seq BIGINT NOT NULL)",
    )
    .await
    .expect("effect log");
    (database, db)
}

pub use erp_testkit::wait::eventually;

/// An EmployeeHired event for `aggregate` with sequence number `seq`.
pub fn hired(aggregate: &str, seq: u64, position: &str) -> EmployeeHired {
    EmployeeHired {
        id: aggregate.to_owned(),
        employee_id: seq.to_string(),
        first_name: "Ada".to_owned(),
        last_name: "Lovelace".to_owned(),
        email: format!("{aggregate}@example.com"),
        position: position.to_owned(),
        ..Default::default()
    }
}

/// Stages one event per `(aggregate, seq)` in its own committed transaction; returns
/// the event ids in order.
pub async fn stage_committed(db: &DatabaseConnection, events: &[(String, u64)]) -> Vec<String> {
    let outbox = Outbox::new(SERVICE);
    let tenant = TenantId::new("tenant-events");
    let mut ids = Vec::with_capacity(events.len());
    for chunk in events.chunks(50) {
        let txn = db.begin().await.expect("begin");
        for (aggregate, seq) in chunk {
            let staged = outbox
                .stage(
                    &txn,
                    &tenant,
                    aggregate,
                    &hired(aggregate, *seq, "engineer"),
                )
                .await
                .expect("staged");
            ids.push(staged.event_id);
        }
        txn.commit().await.expect("commit");
    }
    ids
}

pub fn relay(db: &DatabaseConnection, kafka: &KafkaConfig) -> Relay {
    let config = RelayConfig {
        delivery_timeout: Duration::from_secs(2),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..RelayConfig::default()
    };
    Relay::new(db.clone(), kafka, config, EventMetrics::default()).expect("relay")
}

/// Publishes until the outbox is empty.
pub async fn drain_outbox(relay: &Relay) {
    eventually(Duration::from_secs(30), || async {
        match relay.publish_pending().await {
            Ok(0) => Some(()),
            Ok(_) | Err(_) => None,
        }
    })
    .await;
}

#[derive(Debug, FromQueryResult)]
struct Count {
    count: i64,
}

pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    Count::find_by_statement(Statement::from_string(db.get_database_backend(), sql))
        .one(db)
        .await
        .expect("count query")
        .map_or(0, |row| row.count)
}

pub async fn unpublished(db: &DatabaseConnection) -> i64 {
    count(
        db,
        "SELECT COUNT(*) AS count FROM outbox_events WHERE published_at IS NULL",
    )
    .await
}

/// (event id, number of times its effect was applied), for every applied event.
pub async fn applications(db: &DatabaseConnection) -> HashMap<String, i64> {
    #[derive(Debug, FromQueryResult)]
    struct Row {
        event_id: String,
        times: i64,
    }
    Row::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT event_id, COUNT(*) AS times FROM effect_log GROUP BY event_id",
    ))
    .all(db)
    .await
    .expect("effect log")
    .into_iter()
    .map(|row| (row.event_id, row.times))
    .collect()
}

/// Records each applied event in the effect log, failing as the payload says.
#[derive(Clone, Default)]
pub struct RecordingHandler {
    failures: Arc<Mutex<HashMap<String, u32>>>,
}

impl RecordingHandler {
    pub fn attempts(&self, event_id: &str) -> u32 {
        self.failures
            .lock()
            .expect("lock")
            .get(event_id)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl EventHandler for RecordingHandler {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let payload: EmployeeHired = event.payload()?;
        let attempt = {
            let mut failures = self.failures.lock().expect("lock");
            let attempts = failures.entry(event.envelope.event_id.clone()).or_default();
            *attempts += 1;
            *attempts
        };
        match payload.position.as_str() {
            POISON => return Err(HandlerError::Permanent("poison pill".to_owned())),
            PANIC => panic!("scripted panic"),
            FOLLOW_UP => {
                let aggregate = format!("{}-follow-up", event.envelope.aggregate_id);
                Outbox::new(SERVICE)
                    .stage(txn, &event.tenant(), &aggregate, &hired(&aggregate, 1, "x"))
                    .await
                    .map_err(|error| HandlerError::Transient(error.to_string()))?;
            }
            FAIL_TWICE if attempt <= 2 => {
                return Err(HandlerError::Transient(format!(
                    "scripted failure {attempt}"
                )));
            }
            _ => {}
        }
        let seq: i64 = payload.employee_id.parse().unwrap_or(-1);
        let backend = txn.get_database_backend();
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => {
                "INSERT INTO effect_log (event_id, aggregate_id, seq) VALUES ($1, $2, $3)"
            }
            _ => "INSERT INTO effect_log (event_id, aggregate_id, seq) VALUES (?, ?, ?)",
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                event.envelope.event_id.clone().into(),
                event.envelope.aggregate_id.clone().into(),
                seq.into(),
            ],
        ))
        .await?;
        Ok(())
    }
}

/// How many messages `topic` holds (sum of high watermarks; exact, no waiting).
pub fn message_count(kafka: &KafkaConfig, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap)
        .create()
        .expect("metadata client");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|partition| {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition.id(), Duration::from_secs(5))
                .expect("watermarks");
            high - low
        })
        .sum()
}

/// Reads `expected` messages of `topic` from the beginning with a fresh group.
pub async fn read_messages(kafka: &KafkaConfig, topic: &str, expected: usize) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.bootstrap)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut messages = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(60);
    while messages.len() < expected {
        let remaining = deadline.saturating_duration_since(Instant::now());
        assert!(
            !remaining.is_zero(),
            "read {} of {expected} messages of {topic}",
            messages.len()
        );
        if let Ok(Ok(message)) = tokio::time::timeout(remaining, consumer.recv()).await {
            messages.push(message.detach());
        }
    }
    messages
}

pub fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    message
        .headers()?
        .iter()
        .find(|header| header.key == name)
        .and_then(|header| header.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

pub fn key(message: &OwnedMessage) -> String {
    String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned()
}

/// The envelope of the first outbox row of `aggregate`.
pub async fn staged_envelope(db: &DatabaseConnection, aggregate: &str) -> EventEnvelope {
    #[derive(FromQueryResult)]
    struct Row {
        envelope: Vec<u8>,
    }
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT envelope FROM outbox_events WHERE aggregate_id = $1 ORDER BY id",
        [aggregate.into()],
    ))
    .one(db)
    .await
    .expect("outbox")
    .unwrap_or_else(|| panic!("no outbox row for {aggregate}"));
    EventEnvelope::decode(row.envelope.as_slice()).expect("an envelope")
}
