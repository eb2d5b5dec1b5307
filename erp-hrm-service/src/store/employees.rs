//! Employees.

use chrono::NaiveDate;
use erp_db::{PageTokens, scoped, update_versioned};
use erp_kit::auth::TenantId;
use erp_proto::erp::common::v1::{PageRequest, PageResponse};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
    Statement, Value, sea_query::LockType,
};

use super::entities::{attendance_record, department, employee, leave_ledger, leave_request};
use crate::{
    domain::employee::{EmployeeStatus, EmploymentType},
    error::{Error, Result},
};

/// A validated hire.
#[derive(Debug, Clone)]
pub struct NewEmployee {
    /// Employee number.
    pub employee_number: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Work email (normalised).
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Department.
    pub department_id: String,
    /// Job title.
    pub position: String,
    /// Manager.
    pub manager_id: Option<String>,
    /// First day.
    pub hire_date: NaiveDate,
    /// Contract.
    pub employment_type: EmploymentType,
}

fn unique_error(error: sea_orm::DbErr) -> Error {
    if erp_db::is_unique_violation(&error) {
        Error::AlreadyExists {
            reason: "ERP:HRM:EMPLOYEE_EXISTS",
            message: "an employee with that employee number or work email exists in this tenant"
                .to_owned(),
        }
    } else {
        Error::from(error)
    }
}

/// Inserts an employee.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    new: &NewEmployee,
    actor: &str,
) -> Result<employee::Model> {
    let now = erp_db::time::now();
    scoped::<employee::Entity>(tenant)
        .stamp(employee::ActiveModel {
            id: Set(id.to_owned()),
            employee_number: Set(new.employee_number.clone()),
            first_name: Set(new.first_name.clone()),
            last_name: Set(new.last_name.clone()),
            email: Set(new.email.clone()),
            phone: Set(new.phone.clone()),
            department_id: Set(new.department_id.clone()),
            position: Set(new.position.clone()),
            manager_id: Set(new.manager_id.clone()),
            hire_date: Set(new.hire_date),
            employment_type: Set(new.employment_type.as_str().to_owned()),
            status: Set(EmployeeStatus::Active.as_str().to_owned()),
            termination_date: Set(None),
            termination_reason: Set(None),
            user_id: Set(None),
            created_at: Set(now),
            created_by: Set(actor.to_owned()),
            updated_at: Set(now),
            updated_by: Set(actor.to_owned()),
            version: Set(1),
            ..Default::default()
        })
        .insert(db)
        .await
        .map_err(unique_error)
}

/// Links the employee's login.
pub async fn set_user(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    user_id: &str,
) -> Result<employee::Model> {
    let mut row: employee::ActiveModel = get(db, tenant, id).await?.into();
    row.user_id = Set(Some(user_id.to_owned()));
    Ok(row.update(db).await?)
}

/// An employee of the tenant.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
) -> Result<employee::Model> {
    scoped::<employee::Entity>(tenant)
        .find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or(Error::NotFound("employee"))
}

/// The ids of every employee of a department (all of them: summaries count everyone).
pub async fn ids_in_department(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    department: &str,
) -> Result<Vec<String>> {
    Ok(scoped::<employee::Entity>(tenant)
        .find()
        .filter(employee::Column::DepartmentId.eq(department))
        .select_only()
        .column(employee::Column::Id)
        .into_tuple()
        .all(db)
        .await?)
}

/// Locks an employee's row until the transaction ends, so concurrent leave decisions,
/// attendance writes and a delete for one employee run one at a time; the row, or
/// NOT_FOUND once the employee is gone (deleted while this waited).
pub async fn lock(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
) -> Result<employee::Model> {
    scoped::<employee::Entity>(tenant)
        .find_locked(db, id.to_owned(), LockType::Update)
        .await?
        .ok_or(Error::NotFound("employee"))
}

