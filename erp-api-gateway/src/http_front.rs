//! The HTTP/JSON front: every `google.api.http` rule of the contracts becomes a route; the
//! caller is checked at the edge against the method's access rule (token verified with
//! erp-kit's verifier, permission and module checked, so refused calls never reach a
//! service — which still verifies again); a request is transcoded to its message, sent as
//! a unary gRPC call to the unit that owns
//! the package (the caller's token and request id passed on, the deadline bounded by the
//! client config), and the answer comes back as JSON or as the mapped error.

use std::{
    collections::{BTreeMap, BTreeSet},
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use erp_kit::{
    access::AccessGuard,
    auth::TokenVerifier,
    client::{ClientConfig, MeshChannel},
    telemetry,
};
use erp_proto::Contracts;
use http::uri::PathAndQuery;
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::Value;
use tonic::{Status, metadata::MetadataMap};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_web::GrpcWebLayer;
use tower::Layer as _;
use tracing::Instrument as _;

use crate::{
    codec::RawCodec,
    errors::{self, http_status},
    limits::{CappedBody, LimitsConfig, RateLimiter},
    proxies::{self, FORWARDED_FOR, TrustedNetwork},
    routes::{Lookup, PathTemplate, Route, RouteTable},
    transcode::{RequestParts, decode_request, encode_response},
};

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    /// A contract's path template does not parse.
    #[error("{method}: {error}")]
    Template {
        /// The gRPC method.
        method: String,
        /// What is wrong.
        error: crate::routes::TemplateError,
    },
    /// Two bindings claim the same route.
    #[error("{0}")]
    Collision(String),
    /// An upstream address is not a URL.
    #[error("upstream {unit}: {error}")]
    Upstream {
        /// The unit (`auth`, `hrm`, ...).
        unit: String,
        /// What is wrong.
        error: erp_kit::client::ClientError,
    },
    /// An upstream is configured for a unit no contract package belongs to (a typo such
    /// as `ERP_UPSTREAMS__HMR` would otherwise leave every route of the real unit 503).
    #[error("upstreams.{unit}: no contract belongs to a unit of that name (the units are {known})")]
    UnknownUpstream {
        /// The configured name.
        unit: String,
        /// The units the contracts name, comma-separated.
        known: String,
    },
}

/// Where one route goes.
#[derive(Debug)]
struct Target {
    grpc_path: PathAndQuery,
    grpc_path_text: String,
    /// The binding's path template (`/v1/employees/{id}`): the route's name in traces.
    route_template: String,
    unit: String,
    input: MessageDescriptor,
    output: MessageDescriptor,
    body: Option<String>,
    response_body: Option<String>,
}

/// The HTTP front: routes and a channel per upstream unit.
pub struct HttpFront {
    routes: RouteTable<Arc<Target>>,
    upstreams: BTreeMap<String, MeshChannel>,
    guard: AccessGuard,
    per_tenant: RateLimiter,
    per_address: RateLimiter,
    limits: LimitsConfig,
    cors_origins: Vec<String>,
    contracts: &'static Contracts,
    openapi: Bytes,
    /// Proxies whose `X-Forwarded-For` is believed (none by default).
    trusted_proxies: Vec<TrustedNetwork>,
    /// The last readiness answer and when it was taken: probes within a second share
    /// it, so anonymous `/readyz` calls cannot multiply health calls to the upstreams.
    readiness: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
}

/// Whether every upstream serves, and each one's state by unit.
type Readiness = (bool, BTreeMap<String, String>);

/// How long one round of upstream health checks answers `/readyz`.
const READINESS_FRESH_FOR: Duration = Duration::from_secs(1);

/// What the access log says about a request beyond method, path and status.
#[derive(Debug, Default, Clone)]
struct AccessRecord {
    route: Option<String>,
    tenant: Option<String>,
}

/// A refused request: status, JSON body, and for 429 how long to wait.
struct Refusal {
    status: StatusCode,
    body: Value,
    retry_after: Option<Duration>,
    /// The methods the path takes, for a 405's `Allow`.
    allow: Option<String>,
}

impl From<(StatusCode, Value)> for Refusal {
    fn from((status, body): (StatusCode, Value)) -> Self {
        Self {
            status,
            body,
            retry_after: None,
            allow: None,
        }
    }
}

/// The unit owning a package: `erp.hrm.v1` → `hrm`.
pub fn unit_of(package: &str) -> &str {
    package.split('.').nth(1).unwrap_or(package)
}

