use std::time::Duration;

use erp_kit::client::{ClientConfig, MeshChannel};
use erp_proto::Contracts;
use erp_testkit::{
    TestKeys,
    probe::{
        probe_contracts,
        proto::{
            FlakyRequest, PingRequest, RelayRequest, probe_service_client::ProbeServiceClient,
        },
    },
};
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tonic::{Code, Request};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

use crate::helpers::{bearer, probe_with, server_config};
use erp_testkit::probe::probe_client;

#[tokio::test]
async fn token_request_id_and_deadline_travel_one_hop() {
    let keys = TestKeys::generate();
    let upstream = probe_with(&keys, server_config()).await;
    let downstream = probe_with(&keys, server_config()).await;
    let token = keys.token().tenant("tenant-p").user("user-p").sign();

    let mut request = bearer(
        RelayRequest {
            target_url: downstream.url(),
            delay_millis: 1_000,
        },
        &token,
    );
    request.set_timeout(Duration::from_secs(3));
    request
        .metadata_mut()
        .insert("x-request-id", "req-42".parse().expect("value"));
    let relayed = probe_client(&upstream)
        .await
        .relay(request)
        .await
        .expect("relayed")
        .into_inner()
        .downstream
        .expect("downstream answer");

    assert_eq!(
        relayed.tenant_id, "tenant-p",
        "the caller's token reached the second hop"
    );
    assert_eq!(relayed.user_id, "user-p");
    assert_eq!(relayed.request_id, "req-42");
    assert!(
        (1..=2_000).contains(&relayed.deadline_remaining_ms),
        "what was left of the 3 s deadline after the first hop's 1 s propagated (not a \
         fresh 3 s, nor the 10 s client default): {} ms left",
        relayed.deadline_remaining_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_span_is_the_parent_of_the_server_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(erp_kit::telemetry::span_layer(provider.tracer("kit-test")));
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber of this process");

    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let channel = MeshChannel::connect_lazy(&probe.url(), &ClientConfig::default())
        .expect("channel")
        .with_contracts(probe_contracts());
    ProbeServiceClient::new(channel)
        .ping(PingRequest {})
        .instrument(tracing::info_span!("test.root"))
        .await
        .expect("ping");
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    let of_kind = |kind: SpanKind| {
        spans
            .iter()
            .find(|span| span.span_kind == kind && span.name == "/erp.testkit.v1.ProbeService/Ping")
            .unwrap_or_else(|| panic!("a {kind:?} span for Ping"))
    };
    let client = of_kind(SpanKind::Client);
    let server = of_kind(SpanKind::Server);
    assert_eq!(
        server.span_context.trace_id(),
        client.span_context.trace_id(),
        "one trace"
    );
    assert_eq!(
        server.parent_span_id,
        client.span_context.span_id(),
        "server span's parent is the client span"
    );
}

#[tokio::test]
async fn idempotent_reads_are_retried_on_unavailable() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let channel = MeshChannel::connect_lazy(&probe.url(), &ClientConfig::default())
        .expect("channel")
        .with_contracts(probe_contracts());
    let answer = ProbeServiceClient::new(channel)
        .flaky(FlakyRequest {
            key: "reads".to_owned(),
            failures: 2,
        })
        .await
        .expect("third attempt succeeds");
    assert_eq!(answer.into_inner().attempt, 3);
}

#[tokio::test]
async fn methods_not_known_as_reads_are_not_retried() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    // The mesh's own contracts do not know the probe: its methods count as non-idempotent.
    let channel = MeshChannel::connect_lazy(&probe.url(), &ClientConfig::default())
        .expect("channel")
        .with_contracts(Contracts::bundled());
    let status = ProbeServiceClient::new(channel)
        .flaky(Request::new(FlakyRequest {
            key: "writes".to_owned(),
            failures: 1,
        }))
        .await
        .expect_err("no retry");
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn a_peer_that_never_answers_costs_no_more_than_the_deadline() {
    // Accepts connections and then says nothing, like a wedged process.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let address = listener.local_addr().expect("address");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let config = ClientConfig {
        request_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(60),
        ..ClientConfig::default()
    };
    let channel = MeshChannel::connect_lazy(&format!("http://{address}"), &config)
        .expect("channel")
        .with_contracts(probe_contracts());
    let started = std::time::Instant::now();
    let status = ProbeServiceClient::new(channel)
        .ping(PingRequest {})
        .await
        .expect_err("nobody answers");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up at the 300 ms deadline, not at the 60 s connect timeout: {:?}",
        started.elapsed()
    );
    silent.abort();
}
