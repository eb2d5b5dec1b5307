//! `erp.hrm.v1.HrmService`: each handler parses its request (every violation at once),
//! calls one use case and maps the result.

use std::sync::Arc;

use erp_kit::auth::{AuthContext, auth_context};
use erp_proto::erp::hrm::v1::{self as proto, hrm_service_server::HrmService};
use secrecy::SecretString;
use tonic::{Request, Response, Status};

use super::convert::{self, Fields};
use crate::{
    app::{DepartmentUpdate, EmployeeUpdate, Hire, Hrm, NewLeaveRequest, RequestListFilter},
    domain::{department::parse_code, employee::parse_employee_number},
    error::Error,
    store::{
        departments::NewDepartment,
        employees::{EmployeeChanges, EmployeeFilter, NewEmployee},
        leave::LeaveTypeValues,
    },
};

/// The handlers.
#[derive(Debug, Clone)]
pub struct HrmGrpc {
    hrm: Arc<Hrm>,
}

impl HrmGrpc {
    /// Handlers over the use cases.
    pub fn new(hrm: Arc<Hrm>) -> Self {
        Self { hrm }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

fn caller<T>(request: &Request<T>) -> Result<AuthContext, Status> {
    Ok(auth_context(request)?.clone())
}

fn mask(update_mask: Option<prost_types::FieldMask>) -> Vec<String> {
    update_mask.map(|mask| mask.paths).unwrap_or_default()
}

const NAME_MAX: usize = 120;
const PERSON_NAME_MAX: usize = 100;
const NOTE_MAX: usize = 1_000;

#[tonic::async_trait]
impl HrmService for HrmGrpc {
    async fn create_department(
        &self,
        request: Request<proto::CreateDepartmentRequest>,
    ) -> Reply<proto::CreateDepartmentResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let code = fields.0.check("code", parse_code(&request.code));
        let name = fields.text("name", &request.name, NAME_MAX, true);
        let parent = fields.optional_id("parent_department_id", &request.parent_department_id);
        let head = fields.optional_id("head_employee_id", &request.head_employee_id);
        let (Some(code), Some(name)) = (code, name) else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let department = self
            .hrm
            .create_department(
                &caller,
                NewDepartment {
                    code,
                    name,
                    parent_id: parent,
                    head_employee_id: head,
                },
            )
            .await?;
        reply(proto::CreateDepartmentResponse {
            department: Some(convert::department(&department)),
        })
    }

    async fn get_department(
        &self,
        request: Request<proto::GetDepartmentRequest>,
    ) -> Reply<proto::GetDepartmentResponse> {
        let caller = caller(&request)?;
        let mut fields = Fields::new();
        let Some(id) = fields.id("department_id", &request.get_ref().department_id) else {
            return Err(Error::from(fields.0).into());
        };
        let department = self.hrm.get_department(&caller, &id).await?;
        reply(proto::GetDepartmentResponse {
            department: Some(convert::department(&department)),
        })
    }

    async fn list_departments(
        &self,
        request: Request<proto::ListDepartmentsRequest>,
    ) -> Reply<proto::ListDepartmentsResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let parent = fields.optional_id("parent_department_id", &request.parent_department_id);
        fields.finish()?;
        let (departments, page) = self
            .hrm
            .list_departments(&caller, parent.as_deref(), request.page.as_ref())
            .await?;
        reply(proto::ListDepartmentsResponse {
            departments: departments.iter().map(convert::department).collect(),
            page: Some(page),
        })
    }

    async fn get_department_tree(
        &self,
        request: Request<proto::GetDepartmentTreeRequest>,
    ) -> Reply<proto::GetDepartmentTreeResponse> {
        let caller = caller(&request)?;
        let mut fields = Fields::new();
        let root = fields.optional_id("root_department_id", &request.get_ref().root_department_id);
        fields.finish()?;
        let roots = self.hrm.department_tree(&caller, root.as_deref()).await?;
        reply(proto::GetDepartmentTreeResponse {
            roots: roots.iter().map(convert::department_node).collect(),
        })
    }

