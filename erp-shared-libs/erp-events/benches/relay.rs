//! Relay throughput (outbox rows → broker acks, events/s) with PostgreSQL, and end-to-end
//! latency (stage commit → handler) at 1,000 events/s, on the mock cluster and on tansu.
//!
//! `cargo bench -p erp-events --bench relay` (PostgreSQL from ERP_TEST_DATABASE_URL,
//! tansu from scripts/install-tools). Prints the figures; asserts nothing.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::Utc;
use erp_events::{
    ConsumerConfig, ConsumerRunner, EventHandler, EventMetrics, HandlerError, Outbox,
    ReceivedEvent, Relay, RelayConfig,
};
use erp_kit::auth::TenantId;
use erp_proto::erp::events::v1::EmployeeHired;
use erp_testkit::{TestDatabase, broker::TestBroker, wait::eventually};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, FromQueryResult, Statement, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "erp.hrm.employee.v1";
const THROUGHPUT_EVENTS: u64 = 50_000;
const LATENCY_RATE_PER_SECOND: u64 = 1_000;
const LATENCY_SECONDS: u64 = 10;

struct Migrator;

#[async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        erp_events::migrations()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("erp-events relay benchmark (2 cores; PostgreSQL outbox)");
    for (tier, broker) in [
        ("mock cluster", TestBroker::mock()),
        ("tansu", TestBroker::tansu().await),
    ] {
        let throughput = relay_throughput(&broker).await;
        println!(
            "{tier:>12}: relay throughput {throughput:>8.0} events/s ({THROUGHPUT_EVENTS} events)"
        );
        let (p50, p99, max) = end_to_end_latency(&start_broker(tier).await).await;
        println!(
            "{tier:>12}: end-to-end latency at {LATENCY_RATE_PER_SECOND} events/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(p50),
            ms(p99),
            ms(max)
        );
    }
}

async fn start_broker(tier: &str) -> TestBroker {
    match tier {
        "tansu" => TestBroker::tansu().await,
        _ => TestBroker::mock(),
    }
}

async fn database() -> (TestDatabase, DatabaseConnection) {
    let database = TestDatabase::postgres().await;
    let mut config = database.config();
    config.max_connections = 10;
    let db = erp_db::connect_and_migrate::<Migrator>(&config)
        .await
        .expect("migrated");
    (database, db)
}

fn payload(seq: u64) -> EmployeeHired {
    EmployeeHired {
        id: format!("emp-{}", seq % 100),
        employee_id: seq.to_string(),
        first_name: "Grace".to_owned(),
        last_name: "Hopper".to_owned(),
        email: "grace@example.com".to_owned(),
        position: "Rear Admiral".to_owned(),
        ..Default::default()
    }
}

async fn relay_throughput(broker: &TestBroker) -> f64 {
    let (_database, db) = database().await;
    let outbox = Outbox::new("erp-hrm-service");
    let tenant = TenantId::new("bench");
    for chunk in (0..THROUGHPUT_EVENTS).collect::<Vec<_>>().chunks(1_000) {
        let txn = db.begin().await.expect("begin");
        for seq in chunk {
            let event = payload(*seq);
            outbox
                .stage(&txn, &tenant, &event.id, &event)
                .await
                .expect("staged");
        }
        txn.commit().await.expect("commit");
    }
    let config = RelayConfig {
        batch_size: 1_000,
        ..RelayConfig::default()
    };
    let relay =
        Relay::new(db.clone(), &broker.kafka(), config, EventMetrics::default()).expect("relay");
    let started = Instant::now();
    let mut published = 0;
    while published < THROUGHPUT_EVENTS as usize {
        published += relay.publish_pending().await.expect("round");
    }
    THROUGHPUT_EVENTS as f64 / started.elapsed().as_secs_f64()
}

#[derive(Clone, Default)]
struct LatencyRecorder(Arc<Mutex<Vec<Duration>>>);

#[async_trait]
impl EventHandler for LatencyRecorder {
    async fn handle(
        &self,
        _: &DatabaseTransaction,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let occurred = event.envelope.occurred_at.unwrap_or_default();
        let staged_at = chrono::DateTime::from_timestamp(occurred.seconds, occurred.nanos as u32)
            .unwrap_or_default();
        let latency = (Utc::now() - staged_at).to_std().unwrap_or_default();
        self.0.lock().expect("lock").push(latency);
        Ok(())
    }
}

async fn end_to_end_latency(broker: &TestBroker) -> (Duration, Duration, Duration) {
    let (_database, db) = database().await;
    let kafka = broker.kafka();
    let stop = CancellationToken::new();
    let relay_config = RelayConfig {
        idle_interval: Duration::from_millis(2),
        ..RelayConfig::default()
    };
    let relay =
        Relay::new(db.clone(), &kafka, relay_config, EventMetrics::default()).expect("relay");
    let relay_task = tokio::spawn(relay.run(stop.clone()));
    let recorder = LatencyRecorder::default();
    let metrics = EventMetrics::default();
    let consumer = ConsumerRunner::new(
        "bench-consumer",
        db.clone(),
        kafka,
        ConsumerConfig::default(),
        metrics.clone(),
    )
    .handle(TOPIC, recorder.clone());
    let consumer_task = tokio::spawn(consumer.run(stop.clone()));

    // Let the consumer join its group before timing starts.
    let outbox = Outbox::new("erp-hrm-service");
    let tenant = TenantId::new("bench");
    let warmup = payload(u64::MAX);
    outbox
        .stage(&db, &tenant, &warmup.id, &warmup)
        .await
        .expect("staged");
    eventually(Duration::from_secs(60), || async {
        (metrics.consumed_count("bench-consumer", TOPIC, "applied") == 1).then_some(())
    })
    .await;
    recorder.0.lock().expect("lock").clear();

    // 1,000 events/s: ten single-event transactions every 10 ms.
    let total = LATENCY_RATE_PER_SECOND * LATENCY_SECONDS;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut seq = 0;
    while seq < total {
        ticker.tick().await;
        for _ in 0..10 {
            let event = payload(seq);
            outbox
                .stage(&db, &tenant, &event.id, &event)
                .await
                .expect("staged");
            seq += 1;
        }
    }
    eventually(Duration::from_secs(120), || async {
        (metrics.consumed_count("bench-consumer", TOPIC, "applied") == total + 1).then_some(())
    })
    .await;
    stop.cancel();
    relay_task.await.expect("relay");
    consumer_task.await.expect("consumer").expect("ran");
    let lag = Lag::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) AS unpublished FROM outbox_events WHERE published_at IS NULL",
    ))
    .one(&db)
    .await
    .expect("lag");
    assert_eq!(lag.map(|lag| lag.unpublished), Some(0));

    let mut latencies = recorder.0.lock().expect("lock").clone();
    latencies.sort();
    let at = |quantile: f64| {
        latencies[((latencies.len() as f64 * quantile) as usize).min(latencies.len() - 1)]
    };
    (at(0.50), at(0.99), *latencies.last().expect("samples"))
}

#[derive(FromQueryResult)]
struct Lag {
    unpublished: i64,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
