//! Tenants.

use erp_db::scoped;
use erp_kit::auth::TenantId;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
    sea_query::LockType,
};

use super::{entities::tenant, split_list};
use crate::{
    domain::tenant::{Module, Plan, TenantStatus},
    error::{Error, Result},
};

/// A tenant as the rest of the service uses it.
#[derive(Debug, Clone)]
pub struct TenantRecord {
    /// The stored row.
    pub row: tenant::Model,
    /// Its plan, parsed.
    pub plan: Plan,
}

impl TenantRecord {
    fn from_row(row: tenant::Model) -> Self {
        let plan = Plan {
            name: row.plan_name.clone(),
            modules: split_list(&row.enabled_modules)
                .iter()
                .filter_map(|name| Module::from_name(name))
                .collect(),
            max_users: u32::try_from(row.max_users).ok().filter(|limit| *limit > 0),
        };
        Self { row, plan }
    }

    /// Whether users of the tenant may log in.
    pub fn is_active(&self) -> bool {
        TenantStatus::from_name(&self.row.status) == TenantStatus::Active
    }

    /// The tenant id.
    pub fn id(&self) -> TenantId {
        TenantId::new(self.row.id.clone())
    }
}

pub(crate) fn modules_column(plan: &Plan) -> String {
    plan.modules
        .iter()
        .map(|module| module.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Inserts a new tenant.
pub async fn insert(
    db: &impl ConnectionTrait,
    id: &str,
    slug: &str,
    display_name: &str,
    plan: &Plan,
) -> Result<TenantRecord> {
    let now = erp_db::time::now();
    let row = tenant::ActiveModel {
        id: Set(id.to_owned()),
        slug: Set(slug.to_owned()),
        display_name: Set(display_name.to_owned()),
        plan_name: Set(plan.name.clone()),
        enabled_modules: Set(modules_column(plan)),
        max_users: Set(plan
            .max_users
            .map_or(0, |limit| i32::try_from(limit).unwrap_or(i32::MAX))),
        status: Set(TenantStatus::Active.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .map_err(|error| {
        if super::is_unique_violation(&error) {
            Error::AlreadyExists {
                reason: "ERP:AUTH:TENANT_SLUG_TAKEN",
                message: format!("the tenant slug {slug} is taken"),
            }
        } else {
            Error::from(error)
        }
    })?;
    Ok(TenantRecord::from_row(row))
}

/// A tenant by id.
pub async fn get(db: &impl ConnectionTrait, id: &TenantId) -> Result<TenantRecord> {
    erp_db::scoped::<tenant::Entity>(id)
        .find()
        .one(db)
        .await?
        .map(TenantRecord::from_row)
        .ok_or(Error::NotFound("tenant"))
}

/// A tenant by slug (login).
pub async fn find_by_slug(db: &impl ConnectionTrait, slug: &str) -> Result<Option<TenantRecord>> {
    Ok(tenant::Entity::find()
        .filter(tenant::Column::Slug.eq(slug))
        .one(db)
        .await?
        .map(TenantRecord::from_row))
}

/// Replaces a tenant's plan.
pub async fn update_plan(
    db: &impl ConnectionTrait,
    id: &TenantId,
    plan: &Plan,
) -> Result<TenantRecord> {
    let existing = get(db, id).await?;
    let mut row: tenant::ActiveModel = existing.row.into();
    row.plan_name = Set(plan.name.clone());
    row.enabled_modules = Set(modules_column(plan));
    row.max_users = Set(plan
        .max_users
        .map_or(0, |limit| i32::try_from(limit).unwrap_or(i32::MAX)));
    row.updated_at = Set(erp_db::time::now());
    Ok(TenantRecord::from_row(row.update(db).await?))
}

/// Serialises changes that count the tenant's users (the plan's user limit, the last
/// administrator) with a row lock on the tenant until the transaction ends.
pub async fn lock(txn: &impl ConnectionTrait, tenant: &TenantId) -> Result<()> {
    scoped::<tenant::Entity>(tenant)
        .find_locked(txn, tenant.as_str().to_owned(), LockType::Update)
        .await?;
    Ok(())
}
