//! A Kafka-protocol broker for one test: librdkafka's in-process mock cluster, or tansu
//! (an independent Kafka-compatible broker) as a process with SQLite storage that can be
//! stopped and restarted on the same port with its data. Both carry every topic of
//! `infra/kafka/topics.yaml`.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use erp_events::{KafkaConfig, TopicCatalog, ensure_topics};
use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer},
    mocking::MockCluster,
    producer::DefaultProducerContext,
};

use crate::wait::eventually;

const TANSU_VERSION: &str = "0.6.0";

/// A broker running for one test.
pub enum TestBroker {
    /// The in-process mock cluster.
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// A tansu process.
    Tansu(Tansu),
}

/// A tansu broker process.
pub struct Tansu {
    binary: PathBuf,
    port: u16,
    storage: tempfile::TempDir,
    process: Option<Child>,
}

impl TestBroker {
    /// A one-broker mock cluster with every topic of the table.
    pub fn mock() -> Self {
        let cluster = MockCluster::new(1).expect("mock cluster");
        for topic in TopicCatalog::bundled().expect("topics").topics() {
            cluster
                .create_topic(&topic.name, topic.partitions, 1)
                .expect("mock topic");
        }
        Self::Mock(cluster)
    }

    /// A tansu broker on a free port, with the topics created through the admin API.
    pub async fn tansu() -> Self {
        let mut tansu = Tansu {
            binary: tansu_binary(),
            port: free_port(),
            storage: tempfile::tempdir().expect("temp dir"),
            process: None,
        };
        tansu.start().await;
        let broker = Self::Tansu(tansu);
        let catalog = TopicCatalog::bundled().expect("topics");
        ensure_topics(&broker.kafka(), &catalog)
            .await
            .expect("topics created on tansu");
        broker
    }

    /// `host:port` of the broker.
    pub fn bootstrap(&self) -> String {
        match self {
            Self::Mock(cluster) => cluster.bootstrap_servers(),
            Self::Tansu(tansu) => format!("127.0.0.1:{}", tansu.port),
        }
    }

    /// Client config for it, tuned for tests.
    pub fn kafka(&self) -> KafkaConfig {
        KafkaConfig::local(self.bootstrap())
    }

    /// Makes the broker unreachable (the data stays).
    pub async fn stop(&mut self) {
        match self {
            Self::Mock(cluster) => cluster.broker_down(1).expect("broker down"),
            Self::Tansu(tansu) => tansu.stop(),
        }
    }

    /// Brings it back.
    pub async fn start(&mut self) {
        match self {
            Self::Mock(cluster) => cluster.broker_up(1).expect("broker up"),
            Self::Tansu(tansu) => tansu.start().await,
        }
    }
}

impl Tansu {
    async fn start(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        // tansu resolves a sqlite:// path against its working directory.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.storage.path().join("tansu.log"))
            .expect("tansu log file");
        let process = Command::new(&self.binary)
            .current_dir(self.storage.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", self.binary.display()));
        self.process = Some(process);
        let bootstrap = format!("127.0.0.1:{}", self.port);
        eventually(Duration::from_secs(30), || {
            let bootstrap = bootstrap.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let probe: BaseConsumer = ClientConfig::new()
                        .set("bootstrap.servers", &bootstrap)
                        .create()
                        .ok()?;
                    probe
                        .fetch_metadata(None, Duration::from_millis(500))
                        .ok()
                        .map(|_| ())
                })
                .await
                .ok()
                .flatten()
            }
        })
        .await;
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// tansu from PATH (scripts/test puts the tools there) or from the tools cache.
/// A missing tansu fails the test: the real-broker tier is never skipped silently.
fn tansu_binary() -> PathBuf {
    crate::tools::installed_tool("tansu", &format!("tansu-{TANSU_VERSION}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