    async fn update_department(
        &self,
        request: Request<proto::UpdateDepartmentRequest>,
    ) -> Reply<proto::UpdateDepartmentResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let id = fields.id("department_id", &request.department_id);
        let mut update = DepartmentUpdate {
            expected_version: request.expected_version,
            ..Default::default()
        };
        let paths = mask(request.update_mask);
        fields.check(
            "update_mask",
            !paths.is_empty(),
            "must name at least one field: name, parent_department_id, head_employee_id",
        );
        for path in &paths {
            match path.as_str() {
                "name" => update.name = fields.text("name", &request.name, NAME_MAX, true),
                "parent_department_id" => {
                    update.parent_id = Some(
                        fields.optional_id("parent_department_id", &request.parent_department_id),
                    )
                }
                "head_employee_id" => {
                    update.head_employee_id =
                        Some(fields.optional_id("head_employee_id", &request.head_employee_id))
                }
                other => fields
                    .0
                    .add("update_mask", format!("{other} cannot be updated")),
            }
        }
        fields.check(
            "expected_version",
            request.expected_version >= 0,
            "must not be negative",
        );
        let Some(id) = id else {
            return Err(Error::from(fields.0).into());
        };
        if update
            .parent_id
            .as_ref()
            .is_some_and(|parent| parent.as_deref() == Some(id.as_str()))
        {
            fields.0.add(
                "parent_department_id",
                "a department cannot be its own parent",
            );
        }
        fields.finish()?;
        let department = self.hrm.update_department(&caller, &id, update).await?;
        reply(proto::UpdateDepartmentResponse {
            department: Some(convert::department(&department)),
        })
    }

    async fn delete_department(
        &self,
        request: Request<proto::DeleteDepartmentRequest>,
    ) -> Reply<proto::DeleteDepartmentResponse> {
        let caller = caller(&request)?;
        let mut fields = Fields::new();
        let Some(id) = fields.id("department_id", &request.get_ref().department_id) else {
            return Err(Error::from(fields.0).into());
        };
        self.hrm.delete_department(&caller, &id).await?;
        reply(proto::DeleteDepartmentResponse {})
    }

    async fn create_employee(
        &self,
        request: Request<proto::CreateEmployeeRequest>,
    ) -> Reply<proto::CreateEmployeeResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let number = fields
            .0
            .check("employee_id", parse_employee_number(&request.employee_id));
        let first = fields.text("first_name", &request.first_name, PERSON_NAME_MAX, true);
        let last = fields.text("last_name", &request.last_name, PERSON_NAME_MAX, true);
        let email = fields.email("email", &request.email);
        let department = fields.id("department_id", &request.department_id);
        let position = fields.text("position", &request.position, NAME_MAX, true);
        let manager = fields.optional_id("manager_id", &request.manager_id);
        let hire_date = fields.date("hire_date", request.hire_date.as_ref());
        let employment_type = convert::employment_type(request.employment_type);
        fields.check(
            "employment_type",
            employment_type.is_some(),
            "is required (FULL_TIME, PART_TIME, CONTRACT or INTERN)",
        );
        let phone = fields.text("phone", &request.phone, 32, false);
        let password = if request.create_login {
            fields.check(
                "initial_password",
                !request.initial_password.is_empty(),
                "is required with create_login",
            );
            Some(SecretString::from(request.initial_password))
        } else {
            fields.check(
                "initial_password",
                request.initial_password.is_empty(),
                "is only used with create_login",
            );
            None
        };
        let (
            Some(number),
            Some(first),
            Some(last),
            Some(email),
            Some(department),
            Some(position),
            Some(hire_date),
            Some(employment_type),
            Some(phone),
        ) = (
            number,
            first,
            last,
            email,
            department,
            position,
            hire_date,
            employment_type,
            phone,
        )
        else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let employee = self
            .hrm
            .hire(
                &caller,
                Hire {
                    employee: NewEmployee {
                        employee_number: number,
                        first_name: first,
                        last_name: last,
                        email,
                        phone,
                        department_id: department,
                        position,
                        manager_id: manager,
                        hire_date,
                        employment_type,
                    },
                    login_password: password,
                },
            )
            .await?;
        reply(proto::CreateEmployeeResponse {
            employee: Some(convert::employee(&employee)),
        })
    }

    async fn get_employee(
        &self,
        request: Request<proto::GetEmployeeRequest>,
    ) -> Reply<proto::GetEmployeeResponse> {
        let caller = caller(&request)?;
        let mut fields = Fields::new();
        let Some(id) = fields.id("id", &request.get_ref().id) else {
            return Err(Error::from(fields.0).into());
        };
        let employee = self.hrm.get_employee(&caller, &id).await?;
        reply(proto::GetEmployeeResponse {
            employee: Some(convert::employee(&employee)),
        })
    }

    async fn list_employees(
        &self,
        request: Request<proto::ListEmployeesRequest>,
    ) -> Reply<proto::ListEmployeesResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let department = fields.optional_id("department_id", &request.department_id);
        let manager = fields.optional_id("manager_id", &request.manager_id);
        let status = if request.status == 0 {
            None
        } else {
            convert::employee_status(request.status)
        };
        fields.check(
            "status",
            request.status == 0 || status.is_some(),
            "is not an EmployeeStatus",
        );
        fields.finish()?;
        let filter = EmployeeFilter {
            department_ids: department.map(|id| vec![id]),
            status,
            manager_id: manager,
            subtree_of: None,
        };
        let (employees, page) = self
            .hrm
            .list_employees(&caller, &filter, request.page.as_ref())
            .await?;
        reply(proto::ListEmployeesResponse {
            employees: employees.iter().map(convert::employee).collect(),
            page: Some(page),
        })
    }

    async fn update_employee(
        &self,
        request: Request<proto::UpdateEmployeeRequest>,
    ) -> Reply<proto::UpdateEmployeeResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let id = fields.id("id", &request.id);
        let values = request.employee.unwrap_or_default();
        let mut changes = EmployeeChanges::default();
        let paths = mask(request.update_mask);
        fields.check(
            "update_mask",
            !paths.is_empty(),
            "must name at least one field",
        );
        for path in &paths {
            match path.as_str() {
                "first_name" => {
                    changes.first_name = fields.text(
                        "employee.first_name",
                        &values.first_name,
                        PERSON_NAME_MAX,
                        true,
                    )
                }
                "last_name" => {
                    changes.last_name = fields.text(
                        "employee.last_name",
                        &values.last_name,
                        PERSON_NAME_MAX,
                        true,
                    )
                }
                "email" => changes.email = fields.email("employee.email", &values.email),
                "department_id" => {
                    changes.department_id =
                        fields.id("employee.department_id", &values.department_id)
                }
                "position" => {
                    changes.position =
                        fields.text("employee.position", &values.position, NAME_MAX, true)
                }
                "manager_id" => {
                    changes.manager_id =
                        Some(fields.optional_id("employee.manager_id", &values.manager_id))
                }
                "employment_type" => {
                    changes.employment_type = convert::employment_type(values.employment_type);
                    fields.check(
                        "employee.employment_type",
                        changes.employment_type.is_some(),
                        "is not an EmploymentType",
                    );
                }
                "phone" => changes.phone = fields.text("employee.phone", &values.phone, 32, false),
                "status" => {
                    changes.status = convert::employee_status(values.status);
                    fields.check(
                        "employee.status",
                        changes.status.is_some(),
                        "is not an EmployeeStatus",
                    );
                }
                other => fields
                    .0
                    .add("update_mask", format!("{other} cannot be updated")),
            }
        }
        fields.check(
            "expected_version",
            request.expected_version > 0,
            "is required: the version you read",
        );
        let Some(id) = id else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let employee = self
            .hrm
            .update_employee(
                &caller,
                &id,
                EmployeeUpdate {
                    changes,
                    expected_version: request.expected_version,
                },
            )
            .await?;
        reply(proto::UpdateEmployeeResponse {
            employee: Some(convert::employee(&employee)),
        })
    }

    async fn terminate_employee(
        &self,
        request: Request<proto::TerminateEmployeeRequest>,
    ) -> Reply<proto::TerminateEmployeeResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let id = fields.id("id", &request.id);
        let on = fields.date("termination_date", request.termination_date.as_ref());
        let reason = fields.text("reason", &request.reason, NOTE_MAX, true);
        let (Some(id), Some(on), Some(reason)) = (id, on, reason) else {
            return Err(Error::from(fields.0).into());
        };
        let (employee, cancelled) = self
            .hrm
            .terminate_employee(&caller, &id, on, &reason)
            .await?;
        reply(proto::TerminateEmployeeResponse {
            employee: Some(convert::employee(&employee)),
            cancelled_leave_requests: i32::try_from(cancelled).unwrap_or(i32::MAX),
        })
    }

    async fn delete_employee(
        &self,
        request: Request<proto::DeleteEmployeeRequest>,
    ) -> Reply<proto::DeleteEmployeeResponse> {
        let caller = caller(&request)?;
        let mut fields = Fields::new();
        let Some(id) = fields.id("id", &request.get_ref().id) else {
            return Err(Error::from(fields.0).into());
        };
        self.hrm.delete_employee(&caller, &id).await?;
        reply(proto::DeleteEmployeeResponse {})
    }

    async fn get_employees_by_department(
        &self,
        request: Request<proto::GetEmployeesByDepartmentRequest>,
    ) -> Reply<proto::GetEmployeesByDepartmentResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let Some(department) = fields.id("department_id", &request.department_id) else {
            return Err(Error::from(fields.0).into());
        };
        let (employees, page) = self
            .hrm
            .employees_by_department(
                &caller,
                &department,
                request.include_subdepartments,
                request.page.as_ref(),
            )
            .await?;
        reply(proto::GetEmployeesByDepartmentResponse {
            employees: employees.iter().map(convert::employee).collect(),
            page: Some(page),
        })
    }

    async fn create_leave_type(
        &self,
        request: Request<proto::CreateLeaveTypeRequest>,
    ) -> Reply<proto::CreateLeaveTypeResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let code = fields.0.check("code", parse_code(&request.code));
        let name = fields.text("name", &request.name, NAME_MAX, true);
        fields.check(
            "half_days_per_year",
            (0..=1_000).contains(&request.half_days_per_year),
            "must be 0 to 1000",
        );
        fields.check(
            "carry_forward_cap_half_days",
            (0..=1_000).contains(&request.carry_forward_cap_half_days),
            "must be 0 to 1000",
        );
        let levels: Vec<_> = request
            .approval_levels
            .iter()
            .enumerate()
            .filter_map(|(index, value)| {
                let kind = convert::approver_kind(*value);
                fields.check(
                    &format!("approval_levels[{index}]"),
                    kind.is_some(),
                    "is not an ApproverKind",
                );
                kind
            })
            .collect();
        fields.check(
            "approval_levels",
            levels.len() <= 5,
            "may have at most 5 levels",
        );
        let (Some(code), Some(name)) = (code, name) else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let leave_type = self
            .hrm
            .create_leave_type(
                &caller,
                LeaveTypeValues {
                    code,
                    name,
                    paid: request.paid,
                    half_days_per_year: request.half_days_per_year,
                    carry_forward_cap_half_days: request.carry_forward_cap_half_days,
                    approval_levels: levels,
                    active: true,
                },
            )
            .await?;
        reply(proto::CreateLeaveTypeResponse {
            leave_type: Some(convert::leave_type(&leave_type)),
        })
    }

    async fn get_leave_type(
        &self,
        request: Request<proto::GetLeaveTypeRequest>,
    ) -> Reply<proto::GetLeaveTypeResponse> {
        let caller = caller(&request)?;
        let mut fields = Fields::new();
        let Some(id) = fields.id("leave_type_id", &request.get_ref().leave_type_id) else {
            return Err(Error::from(fields.0).into());
        };
        let leave_type = self.hrm.get_leave_type(&caller, &id).await?;
        reply(proto::GetLeaveTypeResponse {
            leave_type: Some(convert::leave_type(&leave_type)),
        })
    }

    async fn list_leave_types(
        &self,
        request: Request<proto::ListLeaveTypesRequest>,
    ) -> Reply<proto::ListLeaveTypesResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let (types, page) = self
            .hrm
            .list_leave_types(&caller, request.include_inactive, request.page.as_ref())
            .await?;
        reply(proto::ListLeaveTypesResponse {
            leave_types: types.iter().map(convert::leave_type).collect(),
            page: Some(page),
        })
    }

    async fn update_leave_type(
        &self,
        request: Request<proto::UpdateLeaveTypeRequest>,
    ) -> Reply<proto::UpdateLeaveTypeResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let id = fields.id("leave_type_id", &request.leave_type_id);
        let values = request.leave_type.unwrap_or_default();
        let paths = mask(request.update_mask);
        fields.check(
            "update_mask",
            !paths.is_empty(),
            "must name at least one field",
        );
        let mut levels = None;
        let mut name = None;
        for path in &paths {
            match path.as_str() {
                "name" => name = fields.text("leave_type.name", &values.name, NAME_MAX, true),
                "half_days_per_year" => fields.check(
                    "leave_type.half_days_per_year",
                    (0..=1_000).contains(&values.half_days_per_year),
                    "must be 0 to 1000",
                ),
                "carry_forward_cap_half_days" => fields.check(
                    "leave_type.carry_forward_cap_half_days",
                    (0..=1_000).contains(&values.carry_forward_cap_half_days),
                    "must be 0 to 1000",
                ),
                "approval_levels" => {
                    let parsed: Vec<_> = values
                        .approval_levels
                        .iter()
                        .filter_map(|value| convert::approver_kind(*value))
                        .collect();
                    fields.check(
                        "leave_type.approval_levels",
                        parsed.len() == values.approval_levels.len() && parsed.len() <= 5,
                        "must be at most 5 ApproverKinds",
                    );
                    levels = Some(parsed);
                }
                "paid" | "active" => {}
                other => fields
                    .0
                    .add("update_mask", format!("{other} cannot be updated")),
            }
        }
        let Some(id) = id else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let leave_type = self
            .hrm
            .update_leave_type(&caller, &id, |current| {
                for path in &paths {
                    match path.as_str() {
                        "name" => current.name = name.clone().unwrap_or_default(),
                        "paid" => current.paid = values.paid,
                        "half_days_per_year" => {
                            current.half_days_per_year = values.half_days_per_year
                        }
                        "carry_forward_cap_half_days" => {
                            current.carry_forward_cap_half_days = values.carry_forward_cap_half_days
                        }
                        "approval_levels" => {
                            current.approval_levels = levels.clone().unwrap_or_default()
                        }
                        "active" => current.active = values.active,
                        _ => {}
                    }
                }
            })
            .await?;
        reply(proto::UpdateLeaveTypeResponse {
            leave_type: Some(convert::leave_type(&leave_type)),
        })
    }

    async fn allocate_leave(
        &self,
        request: Request<proto::AllocateLeaveRequest>,
    ) -> Reply<proto::AllocateLeaveResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let employee = fields.id("employee_id", &request.employee_id);
        let leave_type = fields.id("leave_type_id", &request.leave_type_id);
        let period = fields.period("period", request.period.as_ref());
        fields.check(
            "half_days",
            (1..=1_000).contains(&request.half_days),
            "must be 1 to 1000",
        );
        let note = fields.text("note", &request.note, NOTE_MAX, false);
        let (Some(employee), Some(leave_type), Some(period), Some(note)) =
            (employee, leave_type, period, note)
        else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let allocation = self
            .hrm
            .allocate_leave(
                &caller,
                &employee,
                &leave_type,
                period,
                request.half_days,
                &note,
            )
            .await?;
        reply(proto::AllocateLeaveResponse {
            allocation: Some(convert::allocation(&allocation)),
        })
    }

    async fn list_leave_allocations(
        &self,
        request: Request<proto::ListLeaveAllocationsRequest>,
    ) -> Reply<proto::ListLeaveAllocationsResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let employee = fields.optional_id("employee_id", &request.employee_id);
        let leave_type = fields.optional_id("leave_type_id", &request.leave_type_id);
        fields.finish()?;
        let (allocations, page) = self
            .hrm
            .list_allocations(
                &caller,
                employee.as_deref(),
                leave_type.as_deref(),
                request.page.as_ref(),
            )
            .await?;
        reply(proto::ListLeaveAllocationsResponse {
            allocations: allocations.iter().map(convert::allocation).collect(),
            page: Some(page),
        })
    }

    async fn get_leave_balances(
        &self,
        request: Request<proto::GetLeaveBalancesRequest>,
    ) -> Reply<proto::GetLeaveBalancesResponse> {
        let caller = caller(&request)?;
        let mut fields = Fields::new();
        let Some(employee) = fields.id("employee_id", &request.get_ref().employee_id) else {
            return Err(Error::from(fields.0).into());
        };
        let balances = self.hrm.balances(&caller, &employee).await?;
        reply(proto::GetLeaveBalancesResponse {
            balances: balances.iter().map(convert::balance).collect(),
        })
    }

    async fn list_leave_ledger_entries(
        &self,
        request: Request<proto::ListLeaveLedgerEntriesRequest>,
    ) -> Reply<proto::ListLeaveLedgerEntriesResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let employee = fields.id("employee_id", &request.employee_id);
        let leave_type = fields.optional_id("leave_type_id", &request.leave_type_id);
        let Some(employee) = employee else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let (entries, page) = self
            .hrm
            .ledger(
                &caller,
                &employee,
                leave_type.as_deref(),
                request.page.as_ref(),
            )
            .await?;
        reply(proto::ListLeaveLedgerEntriesResponse {
            entries: entries.iter().map(convert::ledger_entry).collect(),
            page: Some(page),
        })
    }

    async fn submit_leave_request(
        &self,
        request: Request<proto::SubmitLeaveRequestRequest>,
    ) -> Reply<proto::SubmitLeaveRequestResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let employee = fields.optional_id("employee_id", &request.employee_id);
        let leave_type = fields.id("leave_type_id", &request.leave_type_id);
        let start = fields.date("start_date", request.start_date.as_ref());
        let end = fields.date("end_date", request.end_date.as_ref());
        if let (Some(start), Some(end)) = (start, end) {
            fields.check("end_date", end >= start, "is before the start date");
        }
        let reason = fields.text("reason", &request.reason, NOTE_MAX, false);
        let (Some(leave_type), Some(start), Some(end), Some(reason)) =
            (leave_type, start, end, reason)
        else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let view = self
            .hrm
            .submit_leave_request(
                &caller,
                NewLeaveRequest {
                    employee_id: employee,
                    leave_type_id: leave_type,
                    start_date: start,
                    end_date: end,
                    start_half_day: request.start_half_day,
                    end_half_day: request.end_half_day,
                    reason,
                },
            )
            .await?;
        reply(proto::SubmitLeaveRequestResponse {
            leave_request: Some(convert::leave_request(&view)),
        })
    }

    async fn get_leave_request(
        &self,
        request: Request<proto::GetLeaveRequestRequest>,
    ) -> Reply<proto::GetLeaveRequestResponse> {
        let caller = caller(&request)?;
        let mut fields = Fields::new();
        let Some(id) = fields.id("leave_request_id", &request.get_ref().leave_request_id) else {
            return Err(Error::from(fields.0).into());
        };
        let view = self.hrm.get_leave_request(&caller, &id).await?;
        reply(proto::GetLeaveRequestResponse {
            leave_request: Some(convert::leave_request(&view)),
        })
    }

    async fn list_leave_requests(
        &self,
        request: Request<proto::ListLeaveRequestsRequest>,
    ) -> Reply<proto::ListLeaveRequestsResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let employee = fields.optional_id("employee_id", &request.employee_id);
        let status = convert::request_status(request.status);
        fields.check("status", status.is_some(), "is not a LeaveRequestStatus");
        fields.finish()?;
        let filter = RequestListFilter {
            employee_id: employee,
            status: status.flatten(),
            awaiting_my_approval: request.awaiting_my_approval,
        };
        let (requests, page) = self
            .hrm
            .list_leave_requests(&caller, &filter, request.page.as_ref())
            .await?;
        reply(proto::ListLeaveRequestsResponse {
            leave_requests: requests.iter().map(convert::leave_request).collect(),
            page: Some(page),
        })
    }

    async fn approve_leave_request(
        &self,
        request: Request<proto::ApproveLeaveRequestRequest>,
    ) -> Reply<proto::ApproveLeaveRequestResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let id = fields.id("leave_request_id", &request.leave_request_id);
        let comment = fields.text("comment", &request.comment, NOTE_MAX, false);
        let (Some(id), Some(comment)) = (id, comment) else {
            return Err(Error::from(fields.0).into());
        };
        let view = self
            .hrm
            .approve_leave_request(&caller, &id, &comment)
            .await?;
        reply(proto::ApproveLeaveRequestResponse {
            leave_request: Some(convert::leave_request(&view)),
        })
    }

    async fn reject_leave_request(
        &self,
        request: Request<proto::RejectLeaveRequestRequest>,
    ) -> Reply<proto::RejectLeaveRequestResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let id = fields.id("leave_request_id", &request.leave_request_id);
        let comment = fields.text("comment", &request.comment, NOTE_MAX, true);
        let (Some(id), Some(comment)) = (id, comment) else {
            return Err(Error::from(fields.0).into());
        };
        let view = self
            .hrm
            .reject_leave_request(&caller, &id, &comment)
            .await?;
        reply(proto::RejectLeaveRequestResponse {
            leave_request: Some(convert::leave_request(&view)),
        })
    }

    async fn cancel_leave_request(
        &self,
        request: Request<proto::CancelLeaveRequestRequest>,
    ) -> Reply<proto::CancelLeaveRequestResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let id = fields.id("leave_request_id", &request.leave_request_id);
        fields.text("reason", &request.reason, NOTE_MAX, false);
        let Some(id) = id else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let view = self.hrm.cancel_leave_request(&caller, &id).await?;
        reply(proto::CancelLeaveRequestResponse {
            leave_request: Some(convert::leave_request(&view)),
        })
    }

    async fn check_in(
        &self,
        request: Request<proto::CheckInRequest>,
    ) -> Reply<proto::CheckInResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let employee = fields.optional_id("employee_id", &request.employee_id);
        let at = request.check_in_time.as_ref().map(convert::from_timestamp);
        fields.check(
            "check_in_time",
            at.is_none_or(|at| at.is_some()),
            "is not a valid instant",
        );
        let note = fields.text("note", &request.note, NOTE_MAX, false);
        let Some(note) = note else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let record = self
            .hrm
            .check_in(&caller, employee.as_deref(), at.flatten(), &note)
            .await?;
        reply(proto::CheckInResponse {
            record: Some(convert::attendance(&record)),
        })
    }

    async fn check_out(
        &self,
        request: Request<proto::CheckOutRequest>,
    ) -> Reply<proto::CheckOutResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let employee = fields.optional_id("employee_id", &request.employee_id);
        let at = request.check_out_time.as_ref().map(convert::from_timestamp);
        fields.check(
            "check_out_time",
            at.is_none_or(|at| at.is_some()),
            "is not a valid instant",
        );
        fields.finish()?;
        let record = self
            .hrm
            .check_out(&caller, employee.as_deref(), at.flatten())
            .await?;
        reply(proto::CheckOutResponse {
            record: Some(convert::attendance(&record)),
        })
    }

    async fn list_attendance_records(
        &self,
        request: Request<proto::ListAttendanceRecordsRequest>,
    ) -> Reply<proto::ListAttendanceRecordsResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let employee = fields.optional_id("employee_id", &request.employee_id);
        let period = request
            .period
            .as_ref()
            .and_then(|period| fields.period("period", Some(period)));
        fields.finish()?;
        let (records, page) = self
            .hrm
            .list_attendance(&caller, employee.as_deref(), period, request.page.as_ref())
            .await?;
        reply(proto::ListAttendanceRecordsResponse {
            records: records.iter().map(convert::attendance).collect(),
            page: Some(page),
        })
    }

    async fn get_attendance_summary(
        &self,
        request: Request<proto::GetAttendanceSummaryRequest>,
    ) -> Reply<proto::GetAttendanceSummaryResponse> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let mut fields = Fields::new();
        let period = fields.period("period", request.period.as_ref());
        if let Some((start, end)) = period {
            fields.check(
                "period",
                (end - start).num_days() < 366,
                "covers at most 366 days",
            );
        }
        let employee = fields.optional_id("employee_id", &request.employee_id);
        let department = fields.optional_id("department_id", &request.department_id);
        let granularity = proto::SummaryGranularity::try_from(request.granularity);
        fields.check(
            "granularity",
            granularity.is_ok(),
            "is not a SummaryGranularity",
        );
        let Some(period) = period else {
            return Err(Error::from(fields.0).into());
        };
        fields.finish()?;
        let weekly = granularity == Ok(proto::SummaryGranularity::Week);
        let rows = self
            .hrm
            .attendance_summary(
                &caller,
                period,
                employee.as_deref(),
                department.as_deref(),
                weekly,
            )
            .await?;
        reply(proto::GetAttendanceSummaryResponse {
            rows: rows.iter().map(convert::summary_row).collect(),
        })
    }
}
