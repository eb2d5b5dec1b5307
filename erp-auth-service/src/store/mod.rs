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

pub(crate) use erp_db::is_unique_violation;

pub(crate) fn split_list(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}