/// Holds an employee another row is about to name (as manager, department head, or owner
/// of an allocation) until the transaction ends, so a delete cannot remove them meanwhile
/// (a delete takes [`lock`]) while updates of them go on; refuses one that is gone with
/// the field that named them.
pub async fn hold(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    field: &str,
) -> Result<()> {
    match scoped::<employee::Entity>(tenant)
        .find_locked(db, id.to_owned(), LockType::KeyShare)
        .await?
    {
        Some(_) => Ok(()),
        None => Err(Error::field(field, "no such employee")),
    }
}

/// Serialises the tenant's changes of managers until the transaction ends, so two
/// changes cannot each pass the cycle check against the other's old manager.
pub async fn lock_reporting_lines(db: &impl ConnectionTrait, tenant: &TenantId) -> Result<()> {
    Ok(
        erp_db::advisory_xact_lock(db, &format!("erp-hrm:reporting-lines:{}", tenant.as_str()))
            .await?,
    )
}

/// Whether `employee` is `manager` or above them in the reporting line (so `manager`
/// reporting to `employee` would close a cycle). A line longer than 10,000 counts as a
/// cycle.
pub async fn is_in_reporting_line(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    manager: &str,
    employee: &str,
) -> Result<bool> {
    const LINE: &str = "WITH RECURSIVE line(id, manager_id, depth) AS ( \
        SELECT id, manager_id, 0 FROM employees WHERE tenant_id = $1 AND id = $2 \
        UNION ALL \
        SELECT e.id, e.manager_id, line.depth + 1 FROM employees e \
        JOIN line ON e.id = line.manager_id AND e.tenant_id = $1 \
        WHERE line.depth <= 10000 \
    ) SELECT COUNT(*) AS hits FROM line WHERE id = $3 OR depth > 10000";
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            erp_db::numbered_placeholders(backend, LINE),
            [
                Value::from(tenant.as_str().to_owned()),
                Value::from(manager.to_owned()),
                Value::from(employee.to_owned()),
            ],
        ))
        .await?;
    let hits: i64 = match row {
        Some(row) => row.try_get("", "hits")?,
        None => 0,
    };
    Ok(hits > 0)
}

/// The employee record of a login, if any.
pub async fn find_by_user(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    user_id: &str,
) -> Result<Option<employee::Model>> {
    Ok(scoped::<employee::Entity>(tenant)
        .find()
        .filter(employee::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}

/// Filters of an employee list.
#[derive(Debug, Default, Clone)]
pub struct EmployeeFilter {
    /// Only these departments.
    pub department_ids: Option<Vec<String>>,
    /// `department_ids` is this department's subtree: page tokens name the department
    /// instead of the set, so a sub-department added between pages keeps them good.
    pub subtree_of: Option<String>,
    /// Only this status.
    pub status: Option<EmployeeStatus>,
    /// Only direct reports of this employee.
    pub manager_id: Option<String>,
}

/// A page of employees by last name, first name.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    tokens: &PageTokens,
    filter: &EmployeeFilter,
    page: Option<&PageRequest>,
) -> Result<(Vec<employee::Model>, PageResponse)> {
    let departments = match (&filter.subtree_of, &filter.department_ids) {
        (Some(root), _) => format!("subtree:{root}"),
        (None, Some(ids)) => ids.join(","),
        (None, None) => String::new(),
    };
    let list_key = format!(
        "employees?departments={departments}&status={}&manager={}",
        filter.status.map_or("", EmployeeStatus::as_str),
        filter.manager_id.as_deref().unwrap_or("")
    );
    let mut select = scoped::<employee::Entity>(tenant).find();
    if let Some(departments) = &filter.department_ids {
        select = select.filter(employee::Column::DepartmentId.is_in(departments.clone()));
    }
    if let Some(status) = filter.status {
        select = select.filter(employee::Column::Status.eq(status.as_str()));
    }
    if let Some(manager) = &filter.manager_id {
        select = select.filter(employee::Column::ManagerId.eq(manager.as_str()));
    }
    tokens
        .fetch(
            db,
            &list_key,
            page,
            select,
            &[
                employee::Column::LastName,
                employee::Column::FirstName,
                employee::Column::Id,
            ],
            |row| {
                (
                    row.last_name.clone(),
                    row.first_name.clone(),
                    row.id.clone(),
                )
            },
        )
        .await
}

/// Changes of an employee; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct EmployeeChanges {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Work email.
    pub email: Option<String>,
    /// Department.
    pub department_id: Option<String>,
    /// Job title.
    pub position: Option<String>,
    /// Manager (`Some(None)`: none).
    pub manager_id: Option<Option<String>>,
    /// Contract.
    pub employment_type: Option<EmploymentType>,
    /// Phone.
    pub phone: Option<String>,
    /// Active or on leave.
    pub status: Option<EmployeeStatus>,
    /// Terminated on.
    pub termination: Option<(NaiveDate, String)>,
}

