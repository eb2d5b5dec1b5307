use std::time::Duration;

use erp_events::{ConsumerConfig, ConsumerRunner, EventMetrics};
use erp_testkit::{TestDatabase, broker::TestBroker};
use tokio_util::sync::CancellationToken;

use crate::support::{
    RecordingHandler, TOPIC, applications, drain_outbox, eventually, message_count, migrated,
    relay, stage_committed, unpublished,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_on_sqlite_neither_blocks_business_writes_nor_publishes_twice() {
    let broker = TestBroker::mock();
    let (_database, db) = migrated(TestDatabase::sqlite()).await;
    let kafka = broker.kafka();
    let stop = CancellationToken::new();
    let relay_task = tokio::spawn(relay(&db, &kafka).run(stop.clone()));

    // Business writes (each stages an event in its own transaction) while the relay runs.
    let mut staged = Vec::new();
    for index in 0..200u64 {
        staged.extend(stage_committed(&db, &[(format!("emp-{}", index % 7), index)]).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eventually(Duration::from_secs(30), || async {
        (unpublished(&db).await == 0).then_some(())
    })
    .await;
    stop.cancel();
    relay_task.await.expect("the relay stops");

    assert_eq!(
        message_count(&kafka, TOPIC),
        staged.len() as i64,
        "every event published exactly once"
    );
}
