//! The auth service's configuration: defaults that run locally, then an optional TOML file
//! (`ERP_CONFIG_FILE`), then `ERP_<SECTION>__<KEY>` variables.

use std::time::Duration;

use erp_db::DatabaseConfig;
use erp_events::EventsConfig;
use erp_kit::config::{OtlpConfig, ServerConfig, TelemetryConfig};
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::{lockout::LockoutPolicy, password::HashingParams};

/// The unit's name: consumer group, event source, telemetry service name.
pub const SERVICE_NAME: &str = "erp-auth-service";
/// Default gRPC port (see service.yaml).
pub const DEFAULT_GRPC_PORT: u16 = 50051;
/// Default admin port.
pub const DEFAULT_ADMIN_PORT: u16 = 9051;
/// The development key-encryption key: 32 zero bytes. Production sets its own.
pub const DEVELOPMENT_KEK: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

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
    /// Identity settings.
    pub auth: AuthSettings,
    /// Events: broker, relay, consumer.
    pub events: EventsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::with_ports(DEFAULT_GRPC_PORT, DEFAULT_ADMIN_PORT),
            telemetry: TelemetryConfig::default(),
            otlp: OtlpConfig::default(),
            database: DatabaseConfig::with_url("sqlite://.erp/local/erp-auth-service/auth.db"),
            auth: AuthSettings::default(),
            events: EventsConfig::default(),
        }
    }
}

/// Identity settings (`ERP_AUTH__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// `iss` of issued tokens.
    pub issuer: String,
    /// `aud` of issued tokens.
    pub audience: String,
    /// Access token lifetime.
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// Refresh token lifetime: a session unused this long ends.
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// The longest a session lasts however often it is refreshed (then its user logs in
    /// again); its refresh tokens never expire later than this after the login.
    #[serde(with = "humantime_serde")]
    pub session_max_lifetime: Duration,
    /// The platform operator's bootstrap secret (exchanged for an operator token by
    /// `IssueOperatorToken`); empty disables operator tokens.
    pub bootstrap_secret: SecretString,
    /// 32 bytes, base64: seals signing keys at rest.
    pub key_encryption_key: SecretString,
    /// Signs page tokens.
    pub page_token_secret: SecretString,
    /// Password hashing cost.
    pub password_hashing: HashingParams,
    /// Failed-login limits.
    pub lockout: LockoutPolicy,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: erp_kit::auth::DEFAULT_ISSUER.to_owned(),
            audience: erp_kit::auth::DEFAULT_AUDIENCE.to_owned(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            session_max_lifetime: Duration::from_secs(90 * 24 * 3600),
            bootstrap_secret: SecretString::from("local-bootstrap-secret"),
            key_encryption_key: SecretString::from(DEVELOPMENT_KEK),
            page_token_secret: SecretString::from("local-page-token-secret"),
            password_hashing: HashingParams::default(),
            lockout: LockoutPolicy::default(),
        }
    }
}
