//! The HRM service of the ERP mesh: departments, employees, leave with an append-only
//! ledger and multi-level approvals, and attendance.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod startup;
pub mod store;

pub use startup::{Application, StartupError};

/// Builds and serves until SIGTERM or Ctrl-C.
pub async fn run(config: config::Config) -> Result<(), StartupError> {
    let application = Application::build(config).await?;
    tracing::info!(grpc = %application.local_addr(), admin = %application.admin_addr(), "erp-hrm-service started");
    application.run_until_stopped().await
}
