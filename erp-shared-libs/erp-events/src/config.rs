//! How a service reaches the broker (`ERP_KAFKA__*`).

use std::{collections::BTreeMap, time::Duration};

use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::{ConsumerConfig, RelayConfig};

/// Broker connection and client tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]` of the brokers.
    pub bootstrap: String,
    /// How long a consumer may be silent before its group rebalances.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How long a fetch waits for data; short for low latency.
    #[serde(with = "humantime_serde")]
    pub fetch_wait_max: Duration,
    /// Any other librdkafka property, e.g. `security.protocol`; these win over the
    /// values this crate sets.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap: "127.0.0.1:9092".to_owned(),
            session_timeout: Duration::from_secs(10),
            fetch_wait_max: Duration::from_millis(100),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Tuned for the dev broker and tests: quick rejoin, short fetch waits.
    ///
    /// The session timeout is 4 s, not shorter: librdkafka's mock cluster delays a
    /// group's first join by 3 s (`group.initial.rebalance.delay.ms`), and a member whose
    /// session expires before that is dropped and never joins. Later rebalances take
    /// session timeout − 1 s on the mock.
    pub fn local(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            session_timeout: Duration::from_millis(4_000),
            fetch_wait_max: Duration::from_millis(10),
            properties: BTreeMap::new(),
        }
    }

    pub(crate) fn client(&self) -> ClientConfig {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &self.bootstrap)
            // Nagle's algorithm delays small requests (acks, fetches) for no gain here.
            .set("socket.nagle.disable", "true");
        self.with_properties(client)
    }

    fn with_properties(&self, mut client: ClientConfig) -> ClientConfig {
        for (key, value) in &self.properties {
            client.set(key, value);
        }
        client
    }

    /// The idempotent producer: acks from all replicas, ordered per partition.
    pub(crate) fn producer(&self, delivery_timeout: Duration) -> ClientConfig {
        let mut client = self.client();
        client
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", millis(delivery_timeout));
        self.with_properties(client)
    }

    /// A consumer of `group`: offsets stored only after the effect committed.
    pub(crate) fn consumer(&self, group: &str) -> ClientConfig {
        let mut client = self.client();
        client
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "500")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", millis(self.session_timeout))
            .set("heartbeat.interval.ms", millis(self.session_timeout / 4))
            .set("fetch.wait.max.ms", millis(self.fetch_wait_max))
            // An empty or failed fetch is retried after this, not librdkafka's 500 ms.
            .set("fetch.error.backoff.ms", millis(self.fetch_wait_max))
            .set("isolation.level", "read_committed");
        self.with_properties(client)
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().max(1).to_string()
}

/// A service's events section (`ERP_EVENTS__*`): broker, relay and consumer settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Run the relay and consumers (the outbox is written either way).
    pub enabled: bool,
    /// The broker (`ERP_EVENTS__KAFKA__BOOTSTRAP`).
    pub kafka: KafkaConfig,
    /// Outbox relay tuning.
    pub relay: RelayConfig,
    /// Consumer retries.
    pub consumer: ConsumerConfig,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            kafka: KafkaConfig::default(),
            relay: RelayConfig::default(),
            consumer: ConsumerConfig::default(),
        }
    }
}
