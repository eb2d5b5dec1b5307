//! The HTTP front against a real auth service on PostgreSQL: JSON in, gRPC to the service,
//! JSON out, and every kind of refusal mapped with the field or the reason.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use erp_api_gateway::{http_front::HttpFront, limits::LimitsConfig};
use erp_auth_service::config::Config as AuthConfig;
use erp_kit::{
    ShutdownHandle,
    auth::{GrpcJwksSource, TokenVerifier},
    client::ClientConfig,
    config::AuthConfig as KitAuthConfig,
};
use erp_proto::{
    Contracts,
    erp::auth::v1::{GetUserRequest, auth_service_client::AuthServiceClient},
};
use erp_testkit::TestDatabase;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, body::Bytes};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};

const SECRET: &str = "gateway-test-bootstrap";
const ADMIN_PASSWORD: &str = "Admin-password-2026";

struct Stack {
    gateway: SocketAddr,
    auth: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Stops the service this stack started when the stack is dropped.
    service_shutdown: ShutdownHandle,
    _database: TestDatabase,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.service_shutdown.shutdown();
    }
}

/// A gateway over `upstreams` on a free port, verifying tokens with the auth service at
/// `verify_with` (none: only public methods pass); browsers from app.example.com allowed.
async fn serve_gateway(
    upstreams: &BTreeMap<String, String>,
    verify_with: Option<SocketAddr>,
    limits: &LimitsConfig,
) -> SocketAddr {
    let verifier = verify_with.map(|auth| {
        let keys = GrpcJwksSource::new(&format!("http://{auth}"), Duration::from_secs(2))
            .expect("jwks source");
        Arc::new(TokenVerifier::new(
            &KitAuthConfig::default(),
            Arc::new(keys),
        ))
    });
    let front = HttpFront::new(
        Contracts::bundled_documented(),
        upstreams,
        &ClientConfig::default(),
        verifier,
        limits,
    )
    .expect("routes from the contracts")
    .with_cors_origins("https://app.example.com");
    serve_front(front).await
}

/// A plain HTTP/1.1 client, as curl or a browser's fetch.
fn http_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `front` on a free port.
async fn serve_front(front: HttpFront) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let gateway = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            front
                .router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    gateway
}

impl Stack {
    async fn start() -> Self {
        Self::start_with(LimitsConfig::default()).await
    }

    async fn start_with(limits: LimitsConfig) -> Self {
        let database = TestDatabase::postgres().await;
        let mut config = AuthConfig::default();
        config.server.grpc_port = 0;
        config.server.admin_port = 0;
        config.database = database.config();
        config.events.enabled = false;
        config.auth.bootstrap_secret = SECRET.to_owned().into();
        let application = erp_auth_service::Application::build(config)
            .await
            .expect("auth starts");
        let auth = application.local_addr();
        let service_shutdown = application.shutdown_handle();
        tokio::spawn(async move { application.run_until_stopped().await.expect("auth ran") });

        let upstreams = BTreeMap::from([("auth".to_owned(), format!("http://{auth}"))]);
        let gateway = serve_gateway(&upstreams, Some(auth), &limits).await;
        Self {
            gateway,
            auth,
            client: http_client(),
            service_shutdown,
            _database: database,
        }
    }

