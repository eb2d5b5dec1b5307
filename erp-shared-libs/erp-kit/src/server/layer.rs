//! The one tower layer every service runs behind. In order, per call: request id, a
//! tracing span continuing the caller's W3C trace, load shedding over the concurrency
//! limit, the deadline (`grpc-timeout` capped by the server's request timeout), the
//! contract's access rule, then the handler with the request context in scope; the
//! outcome is recorded in the RPC metrics.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::{HeaderMap, HeaderValue, Request, Response};
use tokio::sync::Semaphore;
use tonic::{Code, body::Body};
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;

use crate::{
    access::AccessGuard,
    context::{self, RequestContext},
    error::status_with_reason,
    metrics::RpcMetrics,
    telemetry,
};

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Reason of a call refused because the server is at its concurrency limit.
pub const REASON_OVERLOADED: &str = "ERP:SERVER:OVERLOADED";
/// Reason of a call that ran past its deadline.
pub const REASON_DEADLINE: &str = "ERP:SERVER:DEADLINE_EXCEEDED";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How much earlier than the caller's deadline the server answers DEADLINE_EXCEEDED.
const DEADLINE_MARGIN: Duration = Duration::from_millis(20);
/// The deadline of a call whose budget overflows the clock (a configured timeout of years).
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

pub(crate) struct Shared {
    pub(crate) guard: AccessGuard,
    pub(crate) limiter: Arc<Semaphore>,
    pub(crate) request_timeout: Duration,
    pub(crate) metrics: Arc<RpcMetrics>,
}

/// Wraps the routes of a server in [`MeshService`].
#[derive(Clone)]
pub struct MeshLayer {
    shared: Arc<Shared>,
}

impl MeshLayer {
    pub(crate) fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for MeshLayer {
    type Service = MeshService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MeshService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct MeshService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request<Body>> for MeshService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness of the inner service is awaited per call, on its own clone.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        Box::pin(handle(shared, inner, request))
    }
}

async fn handle<S>(
    shared: Arc<Shared>,
    inner: S,
    request: Request<Body>,
) -> Result<Response<Body>, BoxError>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    let started = Instant::now();
    let path = request.uri().path().to_owned();
    let request_id = request_id(request.headers());
    let span = tracing::info_span!(
        "grpc.request",
        otel.name = %path,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = %path,
        request_id = %request_id,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    telemetry::continue_trace(&span, request.headers());

    async move {
        let mut response = admit_and_call(&shared, inner, request, &path, &request_id).await?;
        let code = response_code(response.headers());
        tracing::Span::current().record("rpc.grpc.status_code", code as i32);
        shared.metrics.record(&path, code, started.elapsed());
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        if code != Code::Ok {
            tracing::info!(code = ?code, elapsed_ms = started.elapsed().as_millis() as u64, "call failed");
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

async fn admit_and_call<S>(
    shared: &Shared,
    inner: S,
    mut request: Request<Body>,
    path: &str,
    request_id: &str,
) -> Result<Response<Body>, BoxError>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    // Health checks are answered even at the limit: a busy server is alive, and a
    // liveness probe refused under load would restart it exactly when it is busiest.
    // (Watch streams live long; they stay under the limit.)
    let _permit = if path == crate::metrics::HEALTH_CHECK_METHOD {
        None
    } else {
        let Ok(permit) = shared.limiter.clone().try_acquire_owned() else {
            return Ok(status_with_reason(
                Code::ResourceExhausted,
                REASON_OVERLOADED,
                "the server is at its concurrency limit; retry with backoff",
                [],
            )
            .into_http());
        };
        Some(permit)
    };
    let budget = grpc_timeout(request.headers()).map_or(shared.request_timeout, |asked| {
        asked.min(shared.request_timeout)
    });
    // Answer a little before the caller gives up, so DEADLINE_EXCEEDED with its reason
    // (not the transport's own cancel) is what reaches it. A budget past any clock's
    // range is as good as none.
    let now = Instant::now();
    let deadline = now
        .checked_add(budget - (budget / 10).min(DEADLINE_MARGIN))
        .unwrap_or_else(|| now + FAR_FUTURE);

    let work = async {
        let caller = match shared.guard.authorize(path, request.headers()).await {
            Ok(caller) => caller,
            Err(status) => return Ok(status.into_http()),
        };
        if let Some(caller) = &caller {
            request.extensions_mut().insert(caller.clone());
        }
        let context = RequestContext {
            request_id: request_id.to_owned(),
            deadline: Some(deadline),
            caller,
        };
        let ready = inner.ready_oneshot().await.map_err(Into::into)?;
        context::scope(context, ready.oneshot(request))
            .await
            .map_err(Into::into)
    };
    match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(result) => result,
        Err(_) => Ok(status_with_reason(
            Code::DeadlineExceeded,
            REASON_DEADLINE,
            format!("the call did not finish within its deadline of {budget:?}"),
            [],
        )
        .into_http()),
    }
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

fn response_code(headers: &HeaderMap) -> Code {
    // Errors of unary calls travel as trailers-only responses, with the status in the
    // headers; a response without one is a success whose status follows in trailers.
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32)
}

/// The `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
pub(crate) fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Formats a duration as a `grpc-timeout` value (milliseconds, rounded up).
pub(crate) fn format_grpc_timeout(timeout: Duration) -> String {
    let millis = timeout.as_millis().clamp(1, 99_999_999);
    format!("{millis}m")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().expect("header"));
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeout_units_parse() {
        assert_eq!(timeout_of("5S"), Some(Duration::from_secs(5)));
        assert_eq!(timeout_of("250m"), Some(Duration::from_millis(250)));
        assert_eq!(timeout_of("2M"), Some(Duration::from_secs(120)));
        assert_eq!(timeout_of("100u"), Some(Duration::from_micros(100)));
        assert_eq!(timeout_of("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout_of("10x"), None);
        assert_eq!(timeout_of("123456789S"), None);
        assert_eq!(timeout_of("S"), None);
    }

    #[test]
    fn grpc_timeout_is_formatted_in_milliseconds() {
        assert_eq!(format_grpc_timeout(Duration::from_millis(1500)), "1500m");
        assert_eq!(format_grpc_timeout(Duration::from_micros(10)), "1m");
    }
}
