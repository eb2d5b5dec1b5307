//! erp-api-gateway: load config (exit 64 naming a bad key), start telemetry, serve the
//! HTTP/JSON routes of the contracts until SIGTERM or Ctrl-C.

use std::{process::ExitCode, sync::Arc, time::Duration};

use axum::serve::ListenerExt as _;
use erp_api_gateway::{
    config::{Config, SERVICE_NAME},
    http_front::HttpFront,
    proxies::TrustedNetwork,
};
use erp_kit::auth::{GrpcJwksSource, TokenVerifier};
use erp_proto::Contracts;

#[global_allocator]
static ALLOCATOR: erp_kit::allocator::ServiceAllocator = erp_kit::allocator::ServiceAllocator;

fn main() -> ExitCode {
    let config: Config = erp_kit::config::load_from_process_or_exit();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if config.gateway.worker_threads > 0 {
        runtime.worker_threads(config.gateway.worker_threads);
    }
    match runtime.build() {
        Ok(runtime) => runtime.block_on(run(config)),
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> ExitCode {
    let telemetry = match erp_kit::telemetry::init(SERVICE_NAME, &config.telemetry, &config.otlp) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(erp_kit::config::EXIT_INVALID_CONFIG as u8);
        }
    };
    // Addresses, networks and routes that do not parse are configuration problems.
    let front = match front(&config) {
        Ok(front) => front,
        Err(error) => {
            eprintln!("error: {error:#}");
            telemetry.shutdown();
            return ExitCode::from(erp_kit::config::EXIT_INVALID_CONFIG as u8);
        }
    };
    let result = serve(front, &config).await;
    if let Err(error) = &result {
        tracing::error!(%error, "erp-api-gateway failed");
    }
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// The HTTP front `config` describes.
fn front(config: &Config) -> anyhow::Result<HttpFront> {
    let keys = GrpcJwksSource::new(&config.auth.jwks_url, Duration::from_secs(2))
        .map_err(|error| anyhow::anyhow!("auth.jwks_url: {error}"))?;
    let verifier = Arc::new(TokenVerifier::new(&config.auth, Arc::new(keys)));
    Ok(HttpFront::new(
        Contracts::bundled_documented(),
        &config.upstreams,
        &config.client,
        Some(verifier),
        &config.limits,
    )?
    .with_cors_origins(&config.gateway.cors_origins)
    .with_trusted_proxies(
        TrustedNetwork::parse_list(&config.gateway.trusted_proxies)
            .map_err(|error| anyhow::anyhow!("gateway.trusted_proxies: {error}"))?,
    ))
}

async fn serve(front: HttpFront, config: &Config) -> anyhow::Result<()> {
    let address = format!("{}:{}", config.gateway.host, config.gateway.http_port);
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let local = listener.local_addr()?;
    // Small answers leave at once instead of waiting for the peer's delayed ACK.
    let listener = listener.tap_io(|connection| {
        if let Err(error) = connection.set_nodelay(true) {
            tracing::warn!(%error, "TCP_NODELAY not set");
        }
    });
    tracing::info!(address = %local, upstreams = ?config.upstreams.keys().collect::<Vec<_>>(), "serving HTTP/JSON");
    axum::serve(
        listener,
        front
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stop_requested())
    .await?;
    Ok(())
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn stop_requested() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("stopping: finishing the requests in flight");
}
