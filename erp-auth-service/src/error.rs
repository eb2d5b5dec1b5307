//! The service's one error type: the mesh's shared failures with this service's reason
//! prefix (`ERP:AUTH:…`), converted to `tonic::Status` in one place (erp-kit).

use erp_kit::error::{ErrorDomain, ServiceError};

/// The reason prefix of this service's errors.
#[derive(Debug)]
pub enum AuthErrors {}

impl ErrorDomain for AuthErrors {
    const PREFIX: &'static str = "ERP:AUTH";
}

/// Every way a call can fail.
pub type Error = ServiceError<AuthErrors>;

/// The result of this service's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
