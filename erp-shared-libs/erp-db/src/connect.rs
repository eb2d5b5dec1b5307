//! Connecting to `postgres://` or `sqlite://` and running a service's migrations.

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Where a service's database is and how its pool behaves (`ERP_DATABASE__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:5432/db` or `sqlite://path/to/file.db`.
    pub url: SecretString,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// Longest wait to open a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for a free pooled connection.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// A pooled connection idle at least this long is pinged before it is handed out (a
    /// server restart, proxy or firewall may have dropped it); busy connections are used
    /// without the extra round trip.
    #[serde(with = "humantime_serde")]
    pub ping_when_idle_for: Duration,
    /// PostgreSQL cancels a statement that runs longer (`statement_timeout`), so a
    /// runaway query cannot hold a connection and its locks; `0s` turns it off. Migrations
    /// run without it.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Run pending migrations at startup.
    pub run_migrations: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://.erp/local/service.db"),
            max_connections: 10,
            min_connections: 0,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            ping_when_idle_for: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(30),
            run_migrations: true,
        }
    }
}

impl DatabaseConfig {
    /// The defaults with another URL.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            ..Self::default()
        }
    }
}

/// Opens the pool. A SQLite file (and its folder) is created when missing.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, DbErr> {
    let url = prepare_url(config.url.expose_secret())?;
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(config.max_connections.max(1))
        .min_connections(config.min_connections)
        .connect_timeout(config.connect_timeout)
        .acquire_timeout(config.acquire_timeout)
        .test_before_acquire_if_idle_for(config.ping_when_idle_for)
        .sqlx_logging(false);
    if !config.statement_timeout.is_zero() {
        let milliseconds = config.statement_timeout.as_millis().max(1);
        options.map_sqlx_postgres_opts(move |postgres| {
            postgres.options([("statement_timeout", format!("{milliseconds}ms"))])
        });
    }
    Database::connect(options).await
}

/// Opens the pool and, when configured, applies the pending migrations of `M`.
pub async fn connect_and_migrate<M: MigratorTrait>(
    config: &DatabaseConfig,
) -> Result<DatabaseConnection, DbErr> {
    let db = connect(config).await?;
    if !config.run_migrations {
        return Ok(db);
    }
    if db.get_database_backend() != DatabaseBackend::Postgres {
        M::up(&db, None).await?;
        return Ok(db);
    }
    // Building an index may take longer than a request's statement may, and so may
    // waiting for another replica's migrations: a pool of its own, without the timeout.
    let unlimited = DatabaseConfig {
        statement_timeout: Duration::ZERO,
        max_connections: 2,
        min_connections: 0,
        ..config.clone()
    };
    let migrating = connect(&unlimited).await?;
    let migrated = migrate::<M>(&migrating, &unlimited).await;
    migrating.close().await?;
    migrated?;
    Ok(db)
}

/// An arbitrary, fixed advisory-lock key: "one process migrates at a time" per database.
const MIGRATION_LOCK_KEY: i64 = 0x6572_705f_6d69_6772; // "erp_migr"

/// Applies the pending migrations of `M` on PostgreSQL, one process at a time: replicas
/// that start together would otherwise both apply a migration, and the second fail. The
/// lock is held by a transaction on a connection of its own, released when it ends.
async fn migrate<M: MigratorTrait>(
    db: &DatabaseConnection,
    config: &DatabaseConfig,
) -> Result<(), DbErr> {
    let lock_connection = connect(&DatabaseConfig {
        max_connections: 1,
        min_connections: 0,
        ..config.clone()
    })
    .await?;
    let lock = lock_connection.begin().await?;
    lock.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    ))
    .await?;
    let migrated = M::up(db, None).await;
    lock.commit().await?;
    lock_connection.close().await?;
    migrated
}

/// A cheap query proving the database answers (readiness).
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

fn prepare_url(url: &str) -> Result<String, DbErr> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path != ":memory:"
            && !path.is_empty()
            && let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|error| {
                DbErr::Custom(format!("cannot create {}: {error}", parent.display()))
            })?;
        }
        let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
        if !params.iter().any(|param| param.starts_with("mode=")) {
            params.push("mode=rwc");
        }
        return Ok(format!("sqlite://{path}?{}", params.join("&")));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_owned());
    }
    Err(DbErr::Custom(
        "database.url must start with postgres:// or sqlite://".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_are_opened_read_write_create() {
        assert_eq!(
            prepare_url("sqlite://:memory:").expect("valid"),
            "sqlite://:memory:?mode=rwc"
        );
        assert_eq!(
            prepare_url("sqlite://:memory:?mode=ro").expect("valid"),
            "sqlite://:memory:?mode=ro"
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(prepare_url("mysql://localhost/db").is_err());
    }
}
