//! The probe service (`erp.testkit.v1.ProbeService`): a real tonic service on the real
//! kit stack, for testing the kit itself. [`spawn_probe`] starts one on port 0.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use erp_kit::{
    GrpcServerBuilder, ServerError,
    auth::{TokenVerifier, auth_context},
    client::{ClientConfig, MeshChannel},
    config::ServerConfig,
    context,
};
use erp_proto::Contracts;

use crate::spawn::{SpawnedServer, spawn_server};
use tonic::{Request, Response, Status, transport::Channel};

/// The generated probe messages, client and server.
#[allow(clippy::all, clippy::pedantic, clippy::unwrap_used, missing_docs)]
#[allow(
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls,
    rustdoc::broken_intra_doc_links
)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/erp.testkit.v1.rs"));
}

use proto::{
    EchoRequest, EchoResponse, FlakyRequest, FlakyResponse, PingRequest, PingResponse,
    ReadPayrollRequest, ReadPayrollResponse, RelayRequest, RelayResponse, SleepRequest,
    SleepResponse, WhoAmIRequest, WhoAmIResponse,
    probe_service_client::ProbeServiceClient,
    probe_service_server::{ProbeService, ProbeServiceServer},
};

/// The probe contract's encoded descriptor set (with the shared protos it imports).
pub const PROBE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/probe_descriptor.bin"));

/// The probe contract's typed view.
pub fn probe_contracts() -> &'static Contracts {
    static CONTRACTS: OnceLock<Contracts> = OnceLock::new();
    CONTRACTS.get_or_init(|| {
        Contracts::decode(PROBE_DESCRIPTOR_SET)
            .unwrap_or_else(|error| panic!("probe descriptor set: {error}"))
    })
}

/// The probe's handlers.
#[derive(Debug, Default)]
pub struct Probe {
    flaky_calls: Mutex<HashMap<String, u32>>,
}

fn request_id() -> String {
    context::current()
        .map(|current| current.request_id)
        .unwrap_or_default()
}

#[tonic::async_trait]
impl ProbeService for Probe {
    async fn ping(&self, _: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse {
            request_id: request_id(),
        }))
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = auth_context(&request)?;
        let deadline_remaining_ms = context::current()
            .and_then(|current| current.deadline)
            .map(|deadline| {
                i64::try_from(
                    deadline
                        .saturating_duration_since(Instant::now())
                        .as_millis(),
                )
                .unwrap_or(i64::MAX)
            })
            .unwrap_or(-1);
        Ok(Response::new(WhoAmIResponse {
            tenant_id: caller.tenant_id.to_string(),
            user_id: caller.user_id.clone(),
            permissions: caller.permissions.iter().cloned().collect(),
            request_id: request_id(),
            deadline_remaining_ms,
        }))
    }

    async fn read_payroll(
        &self,
        request: Request<ReadPayrollRequest>,
    ) -> Result<Response<ReadPayrollResponse>, Status> {
        let caller = auth_context(&request)?;
        Ok(Response::new(ReadPayrollResponse {
            tenant_id: caller.tenant_id.to_string(),
        }))
    }

    async fn sleep(
        &self,
        request: Request<SleepRequest>,
    ) -> Result<Response<SleepResponse>, Status> {
        let millis = request.into_inner().millis;
        tokio::time::sleep(Duration::from_millis(u64::from(millis))).await;
        Ok(Response::new(SleepResponse {
            slept_millis: millis,
        }))
    }

    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse {
            length: request.into_inner().payload.len() as u64,
        }))
    }

    async fn relay(
        &self,
        request: Request<RelayRequest>,
    ) -> Result<Response<RelayResponse>, Status> {
        let RelayRequest {
            target_url: target,
            delay_millis,
        } = request.into_inner();
        tokio::time::sleep(std::time::Duration::from_millis(delay_millis.into())).await;
        let channel = MeshChannel::connect_lazy(&target, &ClientConfig::default())
            .map_err(|error| Status::invalid_argument(error.to_string()))?
            .with_contracts(probe_contracts());
        let downstream = ProbeServiceClient::new(channel)
            .who_am_i(WhoAmIRequest {})
            .await?
            .into_inner();
        Ok(Response::new(RelayResponse {
            downstream: Some(downstream),
        }))
    }

    async fn flaky(
        &self,
        request: Request<FlakyRequest>,
    ) -> Result<Response<FlakyResponse>, Status> {
        let FlakyRequest { key, failures } = request.into_inner();
        let attempt = {
            let mut calls = self
                .flaky_calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = calls.entry(key).or_default();
            *count += 1;
            *count
        };
        if attempt <= failures {
            return Err(Status::unavailable(format!(
                "flaky failure {attempt} of {failures}"
            )));
        }
        Ok(Response::new(FlakyResponse { attempt }))
    }
}

/// A probe server running in the background.
pub type ProbeServer = SpawnedServer;

/// Starts a probe on the kit's server stack (the listener is bound before this returns).
/// Without a verifier only its public methods work.
pub async fn spawn_probe(
    config: ServerConfig,
    verifier: Option<Arc<TokenVerifier>>,
) -> Result<ProbeServer, ServerError> {
    let limit = config.max_message_bytes;
    let service = ProbeServiceServer::new(Probe::default())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let mut builder = GrpcServerBuilder::new(config)
        .with_contracts(probe_contracts(), PROBE_DESCRIPTOR_SET)
        .add_service(service);
    if let Some(verifier) = verifier {
        builder = builder.with_verifier(verifier);
    }
    Ok(spawn_server(builder.bind().await?))
}

/// A plain probe client (no propagation), connected now.
pub async fn probe_client(server: &SpawnedServer) -> ProbeServiceClient<Channel> {
    ProbeServiceClient::new(server.channel().await)
}
