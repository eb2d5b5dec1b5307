//! Departments.

use erp_db::{PageTokens, scoped, update_versioned};
use erp_kit::auth::TenantId;
use erp_proto::erp::common::v1::{PageRequest, PageResponse};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entities::{department, employee};
use crate::{
    domain::employee::EmployeeStatus,
    error::{Error, Result},
};

/// A validated new department.
#[derive(Debug)]
pub struct NewDepartment {
    /// Unique code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Parent.
    pub parent_id: Option<String>,
    /// Head.
    pub head_employee_id: Option<String>,
}

/// Inserts a department.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    new: NewDepartment,
    actor: &str,
) -> Result<department::Model> {
    let now = erp_db::time::now();
    let code = new.code.clone();
    scoped::<department::Entity>(tenant)
        .stamp(department::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            code: Set(new.code),
            name: Set(new.name),
            parent_id: Set(new.parent_id),
            head_employee_id: Set(new.head_employee_id),
            created_at: Set(now),
            created_by: Set(actor.to_owned()),
            updated_at: Set(now),
            updated_by: Set(actor.to_owned()),
            version: Set(1),
            ..Default::default()
        })
        .insert(db)
        .await
        .map_err(super::taken(
            "ERP:HRM:DEPARTMENT_CODE_TAKEN",
            format!("the department code {code} is taken"),
        ))
}

/// A department of the tenant.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
) -> Result<department::Model> {
    scoped::<department::Entity>(tenant)
        .find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or(Error::NotFound("department"))
}

/// Every department of the tenant, by name (trees, cycle checks).
pub async fn all(db: &impl ConnectionTrait, tenant: &TenantId) -> Result<Vec<department::Model>> {
    Ok(scoped::<department::Entity>(tenant)
        .find()
        .order_by_asc(department::Column::Name)
        .order_by_asc(department::Column::Id)
        .all(db)
        .await?)
}

/// Every department of the tenant, locked until the transaction ends (PostgreSQL; SQLite
/// runs one writer at a time): moves run one at a time, so two moves cannot each pass
/// the cycle check against the other's old parent.
pub async fn all_locked(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
) -> Result<Vec<department::Model>> {
    let mut select = scoped::<department::Entity>(tenant)
        .find()
        .order_by_asc(department::Column::Id);
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        select = select.lock_exclusive();
    }
    Ok(select.all(db).await?)
}

/// Holds a department until the transaction ends, so it is not deleted meanwhile (a
/// delete takes [`all_locked`]); refuses one that is gone with the field that named it.
pub async fn hold(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    field: &str,
) -> Result<()> {
    // Enough to keep the row from being deleted; renames of it go on.
    match scoped::<department::Entity>(tenant)
        .find_locked(db, id.to_owned(), sea_orm::sea_query::LockType::KeyShare)
        .await?
    {
        Some(_) => Ok(()),
        None => Err(Error::field(field, "no such department")),
    }
}

/// A page of departments by name, optionally the children of one.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    tokens: &PageTokens,
    parent: Option<&str>,
    page: Option<&PageRequest>,
) -> Result<(Vec<department::Model>, PageResponse)> {
    let list_key = format!("departments?parent={}", parent.unwrap_or(""));
    let mut select = scoped::<department::Entity>(tenant).find();
    if let Some(parent) = parent {
        select = select.filter(department::Column::ParentId.eq(parent));
    }
    tokens
        .fetch(
            db,
            &list_key,
            page,
            select,
            &[department::Column::Name, department::Column::Id],
            |row| (row.name.clone(), row.id.clone()),
        )
        .await
}

/// Changes of a department; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct DepartmentChanges {
    /// New name.
    pub name: Option<String>,
    /// New parent (`Some(None)`: top level).
    pub parent_id: Option<Option<String>>,
    /// New head (`Some(None)`: none).
    pub head_employee_id: Option<Option<String>>,
}

/// Applies changes at `expected_version` (0: current).
pub async fn update(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    expected_version: i64,
    changes: DepartmentChanges,
    actor: &str,
) -> Result<department::Model> {
    let current = get(db, tenant, id).await?;
    let expected = if expected_version == 0 {
        current.version
    } else {
        expected_version
    };
    let mut row = department::ActiveModel {
        updated_at: Set(erp_db::time::now()),
        updated_by: Set(actor.to_owned()),
        ..Default::default()
    };
    if let Some(name) = changes.name {
        row.name = Set(name);
    }
    if let Some(parent) = changes.parent_id {
        row.parent_id = Set(parent);
    }
    if let Some(head) = changes.head_employee_id {
        row.head_employee_id = Set(head);
    }
    update_versioned(db, tenant, id.to_owned(), expected, row).await?;
    get(db, tenant, id).await
}

/// Deletes an empty department (no sub-departments, no employees who are not terminated).
pub async fn delete(db: &impl ConnectionTrait, tenant: &TenantId, id: &str) -> Result<()> {
    get(db, tenant, id).await?;
    let children = scoped::<department::Entity>(tenant)
        .find()
        .filter(department::Column::ParentId.eq(id))
        .count(db)
        .await?;
    let members = active_members(db, tenant, id).await?;
    if children > 0 || members > 0 {
        return Err(Error::FailedPrecondition {
            reason: "ERP:HRM:DEPARTMENT_NOT_EMPTY",
            message: format!(
                "the department has {children} sub-departments and {members} employees; move them first"
            ),
        });
    }
    scoped::<department::Entity>(tenant)
        .delete_many()
        .filter(department::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Employees of a department who are not terminated.
pub async fn active_members(db: &impl ConnectionTrait, tenant: &TenantId, id: &str) -> Result<u64> {
    Ok(scoped::<employee::Entity>(tenant)
        .find()
        .filter(employee::Column::DepartmentId.eq(id))
        .filter(employee::Column::Status.ne(EmployeeStatus::Terminated.as_str()))
        .count(db)
        .await?)
}
