//! The relay: publishes outbox rows to the broker with the idempotent producer, in id
//! order (so per aggregate, which is the Kafka key, order is kept), marks them published
//! once acknowledged, and backs off (capped, exponential) while the broker is down.
//!
//! On PostgreSQL the batch is claimed with `FOR UPDATE SKIP LOCKED` under a transaction
//! advisory lock: relays of several replicas never block each other, and only one
//! publishes at a time, which keeps per-aggregate order across replicas. SQLite runs a
//! single relay.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use chrono::Utc;
use futures::future::join_all;
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
    sea_query::{Expr, ExprTrait, LockBehavior, LockType},
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::{
    EventError, EventMetrics, HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_TRACEPARENT, KafkaConfig,
    store::outbox_event,
};

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
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_interval: Duration::from_millis(10),
            delivery_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
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

    /// Publishes until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = self.config.initial_backoff;
        let mut last_lag_update = Instant::now() - Duration::from_secs(60);
        loop {
            if last_lag_update.elapsed() >= Duration::from_secs(1) {
                self.update_lag().await;
                last_lag_update = Instant::now();
            }
            let wait = match self.publish_pending().await {
                Ok(0) => self.config.idle_interval,
                Ok(_) => {
                    backoff = self.config.initial_backoff;
                    Duration::ZERO
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

    /// One round: claims up to `batch_size` unpublished rows, publishes them, and marks
    /// the acknowledged ones. Returns how many were published; an error when the broker
    /// acknowledged none of a non-empty batch.
    pub async fn publish_pending(&self) -> Result<usize, EventError> {
        let backend = self.db.get_database_backend();
        let txn = self.db.begin().await?;
        if backend == DatabaseBackend::Postgres {
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
        }
        let mut claim = outbox_event::Entity::find()
            .filter(outbox_event::Column::PublishedAt.is_null())
            .order_by_asc(outbox_event::Column::Id)
            .limit(self.config.batch_size);
        if backend == DatabaseBackend::Postgres {
            claim = claim.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = claim.all(&txn).await?;
        if rows.is_empty() {
            return Ok(0);
        }

        let deliveries = join_all(rows.iter().map(|row| {
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
            let record = FutureRecord::to(&row.topic)
                .key(row.aggregate_id.as_str())
                .payload(row.envelope.as_slice())
                .headers(headers);
            self.producer
                .send(record, Timeout::After(self.config.delivery_timeout))
        }))
        .await;

        // A failed row holds back every later row of its aggregate, so a retry can never
        // deliver an aggregate's events out of order.
        let mut blocked_aggregates = HashSet::new();
        let mut published = Vec::with_capacity(rows.len());
        let mut failed = Vec::new();
        let mut first_error = None;
        for (row, delivery) in rows.iter().zip(deliveries) {
            match delivery {
                Ok(_) if !blocked_aggregates.contains(&row.aggregate_id) => published.push(row.id),
                Ok(_) => failed.push(row.id),
                Err((error, _)) => {
                    blocked_aggregates.insert(row.aggregate_id.clone());
                    failed.push(row.id);
                    first_error.get_or_insert(error);
                }
            }
        }

        if !published.is_empty() {
            outbox_event::Entity::update_many()
                .col_expr(
                    outbox_event::Column::PublishedAt,
                    Expr::value(erp_db::time::now()),
                )
                .filter(outbox_event::Column::Id.is_in(published.clone()))
                .exec(&txn)
                .await?;
        }
        if let Some(error) = &first_error {
            outbox_event::Entity::update_many()
                .col_expr(
                    outbox_event::Column::Attempts,
                    Expr::col(outbox_event::Column::Attempts).add(1),
                )
                .col_expr(
                    outbox_event::Column::LastError,
                    Expr::value(error.to_string()),
                )
                .filter(outbox_event::Column::Id.is_in(failed.clone()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;

        self.metrics.published.inc_by(published.len() as u64);
        self.metrics.publish_failures.inc_by(failed.len() as u64);
        match first_error {
            Some(error) if published.is_empty() => Err(EventError::Kafka(error)),
            _ => Ok(published.len()),
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
