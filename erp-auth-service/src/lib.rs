//! The auth service of the ERP mesh: tenants, users, roles and permissions, login with
//! argon2id, EdDSA access tokens published as a JWKS, and rotating refresh tokens.

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
    tracing::info!(grpc = %application.local_addr(), admin = %application.admin_addr(), "erp-auth-service started");
    application.run_until_stopped().await
}
