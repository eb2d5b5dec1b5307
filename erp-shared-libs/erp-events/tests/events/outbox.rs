use std::{collections::HashMap, time::Duration};

use erp_events::{HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_TRACEPARENT, Outbox};
use erp_kit::auth::TenantId;
use erp_proto::erp::events::v1::{EmployeeHired, EventEnvelope};
use prost::Message as _;
use rdkafka::Message;
use sea_orm::TransactionTrait;
use tokio_util::sync::CancellationToken;

use erp_testkit::broker::TestBroker;

use crate::{
    on_both_brokers,
    support::{
        SERVICE, TOPIC, database, drain_outbox, eventually, header, hired, key, message_count,
        read_messages, relay, stage_committed, unpublished,
    },
};

on_both_brokers!(
    a_rolled_back_stage_publishes_nothing_and_a_committed_one_publishes_once,
    events_written_while_the_broker_is_down_are_all_delivered_in_order_when_it_returns,
);

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
