//! Metrics in Prometheus/OpenMetrics text, served on the admin port. One
//! [`MetricsRegistry`] per process: the server registers its RPC metrics (calls by method
//! and status code, errors by method and code, a latency histogram per method) and other
//! components (the event outbox and consumers) register theirs next to them.

use std::{
    borrow::Cow,
    fmt::Write as _,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use erp_proto::Contracts;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::{Metric, Registry},
};
use tonic::Code;

/// The metrics of one process, rendered together on `/metrics`.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    registry: Mutex<Registry>,
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metric; `name` gets the usual suffixes (`_total` for counters).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, metric);
    }

    /// The text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if encode(&mut text, &registry).is_err() {
            let _ = writeln!(text, "# encoding failed");
        }
        text
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: Cow<'static, str>,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: Cow<'static, str>,
}

/// The method label of paths no service answers (their number is the callers' choice, so
/// they must not each get a series).
const UNKNOWN_METHOD: &str = "unknown";
/// The health check, answered even at the concurrency limit (liveness probes call it).
pub(crate) const HEALTH_CHECK_METHOD: &str = "/grpc.health.v1.Health/Check";
/// The methods of the services every server adds (health, reflection).
const KIT_METHODS: &[&str] = &[
    HEALTH_CHECK_METHOD,
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The RPC metrics of one server.
#[derive(Debug)]
pub struct RpcMetrics {
    contracts: &'static Contracts,
    calls: Family<CallLabels, Counter>,
    errors: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
}

impl RpcMetrics {
    /// Empty metrics, registered in `registry` under `grpc_server_*`; the methods of
    /// `contracts` are labelled without allocating per call.
    pub fn new(registry: &MetricsRegistry, contracts: &'static Contracts) -> Self {
        let calls = Family::<CallLabels, Counter>::default();
        let errors = Family::<CallLabels, Counter>::default();
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
        });
        registry.register(
            "grpc_server_handled",
            "RPCs completed, by method and status code",
            calls.clone(),
        );
        registry.register(
            "grpc_server_errors",
            "RPCs that ended with a non-OK status code",
            errors.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time from request to response headers, by method",
            latency.clone(),
        );
        Self {
            contracts,
            calls,
            errors,
            latency,
        }
    }

    /// Records one finished call.
    pub fn record(&self, method: &str, code: Code, elapsed: Duration) {
        let method = match self.contracts.method(method) {
            Some(contract) => Cow::Borrowed(contract.grpc_path.as_str()),
            // Health and reflection, the kit's own services, have series of their own;
            // any other path is one series, whatever a scanner sends (shed calls are
            // refused before routing, so their status says nothing about the path).
            None => match KIT_METHODS.iter().find(|known| **known == method) {
                Some(known) => Cow::Borrowed(*known),
                None => Cow::Borrowed(UNKNOWN_METHOD),
            },
        };
        let labels = CallLabels {
            method,
            code: code_label(code),
        };
        self.calls.get_or_create(&labels).inc();
        if code != Code::Ok {
            self.errors.get_or_create(&labels).inc();
        }
        self.latency
            .get_or_create(&MethodLabels {
                method: labels.method,
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// The `code` label: the code's name as tonic spells it (`Ok`, `NotFound`, …).
fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}
