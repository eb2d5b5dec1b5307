//! Server bootstrap: [`GrpcServerBuilder`] registers the business services next to health
//! and reflection, checks every method's access rule before anything is served, and binds
//! its own listeners (so port 0 works and [`GrpcServer::local_addr`] tells the real one).
//! [`GrpcServer::run`] serves until SIGTERM, Ctrl-C or [`ShutdownHandle::shutdown`], then
//! drains: health flips to NOT_SERVING, the listener closes after `drain_delay`, and
//! in-flight calls get `shutdown_grace` to finish.

mod admin;
mod layer;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use erp_proto::Contracts;
use http::Request;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tonic::{
    body::Body,
    server::NamedService,
    service::{Routes, RoutesBuilder},
    transport::server::TcpIncoming,
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::Service;

pub use layer::{REASON_DEADLINE, REASON_OVERLOADED, REQUEST_ID_HEADER};
pub(crate) use layer::{format_grpc_timeout, grpc_timeout};

use crate::{
    access::{AccessGuard, AccessSetupError},
    auth::TokenVerifier,
    config::ServerConfig,
    metrics::{MetricsRegistry, RpcMetrics},
};

const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The access rules do not allow serving these services.
    #[error(transparent)]
    Access(#[from] AccessSetupError),
    /// The reflection service could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(String),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The gRPC transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The admin endpoint failed.
    #[error("admin endpoint: {0}")]
    Admin(std::io::Error),
    /// A companion task (an outbox relay, an event consumer) ended while the server was
    /// serving; the server was drained, since it must not serve without it.
    #[error("the {name} stopped while the server was serving: {reason}")]
    CompanionEnded {
        /// The companion's name.
        name: &'static str,
        /// How it ended.
        reason: String,
    },
}

/// A task that runs beside a server for as long as it serves: its name, and its handle
/// (spawned with a token that is cancelled once the server drained).
pub type Companion = (&'static str, tokio::task::JoinHandle<Result<(), String>>);

/// Collects the services of one server.
pub struct GrpcServerBuilder {
    config: ServerConfig,
    contracts: &'static Contracts,
    descriptor_set: &'static [u8],
    verifier: Option<Arc<TokenVerifier>>,
    routes: RoutesBuilder,
    services: Vec<&'static str>,
    metrics: Arc<MetricsRegistry>,
}

impl GrpcServerBuilder {
    /// A server for the mesh's own contracts (erp-proto's descriptor set).
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            contracts: Contracts::bundled(),
            descriptor_set: erp_proto::FILE_DESCRIPTOR_SET,
            verifier: None,
            routes: RoutesBuilder::default(),
            services: Vec::new(),
            metrics: Arc::new(MetricsRegistry::new()),
        }
    }

    /// Serves `registry` on `/metrics`, with the RPC metrics added to it (share one
    /// registry with the event outbox and consumers of the same process).
    pub fn with_metrics(mut self, registry: Arc<MetricsRegistry>) -> Self {
        self.metrics = registry;
        self
    }

    /// Serves services of other contracts (tests use a probe service of their own).
    pub fn with_contracts(
        mut self,
        contracts: &'static Contracts,
        descriptor_set: &'static [u8],
    ) -> Self {
        self.contracts = contracts;
        self.descriptor_set = descriptor_set;
        self
    }

    /// Verifies bearer tokens of protected methods with `verifier`.
    pub fn with_verifier(mut self, verifier: Arc<TokenVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Adds a generated tonic server (`HrmServiceServer::new(handlers)`).
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: Service<Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.services.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Checks the access rules, then binds the gRPC and admin listeners.
    pub async fn bind(mut self) -> Result<GrpcServer, ServerError> {
        let guard = AccessGuard::new(self.contracts, self.verifier.clone());
        for service in &self.services {
            guard.check_service(service)?;
        }

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        let mut reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(self.descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(HEALTH_SERVICE)
            .with_service_name(REFLECTION_V1)
            .with_service_name(REFLECTION_V1ALPHA);
        let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(self.descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(HEALTH_SERVICE)
            .with_service_name(REFLECTION_V1)
            .with_service_name(REFLECTION_V1ALPHA);
        for service in &self.services {
            reflection_v1 = reflection_v1.with_service_name(*service);
            reflection_v1alpha = reflection_v1alpha.with_service_name(*service);
        }
        self.routes
            .add_service(health_service)
            .add_service(
                reflection_v1
                    .build_v1()
                    .map_err(|error| ServerError::Reflection(error.to_string()))?,
            )
            .add_service(
                reflection_v1alpha
                    .build_v1alpha()
                    .map_err(|error| ServerError::Reflection(error.to_string()))?,
            );

        let grpc_address = SocketAddr::new(self.config.host, self.config.grpc_port);
        let grpc_listener =
            TcpListener::bind(grpc_address)
                .await
                .map_err(|source| ServerError::Bind {
                    address: grpc_address,
                    source,
                })?;
        let admin_address = SocketAddr::new(self.config.host, self.config.admin_port);
        let admin_listener =
            TcpListener::bind(admin_address)
                .await
                .map_err(|source| ServerError::Bind {
                    address: admin_address,
                    source,
                })?;
        let local_addr = grpc_listener
            .local_addr()
            .map_err(|source| ServerError::Bind {
                address: grpc_address,
                source,
            })?;
        let admin_addr = admin_listener
            .local_addr()
            .map_err(|source| ServerError::Bind {
                address: admin_address,
                source,
            })?;

        health_reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        for service in &self.services {
            health_reporter
                .set_service_status(*service, ServingStatus::Serving)
                .await;
        }

        Ok(GrpcServer {
            config: self.config.clone(),
            guard,
            routes: self.routes.routes(),
            services: self.services,
            grpc_listener,
            admin_listener,
            local_addr,
            admin_addr,
            health_reporter,
            rpc_metrics: Arc::new(RpcMetrics::new(&self.metrics, self.contracts)),
            metrics: self.metrics,
            ready: Arc::new(AtomicBool::new(true)),
            shutdown: CancellationToken::new(),
        })
    }
}

/// Stops a running [`GrpcServer`] gracefully, like SIGTERM does.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    /// Starts the drain; `run` returns once in-flight calls finished or the grace ran out.
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

/// A bound server, ready to [`run`](GrpcServer::run).
pub struct GrpcServer {
    config: ServerConfig,
    guard: AccessGuard,
    routes: Routes,
    services: Vec<&'static str>,
    grpc_listener: TcpListener,
    admin_listener: TcpListener,
    local_addr: SocketAddr,
    admin_addr: SocketAddr,
    health_reporter: HealthReporter,
    rpc_metrics: Arc<RpcMetrics>,
    metrics: Arc<MetricsRegistry>,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
}

impl GrpcServer {
    /// The bound gRPC address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// A handle that stops the server gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// The health reporter, for services that report their own dependencies.
    pub fn health_reporter(&self) -> HealthReporter {
        self.health_reporter.clone()
    }

    /// Serves like [`run`](Self::run) with `companions` beside it (an outbox relay, an
    /// event consumer), spawned with `stop`, which is cancelled once the server drained;
    /// then waits for them. A companion that ends while the server still serves (an
    /// error, a panic) drains the server and is returned as
    /// [`ServerError::CompanionEnded`], so the process exits and is restarted instead of
    /// serving on without, say, the consumer that disables leavers' logins.
    pub async fn run_with_companions(
        self,
        stop: CancellationToken,
        companions: Vec<Companion>,
    ) -> Result<(), ServerError> {
        use futures::StreamExt as _;

        let shutdown = self.shutdown_handle();
        let mut running: futures::stream::FuturesUnordered<_> = companions
            .into_iter()
            .map(|(name, handle)| async move {
                let reason = match handle.await {
                    Ok(Ok(())) => "it returned".to_owned(),
                    Ok(Err(error)) => error,
                    Err(error) => format!("it panicked: {error}"),
                };
                (name, reason)
            })
            .collect();
        let serve = self.run();
        tokio::pin!(serve);
        let mut ended_early = None;
        let served = loop {
            tokio::select! {
                served = &mut serve => break served,
                Some((name, reason)) = running.next(), if ended_early.is_none() => {
                    tracing::error!(companion = name, %reason, "a companion task ended while serving; stopping the server");
                    ended_early = Some(ServerError::CompanionEnded { name, reason });
                    shutdown.shutdown();
                }
            }
        };
        stop.cancel();
        while let Some((name, reason)) = running.next().await {
            tracing::debug!(companion = name, %reason, "companion task stopped");
        }
        served?;
        ended_early.map_or(Ok(()), Err)
    }

    /// Serves until shutdown, then drains. Returns when every in-flight call finished or
    /// `shutdown_grace` ran out.
    pub async fn run(self) -> Result<(), ServerError> {
        let layer = layer::MeshLayer::new(layer::Shared {
            guard: self.guard,
            limiter: Arc::new(Semaphore::new(self.config.max_concurrent_requests.max(1))),
            request_timeout: self.config.request_timeout,
            metrics: self.rpc_metrics.clone(),
        });

        let admin_stop = CancellationToken::new();
        let admin = axum::serve(
            self.admin_listener,
            admin::router(admin::AdminState {
                metrics: self.metrics.clone(),
                ready: self.ready.clone(),
            }),
        )
        .with_graceful_shutdown(admin_stop.clone().cancelled_owned());
        let admin_task = tokio::spawn(async move { admin.await });

        // The drain is tonic's shutdown signal, so connections keep being accepted and
        // served while health says NOT_SERVING; only then does the listener close.
        let drained = CancellationToken::new();
        let drain = drain(
            self.shutdown.clone(),
            self.health_reporter.clone(),
            self.services.clone(),
            self.ready.clone(),
            self.config.drain_delay,
            drained.clone(),
        );
        let serve = tonic::transport::Server::builder()
            .layer(layer)
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(self.grpc_listener).with_nodelay(Some(true)),
                drain,
            );
        tokio::pin!(serve);
        tracing::info!(grpc = %self.local_addr, admin = %self.admin_addr, services = ?self.services, "serving");

        let result = tokio::select! {
            result = &mut serve => result.map_err(ServerError::from),
            () = drained.cancelled() => {
                match tokio::time::timeout(self.config.shutdown_grace, &mut serve).await {
                    Ok(result) => result.map_err(ServerError::from),
                    Err(_) => {
                        tracing::warn!(grace = ?self.config.shutdown_grace, "shutdown grace ran out; dropping in-flight calls");
                        Ok(())
                    }
                }
            }
        };
        admin_stop.cancel();
        match admin_task.await {
            Ok(Ok(())) | Err(_) => {}
            Ok(Err(error)) => return Err(ServerError::Admin(error)),
        }
        tracing::info!("stopped");
        result
    }
}

/// Waits for a shutdown request, flips health to NOT_SERVING, waits `delay` so load
/// balancers notice, then returns (which closes the listener) and cancels `drained`.
async fn drain(
    requested: CancellationToken,
    health: HealthReporter,
    services: Vec<&'static str>,
    ready: Arc<AtomicBool>,
    delay: std::time::Duration,
    drained: CancellationToken,
) {
    shutdown_requested(&requested).await;
    tracing::info!(drain_delay = ?delay, "draining: health is NOT_SERVING");
    ready.store(false, Ordering::Release);
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    for service in services {
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
    tokio::time::sleep(delay).await;
    drained.cancel();
}

async fn shutdown_requested(token: &CancellationToken) {
    let terminate = async {
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = token.cancelled() => {}
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
