//! The gateway's configuration: defaults, then an optional TOML file (`ERP_CONFIG_FILE`),
//! then `ERP_<SECTION>__<KEY>` variables, e.g. `ERP_GATEWAY__HTTP_PORT=8080` or
//! `ERP_UPSTREAMS__HRM=http://erp-hrm-service:50051`.

use std::collections::BTreeMap;

use erp_kit::{
    client::ClientConfig,
    config::{AuthConfig, OtlpConfig, TelemetryConfig},
};
use serde::Deserialize;

use crate::limits::LimitsConfig;

/// The service name in logs and traces.
pub const SERVICE_NAME: &str = "erp-api-gateway";

/// Everything the gateway reads at start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listeners.
    pub gateway: GatewaySettings,
    /// The gRPC address of each unit, by unit name (`auth`, `hrm`, `crm`, `finance`).
    pub upstreams: BTreeMap<String, String>,
    /// Timeouts and retries towards the upstreams.
    pub client: ClientConfig,
    /// Token verification at the edge (`ERP_AUTH__JWKS_URL` is the auth service).
    pub auth: AuthConfig,
    /// Rate and body limits.
    pub limits: LimitsConfig,
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// Trace export.
    pub otlp: OtlpConfig,
}

/// Where the gateway listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// The interface.
    pub host: String,
    /// The HTTP/JSON port (0 picks a free one).
    pub http_port: u16,
    /// Browser origins allowed by CORS, comma-separated (`*` for any); none by default.
    pub cors_origins: String,
    /// Proxies in front of the gateway (an ingress, a load balancer) whose
    /// `X-Forwarded-For` is believed, comma-separated addresses or networks
    /// (`10.0.0.0/8`); none by default. Without them, behind a proxy every client shares
    /// the proxy's per-address rate limit.
    pub trusted_proxies: String,
    /// Threads serving requests; 0 (the default) means one per core. On machines whose
    /// cores the gateway shares with the services and the database, 1 is faster (fewer
    /// cross-thread wake-ups; see the benchmark).
    pub worker_threads: usize,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            http_port: 8080,
            cors_origins: String::new(),
            trusted_proxies: String::new(),
            worker_threads: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_of_zero_is_refused_naming_the_key() {
        let refused = erp_kit::config::load::<Config>(
            None,
            [("ERP_LIMITS__TENANT_PER_SECOND".to_owned(), "0".to_owned())],
        )
        .expect_err("zero never refills");
        let message = refused.to_string();
        assert!(
            message.contains("tenant_per_second") && message.contains("positive"),
            "{message}"
        );
    }

    #[test]
    fn upstreams_come_from_the_environment() {
        let config: Config = erp_kit::config::load(
            None,
            [
                (
                    "ERP_UPSTREAMS__HRM".to_owned(),
                    "http://hrm:50051".to_owned(),
                ),
                ("ERP_GATEWAY__HTTP_PORT".to_owned(), "9000".to_owned()),
            ],
        )
        .expect("loads");
        assert_eq!(config.upstreams["hrm"], "http://hrm:50051");
        assert_eq!(config.gateway.http_port, 9000);
        let wrong = erp_kit::config::load::<Config>(
            None,
            [("ERP_GATEWAY__HTTP_PROT".to_owned(), "9000".to_owned())],
        )
        .expect_err("a misspelt key is refused");
        assert!(wrong.to_string().contains("http_prot"), "{wrong}");
    }
}
