//! The HRM service of the ERP mesh: departments, employees, leave with an append-only
//! ledger and multi-level approvals, and attendance.

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod store;