    /// The gateway's whole answer (status and headers) to an empty-bodied request.
    async fn answer(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> hyper::Response<hyper::body::Incoming> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.gateway));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.client
            .request(request.body(Full::new(Bytes::new())).expect("request"))
            .await
            .expect("the gateway answers")
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.gateway))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .client
            .request(
                request
                    .body(Full::new(Bytes::from(body.to_owned())))
                    .expect("request"),
            )
            .await
            .expect("the gateway answers");
        let status = response.status();
        assert!(
            response
                .headers()
                .get("x-request-id")
                .is_some_and(|id| !id.is_empty()),
            "every answer carries a request id"
        );
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("JSON body: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    /// The `Retry-After` seconds of a refused public call.
    async fn retry_after(&self, path: &str) -> u64 {
        let response = self
            .client
            .request(
                Request::builder()
                    .uri(format!("http://{}{path}", self.gateway))
                    .body(Full::new(Bytes::new()))
                    .expect("request"),
            )
            .await
            .expect("the gateway answers");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .expect("a Retry-After header in seconds")
    }

    /// Operator token → tenant → admin login, all over HTTP/JSON; the admin's token.
    async fn tenant_admin(&self, slug: &str) -> String {
        let (status, operator) = self
            .send(
                Method::POST,
                "/v1/operator:token",
                None,
                &json!({"bootstrapSecret": SECRET}).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{operator}");
        let operator = operator["accessToken"].as_str().expect("token").to_owned();
        let (status, tenant) = self
            .send(
                Method::POST,
                "/v1/tenants",
                Some(&operator),
                &json!({
                    "slug": slug,
                    "displayName": "Gateway Test",
                    "plan": {"name": "all", "enabledModules": ["MODULE_HRM"]},
                    "adminEmail": format!("admin@{slug}.example.com"),
                    "admin_password": ADMIN_PASSWORD,
                })
                .to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{tenant}");
        let (status, login) = self
            .send(
                Method::POST,
                "/v1/sessions:login",
                None,
                &json!({
                    "tenantSlug": slug,
                    "email": format!("admin@{slug}.example.com"),
                    "password": ADMIN_PASSWORD,
                })
                .to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{login}");
        login["tokens"]["accessToken"]
            .as_str()
            .expect("access token")
            .to_owned()
    }
}

#[tokio::test]
async fn json_over_http_reaches_the_service_and_agrees_with_grpc() {
    let stack = Stack::start().await;
    let admin = stack.tenant_admin("gateway").await;

    let (status, users) = stack
        .send(Method::GET, "/v1/users?page.pageSize=5", Some(&admin), "")
        .await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let listed = users["users"].as_array().expect("users");
    assert_eq!(listed.len(), 1, "just the admin: {users}");
    let id = listed[0]["userId"].as_str().expect("id");

    let (status, over_http) = stack
        .send(Method::GET, &format!("/v1/users/{id}"), Some(&admin), "")
        .await;
    assert_eq!(status, StatusCode::OK, "{over_http}");
    let mut auth = AuthServiceClient::connect(format!("http://{}", stack.auth))
        .await
        .expect("direct gRPC");
    let mut request = tonic::Request::new(GetUserRequest {
        user_id: id.to_owned(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {admin}").parse().expect("header"),
    );
    let direct = auth
        .get_user(request)
        .await
        .expect("direct")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(over_http["user"]["email"], direct.email);
    assert_eq!(over_http["user"]["userId"], direct.user_id);
}

#[tokio::test]
async fn refusals_are_mapped_with_the_field_or_the_reason() {
    let stack = Stack::start().await;
    let admin = stack.tenant_admin("gwerr").await;

    let (status, body) = stack.send(Method::GET, "/v1/users", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    let (status, body) = stack
        .send(
            Method::GET,
            "/v1/users?page.pageSize=lots",
            Some(&admin),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"]["fieldViolations"][0]["field"],
        "page.pageSize"
    );

    let (status, body) = stack
        .send(Method::POST, "/v1/users", Some(&admin), "{\"email\": ")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["fieldViolations"][0]["field"], "body");

    // Refused by the service itself: its field violations come through.
    let (status, body) = stack
        .send(
            Method::POST,
            "/v1/users",
            Some(&admin),
            &json!({"email": "not-an-email", "password": "Long-enough-password-1"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        body["error"]["fieldViolations"]
            .as_array()
            .expect("violations")
            .iter()
            .any(|violation| violation["field"] == "email"),
        "{body}"
    );

    let (status, body) = stack
        .send(Method::GET, "/v1/users/no-such-user", Some(&admin), "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"]["reason"].as_str().is_some(), "{body}");

    let (status, body) = stack.send(Method::GET, "/v1/nowhere", None, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let answer = stack
        .answer(
            Method::GET,
            "/.well-known/jwks.json",
            &[("x-request-id", "req-from-caller")],
        )
        .await;
    assert_eq!(answer.headers()["x-request-id"], "req-from-caller");
    let unprintable = stack
        .client
        .request(
            Request::builder()
                .uri(format!("http://{}/.well-known/jwks.json", stack.gateway))
                .header(
                    "x-request-id",
                    http::HeaderValue::from_bytes("caf\u{e9}".as_bytes()).expect("opaque bytes"),
                )
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("answer");
    let replaced = unprintable.headers()["x-request-id"]
        .to_str()
        .expect("ASCII");
    assert!(
        uuid::Uuid::parse_str(replaced).is_ok(),
        "an id that cannot travel on is replaced: {replaced}"
    );
    let not_allowed = stack
        .answer(Method::DELETE, "/v1/operator:token", &[])
        .await;
    assert_eq!(not_allowed.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        not_allowed.headers()["allow"],
        "POST",
        "RFC 9110: a 405 names what is"
    );
    // HEAD answers as GET does, without the body (RFC 9110 asks every server for both).
    let head = stack
        .answer(Method::HEAD, "/.well-known/jwks.json", &[])
        .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-type"], "application/json");
    let body = head.into_body().collect().await.expect("body").to_bytes();
    assert!(body.is_empty(), "no body: {body:?}");
    let not_allowed = stack
        .answer(Method::DELETE, "/.well-known/jwks.json", &[])
        .await;
    assert_eq!(not_allowed.headers()["allow"], "GET, HEAD");

    // A unit without an upstream is unavailable, not an error of the gateway.
    let (status, body) = stack
        .send(Method::GET, "/v1/employees/e1", Some(&admin), "")
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn callers_are_checked_at_the_edge_before_any_service_is_asked() {
    // No HRM upstream is configured: any answer about HRM routes other than 503 comes
    // from the gateway itself.
    let stack = Stack::start().await;
    let admin = stack.tenant_admin("edgecheck").await;
    let (status, created) = stack
        .send(
            Method::POST,
            "/v1/users",
            Some(&admin),
            &json!({"email": "clerk@edgecheck.example.com", "password": "Clerk-password-2026"})
                .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, login) = stack
        .send(
            Method::POST,
            "/v1/sessions:login",
            None,
            &json!({
                "tenantSlug": "edgecheck",
                "email": "clerk@edgecheck.example.com",
                "password": "Clerk-password-2026",
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let clerk = login["tokens"]["accessToken"].as_str().expect("token");

    let (status, body) = stack.send(Method::GET, "/v1/employees/e1", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = stack
        .send(Method::GET, "/v1/employees/e1", Some("not.a.token"), "")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = stack
        .send(Method::GET, "/v1/employees/e1", Some(clerk), "")
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no role, no hrm permission: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("hrm.employee.read")),
        "{body}"
    );
    // Public methods need no token.
    let (status, body) = stack
        .send(Method::GET, "/.well-known/jwks.json", None, "")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["keys"].as_array().is_some_and(|keys| !keys.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn over_the_limit_is_429_with_retry_after_and_big_requests_are_413_414_431() {
    let stack = Stack::start_with(LimitsConfig {
        address_per_second: 0.01,
        address_burst: 5,
        tenant_per_second: 0.01,
        tenant_burst: 3,
        max_body_bytes: 1024,
        max_uri_bytes: 512,
        max_header_bytes: 4096,
        ..LimitsConfig::default()
    })
    .await;
    // The operator token and the login are public calls from this address (2 of 5); the
    // tenant is created with the operator's token, in the operator's own bucket.
    let admin = stack.tenant_admin("limited").await;
    // A body over the limit is refused once the call is admitted (one of the tenant's 3);
    // a request without a route is answered without its body being read.
    let big = format!("{{\"email\": \"{}\"}}", "x".repeat(2048));
    let (status, body) = stack
        .send(Method::POST, "/v1/users", Some(&admin), &big)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = stack.send(Method::POST, "/v1/nowhere", None, &big).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for _ in 0..2 {
        let (status, body) = stack.send(Method::GET, "/v1/users", Some(&admin), "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = stack.send(Method::GET, "/v1/users", Some(&admin), "").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the tenant's burst is spent: {body}"
    );
    assert_eq!(body["error"]["reason"], "ERP:GATEWAY:RATE_LIMITED");

    // The address still has public calls left; then it is limited on its own.
    let mut public = Vec::new();
    for _ in 0..4 {
        public.push(
            stack
                .send(Method::GET, "/.well-known/jwks.json", None, "")
                .await
                .0,
        );
    }
    assert_eq!(
        public,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // At 0.01 calls a second the next call is about 100 s away.
    let retry_after = stack.retry_after("/.well-known/jwks.json").await;
    assert!(
        (60..=100).contains(&retry_after),
        "Retry-After in whole seconds until the next token: {retry_after}"
    );

    // Over the limit is answered before the body is taken: 429, not 413.
    let (status, body) = stack.send(Method::POST, "/v1/users", None, &big).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    let long = format!("/v1/users?pageToken={}", "x".repeat(600));
    let (status, body) = stack.send(Method::GET, &long, Some(&admin), "").await;
    assert_eq!(status, StatusCode::URI_TOO_LONG, "{body}");
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["reason"], "ERP:GATEWAY:URI_TOO_LONG");

    let response = stack
        .client
        .request(
            Request::builder()
                .uri(format!("http://{}/v1/users", stack.gateway))
                .header("authorization", format!("Bearer {admin}"))
                .header("x-padding", "p".repeat(4096))
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[tokio::test]
async fn refused_tokens_spend_the_address_budget_like_public_calls() {
    let stack = Stack::start_with(LimitsConfig {
        address_per_second: 0.01,
        address_burst: 3,
        ..LimitsConfig::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            stack
                .send(Method::GET, "/v1/users", Some("not-a-token"), "")
                .await
                .0,
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn browsers_on_allowed_origins_pass_cors_and_others_do_not() {
    let stack = Stack::start().await;
    let preflight = |origin: &'static str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri(format!("http://{}/v1/users", stack.gateway))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .body(Full::new(Bytes::new()))
            .expect("request")
    };
    let allowed = stack
        .client
        .request(preflight("https://app.example.com"))
        .await
        .expect("answer");
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        allowed.headers()["access-control-allow-headers"]
            .to_str()
            .expect("text")
            .contains("authorization")
    );
    let refused = stack
        .client
        .request(preflight("https://evil.example.com"))
        .await
        .expect("answer");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let app_origin = [("origin", "https://app.example.com")];
    let simple = stack
        .answer(Method::GET, "/.well-known/jwks.json", &app_origin)
        .await;
    assert_eq!(simple.status(), StatusCode::OK);
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        simple.headers()["access-control-expose-headers"]
            .to_str()
            .expect("text")
            .contains("grpc-status-details-bin"),
        "gRPC-Web clients read the error details"
    );
    // The gateway's own documents go through the same door: a Swagger UI on an allowed
    // origin can fetch the OpenAPI document, and it has a request id.
    let document = stack
        .answer(Method::GET, "/openapi.json", &app_origin)
        .await;
    assert_eq!(document.status(), StatusCode::OK);
    assert_eq!(
        document.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(document.headers().contains_key("x-request-id"));
    assert!(
        allowed.headers().contains_key("x-request-id"),
        "preflights too"
    );
    // An answer without Origin varies by it too, or a cache could hand it to a browser.
    let without_origin = stack
        .answer(Method::GET, "/.well-known/jwks.json", &[])
        .await;
    assert!(
        without_origin
            .headers()
            .get_all("vary")
            .iter()
            .any(|value| value.to_str().is_ok_and(|value| value.contains("origin"))),
        "{:?}",
        without_origin.headers()
    );
}

#[tokio::test]
async fn readiness_reflects_every_upstream() {
    let stack = Stack::start().await;
    let get = |gateway: SocketAddr, path: &'static str| {
        let client = stack.client.clone();
        async move {
            let response = client
                .request(
                    Request::builder()
                        .uri(format!("http://{gateway}{path}"))
                        .body(Full::new(Bytes::new()))
                        .expect("request"),
                )
                .await
                .expect("answer");
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, body) = get(stack.gateway, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"auth\":\"SERVING\""), "{body}");
    assert_eq!(get(stack.gateway, "/healthz").await.0, StatusCode::OK);

    // A second gateway whose HRM upstream is not running is alive but not ready.
    let nobody = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let dead = nobody.local_addr().expect("address");
    drop(nobody);
    let upstreams = BTreeMap::from([
        ("auth".to_owned(), format!("http://{}", stack.auth)),
        ("hrm".to_owned(), format!("http://{dead}")),
    ]);
    let second = serve_gateway(&upstreams, None, &LimitsConfig::default()).await;
    let (status, body) = get(second, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("\"auth\":\"SERVING\""), "{body}");
    assert!(body.contains("\"hrm\":\"UNAVAILABLE\""), "{body}");
    assert_eq!(get(second, "/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn grpc_clients_pass_through_with_the_same_edge_checks() {
    let stack = Stack::start().await;
    let admin = stack.tenant_admin("passthrough").await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", stack.gateway))
        .expect("url")
        .connect()
        .await
        .expect("the gateway speaks HTTP/2");
    let mut auth = AuthServiceClient::new(channel);

    let keys = auth
        .get_jwks(erp_proto::erp::auth::v1::GetJwksRequest::default())
        .await
        .expect("a public method passes")
        .into_inner();
    assert!(!keys.keys.is_empty());

    let refused = auth
        .list_users(erp_proto::erp::auth::v1::ListUsersRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let mut request = tonic::Request::new(erp_proto::erp::auth::v1::ListUsersRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {admin}").parse().expect("header"),
    );
    let users = auth
        .list_users(request)
        .await
        .expect("passed through")
        .into_inner()
        .users;
    assert_eq!(users.len(), 1, "the admin");

    // HRM has no upstream here: a valid caller learns it is unavailable.
    let mut hrm = erp_proto::erp::hrm::v1::hrm_service_client::HrmServiceClient::new(
        tonic::transport::Channel::from_shared(format!("http://{}", stack.gateway))
            .expect("url")
            .connect()
            .await
            .expect("connects"),
    );
    let mut request = tonic::Request::new(erp_proto::erp::hrm::v1::GetEmployeeRequest {
        id: "e1".to_owned(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {admin}").parse().expect("header"),
    );
    let unavailable = hrm.get_employee(request).await.expect_err("no upstream");
    assert_eq!(unavailable.code(), tonic::Code::Unavailable);
}

#[tokio::test]
async fn the_hrm_flow_over_http_matches_direct_grpc() {
    let stack = Stack::start().await;
    let admin = stack.tenant_admin("hrmflow").await;

    // HRM alongside, and a gateway that knows both units.
    let hrm_database = TestDatabase::postgres().await;
    let mut config = erp_hrm_service::config::Config::default();
    config.server.grpc_port = 0;
    config.server.admin_port = 0;
    config.database = hrm_database.config();
    config.events.enabled = false;
    config.upstreams.auth = format!("http://{}", stack.auth);
    config.auth.jwks_url = format!("http://{}", stack.auth);
    let hrm = erp_hrm_service::Application::build(config)
        .await
        .expect("hrm starts");
    let hrm_addr = hrm.local_addr();
    let hrm_shutdown = hrm.shutdown_handle();
    tokio::spawn(async move { hrm.run_until_stopped().await.expect("hrm ran") });
    let upstreams = BTreeMap::from([
        ("auth".to_owned(), format!("http://{}", stack.auth)),
        ("hrm".to_owned(), format!("http://{hrm_addr}")),
    ]);
    let gateway = serve_gateway(&upstreams, Some(stack.auth), &LimitsConfig::default()).await;
    let through = Stack {
        gateway,
        auth: stack.auth,
        client: stack.client.clone(),
        service_shutdown: hrm_shutdown,
        _database: hrm_database,
    };

    let (status, department) = through
        .send(
            Method::POST,
            "/v1/departments",
            Some(&admin),
            &json!({"code": "ENG", "name": "Engineering"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{department}");
    let department_id = department["department"]["departmentId"]
        .as_str()
        .expect("department id")
        .to_owned();
    let (status, hired) = through
        .send(
            Method::POST,
            "/v1/employees",
            Some(&admin),
            &json!({
                "employeeId": "EMP-1",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "email": "ada@hrmflow.example.com",
                "departmentId": department_id,
                "position": "Engineer",
                "hireDate": {"year": 2024, "month": 1, "day": 15},
                "employmentType": "EMPLOYMENT_TYPE_FULL_TIME",
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hired}");
    let id = hired["employee"]["id"].as_str().expect("id").to_owned();
    let version = hired["employee"]["version"]
        .as_str()
        .expect("int64 as a string")
        .to_owned();

    let (status, listed) = through
        .send(
            Method::GET,
            &format!("/v1/employees?departmentId={department_id}&page.pageSize=10"),
            Some(&admin),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["employees"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    let (status, updated) = through
        .send(
            Method::PATCH,
            &format!("/v1/employees/{id}"),
            Some(&admin),
            &json!({
                "employee": {"position": "Staff Engineer"},
                "updateMask": "position",
                "expectedVersion": version,
            })
            .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let (status, stale) = through
        .send(
            Method::PATCH,
            &format!("/v1/employees/{id}"),
            Some(&admin),
            &json!({
                "employee": {"position": "Principal"},
                "updateMask": "position",
                "expectedVersion": version,
            })
            .to_string(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a stale version is ABORTED: {stale}"
    );

    // The same record straight from the service.
    let mut direct = erp_proto::erp::hrm::v1::hrm_service_client::HrmServiceClient::connect(
        format!("http://{hrm_addr}"),
    )
    .await
    .expect("direct gRPC");
    let mut request =
        tonic::Request::new(erp_proto::erp::hrm::v1::GetEmployeeRequest { id: id.clone() });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {admin}").parse().expect("header"),
    );
    let employee = direct
        .get_employee(request)
        .await
        .expect("direct get")
        .into_inner()
        .employee
        .expect("employee");
    assert_eq!(employee.position, "Staff Engineer");
    assert_eq!(updated["employee"]["position"], employee.position);
    assert_eq!(
        updated["employee"]["version"],
        employee.version.to_string(),
        "the HTTP answer and gRPC agree"
    );

    let (status, deleted) = through
        .send(
            Method::DELETE,
            &format!("/v1/employees/{id}"),
            Some(&admin),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let (status, gone) = through
        .send(
            Method::GET,
            &format!("/v1/employees/{id}"),
            Some(&admin),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
}

#[tokio::test]
async fn the_openapi_document_validates_and_lists_every_http_rule() {
    let gateway = serve_gateway(&BTreeMap::new(), None, &LimitsConfig::default()).await;
    let client = http_client();
    let response = client
        .request(
            Request::builder()
                .uri(format!("http://{gateway}/openapi.json"))
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();

    // The published validator (PyPI openapi-spec-validator) against the OpenAPI 3.1 schema.
    let file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), &bytes).expect("written");
    let validator = erp_testkit::tools::installed_tool(
        "openapi-spec-validator",
        "openapi-spec-validator-0.9.0",
    );
    let output = std::process::Command::new(validator)
        .args(["--schema", "3.1"])
        .arg(file.path())
        .output()
        .expect("the validator runs");
    assert!(
        output.status.success(),
        "the document is not valid OpenAPI 3.1:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let document: Value = serde_json::from_slice(&bytes).expect("JSON");
    let mut rules = 0;
    for method in Contracts::bundled().methods() {
        for binding in &method.http {
            let path = erp_api_gateway::openapi::openapi_path(&binding.path);
            let verb = binding.method.as_str().to_ascii_lowercase();
            let operation = &document["paths"][&path][&verb];
            assert_eq!(
                operation["x-grpc-method"], method.grpc_path,
                "{verb} {path} is missing from the document"
            );
            rules += 1;
        }
    }
    assert!(rules > 100, "{rules} rules");
}

#[tokio::test]
async fn grpc_web_calls_from_browsers_reach_the_services() {
    let stack = Stack::start().await;
    let admin = stack.tenant_admin("grpcweb").await;

    // A typed client speaking gRPC-Web over HTTP/1.1, as a browser would.
    let http1: Client<HttpConnector, tonic_web::GrpcWebCall<tonic::body::Body>> =
        Client::builder(TokioExecutor::new()).build_http();
    let web = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(http1);
    let mut auth = AuthServiceClient::with_origin(
        web,
        format!("http://{}", stack.gateway).parse().expect("uri"),
    );
    let keys = auth
        .get_jwks(erp_proto::erp::auth::v1::GetJwksRequest::default())
        .await
        .expect("a public method over gRPC-Web")
        .into_inner();
    assert!(!keys.keys.is_empty());
    let refused = auth
        .list_users(erp_proto::erp::auth::v1::ListUsersRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(erp_proto::erp::auth::v1::ListUsersRequest::default());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {admin}").parse().expect("header"),
    );
    let users = auth
        .list_users(request)
        .await
        .expect("an authorised call over gRPC-Web")
        .into_inner()
        .users;
    assert_eq!(users.len(), 1);

    // The wire format itself: one length-prefixed message in, the answer and a trailer
    // frame out, readable by a browser on an allowed origin.
    let message =
        prost::Message::encode_to_vec(&erp_proto::erp::auth::v1::GetJwksRequest::default());
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&message);
    let response = stack
        .client
        .request(
            Request::builder()
                .method(Method::POST)
                .uri(format!(
                    "http://{}/erp.auth.v1.AuthService/GetJwks",
                    stack.gateway
                ))
                .header("content-type", "application/grpc-web+proto")
                .header("x-grpc-web", "1")
                .header("origin", "https://app.example.com")
                .body(Full::new(Bytes::from(frame.clone())))
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/grpc-web+proto"
    );
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let mut frames = Vec::new();
    let mut rest = &body[..];
    while rest.len() >= 5 {
        let length = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        frames.push((rest[0], rest[5..5 + length].to_vec()));
        rest = &rest[5 + length..];
    }
    assert_eq!(frames.len(), 2, "a message and the trailers");
    let jwks: erp_proto::erp::auth::v1::GetJwksResponse =
        prost::Message::decode(&frames[0].1[..]).expect("the answer decodes");
    assert_eq!(jwks.keys.len(), keys.keys.len());
    assert_eq!(frames[1].0 & 0x80, 0x80, "the trailer frame is flagged");
    let trailers = String::from_utf8_lossy(&frames[1].1).to_lowercase();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    // The text mode (base64), spelt as a browser library might: any case, a parameter.
    use base64::Engine as _;
    let web_call = |content_type: &'static str, body: Bytes| {
        Request::builder()
            .method(Method::POST)
            .uri(format!(
                "http://{}/erp.auth.v1.AuthService/GetJwks",
                stack.gateway
            ))
            .header("content-type", content_type)
            .header("accept", "application/grpc-web-text")
            .header("x-grpc-web", "1")
            .body(Full::new(body))
            .expect("request")
    };
    let text = stack
        .client
        .request(web_call(
            "Application/grpc-web-text; charset=utf-8",
            Bytes::from(base64::engine::general_purpose::STANDARD.encode(&frame)),
        ))
        .await
        .expect("answer");
    assert_eq!(text.status(), StatusCode::OK);
    assert!(
        text.headers()["content-type"]
            .to_str()
            .expect("text")
            .starts_with("application/grpc-web-text"),
        "{:?}",
        text.headers()
    );
    let unsupported = stack
        .client
        .request(web_call(
            "application/grpc-web+json",
            Bytes::from_static(b"{}"),
        ))
        .await
        .expect("answer");
    assert_eq!(unsupported.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// The gateway's upstreams with auth played by a gRPC server that answers every call
/// with an empty message and keeps the headers of each call it got: what the gateway
/// passed on.
async fn recording_auth_upstream() -> (
    BTreeMap<String, String>,
    Arc<std::sync::Mutex<Vec<hyper::HeaderMap>>>,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let router = axum::Router::new().fallback({
        let seen = seen.clone();
        move |request: axum::extract::Request| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(request.headers().clone());
                let mut trailers = hyper::HeaderMap::new();
                trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
                // One empty, uncompressed message, then the trailers.
                let body = Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))
                    .with_trailers(async move { Some(Ok(trailers)) });
                hyper::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(axum::body::Body::new(body))
                    .expect("response")
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let upstreams = BTreeMap::from([("auth".to_owned(), format!("http://{address}"))]);
    (upstreams, seen)
}

#[tokio::test]
async fn the_token_request_id_trace_context_and_a_deadline_reach_the_upstream() {
    // Spans as every gateway process has them: each upstream call opens a client span
    // whose context is written into the outgoing `traceparent`. Without the request
    // span continuing the caller's trace, that span would start a new trace.
    let _telemetry = erp_kit::telemetry::init(
        "erp-api-gateway-test",
        &erp_kit::config::TelemetryConfig::default(),
        &erp_kit::config::OtlpConfig::default(),
    )
    .expect("telemetry, once in this test process");
    let (upstreams, seen) = recording_auth_upstream().await;
    let gateway = serve_gateway(&upstreams, None, &LimitsConfig::default()).await;
    let client = http_client();
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CALLER_SPAN: &str = "00f067aa0ba902b7";
    let response = client
        .request(
            Request::builder()
                .uri(format!("http://{gateway}/v1/jwks"))
                .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
                .header("x-request-id", "req-trace-1")
                .header("authorization", "Bearer opaque-token")
                .header("grpc-timeout", "1500m")
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), StatusCode::OK);

    let calls = seen.lock().expect("lock").clone();
    let [headers] = calls.as_slice() else {
        panic!("one upstream call: {calls:?}");
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("{name} reached the upstream: {headers:?}"))
            .to_owned()
    };
    let traceparent = header("traceparent");
    assert!(
        traceparent.starts_with(&format!("00-{TRACE}-")),
        "the caller's trace goes on: {traceparent}"
    );
    assert!(
        !traceparent.contains(CALLER_SPAN),
        "the gateway's own span is the parent: {traceparent}"
    );
    assert_eq!(header("x-request-id"), "req-trace-1");
    assert_eq!(header("authorization"), "Bearer opaque-token");
    let timeout = header("grpc-timeout");
    assert!(
        timeout
            .strip_suffix('m')
            .and_then(|millis| millis.parse::<u64>().ok())
            .is_some_and(|millis| (1..=1500).contains(&millis)),
        "the caller's shorter deadline (1.5 s, not the gateway's 10 s) goes on: {timeout}"
    );
}

#[tokio::test]
async fn grpc_bodies_over_the_limit_never_reach_the_upstream() {
    let (upstreams, seen) = recording_auth_upstream().await;
    let limits = LimitsConfig {
        max_body_bytes: 1024,
        ..LimitsConfig::default()
    };
    let gateway = serve_gateway(&upstreams, None, &limits).await;
    let client = http_client();
    let response = client
        .request(
            Request::builder()
                .method(Method::POST)
                .uri(format!("http://{gateway}/erp.auth.v1.AuthService/GetJwks"))
                .header("content-type", "application/grpc")
                .body(Full::new(Bytes::from(vec![0u8; 4096])))
                .expect("request"),
        )
        .await
        .expect("the gateway answers");
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        grpc_status.as_deref(),
        Some("8"),
        "RESOURCE_EXHAUSTED: {response:?}"
    );
    assert!(
        seen.lock().expect("lock").is_empty(),
        "the upstream was not asked"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_address_budget() {
    let (upstreams, seen) = recording_auth_upstream().await;
    let limits = LimitsConfig {
        address_per_second: 0.01,
        address_burst: 2,
        ..LimitsConfig::default()
    };
    // The test connects from 127.0.0.1: the proxy in front of the gateway.
    let front = HttpFront::new(
        Contracts::bundled_documented(),
        &upstreams,
        &ClientConfig::default(),
        None,
        &limits,
    )
    .expect("routes")
    .with_trusted_proxies(
        erp_api_gateway::proxies::TrustedNetwork::parse_list("127.0.0.1").expect("list"),
    );
    let gateway = serve_front(front).await;
    let client = http_client();
    let jwks_from = |forwarded: &'static str| {
        let client = client.clone();
        async move {
            client
                .request(
                    Request::builder()
                        .uri(format!("http://{gateway}/v1/jwks"))
                        .header("x-forwarded-for", forwarded)
                        .body(Full::new(Bytes::new()))
                        .expect("request"),
                )
                .await
                .expect("the gateway answers")
                .status()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(jwks_from("203.0.113.1").await);
    }
    statuses.push(jwks_from("203.0.113.2").await);
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::OK
        ],
        "the first client spent its burst; the second has its own"
    );
    let forwarded: Vec<String> = seen
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|headers| {
            headers
                .get("x-forwarded-for")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        forwarded,
        ["203.0.113.1", "203.0.113.1", "203.0.113.2"],
        "the services see the client, not the proxy"
    );
}

#[test]
fn the_binary_refuses_a_configuration_it_cannot_serve_naming_the_key() {
    for (key, value, named) in [
        ("ERP_UPSTREAMS__HMR", "http://127.0.0.1:1", "upstreams.hmr"),
        (
            "ERP_GATEWAY__TRUSTED_PROXIES",
            "the-ingress",
            "gateway.trusted_proxies",
        ),
        ("ERP_LIMITS__TENANT_PER_SECOND", "0", "tenant_per_second"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_erp-api-gateway"))
            .env("ERP_GATEWAY__HTTP_PORT", "0")
            .env(key, value)
            .output()
            .expect("the gateway runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{key}: {stderr}");
        assert!(stderr.contains(named), "{key}: {stderr}");
    }
}

#[tokio::test]
async fn streamed_grpc_bodies_are_cut_off_at_the_limit() {
    let (upstreams, _seen) = recording_auth_upstream().await;
    let limits = LimitsConfig {
        max_body_bytes: 1024,
        ..LimitsConfig::default()
    };
    let gateway = serve_gateway(&upstreams, None, &limits).await;
    // tonic streams its request body over HTTP/2 without a content-length: the gateway
    // learns the size only as the bytes pass.
    let channel = tonic::transport::Channel::from_shared(format!("http://{gateway}"))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let refused = AuthServiceClient::new(channel)
        .login(erp_proto::erp::auth::v1::LoginRequest {
            tenant_slug: "acme".to_owned(),
            email: "someone@acme.example.com".to_owned(),
            password: "x".repeat(4096),
        })
        .await
        .expect_err("over the limit");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
}
