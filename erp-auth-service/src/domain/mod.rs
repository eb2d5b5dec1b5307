//! The auth service's business rules: parsed values, the password policy and hashing,
//! roles and permissions, sessions and refresh-token rotation, login lockout, and
//! signing-key encryption. No tonic, no sea-orm.

pub mod keys;
pub mod lockout;
pub mod password;
pub mod role;
pub mod session;
pub mod tenant;
pub mod user;
