//! The relay: publishes outbox rows to the broker with the idempotent producer, in id
//! order (so per aggregate, which is the Kafka key, order is kept), marks them published
//! once acknowledged, and backs off (capped, exponential) while the broker is down.
//!
//! On PostgreSQL the batch is claimed with `FOR UPDATE SKIP LOCKED` under a transaction
//! advisory lock: relays of several replicas never block each other, and only one
//! publishes at a time, which keeps per-aggregate order across replicas. SQLite runs a
//! single relay, and no transaction spans the broker's answer (it would hold the file's
//! lock against the service's own writes).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use chrono::Utc;
use futures::future::join_all;
use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
    sea_query::{Expr, ExprTrait, LockBehavior, LockType},
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::{
    EventError, EventMetrics, HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_TRACEPARENT, KafkaConfig,
    store::outbox_event,
};

/// How often old published rows are looked for.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// An arbitrary, fixed advisory-lock key: "one relay publishes at a time" per database.
const RELAY_LOCK_KEY: i64 = 0x6572_705f_7265_6c61; // "erp_rela"

/// How the relay batches and backs off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Rows claimed and published per round.
    pub batch_size: u64,
    /// How long to wait before looking again when the outbox is empty.
    #[serde(with = "humantime_serde")]
    pub idle_interval: Duration,
    /// How long the broker has to acknowledge a message before it counts as failed.
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// The first wait after a failed round; doubled per failure.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// The longest wait between failed rounds.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How long published rows are kept (for audit and replay) before they are deleted;
    /// checked once an hour.
    #[serde(with = "humantime_serde")]
    pub keep_published: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_interval: Duration::from_millis(10),
            delivery_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            keep_published: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Publishes a service's outbox; see the module documentation.
pub struct Relay {
    db: DatabaseConnection,
    producer: FutureProducer,
    config: RelayConfig,
    metrics: EventMetrics,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, FromQueryResult)]
struct Lag {
    unpublished: i64,
    oldest: Option<chrono::DateTime<Utc>>,
}

impl Relay {
    /// A relay of `db`'s outbox to the brokers of `kafka`.
    pub fn new(
        db: DatabaseConnection,
        kafka: &KafkaConfig,
        config: RelayConfig,
        metrics: EventMetrics,
    ) -> Result<Self, EventError> {
        let producer = kafka.producer(config.delivery_timeout).create()?;
        Ok(Self {
            db,
            producer,
            config,
            metrics,
        })
    }

    /// Runs beside a server until `stop` is cancelled (see
    /// [`GrpcServer::run_with_companions`](erp_kit::server::GrpcServer::run_with_companions)).
    pub fn spawn_companion(self, stop: CancellationToken) -> erp_kit::server::Companion {
        (
            "outbox relay",
            tokio::spawn(async move {
                self.run(stop).await;
                Ok(())
            }),
        )
    }

