//! Consumers that apply each event's effect exactly once. For every message: decode the
//! envelope, continue the producer's trace, and call the handler inside a database
//! transaction that also inserts an inbox row (`processed_events`, keyed by consumer and
//! event id) — a redelivered event finds its row and is skipped. The offset is stored
//! only after that transaction committed (at-least-once delivery, exactly-once effect).
//! Transient handler errors are retried with backoff; after `max_attempts`, or on a
//! permanent error (a panicking handler counts as one), the message goes to `<topic>.dlq`
//! with the reason and its original coordinates in headers, and consumption continues.
//! The consumer's own database (the inbox transaction) being unavailable is not the
//! event's fault: it waits, retrying with backoff, and never dead-letters for it. Events a
//! handler publishes carry the consumed event's correlation id, and its id as causation.
//! Waits and retries end when the runner is stopped; the offset of an unfinished message
//! is not stored, so it is redelivered.

use std::{collections::HashMap, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use async_trait::async_trait;
use erp_kit::{
    auth::TenantId,
    error::{DatabaseTrouble, database_trouble},
    telemetry,
};
use erp_proto::erp::events::v1::EventEnvelope;
use futures::FutureExt as _;
use prost::Message as _;
use rdkafka::{
    Message,
    consumer::{CommitMode, Consumer, StreamConsumer},
    message::{BorrowedMessage, Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, EntityTrait, Set, TransactionTrait, TryInsertResult,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    EventError, EventMetrics, HEADER_TRACEPARENT, KafkaConfig,
    envelope::{Cause, caused_by},
    metrics::ConsumedLabels,
    store::processed_event,
    topics::DLQ_SUFFIX,
};

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work on a later attempt (a peer or the database was unavailable).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never work (undecodable or invalid payload): dead-letter it now.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sea_orm::DbErr> for HandlerError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Transient(error.to_string())
    }
}

/// An event as a handler sees it.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    /// The envelope.
    pub envelope: EventEnvelope,
    /// Where it came from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

impl ReceivedEvent {
    /// The tenant the event belongs to.
    pub fn tenant(&self) -> TenantId {
        TenantId::new(self.envelope.tenant_id.clone())
    }

    /// The payload as `P`; a permanent error when it is another type or does not decode.
    pub fn payload<P: prost::Name + Default>(&self) -> Result<P, HandlerError> {
        if self.envelope.payload_type != P::full_name() {
            return Err(HandlerError::Permanent(format!(
                "expected a {} payload, got {}",
                P::full_name(),
                self.envelope.payload_type
            )));
        }
        P::decode(self.envelope.payload.as_slice())
            .map_err(|error| HandlerError::Permanent(format!("payload does not decode: {error}")))
    }
}

/// Applies events of one topic. Runs inside the transaction that records the event as
/// processed: write through `txn`, and the effect and the inbox row commit together.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Applies `event` (events of types it does not care about: return `Ok(())`).
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError>;
}

/// Retry policy of a consumer.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Attempts per event before it is dead-lettered.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled per attempt.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How long the inbox remembers an applied event (to drop a redelivery); longer than
    /// the topics' retention, after which nothing can be redelivered. Checked hourly.
    #[serde(with = "humantime_serde")]
    pub remember_applied: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            remember_applied: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Runs a service's event handlers; see the module documentation.
pub struct ConsumerRunner {
    name: String,
    db: DatabaseConnection,
    kafka: KafkaConfig,
    config: ConsumerConfig,
    metrics: EventMetrics,
    handlers: HashMap<String, Arc<dyn EventHandler>>,
}

enum Outcome {
    Applied,
    Duplicate,
    DeadLettered,
    /// Stopped before the message was finished: its offset is not stored.
    Interrupted,
}

/// Why one attempt failed.
enum AttemptError {
    /// The consumer's own transaction (begin, inbox row, commit) could not reach the
    /// database, or a statement ran past its timeout: not the event's fault, so wait.
    Database(sea_orm::DbErr),
    /// The handler refused or failed, or the transaction failed for another reason:
    /// counts as one of the event's attempts.
    Handler(HandlerError),
}

impl From<sea_orm::DbErr> for AttemptError {
    fn from(error: sea_orm::DbErr) -> Self {
        match database_trouble(&error) {
            // A slow database (a statement past its timeout) is not the event's fault
            // either.
            Some(
                DatabaseTrouble::Unreachable
                | DatabaseTrouble::ConnectionLost
                | DatabaseTrouble::TimedOut,
            ) => Self::Database(error),
            // A constraint failing at commit, a value the inbox refuses: waiting would
            // block the partition forever; the event's attempts run out instead.
            Some(DatabaseTrouble::Conflict) | None => {
                Self::Handler(HandlerError::Transient(error.to_string()))
            }
        }
    }
}

