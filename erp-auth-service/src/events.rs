//! What the auth service publishes (TenantCreated, UserCreated, UserDisabled — staged by
//! the use cases in their transactions) and what it consumes: EmployeeTerminated and
//! EmployeeDeleted from HRM disable the employee's login.

use std::sync::Arc;

use async_trait::async_trait;
use erp_events::{EventHandler, HandlerError, ReceivedEvent};
use erp_proto::erp::events::v1::{EmployeeDeleted, EmployeeTerminated};
use sea_orm::DatabaseTransaction;

use crate::{app::Auth, error::Error};

/// The topic of HRM's employee events.
pub const EMPLOYEE_TOPIC: &str = "erp.hrm.employee.v1";

/// Disables the login of an employee whose employment ended or whose record was deleted.
#[derive(Debug, Clone)]
pub struct DisableLoginOfDepartedEmployee {
    auth: Arc<Auth>,
}

impl DisableLoginOfDepartedEmployee {
    /// A handler over the use cases.
    pub fn new(auth: Arc<Auth>) -> Self {
        Self { auth }
    }
}

#[async_trait]
impl EventHandler for DisableLoginOfDepartedEmployee {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let (user_id, reason) = match event.envelope.event_type.as_str() {
            "employee.terminated" => {
                let terminated: EmployeeTerminated = event.payload()?;
                let reason = format!(
                    "employee {} terminated: {}",
                    terminated.employee_id, terminated.reason
                );
                (terminated.user_id, reason)
            }
            "employee.deleted" => {
                let deleted: EmployeeDeleted = event.payload()?;
                let reason = format!("employee record {} deleted", deleted.employee_id);
                (deleted.user_id, reason)
            }
            _ => return Ok(()),
        };
        if user_id.is_empty() {
            return Ok(());
        }
        match self
            .auth
            .disable_user_in(
                txn,
                &event.tenant(),
                &user_id,
                &reason,
                &event.envelope.source_service,
            )
            .await
        {
            Ok(user) => {
                tracing::info!(user = %user.row.id, %reason, "disabled the login of a departed employee");
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
