//! Typed, layered configuration: defaults that run locally (each struct's `Default`) →
//! an optional TOML file → `ERP_<SECTION>__<KEY>` environment variables. Unknown keys are
//! rejected. The environment is passed in explicitly, so tests build config values
//! directly and nothing ever writes to the process environment.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, de::DeserializeOwned};

/// The prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "ERP_";
/// Names a TOML file to read between the defaults and the environment.
pub const CONFIG_FILE_VAR: &str = "ERP_CONFIG_FILE";
/// The exit code of a process started with an invalid configuration (EX_CONFIG).
pub const EXIT_INVALID_CONFIG: i32 = 64;

/// Why a configuration was refused; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

/// Loads a configuration from an optional TOML file and environment variables.
///
/// Only variables of the form `ERP_<SECTION>__<KEY>` are read (`ERP_SERVER__GRPC_PORT`
/// sets `server.grpc_port`); single-segment `ERP_*` variables belong to scripts and tools.
pub fn load<T: DeserializeOwned>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError(format!(
                "the config file {} does not exist",
                file.display()
            )));
        }
        builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
    }
    let sectioned: HashMap<String, String> = env
        .into_iter()
        .filter(|(name, _)| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX.trim_end_matches('_'))
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(sectioned)),
    );
    builder
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|error| ConfigError(error.to_string()))
}

/// Loads the configuration of a process from its real environment (`ERP_CONFIG_FILE`
/// names the optional file), or prints why it is invalid and exits with code 64.
pub fn load_from_process_or_exit<T: DeserializeOwned>() -> T {
    let file = std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from);
    match process_environment().and_then(|env| load(file.as_deref(), env)) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(EXIT_INVALID_CONFIG);
        }
    }
}

/// The process's environment as text. A variable of ours (`ERP_…`) that is not UTF-8 is
/// an error naming it; anyone else's is none of our business (and must not panic us).
fn process_environment() -> Result<Vec<(String, String)>, ConfigError> {
    let mut variables = Vec::new();
    for (name, value) in std::env::vars_os() {
        let ours = name.to_string_lossy().starts_with(ENV_PREFIX);
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => variables.push((name, value)),
            (Ok(name), Err(_)) if ours => {
                return Err(ConfigError(format!("{name}: the value is not valid UTF-8")));
            }
            (Err(name), _) if ours => {
                return Err(ConfigError(format!(
                    "{}: the name is not valid UTF-8",
                    name.to_string_lossy()
                )));
            }
            _ => {}
        }
    }
    Ok(variables)
}

/// The gRPC and admin listeners and the limits every call is held to.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub host: IpAddr,
    /// gRPC port; 0 picks a free one (tests).
    pub grpc_port: u16,
    /// Admin HTTP port (`/metrics`, `/healthz`, `/readyz`); 0 picks a free one.
    pub admin_port: u16,
    /// Longest time a call may take, unless the caller's `grpc-timeout` is shorter.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Calls handled at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// After SIGTERM: how long health reports NOT_SERVING before the listener closes,
    /// so load balancers stop sending new calls.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// After the listener closes: how long in-flight calls may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            grpc_port: 0,
            admin_port: 0,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 512,
            max_message_bytes: 4 * 1024 * 1024,
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    /// The same limits on the given ports (services set their well-known defaults).
    pub fn with_ports(grpc_port: u16, admin_port: u16) -> Self {
        Self {
            grpc_port,
            admin_port,
            ..Self::default()
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for terminals.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging and tracing.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `pretty` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `info,erp_kit=debug`.
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            log_level: "info".to_owned(),
        }
    }
}

/// OpenTelemetry export (`ERP_OTLP__ENDPOINT`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// The OTLP/gRPC collector, e.g. `http://otel-collector:4317`; unset disables export.
    pub endpoint: Option<String>,
}

/// How tokens are verified (every service but auth itself gets keys from auth's JWKS).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The expected `iss` claim.
    pub issuer: String,
    /// The expected `aud` claim.
    pub audience: String,
    /// The auth service's gRPC address, where `GetJwks` is called.
    pub jwks_url: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// An unknown `kid` refreshes the keys at most this often.
    #[serde(with = "humantime_serde")]
    pub jwks_min_refresh_interval: Duration,
    /// Keys fetched longer ago than this are fetched again before they are trusted, so a
    /// key the auth service withdrew stops verifying (while auth cannot be reached, the
    /// last keys go on verifying).
    #[serde(with = "humantime_serde")]
    pub jwks_max_age: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: crate::auth::DEFAULT_ISSUER.to_owned(),
            audience: crate::auth::DEFAULT_AUDIENCE.to_owned(),
            jwks_url: "http://127.0.0.1:50051".to_owned(),
            leeway: Duration::from_secs(30),
            jwks_min_refresh_interval: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        server: ServerConfig,
        telemetry: TelemetryConfig,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config: Sample = load(None, env(&[])).expect("defaults load");
        assert_eq!(config.server.request_timeout, Duration::from_secs(30));
        assert_eq!(config.telemetry.log_format, LogFormat::Pretty);
    }

    #[test]
    fn environment_overrides_defaults_by_section_and_key() {
        let config: Sample = load(
            None,
            env(&[
                ("ERP_SERVER__GRPC_PORT", "50099"),
                ("ERP_SERVER__REQUEST_TIMEOUT", "250ms"),
                ("ERP_TELEMETRY__LOG_FORMAT", "json"),
                ("ERP_TOOLS_DIR", "/not/a/config/key"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .expect("environment loads");
        assert_eq!(config.server.grpc_port, 50099);
        assert_eq!(config.server.request_timeout, Duration::from_millis(250));
        assert_eq!(config.telemetry.log_format, LogFormat::Json);
    }

    #[test]
    fn a_file_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("erp-kit-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("service.toml");
        std::fs::write(&file, "[server]\ngrpc_port = 1000\nadmin_port = 2000\n").expect("write");
        let config: Sample =
            load(Some(&file), env(&[("ERP_SERVER__GRPC_PORT", "3000")])).expect("file loads");
        assert_eq!(config.server.grpc_port, 3000);
        assert_eq!(config.server.admin_port, 2000);
    }

    #[test]
    fn an_unknown_key_is_rejected_by_name() {
        let error = load::<Sample>(None, env(&[("ERP_SERVER__GRPC_PROT", "1")]))
            .expect_err("unknown key refused");
        assert!(error.to_string().contains("grpc_prot"), "{error}");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let error = load::<Sample>(None, env(&[("ERP_SERVER__GRPC_PORT", "not-a-port")]))
            .expect_err("bad value refused");
        assert!(error.to_string().contains("server.grpc_port"), "{error}");
    }
}
