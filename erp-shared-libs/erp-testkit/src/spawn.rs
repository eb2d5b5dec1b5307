//! Runs any bound kit server in the background for a test: the listener is bound before
//! the server is spawned, so clients can connect at once (no sleeps).

use std::net::SocketAddr;

use erp_kit::{GrpcServer, ServerError, ShutdownHandle};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A server running on its own task.
pub struct SpawnedServer {
    /// The gRPC address.
    pub addr: SocketAddr,
    /// The admin HTTP address.
    pub admin_addr: SocketAddr,
    shutdown: ShutdownHandle,
    task: JoinHandle<Result<(), ServerError>>,
}

/// Spawns `server.run()`.
pub fn spawn_server(server: GrpcServer) -> SpawnedServer {
    let addr = server.local_addr();
    let admin_addr = server.admin_addr();
    let shutdown = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    SpawnedServer {
        addr,
        admin_addr,
        shutdown,
        task,
    }
}

impl SpawnedServer {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A plain channel (no propagation), connected now.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap_or_else(|error| panic!("url {}: {error}", self.url()))
            .connect()
            .await
            .unwrap_or_else(|error| panic!("connecting to {}: {error}", self.url()))
    }

    /// Starts the graceful drain.
    pub fn shutdown(&self) {
        self.shutdown.shutdown();
    }

    /// Waits until the server stopped, returning how `run` ended.
    pub async fn stopped(self) -> Result<(), ServerError> {
        self.task
            .await
            .unwrap_or_else(|error| panic!("the server task panicked: {error}"))
    }
}
