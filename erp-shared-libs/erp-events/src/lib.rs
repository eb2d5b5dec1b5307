//! Domain events of the ERP mesh on Kafka, written once: the `EventEnvelope`, the
//! transactional outbox (`Outbox::stage` in the business transaction) and its relay to
//! the broker, consumers that apply each event exactly once (inbox table) with retries
//! and dead letters, topic administration from `infra/kafka/topics.yaml`, and the
//! embedded dev broker (`erp-dev-broker`).

mod config;
mod consumer;
mod envelope;
mod error;
mod metrics;
mod outbox;
mod relay;
mod store;
pub mod topics;

pub use config::{EventsConfig, KafkaConfig};
pub use consumer::{ConsumerConfig, ConsumerRunner, EventHandler, HandlerError, ReceivedEvent};
pub use envelope::{DLQ_HEADERS, HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_TRACEPARENT};
pub use error::EventError;
pub use metrics::EventMetrics;
pub use outbox::{Outbox, StagedEvent};
pub use relay::{Relay, RelayConfig};
pub use store::migrations;
pub use topics::{TopicCatalog, ensure_topics};
