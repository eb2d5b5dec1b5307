//! HRM's business rules: the department tree, employees and their lifecycle, leave (day
//! counting, the approval chain, the ledger), attendance, and who may act on whose
//! records. No tonic, no sea-orm.

pub mod access;
pub mod attendance;
pub mod department;
pub mod employee;
pub mod leave;
