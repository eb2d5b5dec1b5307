//! HRM's one error type and its one conversion to `tonic::Status`.

use erp_db::DbError;
use erp_kit::error::{ValidationError, internal, invalid_argument, status_with_reason};
use tonic::{Code, Status};

/// Every way an HRM call can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is invalid; every field violation is listed.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// No such record in the caller's tenant (`"employee"`, `"department"`, …).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is taken.
    #[error("{message}")]
    AlreadyExists {
        /// Stable reason.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// The request is valid but the current state forbids it.
    #[error("{message}")]
    FailedPrecondition {
        /// Stable reason.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// A service this call needs is down (the auth service, for hires with a login).
    #[error("{0}")]
    Unavailable(String),
    /// The caller may not do this to this record.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The record changed since the caller read it.
    #[error("the record was changed by someone else; read it again (current version {current})")]
    StaleVersion {
        /// The version stored now.
        current: i64,
    },
    /// Anything else: logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The result of HRM operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A validation error of one field.
    pub fn field(field: &str, description: impl Into<String>) -> Self {
        Self::Validation(ValidationError::field(field, description))
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Unexpected(anyhow::Error::new(error))
    }
}

impl From<DbError> for Error {
    fn from(error: DbError) -> Self {
        match error {
            DbError::NotFound => Self::NotFound("record"),
            DbError::StaleVersion { current, .. } => Self::StaleVersion { current },
            DbError::InvalidPageToken(violations) => Self::Validation(violations),
            DbError::Database(error) => Self::from(error),
        }
    }
}

impl From<erp_events::EventError> for Error {
    fn from(error: erp_events::EventError) -> Self {
        Self::Unexpected(anyhow::Error::new(error))
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Validation(violations) => {
                invalid_argument("ERP:HRM:INVALID_REQUEST", &violations)
            }
            Error::NotFound(what) => status_with_reason(
                Code::NotFound,
                &format!("ERP:HRM:{}_NOT_FOUND", what.to_ascii_uppercase()),
                format!("{what} not found"),
                [],
            ),
            Error::AlreadyExists { reason, message } => {
                status_with_reason(Code::AlreadyExists, reason, message, [])
            }
            Error::FailedPrecondition { reason, message } => {
                status_with_reason(Code::FailedPrecondition, reason, message, [])
            }
            Error::Unavailable(message) => status_with_reason(
                Code::Unavailable,
                "ERP:HRM:DEPENDENCY_UNAVAILABLE",
                message,
                [],
            ),
            Error::PermissionDenied(message) => {
                status_with_reason(Code::PermissionDenied, "ERP:HRM:FORBIDDEN", message, [])
            }
            Error::StaleVersion { current } => status_with_reason(
                Code::Aborted,
                "ERP:HRM:STALE_VERSION",
                format!(
                    "the record was changed by someone else; read it again (current version {current})"
                ),
                [("current_version".to_owned(), current.to_string())],
            ),
            Error::Unexpected(error) => internal("ERP:HRM:UNEXPECTED", error.as_ref()),
        }
    }
}
