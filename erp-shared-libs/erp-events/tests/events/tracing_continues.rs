use std::time::Duration;

use erp_events::{ConsumerConfig, ConsumerRunner, EventMetrics, Outbox};
use erp_kit::auth::TenantId;
use opentelemetry::trace::{SpanKind, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use erp_testkit::broker::TestBroker;

use crate::{
    on_both_brokers,
    support::{RecordingHandler, SERVICE, TOPIC, database, drain_outbox, eventually, hired, relay},
};

on_both_brokers!(the_consumer_span_continues_the_producers_trace);

async fn the_consumer_span_continues_the_producers_trace(broker: TestBroker) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(erp_kit::telemetry::span_layer(
        provider.tracer("events-test"),
    ));
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber of this process");

    let (_database, db) = database().await;
    let kafka = broker.kafka();
    let business = tracing::info_span!("hire employee");
    let producer_trace = business.context().span().span_context().trace_id();
    Outbox::new(SERVICE)
        .stage(
            &db,
            &TenantId::new("tenant-trace"),
            "emp-t",
            &hired("emp-t", 1, "engineer"),
        )
        .instrument(business)
        .await
        .expect("staged");
    drain_outbox(&relay(&db, &kafka)).await;

    let metrics = EventMetrics::default();
    let runner = ConsumerRunner::new(
        "erp-auth-service",
        db.clone(),
        kafka,
        ConsumerConfig::default(),
        metrics.clone(),
    )
    .handle(TOPIC, RecordingHandler::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(runner.run(stop.clone()));
    eventually(Duration::from_secs(60), || async {
        (metrics.consumed_count("erp-auth-service", TOPIC, "applied") == 1).then_some(())
    })
    .await;
    stop.cancel();
    task.await.expect("joins").expect("ran");
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    let consumer_span = spans
        .iter()
        .find(|span| span.span_kind == SpanKind::Consumer)
        .expect("a consumer span");
    assert_eq!(
        consumer_span.span_context.trace_id(),
        producer_trace,
        "one trace from stage to handler"
    );
}
