//! The events backbone against real brokers: every test runs on librdkafka's in-process
//! mock cluster (`<test>::mock`) and on tansu, an independent Kafka-compatible broker
//! started as a process (`<test>::tansu`), with a fresh PostgreSQL database each.

mod consumer;
mod outbox;
mod sqlite;
mod support;
mod tracing_continues;

/// Runs a test body on both broker tiers.
macro_rules! on_both_brokers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mock() {
                super::$name(erp_testkit::broker::TestBroker::mock()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tansu() {
                super::$name(erp_testkit::broker::TestBroker::tansu().await).await;
            }
        }
    )*};
}
pub(crate) use on_both_brokers;
