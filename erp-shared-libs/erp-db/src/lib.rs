//! Database plumbing every service store uses: connect to PostgreSQL or SQLite with
//! sea-orm and run migrations, tenant-scoped queries that cannot forget the tenant,
//! optimistic concurrency on a version column, keyset pagination with tamper-proof
//! page tokens, and timestamps PostgreSQL and SQLite store alike.

mod connect;
mod error;
pub mod page;
pub mod scope;
pub mod time;
pub mod version;

pub use connect::{DatabaseConfig, connect, connect_and_migrate, ping};
pub use error::DbError;
pub use page::{Direction, PageKey, PageTokens, PageWindow, keyset, keyset_in};
pub use scope::{TenantOwned, scoped};
pub use version::{Versioned, update_versioned};

use sea_orm::{DatabaseBackend, DbErr, SqlErr};

/// Whether `error` is a unique-constraint violation (by the driver's error code, whatever
/// the server's message language), so stores can answer ALREADY_EXISTS instead of failing.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Raw SQL written with PostgreSQL's numbered placeholders (`$1`, `$2`), for `backend`:
/// SQLite reads the same numbers as `?1`, `?2`.
pub fn numbered_placeholders(backend: DatabaseBackend, sql: &str) -> String {
    match backend {
        DatabaseBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    }
}
