//! HRM's use cases: each validates with the domain, decides who may act (employees on
//! their own records, managers on their reports', HR on everyone's), works through the
//! store in one transaction with its outbox events, and returns plain values.

mod attendance;
mod departments;
mod employees;
mod leave;

use erp_db::PageTokens;
use erp_events::Outbox;
use erp_kit::{
    auth::{AuthContext, TenantId},
    client::MeshChannel,
};
use erp_proto::erp::auth::v1::auth_service_client::AuthServiceClient;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::ExposeSecret;

pub use departments::{DepartmentNode, DepartmentUpdate};
pub use employees::{EmployeeUpdate, Hire};
pub use leave::{Balance, LeaveRequestView, NewLeaveRequest, RequestListFilter};

use crate::{
    config::{HrmSettings, SERVICE_NAME},
    domain::{
        access::{Actor, HR_PERMISSION, Subject},
        attendance::WorkdayPolicy,
        employee::EmployeeStatus,
    },
    error::{Error, Result},
    store::{self, entities::employee},
};

/// The service's state and use cases.
pub struct Hrm {
    pub(crate) db: DatabaseConnection,
    pub(crate) outbox: Outbox,
    pub(crate) page_tokens: PageTokens,
    pub(crate) workday: WorkdayPolicy,
    pub(crate) auth: AuthServiceClient<MeshChannel>,
}

impl std::fmt::Debug for Hrm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hrm").finish_non_exhaustive()
    }
}

/// What the access rules need about one employee, owned.
#[derive(Debug, Clone)]
pub(crate) struct SubjectFacts {
    pub(crate) employee_id: String,
    pub(crate) manager_id: Option<String>,
    pub(crate) department_head_id: Option<String>,
}

impl SubjectFacts {
    pub(crate) fn subject(&self) -> Subject<'_> {
        Subject {
            employee_id: &self.employee_id,
            manager_id: self.manager_id.as_deref(),
            department_head_id: self.department_head_id.as_deref(),
        }
    }
}

impl Hrm {
    /// The use cases over `db`, calling the auth service through `auth`.
    pub fn new(
        db: DatabaseConnection,
        settings: &HrmSettings,
        auth: AuthServiceClient<MeshChannel>,
    ) -> Self {
        Self {
            db,
            outbox: Outbox::new(SERVICE_NAME),
            page_tokens: PageTokens::new(settings.page_token_secret.expose_secret()),
            workday: settings.workday,
            auth,
        }
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The caller as the access rules see them.
    pub(crate) async fn actor(&self, caller: &AuthContext) -> Result<Actor> {
        let own =
            store::employees::find_by_user(&self.db, &caller.tenant_id, &caller.user_id).await?;
        Ok(Actor {
            user_id: caller.user_id.clone(),
            employee_id: own.map(|employee| employee.id),
            is_hr: caller.has_permission(HR_PERMISSION),
        })
    }

    pub(crate) async fn facts(
        &self,
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        employee: &employee::Model,
    ) -> Result<SubjectFacts> {
        let head = store::departments::get(db, tenant, &employee.department_id)
            .await
            .ok()
            .and_then(|department| department.head_employee_id);
        Ok(SubjectFacts {
            employee_id: employee.id.clone(),
            manager_id: employee.manager_id.clone(),
            department_head_id: head,
        })
    }

    /// Today in the tenant's local time (the workday policy's offset): leave and
    /// attendance dates are local days.
    pub(crate) fn today(&self) -> chrono::NaiveDate {
        self.workday.local_day(chrono::Utc::now())
    }

    /// The facts for deciding leave: a manager or department head who cannot act on it
    /// (terminated, or without a login, or the requester themself: a head asking for
    /// their own leave) counts as absent, so that their level goes to HR (at submission)
    /// or HR may decide it (a request already waiting for them).
    pub(crate) async fn approval_facts(
        &self,
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        employee: &employee::Model,
    ) -> Result<SubjectFacts> {
        let mut facts = self.facts(db, tenant, employee).await?;
        for approver in [&mut facts.manager_id, &mut facts.department_head_id] {
            let Some(id) = approver.as_deref() else {
                continue;
            };
            if id == employee.id {
                *approver = None;
                continue;
            }
            let can_act = store::employees::get(db, tenant, id)
                .await
                .ok()
                .is_some_and(|record| {
                    record.user_id.is_some()
                        && EmployeeStatus::from_name(&record.status) != EmployeeStatus::Terminated
                });
            if !can_act {
                *approver = None;
            }
        }
        Ok(facts)
    }

    /// The employee a self-service call is about: the named one, or the caller's own.
    pub(crate) async fn target_employee(
        &self,
        caller: &AuthContext,
        actor: &Actor,
        named: Option<&str>,
    ) -> Result<employee::Model> {
        let id = match (named, &actor.employee_id) {
            (Some(id), _) => id.to_owned(),
            (None, Some(own)) => own.clone(),
            (None, None) => {
                return Err(Error::FailedPrecondition {
                    reason: "ERP:HRM:NO_EMPLOYEE_RECORD",
                    message: "your login is not linked to an employee record; name the employee"
                        .to_owned(),
                });
            }
        };
        let employee = store::employees::get(&self.db, &caller.tenant_id, &id).await?;
        let facts = self.facts(&self.db, &caller.tenant_id, &employee).await?;
        if !actor.may_act_for(&facts.subject()) {
            // Not the caller's business: as invisible as another tenant's employee.
            return Err(Error::NotFound("employee"));
        }
        Ok(employee)
    }

    /// The employees whose leave and attendance the caller may see: `None` for HR (all),
    /// otherwise their own record, their direct reports and the members of departments
    /// they head (the same people `may_act_for` lets them act for).
    pub(crate) async fn visible_employees(
        &self,
        caller: &AuthContext,
        actor: &Actor,
    ) -> Result<Option<Vec<String>>> {
        if actor.is_hr {
            return Ok(None);
        }
        let Some(own) = &actor.employee_id else {
            return Ok(Some(Vec::new()));
        };
        let tenant = &caller.tenant_id;
        let mut visible = vec![own.clone()];
        let reports = store::employees::EmployeeFilter {
            manager_id: Some(own.clone()),
            ..Default::default()
        };
        visible.extend(self.employee_ids(tenant, &reports).await?);
        let headed: Vec<String> = store::departments::all(&self.db, tenant)
            .await?
            .into_iter()
            .filter(|department| department.head_employee_id.as_ref() == Some(own))
            .map(|department| department.id)
            .collect();
        if !headed.is_empty() {
            let members = store::employees::EmployeeFilter {
                department_ids: Some(headed),
                ..Default::default()
            };
            visible.extend(self.employee_ids(tenant, &members).await?);
        }
        visible.sort();
        visible.dedup();
        Ok(Some(visible))
    }

    /// The ids of every employee `filter` selects, page by page.
    async fn employee_ids(
        &self,
        tenant: &TenantId,
        filter: &store::employees::EmployeeFilter,
    ) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut page = erp_proto::erp::common::v1::PageRequest {
            page_size: 500,
            page_token: String::new(),
        };
        loop {
            let (employees, next) =
                store::employees::list(&self.db, tenant, &self.page_tokens, filter, Some(&page))
                    .await?;
            ids.extend(employees.into_iter().map(|employee| employee.id));
            if next.next_page_token.is_empty() {
                return Ok(ids);
            }
            page.page_token = next.next_page_token;
        }
    }
}
