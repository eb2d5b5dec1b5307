//! `Application::build` wires the service: database and migrations, the auth client,
//! token verification against the auth service's JWKS, the gRPC server on the kit
//! (bound here, so port 0 works), and the outbox relay.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use erp_events::{EventMetrics, Relay};
use erp_kit::{
    GrpcServer, GrpcServerBuilder, ServerError, ShutdownHandle,
    auth::{GrpcJwksSource, KeySource, TokenVerifier},
    client::MeshChannel,
    metrics::MetricsRegistry,
};
use erp_proto::erp::{
    auth::v1::auth_service_client::AuthServiceClient, hrm::v1::hrm_service_server::HrmServiceServer,
};
use tokio_util::sync::CancellationToken;

use crate::{app::Hrm, config::Config, grpc::HrmGrpc, store::migrations::Migrator};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// An upstream address is not a URL.
    #[error("upstreams: {0}")]
    Upstream(String),
    /// The server could not start or failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The event clients could not be created.
    #[error("events: {0}")]
    Events(#[from] erp_events::EventError),
}

/// A built, bound service.
pub struct Application {
    server: GrpcServer,
    hrm: Arc<Hrm>,
    relay: Option<Relay>,
}

impl Application {
    /// Connects, migrates, binds; keys come from the auth service at `auth.jwks_url`.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let keys = GrpcJwksSource::new(&config.auth.jwks_url, Duration::from_secs(2))
            .map_err(|error| StartupError::Upstream(error.to_string()))?;
        Self::build_with_keys(config, Arc::new(keys)).await
    }

    /// [`Application::build`] with another key source (tests without an auth service).
    pub async fn build_with_keys(
        config: Config,
        keys: Arc<dyn KeySource>,
    ) -> Result<Self, StartupError> {
        let db = erp_db::connect_and_migrate::<Migrator>(&config.database).await?;
        let auth_channel =
            MeshChannel::connect_lazy(&config.upstreams.auth, &config.upstreams.client)
                .map_err(|error| StartupError::Upstream(error.to_string()))?;
        let hrm = Arc::new(Hrm::new(
            db.clone(),
            &config.hrm,
            AuthServiceClient::new(auth_channel),
        ));
        let metrics = Arc::new(MetricsRegistry::new());
        let limit = config.server.max_message_bytes;
        let service = HrmServiceServer::new(HrmGrpc::new(hrm.clone()))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);
        let server = GrpcServerBuilder::new(config.server.clone())
            .with_verifier(Arc::new(TokenVerifier::new(&config.auth, keys)))
            .with_metrics(metrics.clone())
            .add_service(service)
            .bind()
            .await?;
        let relay = if config.events.enabled {
            Some(Relay::new(
                db,
                &config.events.kafka,
                config.events.relay.clone(),
                EventMetrics::new(&metrics),
            )?)
        } else {
            None
        };
        Ok(Self { server, hrm, relay })
    }

    /// The bound gRPC address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.server.admin_addr()
    }

    /// Stops the service like SIGTERM.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.server.shutdown_handle()
    }

    /// The use cases (tests reach in for setup).
    pub fn hrm(&self) -> Arc<Hrm> {
        self.hrm.clone()
    }

    /// Serves until shutdown; stops the relay after the server drained. A relay that
    /// ends while serving stops the service with an error.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let stop = CancellationToken::new();
        let companions = self
            .relay
            .map(|relay| relay.spawn_companion(stop.clone()))
            .into_iter()
            .collect();
        Ok(self.server.run_with_companions(stop, companions).await?)
    }
}
