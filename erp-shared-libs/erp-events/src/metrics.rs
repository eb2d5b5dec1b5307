//! Outbox and consumer metrics, registered next to the server's on `/metrics`.

use std::sync::atomic::AtomicU64;

use erp_kit::metrics::MetricsRegistry;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ConsumedLabels {
    pub(crate) consumer: String,
    pub(crate) topic: String,
    pub(crate) outcome: &'static str,
}

/// The events backbone's metrics.
#[derive(Clone, Debug, Default)]
pub struct EventMetrics {
    pub(crate) published: Counter,
    pub(crate) publish_failures: Counter,
    pub(crate) unpublished: Gauge,
    pub(crate) oldest_unpublished_seconds: Gauge<f64, AtomicU64>,
    pub(crate) consumed: Family<ConsumedLabels, Counter>,
    pub(crate) database_waits: Counter,
}

impl EventMetrics {
    /// Metrics registered in `registry`.
    pub fn new(registry: &MetricsRegistry) -> Self {
        let metrics = Self::default();
        registry.register(
            "outbox_published",
            "Events the relay published and the broker acknowledged",
            metrics.published.clone(),
        );
        registry.register(
            "outbox_publish_failures",
            "Events the broker did not acknowledge (they stay in the outbox and are retried)",
            metrics.publish_failures.clone(),
        );
        registry.register(
            "outbox_unpublished",
            "Events waiting in the outbox",
            metrics.unpublished.clone(),
        );
        registry.register(
            "outbox_oldest_unpublished_age_seconds",
            "Age of the oldest event waiting in the outbox (relay lag)",
            metrics.oldest_unpublished_seconds.clone(),
        );
        registry.register(
            "events_consumed",
            "Events a consumer handled, by outcome: applied, duplicate, dead_lettered",
            metrics.consumed.clone(),
        );
        registry.register(
            "events_consumer_database_waits",
            "Times a consumer could not open or commit its inbox transaction and waited for the database",
            metrics.database_waits.clone(),
        );
        metrics
    }

    /// How many times consumers waited for their database.
    pub fn database_waits(&self) -> u64 {
        self.database_waits.get()
    }

    /// How many events `consumer` handled on `topic` with `outcome` (`applied`,
    /// `duplicate`, `dead_lettered`).
    pub fn consumed_count(&self, consumer: &str, topic: &str, outcome: &'static str) -> u64 {
        self.consumed
            .get_or_create(&ConsumedLabels {
                consumer: consumer.to_owned(),
                topic: topic.to_owned(),
                outcome,
            })
            .get()
    }
}
