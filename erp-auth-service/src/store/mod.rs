//! Everything that touches the database: tenant-scoped queries and the transactions of
//! each use case (the business change and its outbox events commit together).

pub mod attempts;
pub mod entities;
pub mod keys;
pub mod migrations;
pub mod roles;
pub mod sessions;
pub mod tenants;
pub mod users;

use sea_orm::{DbErr, RuntimeErr};

/// Whether `error` is a unique-constraint violation (PostgreSQL 23505, SQLite 2067/1555).
pub(crate) fn is_unique_violation(error: &DbErr) -> bool {
    let text = match error {
        DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error)) => {
            error.to_string()
        }
        other => other.to_string(),
    };
    text.contains("23505")
        || text.contains("duplicate key")
        || text.contains("UNIQUE constraint failed")
}

pub(crate) fn split_list(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}
