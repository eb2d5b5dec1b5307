//! erp-auth-service: load config (exit 64 naming a bad key), start telemetry, serve until
//! SIGTERM or Ctrl-C, drain.

use std::process::ExitCode;

use erp_auth_service::config::{Config, SERVICE_NAME};

#[global_allocator]
static ALLOCATOR: erp_kit::allocator::ServiceAllocator = erp_kit::allocator::ServiceAllocator;

#[tokio::main]
async fn main() -> ExitCode {
    let config: Config = erp_kit::config::load_from_process_or_exit();
    let telemetry = match erp_kit::telemetry::init(SERVICE_NAME, &config.telemetry, &config.otlp) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(erp_kit::config::EXIT_INVALID_CONFIG as u8);
        }
    };
    let result = erp_auth_service::run(config).await;
    if let Err(error) = &result {
        tracing::error!(error = %erp_kit::error::ErrorChain(error), "erp-auth-service failed");
    }
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
