use std::time::Duration;

use erp_kit::config::ServerConfig;
use erp_testkit::{
    TestKeys,
    probe::proto::{PingRequest, SleepRequest},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{eventually, http_get, probe_with, server_config};
use erp_testkit::probe::probe_client;

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_calls_then_stops_listening() {
    let keys = TestKeys::generate();
    let config = ServerConfig {
        max_concurrent_requests: 1,
        ..server_config()
    };
    let probe = probe_with(&keys, config).await;
    let mut sleeper_client = probe_client(&probe).await;
    let in_flight =
        tokio::spawn(async move { sleeper_client.sleep(SleepRequest { millis: 800 }).await });
    // The limit of one makes "the sleep is in flight" observable: pings get shed.
    let mut client = probe_client(&probe).await;
    eventually(Duration::from_secs(2), || {
        let mut client = client.clone();
        async move { client.ping(PingRequest {}).await.err() }
    })
    .await;

    let url = probe.url();
    probe.shutdown();
    let finished = in_flight
        .await
        .expect("joins")
        .expect("the in-flight call completes");
    assert_eq!(finished.into_inner().slept_millis, 800);
    probe.stopped().await.expect("stopped cleanly");
    assert!(
        erp_testkit::probe::proto::probe_service_client::ProbeServiceClient::connect(url)
            .await
            .is_err(),
        "no new connections after shutdown"
    );
    drop(client.ping(PingRequest {}).await);
}

#[tokio::test]
async fn health_flips_to_not_serving_while_draining() {
    let keys = TestKeys::generate();
    let config = ServerConfig {
        drain_delay: Duration::from_secs(2),
        ..server_config()
    };
    let probe = probe_with(&keys, config).await;
    let mut health = HealthClient::new(crate::helpers::channel(&probe.url()).await);
    probe.shutdown();
    let status = eventually(Duration::from_secs(2), || {
        let mut health = health.clone();
        async move {
            let status = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .ok()?
                .into_inner()
                .status();
            (status == ServingStatus::NotServing).then_some(status)
        }
    })
    .await;
    assert_eq!(status, ServingStatus::NotServing);
    assert_eq!(http_get(probe.admin_addr, "/readyz").await.0, 503);
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok();
    probe.stopped().await.expect("stopped cleanly");
}
