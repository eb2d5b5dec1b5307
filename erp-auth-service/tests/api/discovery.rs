use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::helpers::spawn_app;

#[tokio::test]
async fn reflection_lists_the_auth_service_and_health_is_serving() {
    let app = spawn_app().await;
    let channel = Channel::from_shared(format!("http://{}", app.addr))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "erp.auth.v1.AuthService".to_owned(),
        })
        .await
        .expect("health")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = stream
        .message()
        .await
        .expect("message")
        .expect("some")
        .message_response
    else {
        panic!("unexpected reflection answer");
    };
    assert!(
        list.service
            .iter()
            .any(|service| service.name == "erp.auth.v1.AuthService")
    );
}
