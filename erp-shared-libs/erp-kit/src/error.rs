//! The shared error model: stable, namespaced reasons (`ERP:HRM:EMPLOYEE_NOT_FOUND`)
//! in `google.rpc.ErrorInfo`, validation failures as `google.rpc.BadRequest` field
//! violations, and internal errors logged once and never sent to the caller.
//!
//! Each service has one `Error` enum and one `impl From<Error> for tonic::Status` that is
//! built from these functions. Callers branch on [`reason`], never on the message.

use std::{collections::HashMap, fmt};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error the mesh produces.
pub const ERROR_DOMAIN: &str = "erp.mesh";

/// One invalid field of a request: its path (`employee.email`, `page.page_token`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path, proto field names joined by dots.
    pub field: String,
    /// What is wrong, for a person: "must be a valid email address".
    pub description: String,
}

/// Every invalid field of one request. Domain parsing collects violations instead of
/// stopping at the first, so the caller can fix them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The violations, in the order found.
    pub violations: Vec<FieldViolation>,
}

impl ValidationError {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A single violation.
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut error = Self::new();
        error.add(field, description);
        error
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records the violations of a nested value under `prefix` (`employee` + `email`).
    pub fn nest(&mut self, prefix: &str, nested: ValidationError) {
        for violation in nested.violations {
            self.add(
                format!("{prefix}.{}", violation.field),
                violation.description,
            );
        }
    }

    /// Runs a parse and keeps its value, or records its violation under `field`.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, parsed: Result<T, E>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// `Ok(())` when nothing was recorded, otherwise `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationError> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid request")?;
        for (index, violation) in self.violations.iter().enumerate() {
            let separator = if index == 0 { ": " } else { "; " };
            write!(
                f,
                "{separator}{} {}",
                violation.field, violation.description
            )?;
        }
        Ok(())
    }
}

/// A status with a stable reason in `ErrorInfo`, plus optional metadata.
pub fn status_with_reason(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (String, String)>,
) -> Status {
    let details = ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        metadata.into_iter().collect::<HashMap<_, _>>(),
    );
    Status::with_error_details(code, message, details)
}

/// `INVALID_ARGUMENT` with every field violation and the reason (`ERP:HRM:INVALID_REQUEST`).
pub fn invalid_argument(reason: &str, error: &ValidationError) -> Status {
    let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    for violation in &error.violations {
        details.add_bad_request_violation(&violation.field, &violation.description);
    }
    Status::with_error_details(Code::InvalidArgument, error.to_string(), details)
}

/// `INTERNAL` with a generic message. The cause chain is logged here, once, with the
/// current span's request id; nothing of it reaches the caller.
pub fn internal(reason: &str, error: &(dyn std::error::Error + 'static)) -> Status {
    tracing::error!(reason, error = %ErrorChain(error), "internal error");
    status_with_reason(
        Code::Internal,
        reason,
        "internal error; the request id identifies it in the service's logs",
        [],
    )
}

/// Displays an error followed by its sources: `a: b: c`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The stable reason of a status (`ErrorInfo.reason`), if it carries one.
pub fn reason(status: &Status) -> Option<String> {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .filter(|reason| !reason.is_empty())
}

/// The field violations of a status as `(field, description)` pairs.
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| (violation.field, violation.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_violation_and_the_reason() {
        let mut error = ValidationError::new();
        error.add("email", "must be a valid email address");
        error.add("first_name", "must not be empty");
        let status = invalid_argument("ERP:HRM:INVALID_REQUEST", &error);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason(&status).as_deref(), Some("ERP:HRM:INVALID_REQUEST"));
        assert_eq!(
            field_violations(&status),
            vec![
                (
                    "email".to_owned(),
                    "must be a valid email address".to_owned()
                ),
                ("first_name".to_owned(), "must not be empty".to_owned()),
            ]
        );
    }

    #[test]
    fn internal_hides_the_cause() {
        let cause = std::io::Error::other("password=hunter2 in connection string");
        let status = internal("ERP:HRM:UNEXPECTED", &cause);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }

    #[test]
    fn nested_violations_are_prefixed() {
        let mut outer = ValidationError::new();
        outer.nest("employee", ValidationError::field("email", "is empty"));
        assert_eq!(outer.violations[0].field, "employee.email");
    }
}