impl HttpFront {
    /// Routes for every binding of `contracts`; `upstreams` maps a unit (`auth`) to its
    /// gRPC address (units without one answer 503); `verifier` checks tokens at the edge
    /// (without one, only public methods can be called); `limits` bound rates and bodies.
    pub fn new(
        contracts: &'static Contracts,
        upstreams: &BTreeMap<String, String>,
        client: &ClientConfig,
        verifier: Option<Arc<TokenVerifier>>,
        limits: &LimitsConfig,
    ) -> Result<Self, FrontError> {
        let mut routes = Vec::new();
        for method in contracts.methods() {
            for binding in &method.http {
                let template =
                    PathTemplate::parse(&binding.path).map_err(|error| FrontError::Template {
                        method: method.grpc_path.clone(),
                        error,
                    })?;
                let grpc_path = PathAndQuery::try_from(method.grpc_path.as_str())
                    .unwrap_or_else(|_| PathAndQuery::from_static("/"));
                routes.push(Route {
                    method: binding.method.as_str().to_owned(),
                    target: Arc::new(Target {
                        grpc_path,
                        grpc_path_text: method.grpc_path.clone(),
                        route_template: template.as_str().to_owned(),
                        unit: unit_of(&method.package).to_owned(),
                        input: method.descriptor.input(),
                        output: method.descriptor.output(),
                        body: binding.body.clone(),
                        response_body: binding.response_body.clone(),
                    }),
                    template,
                });
            }
        }
        let routes = RouteTable::new(routes).map_err(FrontError::Collision)?;
        let units: BTreeSet<&str> = contracts
            .methods()
            .map(|method| unit_of(&method.package))
            .collect();
        if let Some(unknown) = upstreams.keys().find(|unit| !units.contains(unit.as_str())) {
            return Err(FrontError::UnknownUpstream {
                unit: unknown.clone(),
                known: units.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        let upstreams = upstreams
            .iter()
            .map(|(unit, url)| {
                MeshChannel::connect_lazy(url, client)
                    .map(|channel| (unit.clone(), channel.with_contracts(contracts)))
                    .map_err(|error| FrontError::Upstream {
                        unit: unit.clone(),
                        error,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            routes,
            upstreams,
            guard: AccessGuard::new(contracts, verifier),
            per_tenant: RateLimiter::new(limits.tenant_per_second, limits.tenant_burst),
            per_address: RateLimiter::new(limits.address_per_second, limits.address_burst),
            limits: limits.clone(),
            cors_origins: Vec::new(),
            contracts,
            openapi: crate::openapi::document(contracts, env!("CARGO_PKG_VERSION"))
                .to_string()
                .into(),
            readiness: tokio::sync::Mutex::new(None),
            trusted_proxies: Vec::new(),
        })
    }

    /// Believes `X-Forwarded-For` from these proxies (an ingress, a load balancer): the
    /// client's address, for its rate limit and for the services, is then the one they saw.
    pub fn with_trusted_proxies(mut self, proxies: Vec<TrustedNetwork>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Lets browsers on these origins call the routes (comma-separated, `*` for any);
    /// none by default.
    pub fn with_cors_origins(mut self, origins: &str) -> Self {
        self.cors_origins = origins
            .split(',')
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect();
        self
    }

    fn allows_origin(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        self.cors_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed == origin)
    }

    /// A request whose target or headers exceed the limits: 414 or 431.
    fn oversized(&self, parts: &http::request::Parts) -> Option<Refusal> {
        let target = parts
            .uri
            .path_and_query()
            .map_or(0, |target| target.as_str().len());
        let (status, name, message) = if target > self.limits.max_uri_bytes {
            (
                StatusCode::URI_TOO_LONG,
                "URI_TOO_LONG",
                format!(
                    "the request target is {target} bytes; at most {} are accepted",
                    self.limits.max_uri_bytes
                ),
            )
        } else {
            let headers: usize = parts
                .headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len())
                .sum();
            if headers <= self.limits.max_header_bytes {
                return None;
            }
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "REQUEST_HEADER_FIELDS_TOO_LARGE",
                format!(
                    "the headers are {headers} bytes; at most {} are accepted",
                    self.limits.max_header_bytes
                ),
            )
        };
        Some(Refusal::from((
            status,
            errors::plain(status, name, &message),
        )))
    }

    /// Lets the browser read an answer to an allowed origin (and the headers gRPC-Web
    /// clients need).
    /// The answer depends on `Origin` whether or not it is allowed, so caches are told
    /// so on every answer (added to what the upstream's `Vary` says).
    fn allow_origin(&self, origin: Option<HeaderValue>, headers: &mut HeaderMap) {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = origin.filter(|origin| self.allows_origin(origin)) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(
                    "x-request-id, retry-after, grpc-status, grpc-message, \
                     grpc-status-details-bin",
                ),
            );
        }
    }

    /// The answer to a CORS preflight (`OPTIONS` with `access-control-request-method`).
    fn preflight(&self, origin: Option<&HeaderValue>) -> Response {
        let Some(origin) = origin.filter(|origin| self.allows_origin(origin)) else {
            let status = StatusCode::FORBIDDEN;
            return (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                errors::plain(status, "ORIGIN_NOT_ALLOWED", "this origin is not allowed")
                    .to_string(),
            )
                .into_response();
        };
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "authorization, content-type, x-request-id, traceparent, tracestate, \
                 x-grpc-web, x-user-agent, grpc-timeout",
            ),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(600));
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
        response
    }

    /// Each upstream's health (`grpc.health.v1`, the whole server), checked in parallel
    /// within a second: ready when every one is SERVING.
    /// Whether every upstream is serving, and each one's state; one round of checks at a
    /// time (callers meanwhile wait for it), reused for [`READINESS_FRESH_FOR`].
    async fn readiness(&self) -> Readiness {
        let mut last = self.readiness.lock().await;
        if let Some((taken, readiness)) = last.as_ref()
            && taken.elapsed() < READINESS_FRESH_FOR
        {
            return readiness.clone();
        }
        let readiness = self.upstream_health().await;
        *last = Some((Instant::now(), readiness.clone()));
        readiness
    }

    async fn upstream_health(&self) -> Readiness {
        let checks = self.upstreams.iter().map(|(unit, channel)| async move {
            let mut client = HealthClient::new(channel.clone());
            let check = client.check(HealthCheckRequest {
                service: String::new(),
            });
            let state = match tokio::time::timeout(Duration::from_secs(1), check).await {
                Ok(Ok(answer)) => match answer.into_inner().status() {
                    ServingStatus::Serving => "SERVING".to_owned(),
                    other => other.as_str_name().to_owned(),
                },
                Ok(Err(status)) => http_status(status.code()).1.to_owned(),
                Err(_) => "DEADLINE_EXCEEDED".to_owned(),
            };
            (unit.clone(), state)
        });
        let states: BTreeMap<String, String> = futures::future::join_all(checks)
            .await
            .into_iter()
            .collect();
        let ready = states.values().all(|state| state == "SERVING");
        (ready, states)
    }

    /// The axum router answering every path. Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so public calls are limited
    /// per client address (otherwise they share one bucket).
    pub fn router(self) -> Router {
        Router::new().fallback(handle).with_state(Arc::new(self))
    }

    /// The gateway's own endpoints: `/healthz` (alive), `/readyz` (200 when every
    /// upstream is SERVING, else 503, listing each one's state) and `/openapi.json`.
    async fn own_endpoint(&self, path: &str) -> Option<Response> {
        let json = [(header::CONTENT_TYPE, "application/json")];
        match path {
            "/healthz" => Some("ok".into_response()),
            "/readyz" => {
                let (ready, states) = self.readiness().await;
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                let body = serde_json::json!({ "upstreams": states }).to_string();
                Some((status, json, body).into_response())
            }
            "/openapi.json" => Some((json, self.openapi.clone()).into_response()),
            _ => None,
        }
    }

    /// The edge checks every call passes, HTTP or gRPC: the access rule (token, permission,
    /// module), then the caller's rate limit. Returns the caller's tenant; a refusal says
    /// how long to wait when it is a rate limit.
    async fn admit(
        &self,
        grpc_path: &str,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Option<String>, (Status, Option<Duration>)> {
        let rate_limited = |wait| {
            (
                erp_kit::error::status_with_reason(
                    tonic::Code::ResourceExhausted,
                    "ERP:GATEWAY:RATE_LIMITED",
                    "too many requests; retry after the time in Retry-After",
                    [],
                ),
                Some(wait),
            )
        };
        let address = || client.map(address_budget_key).unwrap_or_default();
        let caller = match self.guard.authorize(grpc_path, headers).await {
            Ok(caller) => caller,
            Err(status) => {
                // A missing or bad token counts against the caller's address like a public
                // call: a client that keeps sending bad tokens is slowed down like one that
                // keeps logging in. A verified caller's refusal (a permission it lacks) or
                // the keys being unavailable is no reason to slow down its neighbours.
                if status.code() == tonic::Code::Unauthenticated {
                    self.per_address
                        .take(&address(), Instant::now())
                        .map_err(rate_limited)?;
                }
                return Err((status, None));
            }
        };
        let tenant = caller
            .as_ref()
            .map(|caller| caller.tenant_id.as_str().to_owned());
        let limited = match &tenant {
            Some(tenant) => self.per_tenant.take(tenant, Instant::now()),
            None => self.per_address.take(&address(), Instant::now()),
        };
        limited.map(|()| tenant).map_err(rate_limited)
    }

    /// A gRPC call passed through to the unit owning its package, body streamed both ways,
    /// after the same edge checks; refusals are gRPC statuses.
    async fn pass_through(
        &self,
        request: http::Request<axum::body::Body>,
        client: Option<IpAddr>,
        record: &Mutex<AccessRecord>,
    ) -> Response {
        let mut noted = AccessRecord::default();
        let response = self.pass_through_noting(request, client, &mut noted).await;
        if let Ok(mut record) = record.lock() {
            *record = noted;
        }
        response
    }

    async fn pass_through_noting(
        &self,
        request: http::Request<axum::body::Body>,
        client: Option<IpAddr>,
        record: &mut AccessRecord,
    ) -> Response {
        let path = request.uri().path().to_owned();
        record.route = Some(path.clone());
        let Some(method) = self.contracts.method(&path) else {
            return Status::unimplemented(format!("no contract method {path}"))
                .into_http::<axum::body::Body>()
                .into_response();
        };
        match self.admit(&path, request.headers(), client).await {
            Ok(tenant) => record.tenant = tenant,
            Err((status, retry_after)) => {
                let mut response = status.into_http::<axum::body::Body>().into_response();
                if let Some(wait) = retry_after {
                    set_retry_after(response.headers_mut(), wait);
                }
                return response;
            }
        }
        let unit = unit_of(&method.package);
        let Some(channel) = self.upstreams.get(unit).cloned() else {
            return Status::unavailable(format!("no upstream is configured for {unit}"))
                .into_http::<axum::body::Body>()
                .into_response();
        };
        // The same body limit as for JSON: refused at once when the length is declared,
        // otherwise when the streamed body passes it.
        let max_body = self.limits.max_body_bytes;
        let too_large = || {
            Status::resource_exhausted(format!("the request body is larger than {max_body} bytes"))
                .into_http::<axum::body::Body>()
                .into_response()
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|length| length > max_body) {
            return too_large();
        }
        let (parts, body) = request.into_parts();
        let (body, exceeded) = CappedBody::new(body, max_body);
        let request = http::Request::from_parts(parts, tonic::body::Body::new(body));
        let outcome = tower::ServiceExt::oneshot(channel, request).await;
        if exceeded.load(std::sync::atomic::Ordering::Acquire) {
            return too_large();
        }
        match outcome {
            Ok(response) => response.map(axum::body::Body::new).into_response(),
            Err(error) => Status::unavailable(format!("{unit}: {error}"))
                .into_http::<axum::body::Body>()
                .into_response(),
        }
    }

    /// The whole body, within the size and time limits (a declared length over the limit
    /// is refused before anything is read).
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: axum::body::Body,
    ) -> Result<Bytes, Refusal> {
        let max_body = self.limits.max_body_bytes;
        let too_large = || {
            let status = StatusCode::PAYLOAD_TOO_LARGE;
            Refusal::from((
                status,
                errors::plain(
                    status,
                    "PAYLOAD_TOO_LARGE",
                    &format!("the body is larger than {max_body} bytes"),
                ),
            ))
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok())
            .and_then(|length| length.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_body as u64) {
            return Err(too_large());
        }
        match tokio::time::timeout(
            self.limits.body_timeout,
            axum::body::to_bytes(body, max_body),
        )
        .await
        {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(error))
                if std::error::Error::source(&error).is_some_and(
                    <dyn std::error::Error>::is::<http_body_util::LengthLimitError>,
                ) =>
            {
                Err(too_large())
            }
            // The client broke off or sent a malformed (chunked) body.
            Ok(Err(_)) => {
                let status = StatusCode::BAD_REQUEST;
                Err(Refusal::from((
                    status,
                    errors::plain(status, "INVALID_BODY", "the request body could not be read"),
                )))
            }
            Err(_) => {
                let status = StatusCode::REQUEST_TIMEOUT;
                Err(Refusal::from((
                    status,
                    errors::plain(
                        status,
                        "REQUEST_TIMEOUT",
                        &format!(
                            "the body did not arrive within {:?}",
                            self.limits.body_timeout
                        ),
                    ),
                )))
            }
        }
    }

    async fn call(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        body: axum::body::Body,
        record: &mut AccessRecord,
    ) -> Result<Vec<u8>, Refusal> {
        let (target, variables) = match self.routes.lookup(method.as_str(), uri.path()) {
            Lookup::Found(target, variables) => {
                record.route = Some(target.grpc_path_text.clone());
                let span = tracing::Span::current();
                if !span.is_disabled() {
                    span.record("http.route", target.route_template.as_str());
                    span.record(
                        "otel.name",
                        format!("{method} {}", target.route_template).as_str(),
                    );
                }
                (target, variables)
            }
            Lookup::MethodNotAllowed(allowed) => {
                let message = format!("this path takes {}", allowed.join(", "));
                let status = StatusCode::METHOD_NOT_ALLOWED;
                return Err(Refusal {
                    allow: Some(allowed.join(", ")),
                    ..Refusal::from((
                        status,
                        errors::plain(status, "METHOD_NOT_ALLOWED", &message),
                    ))
                });
            }
            Lookup::NotFound => {
                let status = StatusCode::NOT_FOUND;
                return Err((
                    status,
                    errors::plain(status, "NO_ROUTE", "no route has this path"),
                )
                    .into());
            }
            Lookup::MalformedPath => {
                let status = StatusCode::BAD_REQUEST;
                return Err((
                    status,
                    errors::plain(
                        status,
                        "MALFORMED_PATH",
                        "the path has a broken percent-escape (two hex digits, and UTF-8)",
                    ),
                )
                    .into());
            }
        };
        let tenant = self
            .admit(&target.grpc_path_text, headers, client)
            .await
            .map_err(|(status, retry_after)| {
                let (http, body) = errors::from_status(&status);
                Refusal {
                    status: http,
                    body,
                    retry_after,
                    allow: None,
                }
            })?;
        record.tenant = tenant;
        // Read only now: a request that has no route, no right or no budget is answered
        // without taking its body.
        let body = self.read_body(headers, body).await?;
        let message = decode_request(
            &target.input,
            &RequestParts {
                body_field: target.body.as_deref(),
                variables: &variables,
                query: uri.query(),
                body: &body,
            },
        )
        .map_err(|error| errors::from_field_error(&error))?;
        let channel = self.upstreams.get(&target.unit).cloned().ok_or_else(|| {
            errors::from_status(&Status::unavailable(format!(
                "no upstream is configured for {}",
                target.unit
            )))
        })?;
        let answer = unary(channel, target, headers, message.encode_to_vec().into())
            .await
            .map_err(|status| errors::from_status(&status))?;
        let response = DynamicMessage::decode(target.output.clone(), answer).map_err(|error| {
            errors::from_status(&Status::internal(format!(
                "the upstream answer does not decode: {error}"
            )))
        })?;
        encode_response(&response, target.response_body.as_deref()).map_err(|error| {
            errors::from_status(&Status::internal(format!(
                "the answer has no JSON form: {error}"
            )))
            .into()
        })
    }
}

