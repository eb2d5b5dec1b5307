//! The gRPC face of the service: map proto ↔ domain, call the use cases. Access checks
//! by permission are done before a handler runs, by the kit's layer, from the contracts.

mod convert;
mod hrm_service;

pub use hrm_service::HrmGrpc;
