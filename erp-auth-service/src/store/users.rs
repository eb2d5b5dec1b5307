//! Users and their role assignments.

use std::collections::BTreeMap;

use erp_db::{PageTokens, scoped, update_versioned};
use erp_kit::auth::TenantId;
use erp_proto::erp::common::v1::{PageRequest, PageResponse};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};

use super::entities::{user, user_role};
use crate::{
    domain::user::{Email, UserStatus},
    error::{Error, Result},
};

/// A user with its roles.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// The stored row.
    pub row: user::Model,
    /// Assigned role names, sorted.
    pub roles: Vec<String>,
}

impl UserRecord {
    /// Whether the user may log in.
    pub fn is_active(&self) -> bool {
        UserStatus::from_name(&self.row.status) == UserStatus::Active
    }
}

/// What a new user is made of (already validated and hashed).
#[derive(Debug)]
pub struct NewUserRow<'a> {
    /// Login email.
    pub email: &'a Email,
    /// Display name.
    pub display_name: &'a str,
    /// PHC string.
    pub password_hash: String,
    /// Roles to assign.
    pub roles: &'a [String],
    /// The HRM employee it belongs to.
    pub employee_id: Option<&'a str>,
    /// Who creates it.
    pub created_by: &'a str,
}

fn email_taken(email: &Email) -> Error {
    Error::AlreadyExists {
        reason: "ERP:AUTH:EMAIL_TAKEN",
        message: format!(
            "a user with the email {} exists in this tenant",
            email.as_str()
        ),
    }
}

/// Inserts a user and its roles.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    new: NewUserRow<'_>,
) -> Result<UserRecord> {
    let now = erp_db::time::now();
    let row = scoped::<user::Entity>(tenant)
        .stamp(user::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            email: Set(new.email.as_str().to_owned()),
            display_name: Set(new.display_name.to_owned()),
            password_hash: Set(new.password_hash),
            status: Set(UserStatus::Active.as_str().to_owned()),
            employee_id: Set(new
                .employee_id
                .filter(|id| !id.is_empty())
                .map(str::to_owned)),
            last_login_at: Set(None),
            created_at: Set(now),
            created_by: Set(new.created_by.to_owned()),
            updated_at: Set(now),
            updated_by: Set(new.created_by.to_owned()),
            version: Set(1),
            ..Default::default()
        })
        .insert(db)
        .await
        .map_err(|error| {
            if super::is_unique_violation(&error) {
                email_taken(new.email)
            } else {
                Error::from(error)
            }
        })?;
    for role in new.roles {
        assign_role(db, tenant, &row.id, role).await?;
    }
    let mut roles = new.roles.to_vec();
    roles.sort();
    roles.dedup();
    Ok(UserRecord { row, roles })
}

/// The roles of users, by user id.
async fn roles_of(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    user_ids: &[String],
) -> Result<BTreeMap<String, Vec<String>>> {
    let rows = scoped::<user_role::Entity>(tenant)
        .find()
        .filter(user_role::Column::UserId.is_in(user_ids.to_vec()))
        .all(db)
        .await?;
    let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        roles.entry(row.user_id).or_default().push(row.role);
    }
    for assigned in roles.values_mut() {
        assigned.sort();
    }
    Ok(roles)
}

async fn with_roles(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    row: user::Model,
) -> Result<UserRecord> {
    let roles = roles_of(db, tenant, std::slice::from_ref(&row.id))
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    Ok(UserRecord { row, roles })
}

/// A user of the tenant; another tenant's user is not found.
pub async fn get(db: &impl ConnectionTrait, tenant: &TenantId, id: &str) -> Result<UserRecord> {
    let row = scoped::<user::Entity>(tenant)
        .find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or(Error::NotFound("user"))?;
    with_roles(db, tenant, row).await
}

/// A user of the tenant by login email.
pub async fn find_by_email(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    email: &Email,
) -> Result<Option<UserRecord>> {
    match scoped::<user::Entity>(tenant)
        .find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?
    {
        Some(row) => Ok(Some(with_roles(db, tenant, row).await?)),
        None => Ok(None),
    }
}

/// Active users of the tenant (for the plan's user limit).
pub async fn count_active(db: &impl ConnectionTrait, tenant: &TenantId) -> Result<u64> {
    Ok(scoped::<user::Entity>(tenant)
        .find()
        .filter(user::Column::Status.eq(UserStatus::Active.as_str()))
        .count(db)
        .await?)
}

/// Filters of a user list.
#[derive(Debug, Default)]
pub struct UserFilter {
    /// Only this status.
    pub status: Option<UserStatus>,
    /// Only holders of this role.
    pub role: Option<String>,
}

/// One page of the tenant's users, by email.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    tokens: &PageTokens,
    filter: &UserFilter,
    page: Option<&PageRequest>,
) -> Result<(Vec<UserRecord>, PageResponse)> {
    let list_key = format!(
        "users?status={}&role={}",
        filter.status.map_or("", UserStatus::as_str),
        filter.role.as_deref().unwrap_or("")
    );
    let mut select = scoped::<user::Entity>(tenant).find();
    if let Some(status) = filter.status {
        select = select.filter(user::Column::Status.eq(status.as_str()));
    }
    if let Some(role) = &filter.role {
        let holders: Vec<String> = scoped::<user_role::Entity>(tenant)
            .find()
            .filter(user_role::Column::Role.eq(role.as_str()))
            .select_only()
            .column(user_role::Column::UserId)
            .into_tuple()
            .all(db)
            .await?;
        select = select.filter(user::Column::Id.is_in(holders));
    }
    let (rows, page) = tokens
        .fetch::<_, _, Error>(
            db,
            &list_key,
            page,
            select,
            &[user::Column::Email, user::Column::Id],
            |row| (row.email.clone(), row.id.clone()),
        )
        .await?;
    let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
    let mut roles = roles_of(db, tenant, &ids).await?;
    let users = rows
        .into_iter()
        .map(|row| {
            let assigned = roles.remove(&row.id).unwrap_or_default();
            UserRecord {
                row,
                roles: assigned,
            }
        })
        .collect();
    Ok((users, page))
}

