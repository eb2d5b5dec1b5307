use std::{collections::HashMap, time::Duration};

use erp_events::{HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_TRACEPARENT, Outbox};
use erp_kit::auth::TenantId;
use erp_proto::erp::events::v1::{EmployeeHired, EventEnvelope};
use prost::Message as _;
use rdkafka::Message;
use sea_orm::{ConnectionTrait, TransactionTrait};
use tokio_util::sync::CancellationToken;

use erp_testkit::broker::TestBroker;

use crate::{
    on_both_brokers,
    support::{
        SERVICE, TOPIC, count, database, drain_outbox, eventually, header, hired, key,
        message_count, read_messages, relay, stage_committed, staged_envelope, unpublished,
    },
};

on_both_brokers!(
    a_rolled_back_stage_publishes_nothing_and_a_committed_one_publishes_once,
    events_written_while_the_broker_is_down_are_all_delivered_in_order_when_it_returns,
    a_refused_row_holds_back_only_its_aggregate_and_its_order_survives,
);

async fn a_refused_row_holds_back_only_its_aggregate_and_its_order_survives(broker: TestBroker) {
    let (_database, db) = database().await;
    let kafka = broker.kafka();
    let outbox = Outbox::new(SERVICE);
    let tenant = TenantId::new("tenant-refused");
    // Over the producer's message.max.bytes (1,000,000): refused every time it is sent.
    let oversize = "x".repeat(1_200_000);
    let mut ids = Vec::new();
    for (seq, (aggregate, position)) in [
        ("emp-stuck", oversize.as_str()),
        ("emp-stuck", "second"),
        ("emp-free", "engineer"),
    ]
    .into_iter()
    .enumerate()
    {
        let staged = outbox
            .stage(
                &db,
                &tenant,
                aggregate,
                &hired(aggregate, seq as u64, position),
            )
            .await
            .expect("staged");
        ids.push(staged.event_id);
    }

    // No backoff: a refused row is due again at once, so each round retries it.
    let relay = erp_events::Relay::new(
        db.clone(),
        &kafka,
        erp_events::RelayConfig {
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            ..erp_events::RelayConfig::default()
        },
        erp_events::EventMetrics::default(),
    )
    .expect("relay");
    for _ in 0..3 {
        // Refusals are expected: the round answers how many went out, or the error.
        let _ = relay.publish_pending().await;
    }
    assert_eq!(
        message_count(&kafka, TOPIC),
        1,
        "the other aggregate's event went out, once; the stuck one's second event waited"
    );
    assert_eq!(key(&read_messages(&kafka, TOPIC, 1).await[0]), "emp-free");
    let attempts = |event_id: &str| {
        format!(
            "SELECT CAST(attempts AS BIGINT) AS count FROM outbox_events WHERE event_id = '{event_id}'"
        )
    };
    assert_eq!(count(&db, &attempts(&ids[0])).await, 3, "tried each round");
    assert_eq!(count(&db, &attempts(&ids[1])).await, 0, "never sent");

    // An operator shrinks the refused event: both go out, in order, once each.
    let mut envelope = staged_envelope(&db, "emp-stuck").await;
    envelope.payload = hired("emp-stuck", 0, "first").encode_to_vec();
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE outbox_events SET envelope = $1 WHERE event_id = $2",
        [envelope.encode_to_vec().into(), ids[0].clone().into()],
    ))
    .await
    .expect("shrunk");
    drain_outbox(&relay).await;
    assert_eq!(message_count(&kafka, TOPIC), 3);
    let stuck: Vec<String> = read_messages(&kafka, TOPIC, 3)
        .await
        .iter()
        .filter(|message| key(message) == "emp-stuck")
        .filter_map(|message| header(message, HEADER_EVENT_ID))
        .collect();
    assert_eq!(stuck, ids[..2]);
}

