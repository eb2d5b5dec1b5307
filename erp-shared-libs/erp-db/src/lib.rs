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

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, SqlErr};

/// Whether `error` is a unique-constraint violation (by the driver's error code, whatever
/// the server's message language), so stores can answer ALREADY_EXISTS instead of failing.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Takes a PostgreSQL advisory lock on `key` until the transaction of `db` ends (other
/// backends: nothing, SQLite runs one writer at a time).
pub async fn advisory_xact_lock(db: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    if backend == DatabaseBackend::Postgres {
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [sea_orm::Value::from(key.to_owned())],
        ))
        .await?;
    }
    Ok(())
}

/// How many rows one statement of [`delete_in_batches`] deletes.
const DELETE_BATCH: u64 = 1_000;

/// Deletes the rows of `table` that match `filter` (SQL with numbered placeholders for
/// `values`, see [`numbered_placeholders`]), a batch per statement so a long backlog
/// never holds the table (or a SQLite file) for long. `key_column` identifies a row among
/// those `filter` matches. Returns how many went.
pub async fn delete_in_batches(
    db: &impl ConnectionTrait,
    table: &str,
    key_column: &str,
    filter: &str,
    values: Vec<sea_orm::Value>,
) -> Result<u64, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    // The filter applies outside too: the key may be unique only among the matches.
    let sql = numbered_placeholders(
        backend,
        &format!(
            "DELETE FROM {table} WHERE ({filter}) AND {key_column} IN \
             (SELECT {key_column} FROM {table} WHERE ({filter}) LIMIT {DELETE_BATCH})"
        ),
    );
    let mut deleted = 0;
    loop {
        let batch = db
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                &sql,
                values.clone(),
            ))
            .await?;
        deleted += batch.rows_affected();
        if batch.rows_affected() < DELETE_BATCH {
            return Ok(deleted);
        }
    }
}

/// Raw SQL written with PostgreSQL's numbered placeholders (`$1`, `$2`), for `backend`:
/// SQLite reads the same numbers as `?1`, `?2`.
pub fn numbered_placeholders(backend: DatabaseBackend, sql: &str) -> String {
    match backend {
        DatabaseBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    }
}
