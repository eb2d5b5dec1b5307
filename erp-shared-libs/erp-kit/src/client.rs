//! Calling other services: [`MeshChannel`] is a tonic channel that propagates what the
//! server layer put in scope — the caller's bearer token, the request id, the W3C trace
//! context of a new client span, and the remaining deadline as `grpc-timeout` — and
//! retries with capped exponential backoff, but only idempotent reads (methods bound to
//! HTTP GET in the contracts) and only on UNAVAILABLE. A host name is resolved again
//! every `resolve_interval` and calls take its addresses in turn, each over its own
//! connection, so every replica behind a headless Service gets its share.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use erp_kit::client::{ClientConfig, MeshChannel};
//! use erp_proto::erp::auth::v1::auth_service_client::AuthServiceClient;
//! let channel = MeshChannel::connect_lazy("http://127.0.0.1:50051", &ClientConfig::default())?;
//! let auth = AuthServiceClient::new(channel);
//! # Ok(()) }
//! ```

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use erp_proto::{Contracts, HttpMethod};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use tonic::{Code, Status, body::Body};
use tower::{Service, ServiceExt};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use crate::peers::{Resolver, dns_resolver};
use crate::{
    context,
    peers::Peers,
    server::{REQUEST_ID_HEADER, format_grpc_timeout, grpc_timeout},
    telemetry,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Timeouts and retries of calls to one service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// Longest wait for a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest a call may take when no shorter deadline is inherited.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Extra attempts for idempotent reads answered UNAVAILABLE.
    pub max_retries: u32,
    /// The first retry's delay; doubled each time, capped at one second.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// How often a service's host name is resolved again. Each address it resolves to
    /// gets its own connection and calls take them in turn (behind a Kubernetes headless
    /// Service: every ready pod, new ones within this interval of the DNS answer
    /// changing, which itself trails the pod by the record's TTL); `0s` keeps one
    /// connection to the name.
    #[serde(with = "humantime_serde")]
    pub resolve_interval: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_retries: 2,
            retry_backoff: Duration::from_millis(50),
            resolve_interval: Duration::from_secs(5),
        }
    }
}

/// Why a channel could not be created.
#[derive(Debug, thiserror::Error)]
#[error("invalid service url {url}: {reason}")]
pub struct ClientError {
    url: String,
    reason: String,
}

/// A channel to one service; see the module documentation.
#[derive(Clone)]
pub struct MeshChannel {
    peers: Peers,
    config: Arc<ClientConfig>,
    contracts: &'static Contracts,
}

impl std::fmt::Debug for MeshChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshChannel")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MeshChannel {
    /// A channel that connects on first use, so the peer may start later; a host name
    /// is resolved by DNS (see [`ClientConfig::resolve_interval`]).
    pub fn connect_lazy(url: &str, config: &ClientConfig) -> Result<Self, ClientError> {
        Self::connect_lazy_with_resolver(url, config, dns_resolver())
    }

    /// As [`connect_lazy`](Self::connect_lazy), with host names resolved by `resolver`.
    pub fn connect_lazy_with_resolver(
        url: &str,
        config: &ClientConfig,
        resolver: Resolver,
    ) -> Result<Self, ClientError> {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|error| ClientError {
                url: url.to_owned(),
                reason: error.to_string(),
            })?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true);
        Ok(Self {
            peers: Peers::connect_lazy(
                &endpoint,
                config.connect_timeout,
                config.resolve_interval,
                resolver,
            ),
            config: Arc::new(config.clone()),
            contracts: Contracts::bundled(),
        })
    }

    /// Decides idempotency from other contracts (services outside erp-proto, tests).
    pub fn with_contracts(mut self, contracts: &'static Contracts) -> Self {
        self.contracts = contracts;
        self
    }

    fn is_idempotent(&self, path: &str) -> bool {
        self.contracts
            .method(path)
            .and_then(|method| method.http.first())
            .is_some_and(|binding| binding.method == HttpMethod::Get)
    }
}

impl Service<Request<Body>> for MeshChannel {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call drives readiness on its own clone of the (buffered) channel.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(request).await })
    }
}

