//! Test support for ERP mesh services (a dev-dependency only): a fresh PostgreSQL
//! database per test or a temporary SQLite file, a test signing key with a token builder
//! (and forged tokens for negative tests), Kafka-protocol brokers (mock cluster and tansu),
//! the installed external tools, scratch file trees, bounded waiting, and the probe service the kit tests itself with.

pub mod bench;
pub mod broker;
pub mod database;
pub mod files;
pub mod probe;
pub mod spawn;
pub mod tokens;
pub mod tools;
pub mod wait;

pub use database::TestDatabase;
pub use spawn::{SpawnedServer, spawn_server};
pub use tokens::{TestKeys, TokenBuilder, forge};

/// The PostgreSQL server tests create their databases on.
pub const DATABASE_URL_VAR: &str = "ERP_TEST_DATABASE_URL";
/// Used when `ERP_TEST_DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
