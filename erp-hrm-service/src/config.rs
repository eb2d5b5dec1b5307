//! HRM's configuration: defaults that run locally, then an optional TOML file
//! (`ERP_CONFIG_FILE`), then `ERP_<SECTION>__<KEY>` variables.

use erp_db::DatabaseConfig;
use erp_events::EventsConfig;
use erp_kit::{
    client::ClientConfig,
    config::{AuthConfig, OtlpConfig, ServerConfig, TelemetryConfig},
};
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::attendance::WorkdayPolicy;

/// The unit's name: consumer group, event source, telemetry service name.
pub const SERVICE_NAME: &str = "erp-hrm-service";
/// Default gRPC port (see service.yaml).
pub const DEFAULT_GRPC_PORT: u16 = 50053;
/// Default admin port.
pub const DEFAULT_ADMIN_PORT: u16 = 9053;

/// Everything the service reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listeners and limits.
    pub server: ServerConfig,
    /// Logs.
    pub telemetry: TelemetryConfig,
    /// Trace export.
    pub otlp: OtlpConfig,
    /// The service's database.
    pub database: DatabaseConfig,
    /// Token verification (keys from the auth service's JWKS).
    pub auth: AuthConfig,
    /// HRM settings.
    pub hrm: HrmSettings,
    /// Services HRM calls.
    pub upstreams: Upstreams,
    /// Events: broker, relay, consumer.
    pub events: EventsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::with_ports(DEFAULT_GRPC_PORT, DEFAULT_ADMIN_PORT),
            telemetry: TelemetryConfig::default(),
            otlp: OtlpConfig::default(),
            database: DatabaseConfig::with_url("sqlite://.erp/local/erp-hrm-service/hrm.db"),
            auth: AuthConfig::default(),
            hrm: HrmSettings::default(),
            upstreams: Upstreams::default(),
            events: EventsConfig::default(),
        }
    }
}

/// HRM settings (`ERP_HRM__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HrmSettings {
    /// When the working day starts (lateness).
    pub workday: WorkdayPolicy,
    /// Signs page tokens.
    pub page_token_secret: SecretString,
}

impl Default for HrmSettings {
    fn default() -> Self {
        Self {
            workday: WorkdayPolicy::default(),
            page_token_secret: SecretString::from("local-page-token-secret"),
        }
    }
}

/// Services HRM calls (`ERP_UPSTREAMS__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Upstreams {
    /// The auth service (CreateUser for hires with a login).
    pub auth: String,
    /// Timeouts and retries of those calls.
    pub client: ClientConfig,
}

impl Default for Upstreams {
    fn default() -> Self {
        Self {
            auth: "http://127.0.0.1:50051".to_owned(),
            client: ClientConfig::default(),
        }
    }
}
