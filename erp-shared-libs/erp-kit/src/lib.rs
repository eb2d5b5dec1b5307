//! Every ERP mesh service's plumbing, written once: layered config, telemetry (logs,
//! OpenTelemetry traces, Prometheus metrics), the gRPC server bootstrap with health,
//! reflection and graceful drain, contract-driven access control over EdDSA JWTs, the
//! shared error model, and client channels that propagate token, trace and deadline.

pub mod access;
pub mod allocator;
pub mod auth;
pub mod client;
pub mod config;
pub mod context;
pub mod error;
pub mod metrics;
mod peers;
pub mod server;
pub mod telemetry;
pub mod values;

pub use server::{GrpcServer, GrpcServerBuilder, ServerError, ShutdownHandle};
