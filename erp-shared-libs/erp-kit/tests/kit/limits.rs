use std::time::Duration;

use erp_kit::{
    config::ServerConfig,
    error::reason,
    server::{REASON_DEADLINE, REASON_OVERLOADED},
};
use erp_testkit::{
    TestKeys,
    probe::proto::{EchoRequest, PingRequest, SleepRequest},
};
use tonic::{Code, Request};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{eventually, probe_with, server_config};
use erp_testkit::probe::probe_client;

#[tokio::test]
async fn a_deadline_shorter_than_the_handler_is_deadline_exceeded() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let mut request = Request::new(SleepRequest { millis: 5_000 });
    request.set_timeout(Duration::from_millis(100));
    let status = probe_client(&probe)
        .await
        .sleep(request)
        .await
        .expect_err("deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(
        reason(&status).as_deref(),
        Some(REASON_DEADLINE),
        "the server enforced it"
    );
}

#[tokio::test]
async fn the_servers_request_timeout_caps_calls_without_a_deadline() {
    let keys = TestKeys::generate();
    let config = ServerConfig {
        request_timeout: Duration::from_millis(100),
        ..server_config()
    };
    let probe = probe_with(&keys, config).await;
    let status = probe_client(&probe)
        .await
        .sleep(SleepRequest { millis: 5_000 })
        .await
        .expect_err("deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded);
}

#[tokio::test]
async fn calls_over_the_concurrency_limit_are_shed_with_resource_exhausted() {
    let keys = TestKeys::generate();
    let config = ServerConfig {
        max_concurrent_requests: 1,
        ..server_config()
    };
    let probe = probe_with(&keys, config).await;
    let mut sleeper_client = probe_client(&probe).await;
    let sleeper =
        tokio::spawn(async move { sleeper_client.sleep(SleepRequest { millis: 3_000 }).await });

    let mut client = probe_client(&probe).await;
    let shed = eventually(Duration::from_secs(2), || {
        let mut client = client.clone();
        async move { client.ping(PingRequest {}).await.err() }
    })
    .await;
    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert_eq!(reason(&shed).as_deref(), Some(REASON_OVERLOADED));
    assert!(
        !sleeper.is_finished(),
        "the shed call was answered while the admitted one still ran"
    );
    // Health is answered at the limit: a liveness probe must not fail because of load.
    let health = HealthClient::new(crate::helpers::channel(&probe.url()).await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers at the concurrency limit")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    assert!(!sleeper.is_finished(), "still at the limit");

    sleeper
        .await
        .expect("joins")
        .expect("the admitted call completes");
    client.ping(PingRequest {}).await.expect("capacity is back");
}

#[tokio::test]
async fn an_oversize_message_is_rejected_and_a_small_one_passes() {
    let keys = TestKeys::generate();
    let config = ServerConfig {
        max_message_bytes: 1024,
        ..server_config()
    };
    let probe = probe_with(&keys, config).await;
    let mut client = probe_client(&probe).await;
    let small = client
        .echo(EchoRequest {
            payload: vec![7; 512],
        })
        .await
        .expect("small passes");
    assert_eq!(small.into_inner().length, 512);
    let status = client
        .echo(EchoRequest {
            payload: vec![7; 4096],
        })
        .await
        .expect_err("oversize refused");
    // tonic answers an oversize message with OUT_OF_RANGE, naming the limit.
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("limit is: 1024"), "{status:?}");
}