/// Applies changes if the employee is still at `expected_version`.
pub async fn update(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    expected_version: i64,
    changes: EmployeeChanges,
    actor: &str,
) -> Result<employee::Model> {
    let mut row = employee::ActiveModel {
        updated_at: Set(erp_db::time::now()),
        updated_by: Set(actor.to_owned()),
        ..Default::default()
    };
    if let Some(value) = changes.first_name {
        row.first_name = Set(value);
    }
    if let Some(value) = changes.last_name {
        row.last_name = Set(value);
    }
    if let Some(value) = changes.email {
        row.email = Set(value);
    }
    if let Some(value) = changes.department_id {
        row.department_id = Set(value);
    }
    if let Some(value) = changes.position {
        row.position = Set(value);
    }
    if let Some(value) = changes.manager_id {
        row.manager_id = Set(value);
    }
    if let Some(value) = changes.employment_type {
        row.employment_type = Set(value.as_str().to_owned());
    }
    if let Some(value) = changes.phone {
        row.phone = Set(value);
    }
    if let Some(value) = changes.status {
        row.status = Set(value.as_str().to_owned());
    }
    if let Some((date, reason)) = changes.termination {
        row.status = Set(EmployeeStatus::Terminated.as_str().to_owned());
        row.termination_date = Set(Some(date));
        row.termination_reason = Set(Some(reason));
    }
    update_versioned(db, tenant, id.to_owned(), expected_version, row)
        .await
        .map_err(|error| match error {
            erp_db::DbError::Database(db_error) => unique_error(db_error),
            other => Error::from(other),
        })?;
    get(db, tenant, id).await
}

/// Deletes an employee created in error; refused once it has history.
pub async fn delete(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    deleted: employee::Model,
) -> Result<employee::Model> {
    let id = deleted.id.as_str();
    let heads = scoped::<department::Entity>(tenant)
        .find()
        .filter(department::Column::HeadEmployeeId.eq(id))
        .count(db)
        .await?;
    if heads > 0 {
        return Err(Error::FailedPrecondition {
            reason: "ERP:HRM:EMPLOYEE_HEADS_DEPARTMENT",
            message: "the employee heads a department; name another head first".to_owned(),
        });
    }
    let history = scoped::<leave_request::Entity>(tenant)
        .find()
        .filter(leave_request::Column::EmployeeId.eq(id))
        .count(db)
        .await?
        + scoped::<leave_ledger::Entity>(tenant)
            .find()
            .filter(leave_ledger::Column::EmployeeId.eq(id))
            .count(db)
            .await?
        + scoped::<attendance_record::Entity>(tenant)
            .find()
            .filter(attendance_record::Column::EmployeeId.eq(id))
            .count(db)
            .await?
        + scoped::<employee::Entity>(tenant)
            .find()
            .filter(employee::Column::ManagerId.eq(id))
            .count(db)
            .await?;
    if history > 0 {
        return Err(Error::FailedPrecondition {
            reason: "ERP:HRM:EMPLOYEE_HAS_HISTORY",
            message:
                "the employee has leave, attendance or reports; terminate the employment instead"
                    .to_owned(),
        });
    }
    scoped::<employee::Entity>(tenant)
        .delete_many()
        .filter(employee::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(deleted)
}
