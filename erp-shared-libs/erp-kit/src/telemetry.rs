//! Logs and traces: `tracing` with pretty or JSON output, every span an OpenTelemetry
//! span (so trace ids exist even without a collector), exported over OTLP/gRPC when
//! `ERP_OTLP__ENDPOINT` is set, and W3C `traceparent` extraction and injection.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, OtlpConfig, TelemetryConfig};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("telemetry.log_level `{0}` is not a valid filter: {1}")]
    Filter(String, String),
    /// The OTLP exporter could not be built.
    #[error("cannot export to otlp.endpoint: {0}")]
    Exporter(String),
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the tracer provider alive; flushes pending spans on [`Telemetry::shutdown`].
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Flushes and stops span export.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("telemetry shutdown: {error}");
        }
    }
}

/// Installs the global subscriber for a service process.
pub fn init(
    service_name: &'static str,
    telemetry: &TelemetryConfig,
    otlp: &OtlpConfig,
) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_new(&telemetry.log_level)
        .map_err(|error| TelemetryError::Filter(telemetry.log_level.clone(), error.to_string()))?;
    let mut provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service_name).build());
    if let Some(endpoint) = &otlp.endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|error| TelemetryError::Exporter(error.to_string()))?;
        provider = provider.with_batch_exporter(exporter);
    } else {
        // Nothing collects spans: keep trace and span ids (propagation, log correlation)
        // but record nothing.
        provider = provider.with_sampler(Sampler::AlwaysOff);
    }
    let provider = provider.build();
    let otel = span_layer(provider.tracer(service_name));
    // The log level filters log output only: spans must exist whatever the level, or
    // trace context would stop propagating when logs are quiet.
    let fmt = match telemetry.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_target(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel.with_filter(tracing_subscriber::filter::LevelFilter::INFO))
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { provider })
}

/// The layer that makes every `tracing` span an OpenTelemetry span of `tracer`, as every
/// service process installs it (tests install it with their own tracer).
///
/// Spans carry their name, fields, duration and status. Left out, as they cost every call
/// CPU each time a span is entered or left (each poll of a call's future): busy/idle
/// timings, the thread and source location (one span site per kind, known from the name),
/// and activating the OpenTelemetry context on entry — trace context is taken from the
/// `tracing` span itself (`OpenTelemetrySpanExt::context`), not from the active context.
pub fn span_layer<S, T>(tracer: T) -> tracing_opentelemetry::OpenTelemetryLayer<S, T>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    T: opentelemetry::trace::Tracer + 'static,
    T::Span: Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_context_activation(false)
}

/// Makes `span` continue the trace of the incoming `headers` (their `traceparent`), so
/// what runs inside it, outgoing calls included, belongs to the caller's trace.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    // Fails only when no OpenTelemetry layer is installed: then there is no trace to join.
    let _ = span.set_parent(extract_context(headers));
}

/// The W3C trace context carried by incoming headers (empty when there is none).
pub fn extract_context(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes `context` as `traceparent` (and `tracestate`) into outgoing headers.
pub fn inject_context(context: &Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(context, &mut HeaderInjector(headers));
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