async fn a_rolled_back_stage_publishes_nothing_and_a_committed_one_publishes_once(
    broker: TestBroker,
) {
    let (_database, db) = database().await;
    let kafka = broker.kafka();
    let outbox = Outbox::new(SERVICE);
    let tenant = TenantId::new("tenant-1");

    let rolled_back = db.begin().await.expect("begin");
    outbox
        .stage(
            &rolled_back,
            &tenant,
            "emp-rolled-back",
            &hired("emp-rolled-back", 1, "x"),
        )
        .await
        .expect("staged");
    rolled_back.rollback().await.expect("rollback");

    let committed = db.begin().await.expect("begin");
    let staged = outbox
        .stage(
            &committed,
            &tenant,
            "emp-42",
            &hired("emp-42", 1, "engineer"),
        )
        .await
        .expect("staged");
    committed.commit().await.expect("commit");
    assert_eq!(staged.topic, TOPIC);
    assert_eq!(staged.event_type, "employee.hired");

    let relay = relay(&db, &kafka);
    drain_outbox(&relay).await;
    assert_eq!(
        relay.publish_pending().await.expect("round"),
        0,
        "nothing left to publish"
    );
    assert_eq!(
        message_count(&kafka, TOPIC),
        1,
        "exactly one message on the topic"
    );

    let message = read_messages(&kafka, TOPIC, 1).await.remove(0);
    assert_eq!(key(&message), "emp-42", "the aggregate id is the key");
    assert_eq!(
        header(&message, HEADER_EVENT_TYPE).as_deref(),
        Some("employee.hired")
    );
    assert_eq!(
        header(&message, HEADER_EVENT_ID).as_deref(),
        Some(staged.event_id.as_str())
    );
    assert!(
        header(&message, HEADER_TRACEPARENT).is_some(),
        "traceparent header present"
    );
    let envelope = EventEnvelope::decode(message.payload().expect("payload")).expect("envelope");
    assert_eq!(envelope.event_id, staged.event_id);
    assert_eq!(envelope.tenant_id, "tenant-1");
    assert_eq!(envelope.source_service, SERVICE);
    assert_eq!(envelope.aggregate_type, "employee");
    assert_eq!(envelope.aggregate_id, "emp-42");
    assert_eq!(envelope.schema_version, "1.0");
    assert_eq!(envelope.payload_type, "erp.events.v1.EmployeeHired");
    assert!(envelope.occurred_at.is_some());
    let payload = EmployeeHired::decode(envelope.payload.as_slice()).expect("payload");
    assert_eq!(payload.position, "engineer");
}

async fn events_written_while_the_broker_is_down_are_all_delivered_in_order_when_it_returns(
    mut broker: TestBroker,
) {
    let (_database, db) = database().await;
    let kafka = broker.kafka();
    let stop = CancellationToken::new();
    let relay_task = tokio::spawn(relay(&db, &kafka).run(stop.clone()));

    broker.stop().await;
    let events: Vec<(String, u64)> = (0..1_000u64)
        .map(|index| (format!("emp-{}", index % 10), index / 10))
        .collect();
    let ids = stage_committed(&db, &events).await;
    eventually(Duration::from_secs(30), || async {
        let attempted = crate::support::count(
            &db,
            "SELECT COUNT(*) AS count FROM outbox_events WHERE attempts > 0",
        )
        .await;
        (attempted > 0).then_some(())
    })
    .await;
    assert_eq!(
        unpublished(&db).await,
        1_000,
        "every event waits in the outbox while the broker is down"
    );

    broker.start().await;
    eventually(Duration::from_secs(60), || async {
        (unpublished(&db).await == 0).then_some(())
    })
    .await;
    stop.cancel();
    relay_task.await.expect("relay stops");

    let messages = read_messages(&kafka, TOPIC, 1_000).await;
    let mut delivered: Vec<String> = messages
        .iter()
        .map(|message| header(message, HEADER_EVENT_ID).expect("event id"))
        .collect();
    delivered.sort();
    delivered.dedup();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(delivered, expected, "every event delivered, none lost");

    // At-least-once may repeat a message; the first delivery of each must be in order.
    let mut last_seq: HashMap<String, i64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for message in &messages {
        let envelope =
            EventEnvelope::decode(message.payload().expect("payload")).expect("envelope");
        if !seen.insert(envelope.event_id.clone()) {
            continue;
        }
        let seq: i64 = EmployeeHired::decode(envelope.payload.as_slice())
            .expect("payload")
            .employee_id
            .parse()
            .expect("seq");
        let previous = last_seq
            .insert(envelope.aggregate_id.clone(), seq)
            .unwrap_or(-1);
        assert!(
            seq > previous,
            "{}: seq {seq} after {previous}",
            envelope.aggregate_id
        );
    }
}

#[tokio::test]
async fn published_rows_are_deleted_after_their_retention_and_unpublished_ones_never() {
    let (_database, db) = database().await;
    let broker = TestBroker::mock();
    let kafka = broker.kafka();
    let ids = stage_committed(&db, &[("emp-old".to_owned(), 1), ("emp-new".to_owned(), 2)]).await;
    drain_outbox(&relay(&db, &kafka)).await;
    stage_committed(&db, &[("emp-pending".to_owned(), 3)]).await;
    // The first row was published eight days ago; the pending one was staged as long ago.
    db.execute_unprepared(&format!(
        "UPDATE outbox_events SET published_at = NOW() - INTERVAL '8 days' WHERE event_id = '{}'",
        ids[0]
    ))
    .await
    .expect("aged");
    db.execute_unprepared(
        "UPDATE outbox_events SET created_at = NOW() - INTERVAL '8 days' WHERE aggregate_id = 'emp-pending'",
    )
    .await
    .expect("aged");

    relay(&db, &kafka).purge_published().await;
    let left = |aggregate: &str| {
        format!("SELECT COUNT(*) AS count FROM outbox_events WHERE aggregate_id = '{aggregate}'")
    };
    assert_eq!(
        count(&db, &left("emp-old")).await,
        0,
        "past the 7-day default"
    );
    assert_eq!(count(&db, &left("emp-new")).await, 1, "recently published");
    assert_eq!(count(&db, &left("emp-pending")).await, 1, "never published");
}