/// Headers passed on to the upstream as gRPC metadata (a `grpc-timeout` from the caller
/// shortens the configured deadline, never lengthens it).
const FORWARDED: [&str; 6] = [
    "authorization",
    "x-request-id",
    "traceparent",
    "tracestate",
    "grpc-timeout",
    FORWARDED_FOR,
];

async fn unary(
    channel: MeshChannel,
    target: &Target,
    headers: &HeaderMap,
    message: Bytes,
) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(format!("{}: {error}", target.unit)))?;
    // Visible ASCII only (gRPC metadata); the values are shared, not copied (the token
    // is ~2 KB).
    let mut forwarded = HeaderMap::with_capacity(FORWARDED.len());
    for name in FORWARDED {
        if let Some(value) = headers.get(name)
            && value.to_str().is_ok()
        {
            forwarded.insert(name, value.clone());
        }
    }
    let request = tonic::Request::from_parts(
        MetadataMap::from_headers(forwarded),
        tonic::Extensions::default(),
        message,
    );
    let response = grpc
        .unary(request, target.grpc_path.clone(), RawCodec)
        .await?;
    Ok(response.into_inner())
}

async fn handle(State(front): State<Arc<HttpFront>>, request: Request) -> Response {
    // The caller's trace goes on through the gateway: the upstream call is a child of
    // this span, whose parent is the caller's `traceparent`.
    // Named by method until the route is known, then by the route's template: never by
    // the raw path (one span name per id would swamp a tracing backend).
    let span = tracing::info_span!(
        "gateway.request",
        otel.name = %request.method(),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = tracing::field::Empty,
    );
    telemetry::continue_trace(&span, request.headers());
    serve(front, request).instrument(span).await
}