/// Names a service's errors: the prefix of its stable reasons (`ERP:HRM`).
pub trait ErrorDomain: std::fmt::Debug + Send + Sync + 'static {
    /// `ERP:<SERVICE>`, the first two parts of every reason the service emits.
    const PREFIX: &'static str;
}

/// The failures every service has, with the one conversion to `tonic::Status`. A service
/// names its own error type `pub type Error = ServiceError<MyDomain>;`.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError<D: ErrorDomain> {
    /// The request is invalid; every field violation is listed.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// No such record in the caller's tenant (`"employee"` → `ERP:HRM:EMPLOYEE_NOT_FOUND`).
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
    /// The caller may not do this to this record.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// A limit was hit (too many failed logins, for example); retry later.
    #[error("{message}")]
    ResourceExhausted {
        /// Stable reason.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// The record changed since the caller read it.
    #[error("the record was changed by someone else; read it again (current version {current})")]
    StaleVersion {
        /// The version stored now.
        current: i64,
    },
    /// A service this call needs is down (a peer, the database).
    #[error("{0}")]
    Unavailable(String),
    /// A concurrent transaction got in the way (a deadlock, a serialization failure);
    /// the whole call may be retried.
    #[error("{0}")]
    Conflict(String),
    /// Anything else: logged once, never shown.
    #[error(transparent)]
    Unexpected(anyhow::Error),
    /// Never built: carries the domain type.
    #[doc(hidden)]
    #[error("unreachable")]
    Domain(std::convert::Infallible, std::marker::PhantomData<D>),
}

impl<D: ErrorDomain> ServiceError<D> {
    /// A validation error of one field.
    pub fn field(field: &str, description: impl Into<String>) -> Self {
        Self::Validation(ValidationError::field(field, description))
    }

    /// Wraps any error as unexpected.
    pub fn unexpected(error: impl Into<anyhow::Error>) -> Self {
        Self::Unexpected(error.into())
    }
}

impl<D: ErrorDomain> From<anyhow::Error> for ServiceError<D> {
    fn from(error: anyhow::Error) -> Self {
        Self::Unexpected(error)
    }
}

/// What kind of trouble a database error is, for callers that react to it differently.
#[cfg(feature = "sea-orm")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseTrouble {
    /// No connection could be had: the database is down or out of reach; retry later.
    Unreachable,
    /// The connection broke during a statement: whether it took effect is unknown.
    ConnectionLost,
    /// A concurrent transaction got in the way (a deadlock, a serialization failure, a
    /// busy SQLite file); the whole transaction may be retried at once.
    Conflict,
    /// A statement ran past the database's `statement_timeout` and was cancelled (its
    /// transaction took no effect).
    TimedOut,
}

/// The trouble `error` is, if it is one of the kinds callers act on (anything else is a
/// bug or a constraint, not a condition that passes).
#[cfg(feature = "sea-orm")]
pub fn database_trouble(error: &sea_orm::DbErr) -> Option<DatabaseTrouble> {
    use sea_orm::{DbErr, RuntimeErr, sqlx::Error as SqlxError};
    let sqlx_error = match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return Some(DatabaseTrouble::Unreachable),
        DbErr::Exec(RuntimeErr::SqlxError(sqlx_error))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx_error)) => sqlx_error,
        _ => return None,
    };
    match &**sqlx_error {
        SqlxError::PoolTimedOut | SqlxError::PoolClosed => Some(DatabaseTrouble::Unreachable),
        SqlxError::Io(_) => Some(DatabaseTrouble::ConnectionLost),
        SqlxError::Database(database) => match database.code().as_deref() {
            // PostgreSQL: serialization_failure, deadlock_detected, lock_not_available;
            // SQLite: BUSY, LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT.
            Some("40001" | "40P01" | "55P03" | "5" | "6" | "261" | "517") => {
                Some(DatabaseTrouble::Conflict)
            }
            // PostgreSQL: query_canceled (statement_timeout).
            Some("57014") => Some(DatabaseTrouble::TimedOut),
            _ => None,
        },
        _ => None,
    }
}

