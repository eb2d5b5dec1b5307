//! Employee use cases, including the hire that creates a login in the auth service.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use erp_kit::{
    auth::{AuthContext, TenantId},
    error::field_violations,
};
use erp_proto::erp::{
    auth::v1::{CreateUserRequest, DisableUserRequest},
    common::v1::{Date, PageRequest, PageResponse},
    events::v1::{EmployeeDeleted, EmployeeHired, EmployeeTerminated, EmployeeUpdated},
};
use sea_orm::{DatabaseTransaction, TransactionTrait};
use secrecy::{ExposeSecret, SecretString};
use tonic::Code;

use super::Hrm;
use crate::{
    domain::employee::{EmployeeStatus, check_status_change, check_termination},
    error::{Error, Result},
    store::{
        self,
        employees::{EmployeeChanges, EmployeeFilter, NewEmployee},
        entities::employee,
    },
};

/// A validated hire, with an optional login to create.
#[derive(Debug)]
pub struct Hire {
    /// The employee.
    pub employee: NewEmployee,
    /// Create a login with this initial password.
    pub login_password: Option<SecretString>,
}

/// Validated changes to an employee.
#[derive(Debug, Default)]
pub struct EmployeeUpdate {
    /// The changes.
    pub changes: EmployeeChanges,
    /// The version the caller read.
    pub expected_version: i64,
}

pub(crate) fn date(value: NaiveDate) -> Date {
    use chrono::Datelike;
    Date {
        year: value.year(),
        month: i32::try_from(value.month()).unwrap_or(0),
        day: i32::try_from(value.day()).unwrap_or(0),
    }
}

impl Hrm {
    /// The manager a hire or update names exists, works here, and is not the employee.
    /// (The department is held inside the write's transaction: [`store::departments::hold`].)
    async fn check_manager(
        &self,
        caller: &AuthContext,
        manager: Option<&str>,
        this: Option<&str>,
    ) -> Result<()> {
        let tenant = &caller.tenant_id;
        if let Some(manager) = manager {
            if Some(manager) == this {
                return Err(Error::field(
                    "manager_id",
                    "an employee cannot manage themselves",
                ));
            }
            let boss = store::employees::get(&self.db, tenant, manager)
                .await
                .map_err(|_| Error::field("manager_id", "no such employee"))?;
            if EmployeeStatus::from_name(&boss.status) == EmployeeStatus::Terminated {
                return Err(Error::field(
                    "manager_id",
                    "the manager's employment has ended",
                ));
            }
        }
        Ok(())
    }

    /// Hires an employee. With a login, the auth service's CreateUser is called with the
    /// caller's token inside the hire's transaction: if it fails, nothing is created.
    pub async fn hire(&self, caller: &AuthContext, hire: Hire) -> Result<employee::Model> {
        let tenant = &caller.tenant_id;
        let new = &hire.employee;
        self.check_manager(caller, new.manager_id.as_deref(), None)
            .await?;
        let id = uuid::Uuid::now_v7().to_string();
        // The row first: a taken employee number or email is refused before any login
        // exists.
        let txn = self.db.begin().await?;
        store::departments::hold(&txn, tenant, &new.department_id, "department_id").await?;
        if let Some(manager) = &new.manager_id {
            store::employees::hold(&txn, tenant, manager, "manager_id").await?;
        }
        let employee = store::employees::insert(&txn, tenant, &id, new, &caller.user_id).await?;
        let Some(password) = &hire.login_password else {
            return self.finish_hire(txn, tenant, employee).await;
        };
        let user_id = self.create_login(new, &id, password).await?;
        let linked = match store::employees::set_user(&txn, tenant, &id, &user_id).await {
            Ok(linked) => self.finish_hire(txn, tenant, linked).await,
            Err(error) => Err(error),
        };
        if linked.is_err() {
            // Nothing of the hire stays: the login it created must not stay usable.
            self.disable_orphan_login(&user_id).await;
        }
        linked
    }

    /// Stages EmployeeHired and commits the hire.
    async fn finish_hire(
        &self,
        txn: DatabaseTransaction,
        tenant: &TenantId,
        employee: employee::Model,
    ) -> Result<employee::Model> {
        self.outbox
            .stage(
                &txn,
                tenant,
                &employee.id,
                &EmployeeHired {
                    id: employee.id.clone(),
                    employee_id: employee.employee_number.clone(),
                    first_name: employee.first_name.clone(),
                    last_name: employee.last_name.clone(),
                    email: employee.email.clone(),
                    department_id: employee.department_id.clone(),
                    position: employee.position.clone(),
                    hire_date: Some(date(employee.hire_date)),
                    manager_id: employee.manager_id.clone().unwrap_or_default(),
                    user_id: employee.user_id.clone().unwrap_or_default(),
                },
            )
            .await?;
        txn.commit().await?;
        Ok(employee)
    }

