use erp_kit::error::field_violations;
use erp_proto::erp::{
    common::v1::DateRange,
    hrm::v1::{
        AllocateLeaveRequest, ApproveLeaveRequestRequest, ApproverKind, CancelLeaveRequestRequest,
        CheckInRequest, CheckOutRequest, CreateDepartmentRequest, DeleteDepartmentRequest,
        DeleteEmployeeRequest, GetAttendanceSummaryRequest, GetDepartmentRequest,
        GetDepartmentTreeRequest, GetEmployeeRequest, GetEmployeesByDepartmentRequest,
        GetLeaveBalancesRequest, GetLeaveRequestRequest, GetLeaveTypeRequest, LeaveType,
        ListAttendanceRecordsRequest, ListDepartmentsRequest, ListEmployeesRequest,
        ListLeaveAllocationsRequest, ListLeaveLedgerEntriesRequest, ListLeaveRequestsRequest,
        ListLeaveTypesRequest, RejectLeaveRequestRequest, SubmitLeaveRequestRequest,
        SummaryGranularity, TerminateEmployeeRequest, UpdateDepartmentRequest,
        UpdateEmployeeRequest, UpdateLeaveTypeRequest,
    },
};
use tonic::Code;

use crate::helpers::{Mesh, bearer, date};

#[tokio::test]
async fn another_tenants_ids_are_not_found_on_every_rpc() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "ENG", "").await;
    let (employee, token) = mesh.hire("EMP-A", &department, "").await;
    let annual = mesh.leave_type("ANNUAL", &[ApproverKind::Hr]).await;
    mesh.allocate(&employee, &annual, 10).await;
    let request = mesh
        .submit_leave(
            SubmitLeaveRequestRequest {
                leave_type_id: annual.clone(),
                start_date: date(2026, 11, 2),
                end_date: date(2026, 11, 2),
                ..Default::default()
            },
            &token,
        )
        .await;

    let other = mesh.tenant("globex").await;
    let mut hrm = mesh.hrm().await;
    let mask = |path: &str| {
        Some(prost_types::FieldMask {
            paths: vec![path.to_owned()],
        })
    };
    let outcomes = vec![
        (
            "GetDepartment",
            hrm.get_department(bearer(
                GetDepartmentRequest {
                    department_id: department.clone(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "UpdateDepartment",
            hrm.update_department(bearer(
                UpdateDepartmentRequest {
                    department_id: department.clone(),
                    name: "x".into(),
                    update_mask: mask("name"),
                    ..Default::default()
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "DeleteDepartment",
            hrm.delete_department(bearer(
                DeleteDepartmentRequest {
                    department_id: department.clone(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "GetEmployeesByDepartment",
            hrm.get_employees_by_department(bearer(
                GetEmployeesByDepartmentRequest {
                    department_id: department.clone(),
                    ..Default::default()
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "GetEmployee",
            hrm.get_employee(bearer(
                GetEmployeeRequest {
                    id: employee.clone(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "UpdateEmployee",
            hrm.update_employee(bearer(
                UpdateEmployeeRequest {
                    id: employee.clone(),
                    employee: Some(Default::default()),
                    update_mask: mask("phone"),
                    expected_version: 1,
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "TerminateEmployee",
            hrm.terminate_employee(bearer(
                TerminateEmployeeRequest {
                    id: employee.clone(),
                    termination_date: date(2026, 12, 1),
                    reason: "x".into(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "DeleteEmployee",
            hrm.delete_employee(bearer(
                DeleteEmployeeRequest {
                    id: employee.clone(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "GetLeaveType",
            hrm.get_leave_type(bearer(
                GetLeaveTypeRequest {
                    leave_type_id: annual.clone(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "AllocateLeave",
            hrm.allocate_leave(bearer(
                AllocateLeaveRequest {
                    employee_id: employee.clone(),
                    leave_type_id: annual.clone(),
                    period: Some(erp_proto::erp::common::v1::DateRange {
                        start_date: date(2026, 1, 1),
                        end_date: date(2026, 12, 31),
                    }),
                    half_days: 5,
                    note: String::new(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "GetLeaveBalances",
            hrm.get_leave_balances(bearer(
                GetLeaveBalancesRequest {
                    employee_id: employee.clone(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "ListLeaveLedgerEntries",
            hrm.list_leave_ledger_entries(bearer(
                ListLeaveLedgerEntriesRequest {
                    employee_id: employee.clone(),
                    ..Default::default()
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "GetLeaveRequest",
            hrm.get_leave_request(bearer(
                GetLeaveRequestRequest {
                    leave_request_id: request.clone(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "SubmitLeaveRequest",
            hrm.submit_leave_request(bearer(
                SubmitLeaveRequestRequest {
                    employee_id: employee.clone(),
                    leave_type_id: annual.clone(),
                    start_date: date(2026, 11, 9),
                    end_date: date(2026, 11, 9),
                    ..Default::default()
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "CheckIn",
            hrm.check_in(bearer(
                CheckInRequest {
                    employee_id: employee.clone(),
                    ..Default::default()
                },
                &other,
            ))
            .await
            .err(),
        ),
    ];
    for (rpc, outcome) in outcomes {
        let status = outcome.unwrap_or_else(|| panic!("{rpc} answered another tenant's id"));
        assert_eq!(status.code(), Code::NotFound, "{rpc}: {status:?}");
    }
    // Deciding on, cancelling, or editing what tenant A owns: as if it did not exist.
    let decided = vec![
        (
            "ApproveLeaveRequest",
            hrm.approve_leave_request(bearer(
                ApproveLeaveRequestRequest {
                    leave_request_id: request.clone(),
                    comment: String::new(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "RejectLeaveRequest",
            hrm.reject_leave_request(bearer(
                RejectLeaveRequestRequest {
                    leave_request_id: request.clone(),
                    comment: "not this week".into(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "CancelLeaveRequest",
            hrm.cancel_leave_request(bearer(
                CancelLeaveRequestRequest {
                    leave_request_id: request.clone(),
                    reason: String::new(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "CheckOut",
            hrm.check_out(bearer(
                CheckOutRequest {
                    employee_id: employee.clone(),
                    check_out_time: None,
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "UpdateLeaveType",
            hrm.update_leave_type(bearer(
                UpdateLeaveTypeRequest {
                    leave_type_id: annual.clone(),
                    leave_type: Some(LeaveType {
                        name: "Taken over".into(),
                        ..Default::default()
                    }),
                    update_mask: mask("name"),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "GetDepartmentTree",
            hrm.get_department_tree(bearer(
                GetDepartmentTreeRequest {
                    root_department_id: department.clone(),
                },
                &other,
            ))
            .await
            .err(),
        ),
    ];
    for (rpc, outcome) in decided {
        let status = outcome.unwrap_or_else(|| panic!("{rpc} acted on another tenant's id"));
        assert_eq!(status.code(), Code::NotFound, "{rpc}: {status:?}");
    }

    // Creating under tenant A's records: the reference does not exist for tenant B.
    let references = vec![
        (
            "CreateDepartment",
            "parent_department_id",
            hrm.create_department(bearer(
                CreateDepartmentRequest {
                    code: "SUB".into(),
                    name: "Sub".into(),
                    parent_department_id: department.clone(),
                    head_employee_id: String::new(),
                },
                &other,
            ))
            .await
            .err(),
        ),
        (
            "CreateEmployee",
            "department_id",
            hrm.create_employee(bearer(
                Mesh::hire_request("EMP-B", &department, "", false),
                &other,
            ))
            .await
            .err(),
        ),
    ];
    for (rpc, field, outcome) in references {
        let status = outcome.unwrap_or_else(|| panic!("{rpc} used another tenant's id"));
        assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {status:?}");
        assert!(
            field_violations(&status)
                .iter()
                .any(|(name, message)| name == field && message.contains("no such")),
            "{rpc}: {status:?}"
        );
    }

    // Lists and summaries filtered by tenant A's ids show nothing of it.
    let period = Some(DateRange {
        start_date: date(2026, 1, 1),
        end_date: date(2026, 12, 31),
    });
    let lengths = [
        (
            "ListEmployees",
            hrm.list_employees(bearer(
                ListEmployeesRequest {
                    department_id: department.clone(),
                    ..Default::default()
                },
                &other,
            ))
            .await
            .map(|reply| reply.into_inner().employees.len()),
        ),
        (
            "ListDepartments",
            hrm.list_departments(bearer(ListDepartmentsRequest::default(), &other))
                .await
                .map(|reply| reply.into_inner().departments.len()),
        ),
        (
            "ListLeaveTypes",
            hrm.list_leave_types(bearer(
                ListLeaveTypesRequest {
                    include_inactive: true,
                    ..Default::default()
                },
                &other,
            ))
            .await
            .map(|reply| reply.into_inner().leave_types.len()),
        ),
        (
            "ListLeaveAllocations",
            hrm.list_leave_allocations(bearer(
                ListLeaveAllocationsRequest {
                    employee_id: employee.clone(),
                    ..Default::default()
                },
                &other,
            ))
            .await
            .map(|reply| reply.into_inner().allocations.len()),
        ),
        (
            "ListLeaveRequests",
            hrm.list_leave_requests(bearer(
                ListLeaveRequestsRequest {
                    employee_id: employee.clone(),
                    ..Default::default()
                },
                &other,
            ))
            .await
            .map(|reply| reply.into_inner().leave_requests.len()),
        ),
        (
            "ListAttendanceRecords",
            hrm.list_attendance_records(bearer(
                ListAttendanceRecordsRequest {
                    employee_id: employee.clone(),
                    ..Default::default()
                },
                &other,
            ))
            .await
            .map(|reply| reply.into_inner().records.len()),
        ),
        (
            "GetAttendanceSummary",
            hrm.get_attendance_summary(bearer(
                GetAttendanceSummaryRequest {
                    period,
                    department_id: department.clone(),
                    granularity: SummaryGranularity::Day as i32,
                    ..Default::default()
                },
                &other,
            ))
            .await
            .map(|reply| reply.into_inner().rows.len()),
        ),
    ];
    for (rpc, outcome) in lengths {
        match outcome {
            Ok(items) => assert_eq!(items, 0, "{rpc} listed tenant A's records"),
            Err(status) => assert_eq!(status.code(), Code::NotFound, "{rpc}: {status:?}"),
        }
    }

    // And nothing of tenant A was changed by tenant B.
    let unchanged = hrm
        .get_employee(bearer(GetEmployeeRequest { id: employee }, &mesh.admin))
        .await
        .expect("A reads it")
        .into_inner()
        .employee
        .expect("employee");
    assert_eq!(unchanged.version, 1);
}
