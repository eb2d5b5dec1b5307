use erp_proto::erp::hrm::v1::{
    AllocateLeaveRequest, ApproverKind, CheckInRequest, DeleteDepartmentRequest,
    DeleteEmployeeRequest, GetDepartmentRequest, GetEmployeeRequest,
    GetEmployeesByDepartmentRequest, GetLeaveBalancesRequest, GetLeaveRequestRequest,
    GetLeaveTypeRequest, ListLeaveLedgerEntriesRequest, SubmitLeaveRequestRequest,
    TerminateEmployeeRequest, UpdateDepartmentRequest, UpdateEmployeeRequest,
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
        .hrm()
        .await
        .submit_leave_request(bearer(
            SubmitLeaveRequestRequest {
                leave_type_id: annual.clone(),
                start_date: date(2026, 11, 2),
                end_date: date(2026, 11, 2),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("submitted")
        .into_inner()
        .leave_request
        .expect("request")
        .leave_request_id;

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
