//! What HRM publishes, all through the transactional outbox in the use cases'
//! transactions: EmployeeHired, EmployeeUpdated, EmployeeTerminated and EmployeeDeleted
//! (the auth service disables the linked login) on `erp.hrm.employee.v1`, and LeaveRequestApproved on
//! `erp.hrm.leave.v1`. HRM consumes no events yet.

/// The topic of employee events.
pub const EMPLOYEE_TOPIC: &str = "erp.hrm.employee.v1";
/// The topic of leave events.
pub const LEAVE_TOPIC: &str = "erp.hrm.leave.v1";
