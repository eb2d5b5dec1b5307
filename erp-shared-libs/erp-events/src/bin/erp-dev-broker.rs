//! The embedded local broker: librdkafka's mock cluster in a small process, with every
//! topic of `infra/kafka/topics.yaml` created, until Ctrl-C or SIGTERM.
//!
//! It prints `bootstrap.servers=<host:port,…>` on stdout (and into `--bootstrap-file`).
//! Limits of the mock: random ports, nothing persisted, about 5 MiB kept per partition,
//! `read_committed` ignored. Clients should use a 4 s session timeout (a shorter one
//! makes the mock's delayed group joins time out) and 10 ms fetch waits
//! (`KafkaConfig::local`).

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use erp_events::TopicCatalog;
use rdkafka::mocking::MockCluster;

/// Runs a Kafka-protocol mock cluster (librdkafka's) with every topic of the mesh, for
/// local development. Prints `bootstrap.servers=…` and runs until Ctrl-C or SIGTERM.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The topic table; the repository's own when omitted.
    #[arg(long)]
    topics: Option<PathBuf>,
    /// Also write `bootstrap.servers=…` to this file (for scripts and the orchestrator).
    #[arg(long)]
    bootstrap_file: Option<PathBuf>,
    /// How many mock brokers.
    #[arg(long, default_value_t = 1)]
    brokers: i32,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("erp-dev-broker: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let catalog = match &args.topics {
        Some(path) => TopicCatalog::load(path)?,
        None => TopicCatalog::bundled()?,
    };
    let cluster = MockCluster::new(args.brokers)?;
    for topic in catalog.topics() {
        cluster.create_topic(&topic.name, topic.partitions, 1.min(args.brokers))?;
    }
    let bootstrap = cluster.bootstrap_servers();
    let line = format!("bootstrap.servers={bootstrap}");
    if let Some(path) = &args.bootstrap_file {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, format!("{line}\n"))?;
    }
    println!("{line}");
    eprintln!(
        "erp-dev-broker: {} topics on {bootstrap}; Ctrl-C to stop",
        catalog.topics().count()
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("erp-dev-broker: stopping");
    drop(cluster);
    Ok(())
}
