use std::time::Duration;

use erp_events::{ConsumerConfig, ConsumerRunner, EventMetrics, KafkaConfig};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use erp_testkit::broker::TestBroker;

use crate::{
    on_both_brokers,
    support::{
        FAIL_TWICE, FOLLOW_UP, PANIC, POISON, RecordingHandler, SERVICE, TOPIC, applications,
        database, drain_outbox, eventually, header, read_messages, relay, stage_committed,
        staged_envelope,
    },
};

const GROUP: &str = "erp-auth-service";

on_both_brokers!(
    a_redelivered_event_after_a_relay_crash_is_applied_once,
    a_consumer_stopped_before_committing_offsets_applies_each_event_once,
    a_transient_failure_is_retried_and_a_poison_event_is_dead_lettered,
    a_database_outage_delays_events_and_dead_letters_none,
    two_consumers_in_one_group_share_the_work_and_apply_each_event_once,
);

struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<(), erp_events::EventError>>,
    metrics: EventMetrics,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("joins")
            .expect("consumer ran cleanly");
    }

    fn consumed(&self, outcome: &'static str) -> u64 {
        self.metrics.consumed_count(GROUP, TOPIC, outcome)
    }
}

fn start_consumer(
    db: &DatabaseConnection,
    kafka: &KafkaConfig,
    handler: RecordingHandler,
) -> Running {
    let metrics = EventMetrics::default();
    let config = ConsumerConfig {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..ConsumerConfig::default()
    };
    let runner = ConsumerRunner::new(GROUP, db.clone(), kafka.clone(), config, metrics.clone())
        .handle(TOPIC, handler);
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    Running {
        stop,
        task,
        metrics,
    }
}

fn events(count: u64) -> Vec<(String, u64)> {
    (0..count)
        .map(|index| (format!("emp-{}", index % 5), index))
        .collect()
}

async fn a_redelivered_event_after_a_relay_crash_is_applied_once(broker: TestBroker) {
    let (_database, db) = database().await;
    let kafka = broker.kafka();
    let ids = stage_committed(&db, &events(5)).await;
    let relay = relay(&db, &kafka);
    drain_outbox(&relay).await;
    // The relay "crashed" after the broker acknowledged but before marking the rows.
    db.execute_unprepared("UPDATE outbox_events SET published_at = NULL")
        .await
        .expect("unmark");
    drain_outbox(&relay).await;

    let consumer = start_consumer(&db, &kafka, RecordingHandler::default());
    eventually(Duration::from_secs(60), || async {
        (consumer.consumed("applied") == 5 && consumer.consumed("duplicate") == 5).then_some(())
    })
    .await;
    consumer.stop().await;

    let applied = applications(&db).await;
    assert_eq!(applied.len(), ids.len());
    assert!(
        applied.values().all(|times| *times == 1),
        "each effect applied once: {applied:?}"
    );
}

async fn a_consumer_stopped_before_committing_offsets_applies_each_event_once(broker: TestBroker) {
    let (_database, db) = database().await;
    let kafka = broker.kafka();
    stage_committed(&db, &events(5)).await;
    drain_outbox(&relay(&db, &kafka)).await;

    // The first member never commits offsets and is killed (its task aborted) once the
    // effects are applied: it dies between the database commit and the offset commit.
    let mut never_commits = kafka.clone();
    never_commits
        .properties
        .insert("enable.auto.commit".to_owned(), "false".to_owned());
    let first = start_consumer(&db, &never_commits, RecordingHandler::default());
    eventually(Duration::from_secs(60), || async {
        (first.consumed("applied") == 5).then_some(())
    })
    .await;
    first.task.abort();
    let _ = first.task.await;

    let second = start_consumer(&db, &kafka, RecordingHandler::default());
    eventually(Duration::from_secs(60), || async {
        (second.consumed("duplicate") == 5).then_some(())
    })
    .await;
    assert_eq!(second.consumed("applied"), 0);
    second.stop().await;

    let applied = applications(&db).await;
    assert_eq!(applied.len(), 5);
    assert!(applied.values().all(|times| *times == 1), "{applied:?}");
}

