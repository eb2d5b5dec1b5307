use erp_kit::error::field_violations;
use erp_proto::erp::{
    common::v1::{Date, DateRange, PageRequest},
    hrm::v1::*,
};
use tonic::{Code, Status};

use crate::helpers::{Mesh, bearer, date};

fn fields_of<T: std::fmt::Debug>(case: &str, result: Result<T, Status>) -> Vec<String> {
    let status = result.expect_err(case);
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    field_violations(&status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

#[tokio::test]
async fn bad_input_on_every_rpc_is_invalid_argument_with_field_violations() {
    let mesh = Mesh::start().await;
    let admin = mesh.admin.as_str();
    let mut c = mesh.hrm().await;
    let bad_date = Some(Date {
        year: 2026,
        month: 2,
        day: 30,
    });
    let mask = |paths: &[&str]| {
        Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        })
    };
    let long = "x".repeat(300);

    let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "CreateDepartment",
            fields_of(
                "CreateDepartment",
                c.create_department(bearer(
                    CreateDepartmentRequest {
                        code: "R&D".into(),
                        name: String::new(),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["code", "name"],
        ),
        (
            "GetDepartment",
            fields_of(
                "GetDepartment",
                c.get_department(bearer(GetDepartmentRequest::default(), admin))
                    .await,
            ),
            vec!["department_id"],
        ),
        (
            "GetDepartment (a NUL in the id)",
            fields_of(
                "GetDepartment",
                c.get_department(bearer(
                    GetDepartmentRequest {
                        department_id: "0190\u{0}abc".into(),
                    },
                    admin,
                ))
                .await,
            ),
            vec!["department_id"],
        ),
        (
            "ListDepartments",
            fields_of(
                "ListDepartments",
                c.list_departments(bearer(
                    ListDepartmentsRequest {
                        parent_department_id: long.clone(),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["parent_department_id"],
        ),
        (
            "ListLeaveTypes",
            fields_of(
                "ListLeaveTypes",
                c.list_leave_types(bearer(
                    ListLeaveTypesRequest {
                        page: Some(PageRequest {
                            page_size: 20,
                            page_token: "not-a-token-we-issued".into(),
                        }),
                        include_inactive: false,
                    },
                    admin,
                ))
                .await,
            ),
            vec!["page.page_token"],
        ),
        (
            "GetDepartmentTree",
            fields_of(
                "GetDepartmentTree",
                c.get_department_tree(bearer(
                    GetDepartmentTreeRequest {
                        root_department_id: long.clone(),
                    },
                    admin,
                ))
                .await,
            ),
            vec!["root_department_id"],
        ),
        (
            "UpdateDepartment",
            fields_of(
                "UpdateDepartment",
                c.update_department(bearer(
                    UpdateDepartmentRequest {
                        department_id: "d".into(),
                        update_mask: mask(&["name", "colour"]),
                        expected_version: -1,
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["name", "update_mask", "expected_version"],
        ),
        (
            "DeleteDepartment",
            fields_of(
                "DeleteDepartment",
                c.delete_department(bearer(DeleteDepartmentRequest::default(), admin))
                    .await,
            ),
            vec!["department_id"],
        ),
        (
            "CreateEmployee",
            fields_of(
                "CreateEmployee",
                c.create_employee(bearer(
                    CreateEmployeeRequest {
                        employee_id: "bad id!".into(),
                        email: "nope".into(),
                        hire_date: bad_date,
                        create_login: true,
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec![
                "employee_id",
                "first_name",
                "last_name",
                "email",
                "department_id",
                "position",
                "hire_date",
                "employment_type",
                "initial_password",
            ],
        ),
        (
            "GetEmployee",
            fields_of(
                "GetEmployee",
                c.get_employee(bearer(GetEmployeeRequest::default(), admin))
                    .await,
            ),
            vec!["id"],
        ),
        (
            "ListEmployees",
            fields_of(
                "ListEmployees",
                c.list_employees(bearer(
                    ListEmployeesRequest {
                        status: 99,
                        manager_id: long.clone(),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["manager_id", "status"],
        ),
        (
            "UpdateEmployee",
            fields_of(
                "UpdateEmployee",
                c.update_employee(bearer(
                    UpdateEmployeeRequest {
                        id: "e".into(),
                        employee: Some(Employee {
                            email: "bad".into(),
                            ..Default::default()
                        }),
                        update_mask: mask(&["email", "first_name", "tenant_id"]),
                        expected_version: 0,
                    },
                    admin,
                ))
                .await,
            ),
            vec![
                "employee.email",
                "employee.first_name",
                "update_mask",
                "expected_version",
            ],
        ),
        (
            "TerminateEmployee",
            fields_of(
                "TerminateEmployee",
                c.terminate_employee(bearer(TerminateEmployeeRequest::default(), admin))
                    .await,
            ),
            vec!["id", "termination_date", "reason"],
        ),
        (
            "DeleteEmployee",
            fields_of(
                "DeleteEmployee",
                c.delete_employee(bearer(DeleteEmployeeRequest::default(), admin))
                    .await,
            ),
            vec!["id"],
        ),
        (
            "GetEmployeesByDepartment",
            fields_of(
                "GetEmployeesByDepartment",
                c.get_employees_by_department(bearer(
                    GetEmployeesByDepartmentRequest::default(),
                    admin,
                ))
                .await,
            ),
            vec!["department_id"],
        ),
        (
            "CreateLeaveType",
            fields_of(
                "CreateLeaveType",
                c.create_leave_type(bearer(
                    CreateLeaveTypeRequest {
                        half_days_per_year: -1,
                        approval_levels: vec![7],
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["code", "name", "half_days_per_year", "approval_levels[0]"],
        ),
        (
            "GetLeaveType",
            fields_of(
                "GetLeaveType",
                c.get_leave_type(bearer(GetLeaveTypeRequest::default(), admin))
                    .await,
            ),
            vec!["leave_type_id"],
        ),
        (
            "UpdateLeaveType",
            fields_of(
                "UpdateLeaveType",
                c.update_leave_type(bearer(
                    UpdateLeaveTypeRequest {
                        update_mask: None,
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["leave_type_id", "update_mask"],
        ),
        (
            "AllocateLeave",
            fields_of(
                "AllocateLeave",
                c.allocate_leave(bearer(
                    AllocateLeaveRequest {
                        period: Some(DateRange {
                            start_date: date(2026, 12, 1),
                            end_date: date(2026, 1, 1),
                        }),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec![
                "employee_id",
                "leave_type_id",
                "period.end_date",
                "half_days",
            ],
        ),
        (
            "ListLeaveAllocations",
            fields_of(
                "ListLeaveAllocations",
                c.list_leave_allocations(bearer(
                    ListLeaveAllocationsRequest {
                        employee_id: long.clone(),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["employee_id"],
        ),
        (
            "GetLeaveBalances",
            fields_of(
                "GetLeaveBalances",
                c.get_leave_balances(bearer(GetLeaveBalancesRequest::default(), admin))
                    .await,
            ),
            vec!["employee_id"],
        ),
        (
            "ListLeaveLedgerEntries",
            fields_of(
                "ListLeaveLedgerEntries",
                c.list_leave_ledger_entries(bearer(
                    ListLeaveLedgerEntriesRequest::default(),
                    admin,
                ))
                .await,
            ),
            vec!["employee_id"],
        ),
        (
            "SubmitLeaveRequest",
            fields_of(
                "SubmitLeaveRequest",
                c.submit_leave_request(bearer(
                    SubmitLeaveRequestRequest {
                        start_date: date(2026, 11, 9),
                        end_date: date(2026, 11, 2),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["leave_type_id", "end_date"],
        ),
        (
            "GetLeaveRequest",
            fields_of(
                "GetLeaveRequest",
                c.get_leave_request(bearer(GetLeaveRequestRequest::default(), admin))
                    .await,
            ),
            vec!["leave_request_id"],
        ),
        (
            "ListLeaveRequests",
            fields_of(
                "ListLeaveRequests",
                c.list_leave_requests(bearer(
                    ListLeaveRequestsRequest {
                        status: 42,
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["status"],
        ),
        (
            "ApproveLeaveRequest",
            fields_of(
                "ApproveLeaveRequest",
                c.approve_leave_request(bearer(
                    ApproveLeaveRequestRequest {
                        comment: long.repeat(5),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["leave_request_id", "comment"],
        ),
        (
            "RejectLeaveRequest",
            fields_of(
                "RejectLeaveRequest",
                c.reject_leave_request(bearer(
                    RejectLeaveRequestRequest {
                        leave_request_id: "r".into(),
                        comment: String::new(),
                    },
                    admin,
                ))
                .await,
            ),
            vec!["comment"],
        ),
        (
            "CancelLeaveRequest",
            fields_of(
                "CancelLeaveRequest",
                c.cancel_leave_request(bearer(CancelLeaveRequestRequest::default(), admin))
                    .await,
            ),
            vec!["leave_request_id"],
        ),
        (
            "CheckIn",
            fields_of(
                "CheckIn",
                c.check_in(bearer(
                    CheckInRequest {
                        note: long.repeat(5),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["note"],
        ),
        (
            "CheckOut",
            fields_of(
                "CheckOut",
                c.check_out(bearer(
                    CheckOutRequest {
                        employee_id: long.clone(),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["employee_id"],
        ),
        (
            "ListAttendanceRecords",
            fields_of(
                "ListAttendanceRecords",
                c.list_attendance_records(bearer(
                    ListAttendanceRecordsRequest {
                        period: Some(DateRange {
                            start_date: bad_date,
                            end_date: date(2026, 1, 1),
                        }),
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["period.start_date"],
        ),
        (
            "GetAttendanceSummary",
            fields_of(
                "GetAttendanceSummary",
                c.get_attendance_summary(bearer(
                    GetAttendanceSummaryRequest {
                        granularity: 9,
                        ..Default::default()
                    },
                    admin,
                ))
                .await,
            ),
            vec!["period", "granularity"],
        ),
    ];
    for (rpc, fields, expected) in cases {
        assert_eq!(fields, expected, "{rpc}");
    }
}
