use std::time::Duration;

use erp_events::{EventMetrics, Outbox, Relay, RelayConfig};
use erp_kit::auth::TenantId;
use erp_proto::erp::{
    auth::v1::{GetUserRequest, UserStatus},
    events::v1::{EmployeeDeleted, EmployeeTerminated, EventEnvelope},
};
use erp_testkit::{TestDatabase, broker::TestBroker, wait::eventually};
use prost::Message as _;
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
};

use crate::helpers::{USER_PASSWORD, bearer, spawn_on};

struct HrmOutbox;

#[async_trait::async_trait]
impl sea_orm_migration::MigratorTrait for HrmOutbox {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        erp_events::migrations()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn employee_terminated_and_deleted_events_disable_the_linked_logins_and_auth_events_are_published()
 {
    let broker = TestBroker::mock();
    let kafka = broker.kafka();
    let app = spawn_on(TestDatabase::postgres().await, |config| {
        config.events.enabled = true;
        config.events.kafka = kafka.clone();
        config.events.relay.idle_interval = Duration::from_millis(10);
    })
    .await;
    let tenant = app.tenant("events", 0).await;
    let user_id = app
        .user(&tenant, "leaver@events.example.com", &["employee"])
        .await;
    let mistaken_id = app
        .user(&tenant, "mistake@events.example.com", &["employee"])
        .await;

    // HRM publishes EmployeeTerminated and EmployeeDeleted through its own outbox and relay.
    let hrm_database = TestDatabase::postgres().await;
    let hrm_db = erp_db::connect_and_migrate::<HrmOutbox>(&hrm_database.config())
        .await
        .expect("hrm db");
    Outbox::new("erp-hrm-service")
        .stage(
            &hrm_db,
            &TenantId::new(tenant.id.clone()),
            "employee-7",
            &EmployeeTerminated {
                id: "employee-7".to_owned(),
                employee_id: "EMP-7".to_owned(),
                reason: "resigned".to_owned(),
                user_id: user_id.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("staged");
    Outbox::new("erp-hrm-service")
        .stage(
            &hrm_db,
            &TenantId::new(tenant.id.clone()),
            "employee-8",
            &EmployeeDeleted {
                id: "employee-8".to_owned(),
                employee_id: "EMP-8".to_owned(),
                user_id: mistaken_id.clone(),
            },
        )
        .await
        .expect("staged");
    let relay = Relay::new(
        hrm_db,
        &kafka,
        RelayConfig::default(),
        EventMetrics::default(),
    )
    .expect("relay");
    let published = std::sync::atomic::AtomicUsize::new(0);
    eventually(Duration::from_secs(30), || async {
        let now = relay.publish_pending().await.ok()?;
        let total = published.fetch_add(now, std::sync::atomic::Ordering::Relaxed) + now;
        (total == 2).then_some(())
    })
    .await;

    let mut client = app.client().await;
    for (user_id, email) in [
        (&user_id, "leaver@events.example.com"),
        (&mistaken_id, "mistake@events.example.com"),
    ] {
        eventually(Duration::from_secs(60), || {
            let mut client = client.clone();
            let request = bearer(
                GetUserRequest {
                    user_id: user_id.clone(),
                },
                &tenant.admin_token,
            );
            async move {
                let user = client.get_user(request).await.ok()?.into_inner().user?;
                (user.status == UserStatus::Disabled as i32).then_some(())
            }
        })
        .await;
        let login = app
            .login("events", email, USER_PASSWORD)
            .await
            .expect_err("disabled");
        assert_eq!(login.code(), tonic::Code::Unauthenticated, "{email}");
    }
    drop(
        client
            .get_user(bearer(
                GetUserRequest {
                    user_id: user_id.clone(),
                },
                &tenant.admin_token,
            ))
            .await,
    );

    // The auth service's own events reached their topics.
    let types = read_event_types(
        &kafka.bootstrap,
        &["erp.auth.tenant.v1", "erp.auth.user.v1"],
        6,
    )
    .await;
    assert!(types.contains(&"tenant.created".to_owned()), "{types:?}");
    assert_eq!(
        types.iter().filter(|t| *t == "user.created").count(),
        3,
        "admin, leaver and mistake: {types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "user.disabled").count(),
        2,
        "{types:?}"
    );
}

async fn read_event_types(bootstrap: &str, topics: &[&str], expected: usize) -> Vec<String> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("reader");
    consumer.subscribe(topics).expect("subscribe");
    let mut types = Vec::new();
    while types.len() < expected {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("events arrive")
            .expect("message");
        let envelope =
            EventEnvelope::decode(message.payload().expect("payload")).expect("envelope");
        types.push(envelope.event_type);
    }
    types
}
