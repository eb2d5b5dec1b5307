//! The ERP mesh's release orchestrator: reads a release config (`release-configs/v1.0.0.yml`),
//! reports every problem in it with line and key, plans its stages in dependency order with
//! each service's change against an environment, and deploys the stages — as local
//! processes on SQLite and the embedded broker — behind health gates, with smoke tests,
//! history and rollback; and computes which units a contract change affects (and whether
//! the change is allowed) for cross-repository CI triggers.

pub mod contracts;
pub mod environment;
pub mod kubernetes;
pub mod local;
pub mod plan;
pub mod release;
pub mod report;
pub mod smoke;
pub mod state;
pub mod validate;
pub mod workspace;
pub mod yaml;