/// Changes of `update`.
#[derive(Debug, Default)]
pub struct UserChanges<'a> {
    /// New email.
    pub email: Option<&'a Email>,
    /// New display name.
    pub display_name: Option<&'a str>,
}

/// Applies changes; `expected_version` 0 skips the concurrency check.
pub async fn update(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    expected_version: i64,
    changes: UserChanges<'_>,
    actor: &str,
) -> Result<UserRecord> {
    let current = get(db, tenant, id).await?;
    let expected = if expected_version == 0 {
        current.row.version
    } else {
        expected_version
    };
    let mut row = user::ActiveModel {
        updated_at: Set(erp_db::time::now()),
        updated_by: Set(actor.to_owned()),
        ..Default::default()
    };
    if let Some(email) = changes.email {
        row.email = Set(email.as_str().to_owned());
    }
    if let Some(name) = changes.display_name {
        row.display_name = Set(name.to_owned());
    }
    update_versioned(db, tenant, id.to_owned(), expected, row)
        .await
        .map_err(|error| match (error, changes.email) {
            (erp_db::DbError::Database(db_error), Some(email))
                if super::is_unique_violation(&db_error) =>
            {
                email_taken(email)
            }
            (error, _) => Error::from(error),
        })?;
    get(db, tenant, id).await
}

/// Moves the user from status `from` to `to` (one conditional UPDATE, bumping the
/// version); false when the user was not in `from`. No version check: a status change
/// must not fail because someone renamed the user meanwhile.
pub async fn change_status(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    from: UserStatus,
    to: UserStatus,
    actor: &str,
) -> Result<bool> {
    let updated = scoped::<user::Entity>(tenant)
        .update_many()
        .col_expr(user::Column::Status, Expr::value(to.as_str()))
        .col_expr(
            user::Column::Version,
            Expr::col(user::Column::Version).add(1),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(erp_db::time::now()))
        .col_expr(user::Column::UpdatedBy, Expr::value(actor))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::Status.eq(from.as_str()))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        // Not in `from`, or not there at all: the latter is NOT_FOUND.
        get(db, tenant, id).await?;
    }
    Ok(updated.rows_affected == 1)
}

/// How many active users of the tenant, other than `except`, hold `role`.
pub async fn count_active_holders(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    role: &str,
    except: &str,
) -> Result<u64> {
    let holders: Vec<String> = scoped::<user_role::Entity>(tenant)
        .find()
        .filter(user_role::Column::Role.eq(role))
        .filter(user_role::Column::UserId.ne(except))
        .select_only()
        .column(user_role::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(scoped::<user::Entity>(tenant)
        .find()
        .filter(user::Column::Id.is_in(holders))
        .filter(user::Column::Status.eq(UserStatus::Active.as_str()))
        .count(db)
        .await?)
}

/// Stores a new password hash.
pub async fn set_password_hash(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    hash: String,
) -> Result<()> {
    replace_password_hash(db, tenant, id, None, hash).await?;
    Ok(())
}

/// Stores a new password hash only if the stored one is still `verified` (a login's
/// rehash under new parameters must not undo a password change made meanwhile); true
/// when it was replaced.
pub async fn rehash_password(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    verified: &str,
    hash: String,
) -> Result<bool> {
    replace_password_hash(db, tenant, id, Some(verified), hash).await
}

async fn replace_password_hash(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    only_if: Option<&str>,
    hash: String,
) -> Result<bool> {
    let mut update = scoped::<user::Entity>(tenant)
        .update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .col_expr(user::Column::UpdatedAt, Expr::value(erp_db::time::now()))
        .filter(user::Column::Id.eq(id));
    if let Some(verified) = only_if {
        update = update.filter(user::Column::PasswordHash.eq(verified));
    }
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Records a successful login.
pub async fn touch_login(db: &impl ConnectionTrait, tenant: &TenantId, id: &str) -> Result<()> {
    scoped::<user::Entity>(tenant)
        .update_many()
        .col_expr(user::Column::LastLoginAt, Expr::value(erp_db::time::now()))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Assigns a role (idempotent).
pub async fn assign_role(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    user_id: &str,
    role: &str,
) -> Result<()> {
    let exists = scoped::<user_role::Entity>(tenant)
        .find()
        .filter(user_role::Column::UserId.eq(user_id))
        .filter(user_role::Column::Role.eq(role))
        .one(db)
        .await?
        .is_some();
    if !exists {
        scoped::<user_role::Entity>(tenant)
            .stamp(user_role::ActiveModel {
                user_id: Set(user_id.to_owned()),
                role: Set(role.to_owned()),
                ..Default::default()
            })
            .insert(db)
            .await?;
    }
    Ok(())
}

/// Revokes a role (idempotent).
pub async fn revoke_role(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    user_id: &str,
    role: &str,
) -> Result<()> {
    scoped::<user_role::Entity>(tenant)
        .delete_many()
        .filter(user_role::Column::UserId.eq(user_id))
        .filter(user_role::Column::Role.eq(role))
        .exec(db)
        .await?;
    Ok(())
}