async fn a_transient_failure_is_retried_and_a_poison_event_is_dead_lettered(broker: TestBroker) {
    let (_database, db) = database().await;
    let kafka = broker.kafka();
    let outbox = erp_events::Outbox::new(SERVICE);
    let tenant = erp_kit::auth::TenantId::new("tenant-dlq");
    let mut ids = Vec::new();
    for (aggregate, position) in [
        ("emp-flaky", FAIL_TWICE),
        ("emp-poison", POISON),
        ("emp-after", "engineer"),
        ("emp-panic", PANIC),
        ("emp-cause", FOLLOW_UP),
    ] {
        let staged = outbox
            .stage(
                &db,
                &tenant,
                aggregate,
                &crate::support::hired(aggregate, 1, position),
            )
            .await
            .expect("staged");
        ids.push(staged.event_id);
    }
    drain_outbox(&relay(&db, &kafka)).await;

    let handler = RecordingHandler::default();
    let consumer = start_consumer(&db, &kafka, handler.clone());
    eventually(Duration::from_secs(60), || async {
        (consumer.consumed("applied") == 3 && consumer.consumed("dead_lettered") == 2).then_some(())
    })
    .await;
    consumer.stop().await;

    assert_eq!(handler.attempts(&ids[0]), 3, "failed twice, then applied");
    assert_eq!(
        handler.attempts(&ids[1]),
        1,
        "a permanent error is not retried"
    );
    let applied = applications(&db).await;
    assert_eq!(applied.get(&ids[0]), Some(&1));
    assert_eq!(applied.get(&ids[1]), None, "the poison event had no effect");
    assert_eq!(
        applied.get(&ids[2]),
        Some(&1),
        "consumption went on after the poison event"
    );
    assert_eq!(
        handler.attempts(&ids[3]),
        1,
        "a panicking handler is not retried"
    );
    assert_eq!(applied.get(&ids[3]), None);
    assert_eq!(applied.get(&ids[4]), Some(&1), "and the consumer lived on");

    let dead = read_messages(&kafka, &format!("{TOPIC}.dlq"), 2).await;
    let poison = dead
        .iter()
        .find(|message| header(message, "event-id").as_deref() == Some(ids[1].as_str()))
        .expect("the poison event was dead-lettered");
    assert!(
        header(poison, "dlq-reason")
            .expect("reason")
            .contains("poison pill")
    );
    assert_eq!(header(poison, "dlq-original-topic").as_deref(), Some(TOPIC));
    assert!(header(poison, "dlq-original-partition").is_some());
    assert!(header(poison, "dlq-original-offset").is_some());
    assert_eq!(header(poison, "dlq-consumer").as_deref(), Some(GROUP));
    assert_eq!(header(poison, "dlq-attempts").as_deref(), Some("1"));
    let panicked = dead
        .iter()
        .find(|message| header(message, "event-id").as_deref() == Some(ids[3].as_str()))
        .expect("the event whose handler panicked was dead-lettered");
    assert!(
        header(panicked, "dlq-reason")
            .expect("reason")
            .contains("scripted panic"),
        "{:?}",
        header(panicked, "dlq-reason")
    );

    // The event the handler staged continues the consumed event's correlation and names
    // it as its cause.
    let consumed = staged_envelope(&db, "emp-cause").await;
    let follow_up = staged_envelope(&db, "emp-cause-follow-up").await;
    assert_eq!(follow_up.causation_id, ids[4]);
    assert_eq!(follow_up.correlation_id, consumed.correlation_id);
    assert_ne!(follow_up.correlation_id, follow_up.event_id);
}

