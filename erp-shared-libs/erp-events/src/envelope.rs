//! Building the `EventEnvelope` of a payload, and the Kafka headers that travel with it.

use erp_kit::{auth::TenantId, context, telemetry};
use erp_proto::{Contracts, erp::events::v1::EventEnvelope};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::EventError;

/// Header: the envelope's event type, for routing without decoding.
pub const HEADER_EVENT_TYPE: &str = "event-type";
/// Header: the envelope's event id.
pub const HEADER_EVENT_ID: &str = "event-id";
/// Header: W3C trace context of the publishing transaction.
pub const HEADER_TRACEPARENT: &str = "traceparent";
/// Headers a dead-lettered message carries: why, where it came from, who gave up.
pub const DLQ_HEADERS: [&str; 6] = [
    "dlq-reason",
    "dlq-original-topic",
    "dlq-original-partition",
    "dlq-original-offset",
    "dlq-consumer",
    "dlq-attempts",
];
/// The schema version of every v1 payload.
pub const SCHEMA_VERSION: &str = "1.0";

/// The consumed event a handler is applying: events it publishes continue its correlation
/// and name it as their cause.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    pub(crate) correlation_id: String,
    pub(crate) causation_id: String,
}

tokio::task_local! {
    static CAUSE: Cause;
}

/// Runs `work` (an event handler) with `cause` as the cause of the events it seals.
pub(crate) async fn caused_by<F: std::future::Future>(cause: Cause, work: F) -> F::Output {
    CAUSE.scope(cause, work).await
}

/// An envelope ready for the outbox, with where it goes.
pub(crate) struct Sealed {
    pub(crate) topic: String,
    pub(crate) envelope: EventEnvelope,
}

/// Wraps `payload` for `tenant` and aggregate `aggregate_id`, taking correlation, actor
/// and trace context from the call being handled — or, inside an event handler, the
/// correlation of the event being handled, whose id becomes the causation.
pub(crate) fn seal<P: prost::Name>(
    source_service: &str,
    tenant: &TenantId,
    aggregate_id: &str,
    payload: &P,
) -> Result<Sealed, EventError> {
    let payload_type = P::full_name();
    let contract = Contracts::bundled()
        .events()
        .iter()
        .find(|event| event.payload_type == payload_type)
        .ok_or_else(|| EventError::NotAnEvent(payload_type.clone()))?;
    let event_id = uuid::Uuid::now_v7().to_string();
    let current = context::current();
    let request_id = current.as_ref().map(|current| current.request_id.clone());
    let (correlation_id, causation_id) = match (CAUSE.try_with(Clone::clone), request_id) {
        (Ok(cause), _) => (cause.correlation_id, cause.causation_id),
        (Err(_), Some(request_id)) => (request_id.clone(), request_id),
        (Err(_), None) => (event_id.clone(), String::new()),
    };
    let now = erp_db::time::now();
    let envelope = EventEnvelope {
        correlation_id,
        causation_id,
        actor_user_id: current
            .and_then(|current| current.caller)
            .map(|caller| caller.user_id.clone())
            .unwrap_or_default(),
        event_id,
        event_type: contract.event_type.clone(),
        schema_version: SCHEMA_VERSION.to_owned(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        tenant_id: tenant.as_str().to_owned(),
        source_service: source_service.to_owned(),
        aggregate_type: contract.aggregate_type.clone(),
        aggregate_id: aggregate_id.to_owned(),
        traceparent: current_traceparent(),
        payload_type,
        payload: payload.encode_to_vec(),
    };
    Ok(Sealed {
        topic: contract.topic.clone(),
        envelope,
    })
}

fn current_traceparent() -> String {
    let mut headers = http::HeaderMap::new();
    telemetry::inject_context(&tracing::Span::current().context(), &mut headers);
    headers
        .get(HEADER_TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
