//! The errors of erp-db helpers.

use erp_kit::error::{ErrorDomain, ServiceError, ValidationError};

/// What went wrong in a store helper.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No row with that id in the caller's tenant.
    #[error("not found")]
    NotFound,
    /// The row changed since the caller read it.
    #[error("the record was changed by someone else (expected version {expected}, now {current})")]
    StaleVersion {
        /// The version the caller read.
        expected: i64,
        /// The version stored now.
        current: i64,
    },
    /// A page token was not issued for this list, or was altered.
    #[error(transparent)]
    InvalidPageToken(#[from] ValidationError),
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl<D: ErrorDomain> From<DbError> for ServiceError<D> {
    fn from(error: DbError) -> Self {
        match error {
            DbError::NotFound => Self::NotFound("record"),
            DbError::StaleVersion { current, .. } => Self::StaleVersion { current },
            DbError::InvalidPageToken(violations) => Self::Validation(violations),
            DbError::Database(error) => Self::from(error),
        }
    }
}
