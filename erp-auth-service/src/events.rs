//! What the auth service publishes (TenantCreated, UserCreated, UserDisabled — staged by
//! the use cases in their transactions) and what it consumes: EmployeeTerminated from
//! HRM disables the employee's login.

use std::sync::Arc;

use async_trait::async_trait;
use erp_events::{EventHandler, HandlerError, ReceivedEvent};
use erp_proto::erp::events::v1::EmployeeTerminated;
use sea_orm::DatabaseTransaction;

use crate::{app::Auth, error::Error};

/// The topic of HRM's employee events.
pub const EMPLOYEE_TOPIC: &str = "erp.hrm.employee.v1";

/// Disables the login of a terminated employee.
#[derive(Debug, Clone)]
pub struct DisableLoginOfTerminatedEmployee {
    auth: Arc<Auth>,
}

impl DisableLoginOfTerminatedEmployee {
    /// A handler over the use cases.
    pub fn new(auth: Arc<Auth>) -> Self {
        Self { auth }
    }
}

#[async_trait]
impl EventHandler for DisableLoginOfTerminatedEmployee {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        if event.envelope.event_type != "employee.terminated" {
            return Ok(());
        }
        let terminated: EmployeeTerminated = event.payload()?;
        if terminated.user_id.is_empty() {
            return Ok(());
        }
        let reason = format!(
            "employee {} terminated: {}",
            terminated.employee_id, terminated.reason
        );
        match self
            .auth
            .disable_user_in(
                txn,
                &event.tenant(),
                &terminated.user_id,
                &reason,
                &event.envelope.source_service,
            )
            .await
        {
            Ok(user) => {
                tracing::info!(user = %user.row.id, "disabled the login of a terminated employee");
                Ok(())
            }
            // The login was deleted or never existed here: nothing to disable.
            Err(Error::NotFound(_)) => Ok(()),
            Err(Error::Unexpected(error)) => Err(HandlerError::Transient(format!("{error:#}"))),
            Err(error @ (Error::Unavailable(_) | Error::Conflict(_))) => {
                Err(HandlerError::Transient(error.to_string()))
            }
            Err(other) => Err(HandlerError::Permanent(other.to_string())),
        }
    }
}
