//! User, role and permission use cases, all within the caller's tenant.

use std::collections::BTreeSet;

use erp_kit::auth::{AuthContext, TenantId};
use erp_proto::erp::{
    common::v1::{PageRequest, PageResponse},
    events::v1::UserDisabled,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, QuerySelect, TransactionTrait};
use secrecy::SecretString;

use super::{Auth, tenants::user_created};
use crate::{
    domain::{
        password::{NewPassword, Verification},
        role::{
            BUILT_IN_ROLES, BuiltInRole, DATA_PERMISSIONS, PLATFORM_PREFIX, RoleName,
            effective_permissions,
        },
        user::{Email, UserStatus},
    },
    error::{Error, Result},
    store::{
        self,
        entities::tenant,
        roles::CustomRole,
        users::{NewUserRow, UserChanges, UserFilter, UserRecord},
    },
};

/// A validated user to create.
#[derive(Debug)]
pub struct NewUser {
    /// Login email.
    pub email: Email,
    /// Initial password.
    pub password: NewPassword,
    /// Display name.
    pub display_name: String,
    /// Roles to assign.
    pub roles: Vec<RoleName>,
    /// The HRM employee it is for.
    pub employee_id: Option<String>,
}

/// Validated changes to a user.
#[derive(Debug, Default)]
pub struct UserUpdate {
    /// New email.
    pub email: Option<Email>,
    /// New display name.
    pub display_name: Option<String>,
    /// The version the caller read (0: no check).
    pub expected_version: i64,
}

/// A role as listed: built-in or custom.
#[derive(Debug, Clone)]
pub struct RoleView {
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Granted permissions.
    pub permissions: BTreeSet<String>,
    /// Built in (immutable).
    pub built_in: bool,
}

impl Auth {
    async fn check_roles_exist(
        &self,
        tenant: &TenantId,
        roles: &[RoleName],
        field: &str,
    ) -> Result<()> {
        let custom = store::roles::permission_map(&self.db, tenant).await?;
        let mut errors = erp_kit::error::ValidationError::new();
        for (index, role) in roles.iter().enumerate() {
            if BuiltInRole::find(role.as_str()).is_none() && !custom.contains_key(role.as_str()) {
                errors.add(
                    format!("{field}[{index}]"),
                    format!("the role {} does not exist", role.as_str()),
                );
            }
        }
        Ok(errors.into_result()?)
    }

    /// Refuses roles that grant a permission the caller does not hold: nobody hands out
    /// more than they have (an HR manager may create employees, not tenant admins).
    async fn check_no_escalation(&self, caller: &AuthContext, roles: &[RoleName]) -> Result<()> {
        let custom = store::roles::permission_map(&self.db, &caller.tenant_id).await?;
        let names: Vec<String> = roles.iter().map(|role| role.as_str().to_owned()).collect();
        let granted = effective_permissions(&names, &custom, &self.known_permissions);
        if let Some(missing) = granted
            .iter()
            .find(|permission| !caller.has_permission(permission))
        {
            tracing::info!(%missing, "refused a role grant beyond the caller's own permissions");
            return Err(Error::PermissionDenied(
                "these roles grant permissions you do not hold",
            ));
        }
        Ok(())
    }