    /// Disables a login created for a hire that then failed (best effort: the failure is
    /// logged with the user id for an operator when the auth service cannot be reached).
    async fn disable_orphan_login(&self, user_id: &str) {
        let request = DisableUserRequest {
            user_id: user_id.to_owned(),
            reason: "the hire that created this login did not complete".to_owned(),
        };
        if let Err(status) = self.auth.clone().disable_user(request).await {
            tracing::error!(
                user = %user_id,
                code = ?status.code(),
                "a failed hire left its login enabled; disable it by hand"
            );
        }
    }

    async fn create_login(
        &self,
        new: &NewEmployee,
        employee_id: &str,
        password: &SecretString,
    ) -> Result<String> {
        let request = CreateUserRequest {
            email: new.email.clone(),
            password: password.expose_secret().to_owned(),
            display_name: format!("{} {}", new.first_name, new.last_name),
            roles: vec!["employee".to_owned()],
            employee_id: employee_id.to_owned(),
        };
        match self.auth.clone().create_user(request).await {
            Ok(response) => response
                .into_inner()
                .user
                .map(|user| user.user_id)
                .ok_or_else(|| {
                    Error::Unexpected(anyhow::anyhow!("CreateUser answered without a user"))
                }),
            Err(status) => Err(match status.code() {
                Code::InvalidArgument => {
                    let mut errors = erp_kit::error::ValidationError::new();
                    for (field, description) in field_violations(&status) {
                        let field = if field == "password" {
                            "initial_password".to_owned()
                        } else {
                            field
                        };
                        errors.add(field, description);
                    }
                    if errors.is_empty() {
                        errors.add("initial_password", status.message());
                    }
                    Error::Validation(errors)
                }
                Code::AlreadyExists => Error::AlreadyExists {
                    reason: "ERP:HRM:LOGIN_EXISTS",
                    message: "a login with that email exists already; hire without create_login, \
                              or with another work email"
                        .to_owned(),
                },
                Code::PermissionDenied | Code::Unauthenticated => Error::PermissionDenied(
                    "the auth service refused to create the login: it needs the permission \
                     auth.user.write, and the login's role may grant nothing you do not hold",
                ),
                Code::FailedPrecondition => Error::FailedPrecondition {
                    reason: "ERP:HRM:LOGIN_REFUSED",
                    message: format!("the auth service refused the login: {}", status.message()),
                },
                _ => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "CreateUser failed");
                    Error::Unavailable(
                        "the auth service is unavailable; the employee was not hired, try again"
                            .to_owned(),
                    )
                }
            }),
        }
    }

    /// An employee.
    pub async fn get_employee(&self, caller: &AuthContext, id: &str) -> Result<employee::Model> {
        store::employees::get(&self.db, &caller.tenant_id, id).await
    }

    /// A page of employees.
    pub async fn list_employees(
        &self,
        caller: &AuthContext,
        filter: &EmployeeFilter,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<employee::Model>, PageResponse)> {
        store::employees::list(&self.db, &caller.tenant_id, &self.page_tokens, filter, page).await
    }

    /// The employees of a department, optionally with its sub-departments.
    pub async fn employees_by_department(
        &self,
        caller: &AuthContext,
        department: &str,
        include_subdepartments: bool,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<employee::Model>, PageResponse)> {
        let tenant = &caller.tenant_id;
        store::departments::get(&self.db, tenant, department).await?;
        let mut ids = vec![department.to_owned()];
        if include_subdepartments {
            let all = store::departments::all(&self.db, tenant).await?;
            let mut children: HashMap<String, Vec<String>> = HashMap::new();
            for item in &all {
                if let Some(parent) = &item.parent_id {
                    children
                        .entry(parent.clone())
                        .or_default()
                        .push(item.id.clone());
                }
            }
            let mut seen: HashSet<String> = HashSet::from([department.to_owned()]);
            let mut queue = vec![department.to_owned()];
            while let Some(next) = queue.pop() {
                for child in children.get(&next).into_iter().flatten() {
                    if seen.insert(child.clone()) {
                        ids.push(child.clone());
                        queue.push(child.clone());
                    }
                }
            }
        }
        let filter = EmployeeFilter {
            department_ids: Some(ids),
            subtree_of: include_subdepartments.then(|| department.to_owned()),
            ..Default::default()
        };
        store::employees::list(&self.db, tenant, &self.page_tokens, &filter, page).await
    }

    /// Updates an employee at the version the caller read.
    pub async fn update_employee(
        &self,
        caller: &AuthContext,
        id: &str,
        update: EmployeeUpdate,
    ) -> Result<employee::Model> {
        let tenant = &caller.tenant_id;
        let current = store::employees::get(&self.db, tenant, id).await?;
        let from = EmployeeStatus::from_name(&current.status);
        if let Some(to) = update.changes.status {
            check_status_change(from, to)
                .map_err(|message| Error::field("employee.status", message))?;
        } else if from == EmployeeStatus::Terminated {
            return Err(Error::FailedPrecondition {
                reason: "ERP:HRM:EMPLOYEE_TERMINATED",
                message: "a terminated employee cannot be changed".to_owned(),
            });
        }
        let manager = update.changes.manager_id.clone().flatten();
        self.check_manager(caller, manager.as_deref(), Some(id))
            .await?;
        let changed = changed_fields(&update.changes);
        let txn = self.db.begin().await?;
        // The tenant's reporting lines first, before any row: a change waiting for it
        // holds nothing another change needs.
        if manager.is_some() {
            store::employees::lock_reporting_lines(&txn, tenant).await?;
        }
        if let Some(department) = &update.changes.department_id {
            store::departments::hold(&txn, tenant, department, "department_id").await?;
        }
        if let Some(manager) = &manager {
            store::employees::hold(&txn, tenant, manager, "manager_id").await?;
            if store::employees::is_in_reporting_line(&txn, tenant, manager, id).await? {
                return Err(Error::FailedPrecondition {
                    reason: "ERP:HRM:REPORTING_CYCLE",
                    message: "the new manager reports to this employee, directly or through \
                              others; a reporting line cannot loop"
                        .to_owned(),
                });
            }
        }
        let employee = store::employees::update(
            &txn,
            tenant,
            id,
            update.expected_version,
            update.changes,
            &caller.user_id,
        )
        .await?;
        self.outbox
            .stage(
                &txn,
                tenant,
                id,
                &EmployeeUpdated {
                    id: id.to_owned(),
                    changed_fields: changed,
                    first_name: employee.first_name.clone(),
                    last_name: employee.last_name.clone(),
                    email: employee.email.clone(),
                    department_id: employee.department_id.clone(),
                    position: employee.position.clone(),
                    manager_id: employee.manager_id.clone().unwrap_or_default(),
                    version: employee.version,
                },
            )
            .await?;
        txn.commit().await?;
        Ok(employee)
    }

    /// Ends an employment: status terminated, open leave requests cancelled, and the
    /// EmployeeTerminated event (the auth service disables the linked login).
    pub async fn terminate_employee(
        &self,
        caller: &AuthContext,
        id: &str,
        on: NaiveDate,
        reason: &str,
    ) -> Result<(employee::Model, usize)> {
        let tenant = &caller.tenant_id;
        let current = store::employees::get(&self.db, tenant, id).await?;
        check_termination(
            EmployeeStatus::from_name(&current.status),
            current.hire_date,
            on,
        )
        .map_err(|message| Error::FailedPrecondition {
            reason: "ERP:HRM:CANNOT_TERMINATE",
            message,
        })?;
        let txn = self.db.begin().await?;
        let changes = EmployeeChanges {
            termination: Some((on, reason.to_owned())),
            ..Default::default()
        };
        let employee =
            store::employees::update(&txn, tenant, id, current.version, changes, &caller.user_id)
                .await?;
        // The row update above holds the employee: a request submitted meanwhile either
        // committed before (and is cancelled here) or sees the termination.
        let open = store::leave::pending(&txn, tenant, id, None).await?;
        // Approved leave after the last day will not be taken: cancelled, days restored.
        let after_leaving = store::leave::approved_starting_after(&txn, tenant, id, on).await?;
        for (request, restore) in open
            .iter()
            .map(|request| (request, false))
            .chain(after_leaving.iter().map(|request| (request, true)))
        {
            self.cancel_within(&txn, tenant, request, restore, &caller.user_id)
                .await?;
        }
        self.outbox
            .stage(
                &txn,
                tenant,
                id,
                &EmployeeTerminated {
                    id: id.to_owned(),
                    employee_id: employee.employee_number.clone(),
                    termination_date: Some(date(on)),
                    reason: reason.to_owned(),
                    user_id: employee.user_id.clone().unwrap_or_default(),
                },
            )
            .await?;
        txn.commit().await?;
        Ok((employee, open.len() + after_leaving.len()))
    }

    /// Deletes an employee created in error: one with no history, no reports and no
    /// department to head (checked under the row's lock, which every write naming the
    /// employee holds too). EmployeeDeleted disables the linked login.
    pub async fn delete_employee(&self, caller: &AuthContext, id: &str) -> Result<()> {
        let tenant = &caller.tenant_id;
        let txn = self.db.begin().await?;
        let employee = store::employees::lock(&txn, tenant, id).await?;
        let deleted = store::employees::delete(&txn, tenant, employee).await?;
        self.outbox
            .stage(
                &txn,
                tenant,
                id,
                &EmployeeDeleted {
                    id: id.to_owned(),
                    employee_id: deleted.employee_number,
                    user_id: deleted.user_id.unwrap_or_default(),
                },
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }
}

fn changed_fields(changes: &EmployeeChanges) -> Vec<String> {
    [
        ("first_name", changes.first_name.is_some()),
        ("last_name", changes.last_name.is_some()),
        ("email", changes.email.is_some()),
        ("department_id", changes.department_id.is_some()),
        ("position", changes.position.is_some()),
        ("manager_id", changes.manager_id.is_some()),
        ("employment_type", changes.employment_type.is_some()),
        ("phone", changes.phone.is_some()),
        ("status", changes.status.is_some()),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(name, _)| name.to_owned())
    .collect()
}