/// Database failures a caller can act on are not INTERNAL: an unreachable database or a
/// statement cancelled by its timeout is UNAVAILABLE (retry later), a conflicting
/// transaction ABORTED (retry now). A connection
/// lost mid-statement stays INTERNAL: the write may have happened, so it is not safe to
/// invite a blind retry.
#[cfg(feature = "sea-orm")]
impl<D: ErrorDomain> From<sea_orm::DbErr> for ServiceError<D> {
    fn from(error: sea_orm::DbErr) -> Self {
        match database_trouble(&error) {
            Some(DatabaseTrouble::Unreachable) => {
                tracing::warn!(%error, "the database is unavailable");
                Self::Unavailable("the database is unavailable; retry shortly".to_owned())
            }
            Some(DatabaseTrouble::Conflict) => {
                tracing::info!(%error, "a concurrent transaction conflicted");
                Self::Conflict("a concurrent change got in the way; retry the request".to_owned())
            }
            Some(DatabaseTrouble::TimedOut) => {
                tracing::warn!(%error, "a statement ran past the database's statement timeout");
                Self::Unavailable("the database took too long to answer; retry shortly".to_owned())
            }
            Some(DatabaseTrouble::ConnectionLost) | None => {
                Self::Unexpected(anyhow::Error::new(error))
            }
        }
    }
}

impl<D: ErrorDomain> From<ServiceError<D>> for Status {
    fn from(error: ServiceError<D>) -> Self {
        let prefix = D::PREFIX;
        match error {
            ServiceError::Validation(violations) => {
                invalid_argument(&format!("{prefix}:INVALID_REQUEST"), &violations)
            }
            ServiceError::NotFound(what) => status_with_reason(
                Code::NotFound,
                &format!("{prefix}:{}_NOT_FOUND", what.to_ascii_uppercase()),
                format!("{} not found", what.replace('_', " ")),
                [],
            ),
            ServiceError::AlreadyExists { reason, message } => {
                status_with_reason(Code::AlreadyExists, reason, message, [])
            }
            ServiceError::FailedPrecondition { reason, message } => {
                status_with_reason(Code::FailedPrecondition, reason, message, [])
            }
            ServiceError::Unauthenticated(message) => status_with_reason(
                Code::Unauthenticated,
                &format!("{prefix}:INVALID_CREDENTIALS"),
                message,
                [],
            ),
            ServiceError::PermissionDenied(message) => status_with_reason(
                Code::PermissionDenied,
                &format!("{prefix}:FORBIDDEN"),
                message,
                [],
            ),
            ServiceError::ResourceExhausted { reason, message } => {
                status_with_reason(Code::ResourceExhausted, reason, message, [])
            }
            ServiceError::StaleVersion { current } => status_with_reason(
                Code::Aborted,
                &format!("{prefix}:STALE_VERSION"),
                format!(
                    "the record was changed by someone else; read it again (current version {current})"
                ),
                [("current_version".to_owned(), current.to_string())],
            ),
            ServiceError::Unavailable(message) => status_with_reason(
                Code::Unavailable,
                &format!("{prefix}:DEPENDENCY_UNAVAILABLE"),
                message,
                [],
            ),
            ServiceError::Conflict(message) => {
                status_with_reason(Code::Aborted, &format!("{prefix}:CONFLICT"), message, [])
            }
            ServiceError::Unexpected(error) => {
                internal(&format!("{prefix}:UNEXPECTED"), error.as_ref())
            }
            ServiceError::Domain(never, _) => match never {},
        }
    }
}

#[cfg(all(test, feature = "sea-orm"))]
mod database_error_tests {
    use sea_orm::{ConnAcquireErr, DbErr};

    use super::*;

    #[derive(Debug)]
    struct Probe;

    impl ErrorDomain for Probe {
        const PREFIX: &'static str = "ERP:PROBE";
    }

    fn status_of(error: DbErr) -> Status {
        ServiceError::<Probe>::from(error).into()
    }

    #[test]
    fn an_unreachable_database_is_unavailable_not_internal() {
        let status = status_of(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            reason(&status).as_deref(),
            Some("ERP:PROBE:DEPENDENCY_UNAVAILABLE")
        );
    }

    #[test]
    fn any_other_database_failure_is_internal_and_hidden() {
        let status = status_of(DbErr::Custom("relation \"secret\" does not exist".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }
}
