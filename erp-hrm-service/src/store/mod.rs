//! Everything that touches the database: tenant-scoped queries and the transactions of
//! each use case (the business change and its outbox events commit together).

pub mod attendance;
pub mod departments;
pub mod employees;
pub mod entities;
pub mod leave;
pub mod migrations;

use crate::error::Error;

/// Maps a unique violation to ALREADY_EXISTS with `reason` and `message`.
pub(crate) fn taken(
    reason: &'static str,
    message: impl Into<String>,
) -> impl FnOnce(sea_orm::DbErr) -> Error {
    let message = message.into();
    move |error| {
        if erp_db::is_unique_violation(&error) {
            Error::AlreadyExists { reason, message }
        } else {
            Error::from(error)
        }
    }
}