    /// Creates a user in the caller's tenant, within the plan's user limit.
    pub async fn create_user(&self, caller: &AuthContext, new: NewUser) -> Result<UserRecord> {
        let tenant = &caller.tenant_id;
        self.check_roles_exist(tenant, &new.roles, "roles").await?;
        self.check_no_escalation(caller, &new.roles).await?;
        let password_hash = self.hash_password(new.password.secret().clone()).await?;
        let txn = self.db.begin().await?;
        // Serialise user creation per tenant (PostgreSQL row lock) so two concurrent
        // creations cannot both pass the user limit; SQLite serialises writes anyway.
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            erp_db::scoped::<tenant::Entity>(tenant)
                .find()
                .lock_exclusive()
                .one(&txn)
                .await?;
        }
        let record = store::tenants::get(&txn, tenant).await?;
        let active = store::users::count_active(&txn, tenant).await?;
        if !record.plan.admits_another_user(active) {
            return Err(Error::FailedPrecondition {
                reason: "ERP:AUTH:USER_LIMIT_REACHED",
                message: format!(
                    "the plan {} allows {} active users; disable a user or upgrade the plan",
                    record.plan.name,
                    record.plan.max_users.unwrap_or_default()
                ),
            });
        }
        let roles: Vec<String> = new
            .roles
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect();
        let user = store::users::insert(
            &txn,
            tenant,
            NewUserRow {
                email: &new.email,
                display_name: &new.display_name,
                password_hash,
                roles: &roles,
                employee_id: new.employee_id.as_deref(),
                created_by: &caller.user_id,
            },
        )
        .await?;
        self.outbox
            .stage(&txn, tenant, &user.row.id, &user_created(&user))
            .await?;
        txn.commit().await?;
        Ok(user)
    }

    /// A user of the caller's tenant.
    pub async fn get_user(&self, caller: &AuthContext, id: &str) -> Result<UserRecord> {
        store::users::get(&self.db, &caller.tenant_id, id).await
    }

    /// A page of the caller's tenant's users.
    pub async fn list_users(
        &self,
        caller: &AuthContext,
        filter: &UserFilter,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<UserRecord>, PageResponse)> {
        store::users::list(&self.db, &caller.tenant_id, &self.page_tokens, filter, page).await
    }

    /// Changes a user's email or display name.
    pub async fn update_user(
        &self,
        caller: &AuthContext,
        id: &str,
        update: UserUpdate,
    ) -> Result<UserRecord> {
        store::users::update(
            &self.db,
            &caller.tenant_id,
            id,
            update.expected_version,
            UserChanges {
                email: update.email.as_ref(),
                display_name: update.display_name.as_deref(),
            },
            &caller.user_id,
        )
        .await
    }

    /// Disables a user and revokes every session of theirs.
    pub async fn disable_user(
        &self,
        caller: &AuthContext,
        id: &str,
        reason: &str,
    ) -> Result<UserRecord> {
        let txn = self.db.begin().await?;
        let user = self
            .disable_user_in(&txn, &caller.tenant_id, id, reason, &caller.user_id)
            .await?;
        txn.commit().await?;
        Ok(user)
    }

    /// Disables a user within `txn` (also used by the EmployeeTerminated consumer).
    pub(crate) async fn disable_user_in(
        &self,
        txn: &impl ConnectionTrait,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        actor: &str,
    ) -> Result<UserRecord> {
        let current = store::users::get(txn, tenant, id).await?;
        if !current.is_active() {
            return Ok(current);
        }
        let user = store::users::set_status(txn, tenant, id, UserStatus::Disabled, actor).await?;
        store::sessions::revoke_all_of_user(txn, tenant, id, None, "user disabled").await?;
        self.outbox
            .stage(
                txn,
                tenant,
                id,
                &UserDisabled {
                    user_id: id.to_owned(),
                    reason: reason.to_owned(),
                    employee_id: user.row.employee_id.clone().unwrap_or_default(),
                },
            )
            .await?;
        Ok(user)
    }

    /// Changes the caller's own password; their other sessions are revoked.
    pub async fn change_password(
        &self,
        caller: &AuthContext,
        old: SecretString,
        new: NewPassword,
    ) -> Result<()> {
        let tenant = &caller.tenant_id;
        let user = store::users::get(&self.db, tenant, &caller.user_id).await?;
        let hasher = self.hasher.clone();
        let stored = user.row.password_hash.clone();
        let verification = tokio::task::spawn_blocking(move || hasher.verify(&old, &stored))
            .await
            .map_err(|error| Error::Unexpected(error.into()))?;
        if verification == Verification::Mismatch {
            return Err(Error::field("old_password", "is not the current password"));
        }
        let hash = self.hash_password(new.secret().clone()).await?;
        let txn = self.db.begin().await?;
        store::users::set_password_hash(&txn, tenant, &caller.user_id, hash).await?;
        store::sessions::revoke_all_of_user(
            &txn,
            tenant,
            &caller.user_id,
            caller.claims.sid.as_deref(),
            "password changed",
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Built-in roles first, then the tenant's custom roles.
    pub async fn list_roles(&self, caller: &AuthContext) -> Result<Vec<RoleView>> {
        let mut roles: Vec<RoleView> = BUILT_IN_ROLES
            .iter()
            .map(|role| RoleView {
                name: role.name.to_owned(),
                description: role.description.to_owned(),
                permissions: role.permissions(&self.known_permissions),
                built_in: true,
            })
            .collect();
        roles.extend(
            store::roles::list(&self.db, &caller.tenant_id)
                .await?
                .into_iter()
                .map(|role| RoleView {
                    name: role.name,
                    description: role.description,
                    permissions: role.permissions,
                    built_in: false,
                }),
        );
        Ok(roles)
    }

    /// Creates a custom role of known, non-platform permissions.
    pub async fn create_role(
        &self,
        caller: &AuthContext,
        name: RoleName,
        description: String,
        permissions: Vec<String>,
    ) -> Result<RoleView> {
        let mut errors = erp_kit::error::ValidationError::new();
        if BuiltInRole::find(name.as_str()).is_some() {
            errors.add("name", "is the name of a built-in role");
        }
        if permissions.is_empty() {
            errors.add("permissions", "must grant at least one permission");
        }
        for (index, permission) in permissions.iter().enumerate() {
            if !self.known_permissions.contains(permission)
                || permission.starts_with(PLATFORM_PREFIX)
            {
                errors.add(
                    format!("permissions[{index}]"),
                    format!("{permission} is not a tenant permission"),
                );
            }
        }
        errors.into_result()?;
        let role = store::roles::insert(
            &self.db,
            &caller.tenant_id,
            &CustomRole {
                name: name.as_str().to_owned(),
                description,
                permissions: permissions.into_iter().collect(),
            },
        )
        .await?;
        Ok(RoleView {
            name: role.name,
            description: role.description,
            permissions: role.permissions,
            built_in: false,
        })
    }

    /// Assigns a role to a user of the caller's tenant.
    pub async fn assign_role(
        &self,
        caller: &AuthContext,
        user_id: &str,
        role: RoleName,
    ) -> Result<UserRecord> {
        self.check_roles_exist(&caller.tenant_id, std::slice::from_ref(&role), "role")
            .await?;
        store::users::get(&self.db, &caller.tenant_id, user_id).await?;
        store::users::assign_role(&self.db, &caller.tenant_id, user_id, role.as_str()).await?;
        store::users::get(&self.db, &caller.tenant_id, user_id).await
    }

    /// Revokes a role from a user of the caller's tenant.
    pub async fn revoke_role(
        &self,
        caller: &AuthContext,
        user_id: &str,
        role: RoleName,
    ) -> Result<UserRecord> {
        store::users::get(&self.db, &caller.tenant_id, user_id).await?;
        store::users::revoke_role(&self.db, &caller.tenant_id, user_id, role.as_str()).await?;
        store::users::get(&self.db, &caller.tenant_id, user_id).await
    }

    /// Every permission with a description.
    pub fn list_permissions(&self) -> Vec<(String, String)> {
        self.known_permissions
            .iter()
            .map(|permission| {
                let description = DATA_PERMISSIONS
                    .iter()
                    .find(|(name, _)| name == permission)
                    .map(|(_, description)| (*description).to_owned())
                    .unwrap_or_else(|| describe(permission));
                (permission.clone(), description)
            })
            .collect()
    }
}

/// "hrm.employee.write" → "write hrm employee".
fn describe(permission: &str) -> String {
    let mut parts = permission.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(module), Some(resource), Some(action)) => {
            format!(
                "{} {module} {}",
                action.replace('_', " "),
                resource.replace('_', " ")
            )
        }
        _ => permission.to_owned(),
    }
}
