//! Black-box tests of erp-auth-service: the real service on port 0 with a fresh
//! PostgreSQL database, called through the generated client.

mod discovery;
mod events;
mod helpers;
mod isolation;
mod lifecycle;
mod limits;
mod privileges;
mod tokens;
mod validation;
