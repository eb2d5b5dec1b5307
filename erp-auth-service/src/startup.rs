//! `Application::build` wires the service: database and migrations, use cases, the gRPC
//! server on the kit (bound here, so port 0 works), and the event relay and consumer.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use erp_events::{ConsumerRunner, EventMetrics, Relay};
use erp_kit::{
    GrpcServer, GrpcServerBuilder, ServerError, ShutdownHandle, metrics::MetricsRegistry,
};
use erp_proto::erp::auth::v1::auth_service_server::AuthServiceServer;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{Auth, Purged},
    config::{Config, SERVICE_NAME},
    events::{DisableLoginOfDepartedEmployee, EMPLOYEE_TOPIC},
    grpc::AuthGrpc,
    store::migrations::Migrator,
};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The use cases could not be set up (keys, hashing parameters).
    #[error("setup: {0}")]
    Setup(#[from] crate::error::Error),
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
    auth: Arc<Auth>,
    relay: Option<Relay>,
    consumer: Option<ConsumerRunner>,
}

impl Application {
    /// Connects, migrates, binds.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let db = erp_db::connect_and_migrate::<Migrator>(&config.database).await?;
        let auth = Arc::new(Auth::new(db.clone(), config.auth.clone()).await?);
        let metrics = Arc::new(MetricsRegistry::new());
        let limit = config.server.max_message_bytes;
        let service = AuthServiceServer::new(AuthGrpc::new(auth.clone()))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);
        let server = GrpcServerBuilder::new(config.server.clone())
            .with_verifier(auth.verifier())
            .with_metrics(metrics.clone())
            .add_service(service)
            .bind()
            .await?;
        let (relay, consumer) = if config.events.enabled {
            let event_metrics = EventMetrics::new(&metrics);
            let relay = Relay::new(
                db.clone(),
                &config.events.kafka,
                config.events.relay.clone(),
                event_metrics.clone(),
            )?;
            let consumer = ConsumerRunner::new(
                SERVICE_NAME,
                db,
                config.events.kafka.clone(),
                config.events.consumer.clone(),
                event_metrics,
            )
            .handle(
                EMPLOYEE_TOPIC,
                DisableLoginOfDepartedEmployee::new(auth.clone()),
            );
            (Some(relay), Some(consumer))
        } else {
            (None, None)
        };
        Ok(Self {
            server,
            auth,
            relay,
            consumer,
        })
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

    /// The use cases (tests and benchmarks reach in for setup).
    pub fn auth(&self) -> Arc<Auth> {
        self.auth.clone()
    }

    /// Serves until shutdown; stops the event tasks after the server drained. An event
    /// task that ends while serving stops the service with an error.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let stop = CancellationToken::new();
        let companions = [
            Some(housekeeping(self.auth.clone(), stop.clone())),
            self.relay.map(|relay| relay.spawn_companion(stop.clone())),
            self.consumer
                .map(|consumer| consumer.spawn_companion(stop.clone())),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(self.server.run_with_companions(stop, companions).await?)
    }
}

/// How often expired refresh tokens, their sessions and stale login counters are deleted.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(3600);

/// Purges expired records at start and then hourly, until `stop`.
fn housekeeping(auth: Arc<Auth>, stop: CancellationToken) -> erp_kit::server::Companion {
    (
        "auth housekeeping",
        tokio::spawn(async move {
            loop {
                match auth.purge_expired(erp_db::time::now()).await {
                    Ok(purged) if purged == Purged::default() => {}
                    Ok(purged) => tracing::info!(?purged, "deleted expired auth records"),
                    Err(error) => tracing::warn!(%error, "purging expired auth records failed"),
                }
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(HOUSEKEEPING_INTERVAL) => {}
                }
            }
        }),
    )
}
