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
pub use page::{PageTokens, PageWindow, keyset};
pub use scope::{TenantOwned, scoped};
pub use version::{Versioned, update_versioned};