async fn serve(front: Arc<HttpFront>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    // One id per request, the caller's if it can travel on, passed on to the service.
    let request_id = request_id_of(&parts);
    parts.headers.insert(REQUEST_ID, request_id.clone());
    let exchange = Exchange {
        started: Instant::now(),
        origin: parts.headers.get(header::ORIGIN).cloned(),
        request_id,
    };
    if parts.method == Method::OPTIONS
        && parts
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let response = front.preflight(exchange.origin.as_ref());
        return exchange.finish(&front, &parts, response, &AccessRecord::default(), None);
    }
    if (parts.method == Method::GET || parts.method == Method::HEAD)
        && let Some(response) = front.own_endpoint(parts.uri.path()).await
    {
        let record = AccessRecord {
            route: Some(parts.uri.path().to_owned()),
            ..AccessRecord::default()
        };
        return exchange.finish(&front, &parts, response, &record, None);
    }
    // The client: the connection's peer, or behind trusted proxies the address they saw.
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| proxies::client_address(info.0.ip(), &parts.headers, &front.trusted_proxies));
    // The services see the client's address as the gateway determined it (their login
    // lockout counts per source), never an address the client claims.
    parts.headers.remove(FORWARDED_FOR);
    if let Some(client) = client
        && let Ok(address) = HeaderValue::from_str(&client.to_string())
    {
        parts.headers.insert(FORWARDED_FOR, address);
    }
    if let Some(refusal) = front.oversized(&parts) {
        let response = json_response(refusal.status, refusal.body.to_string().into_bytes());
        return exchange.finish(&front, &parts, response, &AccessRecord::default(), None);
    }
    // Media types are case-insensitive and may carry parameters; tonic-web takes four
    // exact spellings, so a browser's `Application/grpc-web; charset=utf-8` is given one.
    let media_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let is_grpc_web = media_type.starts_with("application/grpc-web");
    let is_grpc = !is_grpc_web
        && (media_type == "application/grpc" || media_type.starts_with("application/grpc+"));
    if is_grpc_web {
        if !GRPC_WEB_MEDIA_TYPES.contains(&media_type.as_str()) {
            let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            let response = json_response(
                status,
                errors::plain(
                    status,
                    "UNSUPPORTED_MEDIA_TYPE",
                    &format!(
                        "{media_type} is not served; gRPC-Web takes {}",
                        GRPC_WEB_MEDIA_TYPES.join(", ")
                    ),
                )
                .to_string()
                .into_bytes(),
            );
            return exchange.finish(&front, &parts, response, &AccessRecord::default(), None);
        }
        if let Ok(canonical) = HeaderValue::from_str(&media_type) {
            parts.headers.insert(header::CONTENT_TYPE, canonical);
        }
    }
    if is_grpc || is_grpc_web {
        let record = Arc::new(Mutex::new(AccessRecord::default()));
        let request = Request::from_parts(parts.clone(), body);
        let response = if is_grpc_web {
            // tonic-web turns the browser's call into gRPC and the answer (trailers
            // included) back into gRPC-Web, over HTTP/1.1 or HTTP/2.
            let inner = {
                let (front, record) = (front.clone(), record.clone());
                tower::service_fn(move |request: http::Request<tonic::body::Body>| {
                    let (front, record) = (front.clone(), record.clone());
                    async move {
                        Ok::<_, Infallible>(
                            front
                                .pass_through(request.map(axum::body::Body::new), client, &record)
                                .await,
                        )
                    }
                })
            };
            match tower::ServiceExt::oneshot(GrpcWebLayer::new().layer(inner), request).await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(never) => match never {},
            }
        } else {
            front.pass_through(request, client, &record).await
        };
        // A refusal (the gateway's or a trailers-only answer) carries its gRPC status in
        // the headers; a streamed answer's comes in the trailers, after this line.
        let grpc_status = response
            .headers()
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let record = record
            .lock()
            .map(|record| record.clone())
            .unwrap_or_default();
        return exchange.finish(&front, &parts, response, &record, grpc_status.as_deref());
    }
    let mut record = AccessRecord::default();
    let outcome = front
        .call(
            &parts.method,
            &parts.uri,
            &parts.headers,
            client,
            body,
            &mut record,
        )
        .await;
    let (status, body, retry_after, allow) = match outcome {
        Ok(body) => (StatusCode::OK, body, None, None),
        Err(refusal) => (
            refusal.status,
            refusal.body.to_string().into_bytes(),
            refusal.retry_after,
            refusal.allow,
        ),
    };
    let mut response = json_response(status, body);
    let headers = response.headers_mut();
    if let Some(wait) = retry_after {
        set_retry_after(headers, wait);
    }
    if let Some(allow) = allow.and_then(|allow| HeaderValue::from_str(&allow).ok()) {
        headers.insert(header::ALLOW, allow);
    }
    exchange.finish(&front, &parts, response, &record, None)
}

