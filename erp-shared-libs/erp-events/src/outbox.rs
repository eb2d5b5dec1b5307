//! Staging events in the business transaction (the transactional outbox).

use erp_kit::auth::TenantId;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

use crate::{EventError, envelope, store::outbox_event};

/// Stages the events of one service.
#[derive(Debug, Clone)]
pub struct Outbox {
    source_service: String,
}

/// An event written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedEvent {
    /// The envelope's event id.
    pub event_id: String,
    /// Where the relay will publish it.
    pub topic: String,
    /// Its event type.
    pub event_type: String,
}

impl Outbox {
    /// The outbox of `source_service` (the envelope's `source_service`).
    pub fn new(source_service: impl Into<String>) -> Self {
        Self {
            source_service: source_service.into(),
        }
    }

    /// Writes `payload` as an event of aggregate `aggregate_id` of `tenant`, on `conn`:
    /// pass the business change's transaction, so both commit or neither does. The relay
    /// publishes it after the commit.
    pub async fn stage<C, P>(
        &self,
        conn: &C,
        tenant: &TenantId,
        aggregate_id: &str,
        payload: &P,
    ) -> Result<StagedEvent, EventError>
    where
        C: ConnectionTrait,
        P: prost::Name,
    {
        let sealed = envelope::seal(&self.source_service, tenant, aggregate_id, payload)?;
        let staged = StagedEvent {
            event_id: sealed.envelope.event_id.clone(),
            topic: sealed.topic.clone(),
            event_type: sealed.envelope.event_type.clone(),
        };
        outbox_event::ActiveModel {
            event_id: Set(sealed.envelope.event_id.clone()),
            tenant_id: Set(tenant.as_str().to_owned()),
            topic: Set(sealed.topic),
            event_type: Set(sealed.envelope.event_type.clone()),
            aggregate_id: Set(aggregate_id.to_owned()),
            traceparent: Set(sealed.envelope.traceparent.clone()),
            envelope: Set(prost::Message::encode_to_vec(&sealed.envelope)),
            created_at: Set(erp_db::time::now()),
            published_at: Set(None),
            attempts: Set(0),
            last_error: Set(None),
            ..Default::default()
        }
        .insert(conn)
        .await?;
        Ok(staged)
    }
}
