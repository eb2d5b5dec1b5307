//! Black-box tests of erp-hrm-service: the real service on port 0 with a fresh PostgreSQL
//! database, next to a real auth service (logins, tokens, JWKS), called through the
//! generated clients.

mod attendance;
mod departments;
mod helpers;
mod isolation;
mod leave;
mod lifecycle;
mod validation;