/// What every answer needs from its request: when it started, the browser's origin, the
/// request id.
struct Exchange {
    started: Instant,
    origin: Option<HeaderValue>,
    request_id: HeaderValue,
}

impl Exchange {
    /// Stamps the request id and the CORS headers on `response` and writes the request's
    /// access-log line: every answer goes through here, whatever answered it.
    fn finish(
        self,
        front: &HttpFront,
        parts: &http::request::Parts,
        mut response: Response,
        record: &AccessRecord,
        grpc_status: Option<&str>,
    ) -> Response {
        log_access(
            parts,
            &AccessLine {
                record,
                status: response.status(),
                grpc_status,
                started: self.started,
                request_id: &self.request_id,
            },
        );
        response.headers_mut().insert(REQUEST_ID, self.request_id);
        front.allow_origin(self.origin, response.headers_mut());
        response
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The caller's request id when it sent a usable one.
fn request_id_of(parts: &http::request::Parts) -> HeaderValue {
    parts
        .headers
        .get(REQUEST_ID)
        // Visible ASCII only: anything else could not travel on to the services or
        // into the access log, and correlation would be lost half way.
        .filter(|id| {
            !id.is_empty() && id.len() <= 128 && id.as_bytes().iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        })
}

/// One access-log line.
/// What the access log says of one request.
struct AccessLine<'a> {
    record: &'a AccessRecord,
    status: StatusCode,
    /// The gRPC status, for gRPC calls whose status is known when the answer starts.
    grpc_status: Option<&'a str>,
    started: Instant,
    request_id: &'a HeaderValue,
}

fn log_access(parts: &http::request::Parts, line: &AccessLine<'_>) {
    tracing::info!(
        target: "erp_api_gateway::access",
        method = %parts.method,
        path = parts.uri.path(),
        route = line.record.route.as_deref().unwrap_or("-"),
        status = line.status.as_u16(),
        grpc_status = line.grpc_status.unwrap_or("-"),
        latency_us = u64::try_from(line.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        tenant = line.record.tenant.as_deref().unwrap_or("-"),
        request_id = line.request_id.to_str().unwrap_or("-"),
        "request"
    );
}

/// `Retry-After` in whole seconds, rounded up.
fn set_retry_after(headers: &mut HeaderMap, wait: Duration) {
    let seconds = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
}

/// The gRPC-Web media types tonic-web serves (binary and base64 text, protobuf only).
const GRPC_WEB_MEDIA_TYPES: [&str; 4] = [
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
];

/// The request id header, generated when the caller sent none.
const REQUEST_ID: &str = "x-request-id";

/// The per-address budget a client draws on: its IPv4 address, or its IPv6 /64 (one
/// subscriber's network; a client holds a whole /64 and could take a fresh address per
/// call).
fn address_budget_key(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
    }
}

#[cfg(test)]
mod address_budget_tests {
    use super::*;

    #[test]
    fn an_ipv6_client_draws_on_its_64_and_ipv4_on_its_address() {
        let key = |text: &str| address_budget_key(text.parse().expect("an address"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
    }
}
