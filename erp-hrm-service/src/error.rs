//! The service's one error type: the mesh's shared failures with this service's reason
//! prefix (`ERP:HRM:…`), converted to `tonic::Status` in one place (erp-kit).

use erp_kit::error::{ErrorDomain, ServiceError};

/// The reason prefix of this service's errors.
#[derive(Debug)]
pub enum HrmErrors {}

impl ErrorDomain for HrmErrors {
    const PREFIX: &'static str = "ERP:HRM";
}

/// Every way a call can fail.
pub type Error = ServiceError<HrmErrors>;

/// The result of this service's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
