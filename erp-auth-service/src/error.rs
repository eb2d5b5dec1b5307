//! The auth service's one error type and its one conversion to `tonic::Status`.

use erp_db::DbError;
use erp_kit::error::{ValidationError, internal, invalid_argument, status_with_reason};
use tonic::{Code, Status};

/// Every way an auth call can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is invalid; every field violation is listed.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// No such record in the caller's tenant (`"user"`, `"tenant"`, `"role"`).
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
    /// Wrong or unusable credentials; deliberately vague.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// Too many failed logins for this account or source.
    #[error("too many failed logins; try again later")]
    LockedOut,
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

/// The result of auth operations.
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
                invalid_argument("ERP:AUTH:INVALID_REQUEST", &violations)
            }
            Error::NotFound(what) => status_with_reason(
                Code::NotFound,
                &format!("ERP:AUTH:{}_NOT_FOUND", what.to_ascii_uppercase()),
                format!("{what} not found"),
                [],
            ),
            Error::AlreadyExists { reason, message } => {
                status_with_reason(Code::AlreadyExists, reason, message, [])
            }
            Error::FailedPrecondition { reason, message } => {
                status_with_reason(Code::FailedPrecondition, reason, message, [])
            }
            Error::Unauthenticated(message) => status_with_reason(
                Code::Unauthenticated,
                "ERP:AUTH:INVALID_CREDENTIALS",
                message,
                [],
            ),
            Error::PermissionDenied(message) => {
                status_with_reason(Code::PermissionDenied, "ERP:AUTH:FORBIDDEN", message, [])
            }
            Error::LockedOut => status_with_reason(
                Code::ResourceExhausted,
                "ERP:AUTH:LOCKED_OUT",
                "too many failed logins; try again later",
                [],
            ),
            Error::StaleVersion { current } => status_with_reason(
                Code::Aborted,
                "ERP:AUTH:STALE_VERSION",
                format!(
                    "the record was changed by someone else; read it again (current version {current})"
                ),
                [("current_version".to_owned(), current.to_string())],
            ),
            Error::Unexpected(error) => internal("ERP:AUTH:UNEXPECTED", error.as_ref()),
        }
    }
}
