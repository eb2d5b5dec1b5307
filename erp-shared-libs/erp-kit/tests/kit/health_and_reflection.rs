use erp_testkit::{TestKeys, probe::proto::PingRequest};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::{http_get, probe_with, server_config};
use erp_testkit::probe::probe_client;

const PROBE: &str = "erp.testkit.v1.ProbeService";

#[tokio::test]
async fn health_reports_the_service_and_the_server_as_serving() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let mut health = HealthClient::new(crate::helpers::channel(&probe.url()).await);
    for service in [PROBE, ""] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "service {service:?}");
    }
}

#[tokio::test]
async fn reflection_v1_lists_the_served_services() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(
        crate::helpers::channel(&probe.url()).await,
    );
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("a message")
        .expect("not empty");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    assert!(names.iter().any(|name| name == PROBE), "{names:?}");
    assert!(
        names.iter().any(|name| name == "grpc.health.v1.Health"),
        "{names:?}"
    );
}

#[tokio::test]
async fn reflection_v1alpha_answers_for_older_tools() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(
        crate::helpers::channel(&probe.url()).await,
    );
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                PROBE.to_owned(),
            ),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("a message")
        .expect("not empty");
    assert!(
        matches!(
            response.message_response,
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(ref files))
                if !files.file_descriptor_proto.is_empty()
        ),
        "{response:?}"
    );
}

#[tokio::test]
async fn the_admin_port_serves_metrics_liveness_and_readiness() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    probe_client(&probe)
        .await
        .ping(PingRequest {})
        .await
        .expect("ping");
    // Paths no service answers share one series, whatever callers make up.
    let mut raw = tonic::client::Grpc::new(crate::helpers::channel(&probe.url()).await);
    for path in ["/erp.made.v1.Up/One", "/erp.made.v1.Up/Two"] {
        raw.ready().await.expect("ready");
        let refused = raw
            .unary(
                tonic::Request::new(PingRequest {}),
                path.parse().expect("a path"),
                tonic_prost::ProstCodec::<PingRequest, PingRequest>::default(),
            )
            .await
            .expect_err("no such method");
        assert_eq!(refused.code(), tonic::Code::Unimplemented);
    }

    let (status, metrics) = http_get(probe.admin_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            r#"grpc_server_handled_total{method="/erp.testkit.v1.ProbeService/Ping",code="Ok"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"grpc_server_handled_total{method="unknown",code="Unimplemented"} 2"#),
        "{metrics}"
    );
    assert!(!metrics.contains("erp.made.v1"), "{metrics}");
    assert!(
        metrics.contains("grpc_server_handling_seconds_bucket"),
        "{metrics}"
    );
    assert_eq!(http_get(probe.admin_addr, "/healthz").await.0, 200);
    assert_eq!(http_get(probe.admin_addr, "/readyz").await.0, 200);
}
