//! The topic table (`infra/kafka/topics.yaml`): every topic, its partitions, retention,
//! publisher and consumers; each topic has a dead-letter twin `<name>.dlq`.

use std::{collections::BTreeMap, path::Path, time::Duration};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    types::RDKafkaErrorCode,
};
use serde::Deserialize;

use crate::{EventError, KafkaConfig};

/// The table the repository ships (`infra/kafka/topics.yaml`).
pub const BUNDLED_TOPICS: &str = include_str!("../../../infra/kafka/topics.yaml");
/// The suffix of dead-letter topics.
pub const DLQ_SUFFIX: &str = ".dlq";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    defaults: Defaults,
    topics: Vec<TopicEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    partitions: i32,
    replication_factor: i32,
    #[serde(with = "humantime_serde")]
    retention: Duration,
    #[serde(with = "humantime_serde")]
    dlq_retention: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicEntry {
    name: String,
    publisher: String,
    #[serde(default)]
    consumers: Vec<String>,
    partitions: Option<i32>,
    #[serde(default, with = "humantime_serde")]
    retention: Option<Duration>,
}

/// One topic as it should exist on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Its name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Replicas per partition.
    pub replication_factor: i32,
    /// How long messages are kept.
    pub retention: Duration,
    /// The unit that publishes to it (empty for dead-letter topics).
    pub publisher: String,
    /// The units that consume it.
    pub consumers: Vec<String>,
}

/// Every topic of the mesh, dead-letter topics included.
#[derive(Debug, Clone)]
pub struct TopicCatalog {
    topics: BTreeMap<String, Topic>,
}

impl TopicCatalog {
    /// The table the repository ships.
    pub fn bundled() -> Result<Self, EventError> {
        Self::parse(BUNDLED_TOPICS)
    }

    /// Reads a table from a file.
    pub fn load(path: &Path) -> Result<Self, EventError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| EventError::Topics(format!("{}: {error}", path.display())))?;
        Self::parse(&text)
            .map_err(|error| EventError::Topics(format!("{}: {error}", path.display())))
    }

    /// Parses a table.
    pub fn parse(text: &str) -> Result<Self, EventError> {
        let file: TopicsFile =
            serde_yaml_ng::from_str(text).map_err(|error| EventError::Topics(error.to_string()))?;
        let mut topics = BTreeMap::new();
        for entry in file.topics {
            let topic = Topic {
                partitions: entry.partitions.unwrap_or(file.defaults.partitions),
                replication_factor: file.defaults.replication_factor,
                retention: entry.retention.unwrap_or(file.defaults.retention),
                publisher: entry.publisher,
                consumers: entry.consumers,
                name: entry.name,
            };
            let dlq = Topic {
                name: format!("{}{DLQ_SUFFIX}", topic.name),
                partitions: 1,
                replication_factor: topic.replication_factor,
                retention: file.defaults.dlq_retention,
                publisher: String::new(),
                consumers: Vec::new(),
            };
            if topics.insert(topic.name.clone(), topic).is_some() {
                return Err(EventError::Topics(format!(
                    "topic {} is listed twice",
                    dlq.name.trim_end_matches(DLQ_SUFFIX)
                )));
            }
            topics.insert(dlq.name.clone(), dlq);
        }
        Ok(Self { topics })
    }

    /// Every topic, dead-letter topics included, by name.
    pub fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.topics.values()
    }

    /// One topic by name.
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.get(name)
    }
}

/// Creates the topics of `catalog` the broker does not have yet (real brokers; the mock
/// cluster has no CreateTopics). Returns the names it created.
pub async fn ensure_topics(
    kafka: &KafkaConfig,
    catalog: &TopicCatalog,
) -> Result<Vec<String>, EventError> {
    let admin: AdminClient<DefaultClientContext> = kafka.client().create()?;
    let retention: Vec<(String, String)> = catalog
        .topics()
        .map(|topic| (topic.name.clone(), topic.retention.as_millis().to_string()))
        .collect();
    let new_topics: Vec<NewTopic<'_>> = catalog
        .topics()
        .zip(&retention)
        .map(|(topic, (_, retention_ms))| {
            NewTopic::new(
                &topic.name,
                topic.partitions,
                TopicReplication::Fixed(topic.replication_factor),
            )
            .set("retention.ms", retention_ms)
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let mut created = Vec::new();
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(EventError::Topics(format!("creating {name}: {code}")));
            }
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_table_gives_every_topic_a_dead_letter_twin() {
        let catalog = TopicCatalog::bundled().expect("bundled table parses");
        let employee = catalog.topic("erp.hrm.employee.v1").expect("listed");
        assert_eq!(employee.publisher, "erp-hrm-service");
        assert_eq!(employee.consumers, vec!["erp-auth-service".to_owned()]);
        let dlq = catalog
            .topic("erp.hrm.employee.v1.dlq")
            .expect("dead-letter twin");
        assert_eq!(dlq.partitions, 1);
    }

    #[test]
    fn every_event_topic_of_the_contracts_is_in_the_table() {
        let catalog = TopicCatalog::bundled().expect("bundled table parses");
        for event in erp_proto::Contracts::bundled().events() {
            assert!(
                catalog.topic(&event.topic).is_some(),
                "{} publishes to {}, which topics.yaml does not list",
                event.payload_type,
                event.topic
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = TopicCatalog::parse(
            "defaults: {partitions: 1, replication_factor: 1, retention: 1d, dlq_retention: 1d}\ntopics:\n  - {name: a, publisher: x, partition: 3}\n",
        )
        .expect_err("typo refused");
        assert!(error.to_string().contains("partition"), "{error}");
    }
}
