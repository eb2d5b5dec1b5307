//! The gRPC face of the service: map proto ↔ domain, call the use cases. Access checks
//! are done before a handler runs, by the kit's layer, from the contracts.

mod auth_service;
mod convert;

pub use auth_service::AuthGrpc;