impl ConsumerRunner {
    /// A runner for consumer group `name` (the service's name).
    pub fn new(
        name: impl Into<String>,
        db: DatabaseConnection,
        kafka: KafkaConfig,
        config: ConsumerConfig,
        metrics: EventMetrics,
    ) -> Self {
        Self {
            name: name.into(),
            db,
            kafka,
            config,
            metrics,
            handlers: HashMap::new(),
        }
    }

    /// Routes the events of `topic` to `handler`.
    pub fn handle(mut self, topic: impl Into<String>, handler: impl EventHandler) -> Self {
        self.handlers.insert(topic.into(), Arc::new(handler));
        self
    }

    /// Runs beside a server until `stop` is cancelled (see
    /// [`GrpcServer::run_with_companions`](erp_kit::server::GrpcServer::run_with_companions)).
    pub fn spawn_companion(self, stop: CancellationToken) -> erp_kit::server::Companion {
        (
            "event consumer",
            tokio::spawn(async move { self.run(stop).await.map_err(|error| error.to_string()) }),
        )
    }

    /// Consumes until `shutdown` is cancelled; the stored offsets are committed on the way out.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EventError> {
        let consumer: StreamConsumer = self.kafka.consumer(&self.name).create()?;
        let topics: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        let dead_letters: FutureProducer = self.kafka.producer(Duration::from_secs(10)).create()?;
        tracing::info!(consumer = %self.name, ?topics, "consuming");
        let mut forget = tokio::time::interval(FORGET_INTERVAL);
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                _ = forget.tick() => {
                    self.forget_old_events().await;
                    continue;
                }
                message = consumer.recv() => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "receiving failed; retrying");
                    tokio::time::sleep(self.config.initial_backoff).await;
                    continue;
                }
            };
            let outcome = match self.process(&message, &dead_letters, &shutdown).await {
                Outcome::Applied => "applied",
                Outcome::Duplicate => "duplicate",
                Outcome::DeadLettered => "dead_lettered",
                // Stopped mid-message: leave its offset, so it is redelivered.
                Outcome::Interrupted => break,
            };
            self.metrics
                .consumed
                .get_or_create(&ConsumedLabels {
                    consumer: self.name.clone(),
                    topic: message.topic().to_owned(),
                    outcome,
                })
                .inc();
            // The effect (or the dead letter) is durable: now the offset may move on.
            if let Err(error) = consumer.store_offset_from_message(&message) {
                tracing::warn!(%error, "storing the offset failed; the event may be redelivered");
            }
        }
        if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::warn!(%error, "committing offsets on shutdown failed");
        }
        Ok(())
    }

    /// Deletes inbox rows older than `remember_applied`: events that old can no longer
    /// be redelivered, and the table would otherwise grow without bound.
    async fn forget_old_events(&self) {
        let Ok(remember) = chrono::TimeDelta::from_std(self.config.remember_applied) else {
            return;
        };
        let cutoff = erp_db::time::now() - remember;
        match erp_db::delete_in_batches(
            &self.db,
            "processed_events",
            "event_id",
            "consumer = $2 AND processed_at < $1",
            vec![cutoff.into(), self.name.as_str().into()],
        )
        .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(rows = deleted, "forgot old applied events"),
            Err(error) => tracing::warn!(%error, "forgetting old applied events failed"),
        }
    }

    async fn process(
        &self,
        message: &BorrowedMessage<'_>,
        dead_letters: &FutureProducer,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let traceparent = header(message, HEADER_TRACEPARENT).unwrap_or_default();
        let span = tracing::info_span!(
            "event.consume",
            otel.name = %format!("{} process", message.topic()),
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.destination = %message.topic(),
            messaging.consumer_group = %self.name,
            event_id = tracing::field::Empty,
            event_type = tracing::field::Empty,
        );
        let mut carrier = http::HeaderMap::new();
        if let Ok(value) = http::HeaderValue::from_str(&traceparent) {
            carrier.insert(HEADER_TRACEPARENT, value);
        }
        let _ = span.set_parent(telemetry::extract_context(&carrier));
        self.process_in_span(message, dead_letters, shutdown)
            .instrument(span)
            .await
    }

    async fn process_in_span(
        &self,
        message: &BorrowedMessage<'_>,
        dead_letters: &FutureProducer,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let Some(handler) = self.handlers.get(message.topic()) else {
            return Outcome::Duplicate;
        };
        let envelope = match EventEnvelope::decode(message.payload().unwrap_or_default()) {
            Ok(envelope) if !envelope.event_id.is_empty() => envelope,
            Ok(_) => {
                return self
                    .dead_letter(
                        message,
                        dead_letters,
                        "the envelope has no event id",
                        1,
                        shutdown,
                    )
                    .await;
            }
            Err(error) => {
                let reason = format!("the envelope does not decode: {error}");
                return self
                    .dead_letter(message, dead_letters, &reason, 1, shutdown)
                    .await;
            }
        };
        tracing::Span::current()
            .record("event_id", envelope.event_id.as_str())
            .record("event_type", envelope.event_type.as_str());
        let event = ReceivedEvent {
            envelope,
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        };

        let mut backoff = self.config.initial_backoff;
        let mut attempt = 1;
        loop {
            match self.apply_once(handler.as_ref(), &event).await {
                Ok(outcome) => return outcome,
                Err(AttemptError::Database(error)) => {
                    self.metrics.database_waits.inc();
                    tracing::warn!(%error, ?backoff, "the inbox transaction failed; waiting for the database");
                }
                Err(AttemptError::Handler(error)) => {
                    let permanent = matches!(error, HandlerError::Permanent(_));
                    if permanent || attempt >= self.config.max_attempts.max(1) {
                        tracing::warn!(%error, attempt, "giving up on the event; dead-lettering it");
                        return self
                            .dead_letter(
                                message,
                                dead_letters,
                                &error.to_string(),
                                attempt,
                                shutdown,
                            )
                            .await;
                    }
                    tracing::info!(%error, attempt, ?backoff, "handler failed; retrying");
                    attempt += 1;
                }
            }
            if !pause(backoff, shutdown).await {
                return Outcome::Interrupted;
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    /// One attempt in one transaction: the inbox row first (a conflict means the event
    /// was applied before), then the handler; both commit together.
    async fn apply_once(
        &self,
        handler: &dyn EventHandler,
        event: &ReceivedEvent,
    ) -> Result<Outcome, AttemptError> {
        let txn = self.db.begin().await?;
        let inserted = processed_event::Entity::insert(processed_event::ActiveModel {
            consumer: Set(self.name.clone()),
            event_id: Set(event.envelope.event_id.clone()),
            topic: Set(event.topic.clone()),
            processed_at: Set(erp_db::time::now()),
        })
        .on_conflict_do_nothing_on([
            processed_event::Column::Consumer,
            processed_event::Column::EventId,
        ])
        .exec_without_returning(&txn)
        .await?;
        if !matches!(inserted, TryInsertResult::Inserted(rows) if rows > 0) {
            txn.rollback().await?;
            tracing::debug!("already applied; skipping the redelivered event");
            return Ok(Outcome::Duplicate);
        }
        let cause = Cause {
            correlation_id: if event.envelope.correlation_id.is_empty() {
                event.envelope.event_id.clone()
            } else {
                event.envelope.correlation_id.clone()
            },
            causation_id: event.envelope.event_id.clone(),
        };
        // A panic is a bug in the handler, not in the event's moment: it counts as a
        // permanent failure (dead-lettered), instead of killing the consumer unnoticed or
        // crash-looping on the same message after every restart.
        let handled = AssertUnwindSafe(caused_by(cause, handler.handle(&txn, event)))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|message| (*message).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(HandlerError::Permanent(format!(
                    "the handler panicked: {what}"
                )))
            });
        handled.map_err(AttemptError::Handler)?;
        txn.commit().await?;
        Ok(Outcome::Applied)
    }

    /// Publishes the message to `<topic>.dlq`, retrying until the broker takes it (or the
    /// runner is stopped): a message is never skipped without a durable copy.
    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        producer: &FutureProducer,
        reason: &str,
        attempts: u32,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let topic = format!("{}{DLQ_SUFFIX}", message.topic());
        let coordinates = [
            reason.to_owned(),
            message.topic().to_owned(),
            message.partition().to_string(),
            message.offset().to_string(),
            self.name.clone(),
            attempts.to_string(),
        ];
        let mut backoff = self.config.initial_backoff;
        loop {
            let mut headers = OwnedHeaders::new();
            if let Some(original) = message.headers() {
                for original in original.iter() {
                    headers = headers.insert(Header {
                        key: original.key,
                        value: original.value,
                    });
                }
            }
            for (key, value) in crate::DLQ_HEADERS.iter().zip(&coordinates) {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_str()),
                });
            }
            let mut record = FutureRecord::to(&topic)
                .payload(message.payload().unwrap_or_default())
                .headers(headers);
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            let sent = tokio::select! {
                () = shutdown.cancelled() => return Outcome::Interrupted,
                sent = producer.send(record, Timeout::After(Duration::from_secs(10))) => sent,
            };
            match sent {
                Ok(_) => return Outcome::DeadLettered,
                Err((error, _)) => {
                    tracing::error!(%error, %topic, "dead-lettering failed; retrying");
                    if !pause(backoff, shutdown).await {
                        return Outcome::Interrupted;
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }
}

/// How often the inbox is searched for events old enough to forget.
const FORGET_INTERVAL: Duration = Duration::from_secs(3600);

/// Waits `duration`; false when `shutdown` came first.
async fn pause(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}

fn header(message: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|header| header.key == name)
        .and_then(|header| header.value)
        .and_then(|value| std::str::from_utf8(value).ok())
        .map(str::to_owned)
}