    /// Publishes until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = self.config.initial_backoff;
        let mut last_lag_update = Instant::now() - Duration::from_secs(60);
        let mut last_purge: Option<Instant> = None;
        loop {
            if last_lag_update.elapsed() >= Duration::from_secs(1) {
                self.update_lag().await;
                last_lag_update = Instant::now();
            }
            if last_purge.is_none_or(|at| at.elapsed() >= PURGE_INTERVAL) {
                self.purge_published().await;
                last_purge = Some(Instant::now());
            }
            let wait = match self.publish_pending().await {
                Ok(0) => self.config.idle_interval,
                Ok(_) => {
                    backoff = self.config.initial_backoff;
                    Duration::ZERO
                }
                // Every row sent was refused: each has its own retry time, so a row that
                // can never be published does not slow down the others.
                Err(EventError::Kafka(error)) => {
                    tracing::warn!(%error, "the broker took none of the rows sent this round");
                    self.config.idle_interval
                }
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "outbox relay round failed; backing off");
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    wait
                }
            };
            // Rounds are never interrupted: every published row is marked before stopping.
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One round: claims up to `batch_size` due rows, publishes them, and marks the
    /// acknowledged ones. Returns how many were published; an error when the broker
    /// acknowledged none of a non-empty batch.
    ///
    /// A row the broker refuses is retried after a backoff of its own (doubling per
    /// attempt, up to `max_backoff`), and until it is published no later row of its
    /// aggregate is sent, in this round or the next ones; rows of other aggregates go on.
    /// A refusal known at once (too large, say) holds back the rest of its aggregate
    /// before they are sent. One that comes later (a delivery timeout) may find later
    /// rows of its aggregate already delivered: they stay unmarked and are sent again
    /// after it, so a consumer can see such an event before the refused one, then again
    /// (dropped by event id).
    pub async fn publish_pending(&self) -> Result<usize, EventError> {
        let backend = self.db.get_database_backend();
        if backend != DatabaseBackend::Postgres {
            // SQLite runs one relay, and a transaction held while the broker answers
            // would hold the file's lock against every business write meanwhile (a broker
            // that is down would make them fail): each statement commits on its own.
            return self
                .publish_round(&self.db, backend)
                .await?
                .map_err(EventError::Kafka);
        }
        let txn = self.db.begin().await?;
        let locked = txn
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT pg_try_advisory_xact_lock({RELAY_LOCK_KEY}) AS locked"),
            ))
            .await?
            .and_then(|row| row.try_get::<bool>("", "locked").ok())
            .unwrap_or(false);
        if !locked {
            return Ok(0);
        }
        // The refused rows' new retry times commit even when nothing was published.
        let outcome = self.publish_round(&txn, backend).await?;
        txn.commit().await?;
        outcome.map_err(EventError::Kafka)
    }

    /// Claims, publishes and marks one batch through `conn` (PostgreSQL: the round's
    /// transaction holding the relay lock): how many were published, or the broker's
    /// first refusal when none was.
    async fn publish_round(
        &self,
        conn: &impl ConnectionTrait,
        backend: DatabaseBackend,
    ) -> Result<Result<usize, KafkaError>, EventError> {
        let now = erp_db::time::now();
        let mut claim = outbox_event::Entity::find()
            .filter(outbox_event::Column::PublishedAt.is_null())
            .filter(
                Condition::any()
                    .add(outbox_event::Column::NextAttemptAt.is_null())
                    .add(outbox_event::Column::NextAttemptAt.lte(now)),
            )
            .filter(Expr::cust_with_values(
                format!(
                    "NOT EXISTS (SELECT 1 FROM outbox_events AS earlier \
                     WHERE earlier.aggregate_id = outbox_events.aggregate_id \
                     AND earlier.published_at IS NULL AND earlier.id < outbox_events.id \
                     AND earlier.next_attempt_at > {})",
                    if backend == DatabaseBackend::Postgres {
                        "$1"
                    } else {
                        "?"
                    }
                ),
                [now],
            ))
            .order_by_asc(outbox_event::Column::Id)
            .limit(self.config.batch_size);
        if backend == DatabaseBackend::Postgres {
            claim = claim.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = claim.all(conn).await?;
        if rows.is_empty() {
            return Ok(Ok(0));
        }

        // Handed to the producer one by one, in id order: a row it refuses at once (too
        // large, queue full) holds back the rest of its aggregate before they are sent.
        let mut blocked_aggregates = HashSet::new();
        let mut failed: Vec<(&outbox_event::Model, KafkaError)> = Vec::new();
        let mut in_flight = Vec::with_capacity(rows.len());
        for row in &rows {
            if blocked_aggregates.contains(&row.aggregate_id) {
                continue;
            }
            match self.producer.send_result(record_of(row)) {
                Ok(delivery) => in_flight.push((row, delivery)),
                // The producer's own queue is full: the rest waits for the next round.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => break,
                Err((error, _)) => {
                    blocked_aggregates.insert(row.aggregate_id.clone());
                    failed.push((row, error));
                }
            }
        }
        let mut published = Vec::with_capacity(in_flight.len());
        let deliveries = join_all(
            in_flight
                .into_iter()
                .map(|(row, delivery)| async move { (row, delivery.await) }),
        )
        .await;
        for (row, delivery) in deliveries {
            match delivery {
                Ok(Ok(_)) if !blocked_aggregates.contains(&row.aggregate_id) => {
                    published.push(row.id);
                }
                // Acknowledged after an earlier row of its aggregate failed: it is sent
                // again after that one, and consumers drop the duplicate by event id.
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => {
                    blocked_aggregates.insert(row.aggregate_id.clone());
                    failed.push((row, error));
                }
                Err(_canceled) => {
                    blocked_aggregates.insert(row.aggregate_id.clone());
                    failed.push((row, KafkaError::Canceled));
                }
            }
        }

        if !published.is_empty() {
            outbox_event::Entity::update_many()
                .col_expr(outbox_event::Column::PublishedAt, Expr::value(now))
                .filter(outbox_event::Column::Id.is_in(published.clone()))
                .exec(conn)
                .await?;
        }
        for (row, error) in &failed {
            let retry_at = now + self.retry_backoff(row.attempts);
            tracing::warn!(event_id = %row.event_id, aggregate = %row.aggregate_id, attempts = row.attempts + 1, %error, %retry_at, "the broker refused an outbox row; its aggregate waits for it");
            outbox_event::Entity::update_many()
                .col_expr(
                    outbox_event::Column::Attempts,
                    Expr::col(outbox_event::Column::Attempts).add(1),
                )
                .col_expr(
                    outbox_event::Column::LastError,
                    Expr::value(error.to_string()),
                )
                .col_expr(outbox_event::Column::NextAttemptAt, Expr::value(retry_at))
                .filter(outbox_event::Column::Id.eq(row.id))
                .exec(conn)
                .await?;
        }

        self.metrics.published.inc_by(published.len() as u64);
        self.metrics.publish_failures.inc_by(failed.len() as u64);
        Ok(match failed.first() {
            Some((_, error)) if published.is_empty() => Err(error.clone()),
            _ => Ok(published.len()),
        })
    }

    /// How long a row that failed `attempts` times before waits for its next attempt.
    fn retry_backoff(&self, attempts: i32) -> chrono::TimeDelta {
        let doublings = u32::try_from(attempts.clamp(0, 20)).unwrap_or(0);
        let backoff = self
            .config
            .initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.config.max_backoff);
        chrono::TimeDelta::from_std(backoff).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// Deletes rows published longer ago than `keep_published`, so the outbox does not
    /// grow without bound; in batches, so a long backlog never holds the table (or a
    /// SQLite file) for long. Unpublished rows are never touched.
    pub async fn purge_published(&self) {
        let Ok(keep) = chrono::TimeDelta::from_std(self.config.keep_published) else {
            return;
        };
        let cutoff = erp_db::time::now() - keep;
        let deleted = match erp_db::delete_in_batches(
            &self.db,
            "outbox_events",
            "id",
            "published_at < $1",
            vec![cutoff.into()],
        )
        .await
        {
            Ok(deleted) => deleted,
            Err(error) => {
                tracing::warn!(%error, "purging published outbox rows failed");
                return;
            }
        };
        if deleted > 0 {
            tracing::info!(rows = deleted, "deleted old published outbox rows");
        }
    }

    async fn update_lag(&self) {
        let backend = self.db.get_database_backend();
        let lag = Lag::find_by_statement(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS unpublished, MIN(created_at) AS oldest \
             FROM outbox_events WHERE published_at IS NULL",
        ))
        .one(&self.db)
        .await;
        match lag {
            Ok(Some(lag)) => {
                self.metrics.unpublished.set(lag.unpublished);
                let age = lag.oldest.map_or(0.0, |oldest| {
                    (Utc::now() - oldest).num_milliseconds() as f64 / 1000.0
                });
                self.metrics.oldest_unpublished_seconds.set(age.max(0.0));
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "reading the outbox lag failed"),
        }
    }
}

/// The Kafka record of an outbox row: keyed by aggregate, with the routing headers.
fn record_of(row: &outbox_event::Model) -> FutureRecord<'_, str, [u8]> {
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: HEADER_EVENT_TYPE,
            value: Some(row.event_type.as_str()),
        })
        .insert(Header {
            key: HEADER_EVENT_ID,
            value: Some(row.event_id.as_str()),
        })
        .insert(Header {
            key: HEADER_TRACEPARENT,
            value: Some(row.traceparent.as_str()),
        });
    FutureRecord::to(&row.topic)
        .key(row.aggregate_id.as_str())
        .payload(row.envelope.as_slice())
        .headers(headers)
}
