use std::time::Duration;

use erp_events::{ConsumerConfig, ConsumerRunner, EventMetrics};
use erp_testkit::{TestDatabase, broker::TestBroker};
use tokio_util::sync::CancellationToken;

use crate::support::{
    RecordingHandler, TOPIC, applications, drain_outbox, eventually, migrated, relay,
    stage_committed,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_and_inbox_work_on_sqlite_the_local_default() {
    let broker = TestBroker::mock();
    let (_database, db) = migrated(TestDatabase::sqlite()).await;
    let kafka = broker.kafka();
    let events: Vec<(String, u64)> = (0..20)
        .map(|index| (format!("emp-{}", index % 4), index))
        .collect();
    let ids = stage_committed(&db, &events).await;
    drain_outbox(&relay(&db, &kafka)).await;

    let metrics = EventMetrics::default();
    let runner = ConsumerRunner::new(
        "erp-auth-service",
        db.clone(),
        kafka,
        ConsumerConfig::default(),
        metrics.clone(),
    )
    .handle(TOPIC, RecordingHandler::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    eventually(Duration::from_secs(60), || async {
        (metrics.consumed_count("erp-auth-service", TOPIC, "applied") == 20).then_some(())
    })
    .await;
    stop.cancel();
    task.await.expect("joins").expect("ran");

    let applied = applications(&db).await;
    assert_eq!(applied.len(), ids.len());
    assert!(applied.values().all(|times| *times == 1));
}