impl MeshChannel {
    async fn send(self, mut request: Request<Body>) -> Result<Response<Body>, BoxError> {
        let path = request.uri().path().to_owned();
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = %path,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.method = %path,
        );
        async move {
            let Some(deadline) = self.propagate(request.headers_mut()) else {
                return Ok(
                    Status::deadline_exceeded("the caller's deadline has already passed")
                        .into_http(),
                );
            };
            telemetry::inject_context(&tracing::Span::current().context(), request.headers_mut());
            if self.config.max_retries == 0 || !self.is_idempotent(&path) {
                return self.send_once(request, deadline).await;
            }
            self.send_with_retries(request, deadline).await
        }
        .instrument(span)
        .await
    }

    /// Sets token, request id and `grpc-timeout` from the request context; returns the
    /// deadline, or `None` when it has already passed.
    fn propagate(&self, headers: &mut HeaderMap) -> Option<Instant> {
        let now = Instant::now();
        let mut budget = self.config.request_timeout;
        if let Some(asked) = grpc_timeout(headers) {
            budget = budget.min(asked);
        }
        if let Some(current) = context::current() {
            if let Some(deadline) = current.deadline {
                budget = budget.min(deadline.checked_duration_since(now)?);
            }
            if !headers.contains_key(http::header::AUTHORIZATION)
                && let Some(authorization) = current
                    .caller
                    .as_ref()
                    .and_then(|caller| caller.authorization.clone())
            {
                headers.insert(http::header::AUTHORIZATION, authorization);
            }
            if !headers.contains_key(REQUEST_ID_HEADER)
                && let Ok(value) = HeaderValue::from_str(&current.request_id)
            {
                headers.insert(REQUEST_ID_HEADER, value);
            }
        }
        if budget.is_zero() {
            return None;
        }
        if let Ok(value) = HeaderValue::from_str(&format_grpc_timeout(budget)) {
            headers.insert("grpc-timeout", value);
        }
        Some(now + budget)
    }

    /// One attempt, abandoned with DEADLINE_EXCEEDED when the deadline passes: the
    /// `grpc-timeout` header asks the server to stop, this makes sure the caller does even
    /// when the peer hangs or never answers the connection.
    async fn send_once(
        self,
        request: Request<Body>,
        deadline: Instant,
    ) -> Result<Response<Body>, BoxError> {
        let expired = || {
            Ok(
                Status::deadline_exceeded("the call did not finish before its deadline")
                    .into_http(),
            )
        };
        match tokio::time::timeout_at(deadline.into(), self.peers.pick().oneshot(request)).await {
            // tonic's transport reads the same grpc-timeout and may fire first: same deadline.
            Ok(Err(_)) if Instant::now() >= deadline => expired(),
            Ok(outcome) => outcome.map_err(Into::into),
            Err(_) => expired(),
        }
    }

    async fn send_with_retries(
        self,
        request: Request<Body>,
        deadline: Instant,
    ) -> Result<Response<Body>, BoxError> {
        let (parts, body) = request.into_parts();
        // Kept for the retries; a body slower than the deadline is not waited for.
        let body: Bytes = match tokio::time::timeout_at(deadline.into(), body.collect()).await {
            Ok(collected) => collected?.to_bytes(),
            Err(_) => {
                return Ok(Status::deadline_exceeded(
                    "the request body did not arrive before the deadline",
                )
                .into_http());
            }
        };
        let mut attempt = 0;
        loop {
            let mut retry = Request::builder()
                .method(parts.method.clone())
                .uri(parts.uri.clone())
                .version(parts.version)
                .body(Body::new(Full::new(body.clone())))?;
            *retry.headers_mut() = parts.headers.clone();
            if attempt > 0 {
                // A retry only has what is left of the budget.
                let left = deadline.saturating_duration_since(Instant::now());
                if let Ok(value) = HeaderValue::from_str(&format_grpc_timeout(left)) {
                    retry.headers_mut().insert("grpc-timeout", value);
                }
            }
            let outcome = self.clone().send_once(retry, deadline).await;
            let unavailable = match &outcome {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
                    .is_some_and(|code| Code::from_i32(code) == Code::Unavailable),
                Err(_) => true,
            };
            let backoff = self
                .config
                .retry_backoff
                .saturating_mul(1 << attempt.min(10))
                .min(Duration::from_secs(1));
            if !unavailable
                || attempt >= self.config.max_retries
                || Instant::now() + backoff >= deadline
            {
                return outcome;
            }
            attempt += 1;
            tracing::debug!(
                attempt,
                ?backoff,
                "retrying an idempotent read after UNAVAILABLE"
            );
            tokio::time::sleep(backoff).await;
        }
    }
}