async fn a_database_outage_delays_events_and_dead_letters_none(broker: TestBroker) {
    let (database, db) = database().await;
    let kafka = broker.kafka();
    let ids = stage_committed(&db, &events(10)).await;
    drain_outbox(&relay(&db, &kafka)).await;

    // The consumer's database goes away before it sees the events.
    database.refuse_connections().await;
    let consumer = start_consumer(&db, &kafka, RecordingHandler::default());
    // It has the events and keeps failing to reach its database, far longer than all of
    // an event's attempts and backoffs would take (3 attempts, at most 0.1 s apart).
    eventually(Duration::from_secs(60), || async {
        (consumer.metrics.database_waits() >= 10).then_some(())
    })
    .await;
    assert_eq!(
        consumer.consumed("applied"),
        0,
        "nothing applied while down"
    );
    database.allow_connections().await;

    eventually(Duration::from_secs(60), || async {
        (consumer.consumed("applied") == 10).then_some(())
    })
    .await;
    assert_eq!(consumer.consumed("dead_lettered"), 0);
    consumer.stop().await;
    let applied = applications(&db).await;
    assert_eq!(applied.len(), ids.len());
    assert!(applied.values().all(|times| *times == 1), "{applied:?}");
}

async fn two_consumers_in_one_group_share_the_work_and_apply_each_event_once(broker: TestBroker) {
    let (_database, db) = database().await;
    let kafka = broker.kafka();
    let relay = relay(&db, &kafka);
    let first = start_consumer(&db, &kafka, RecordingHandler::default());
    let second = start_consumer(&db, &kafka, RecordingHandler::default());

    // Keep events coming until both members have received some: the group has rebalanced
    // and the partitions are shared.
    let mut staged = 0u64;
    eventually(Duration::from_secs(60), || {
        let batch: Vec<(String, u64)> = (staged..staged + 30)
            .map(|index| (format!("emp-{}", index % 30), index))
            .collect();
        staged += 30;
        let (db, relay, first, second) = (&db, &relay, &first, &second);
        async move {
            stage_committed(db, &batch).await;
            drain_outbox(relay).await;
            (first.consumed("applied") > 0 && second.consumed("applied") > 0).then_some(())
        }
    })
    .await;
    let total = staged;
    eventually(Duration::from_secs(60), || async {
        (first.consumed("applied") + second.consumed("applied") == total).then_some(())
    })
    .await;
    first.stop().await;
    second.stop().await;

    let applied = applications(&db).await;
    assert_eq!(applied.len() as u64, total);
    assert!(
        applied.values().all(|times| *times == 1),
        "each event applied once across the group"
    );
}

#[tokio::test]
async fn the_inbox_forgets_a_consumers_old_events_and_only_its_own() {
    let broker = TestBroker::mock();
    let (_database, db) = database().await;
    let kafka = broker.kafka();
    db.execute_unprepared(
        "INSERT INTO processed_events (consumer, event_id, topic, processed_at) VALUES \
         ('erp-auth-service', 'old', 't', NOW() - INTERVAL '40 days'), \
         ('erp-auth-service', 'recent', 't', NOW() - INTERVAL '1 day'), \
         ('another-service', 'old', 't', NOW() - INTERVAL '40 days')",
    )
    .await
    .expect("inbox rows");
    // A consumer looks for events to forget when it starts (then hourly).
    let consumer = start_consumer(&db, &kafka, RecordingHandler::default());
    let remaining = || async {
        crate::support::count(&db, "SELECT COUNT(*) AS count FROM processed_events").await
    };
    eventually(Duration::from_secs(30), || async {
        (remaining().await == 2).then_some(())
    })
    .await;
    consumer.stop().await;
    let left = |consumer: &str, event: &str| {
        format!(
            "SELECT COUNT(*) AS count FROM processed_events \
             WHERE consumer = '{consumer}' AND event_id = '{event}'"
        )
    };
    assert_eq!(crate::support::count(&db, &left(GROUP, "recent")).await, 1);
    assert_eq!(
        crate::support::count(&db, &left("another-service", "old")).await,
        1,
        "another consumer's inbox is its own"
    );
}
