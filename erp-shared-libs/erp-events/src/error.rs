//! The errors of the events backbone.

/// What went wrong publishing, consuming or administering events.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The payload type declares no `erp.events.v1.event` option.
    #[error("{0} is not an event payload (it declares no erp.events.v1.event option)")]
    NotAnEvent(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The broker client refused or failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The topic table could not be read.
    #[error("topics: {0}")]
    Topics(String),
}

impl<D: erp_kit::error::ErrorDomain> From<EventError> for erp_kit::error::ServiceError<D> {
    fn from(error: EventError) -> Self {
        Self::Unexpected(anyhow::Error::new(error))
    }
}
