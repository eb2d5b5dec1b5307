//! User, role and permission use cases, all within the caller's tenant.

use std::collections::BTreeSet;

use erp_kit::auth::{AuthContext, TenantId};
use erp_proto::erp::{
    common::v1::{PageRequest, PageResponse},
    events::v1::UserDisabled,
};
use sea_orm::{ConnectionTrait, TransactionTrait};
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

/// The built-in role that administers a tenant; a tenant always keeps one active holder.
const TENANT_ADMIN: &str = "tenant_admin";

impl Auth {
    /// Refuses roles that are neither built in nor the tenant's custom roles, each on the
    /// request field it came from.
    async fn check_roles_exist<'r>(
        &self,
        tenant: &TenantId,
        roles: impl IntoIterator<Item = (String, &'r str)>,
    ) -> Result<()> {
        let custom = store::roles::permission_map(&self.db, tenant).await?;
        let mut errors = erp_kit::error::ValidationError::new();
        for (field, role) in roles {
            if BuiltInRole::find(role).is_none() && !custom.contains_key(role) {
                errors.add(field, format!("the role {role} does not exist"));
            }
        }
        Ok(errors.into_result()?)
    }

    /// Refuses `roles` when they grant a permission the caller does not hold. Nobody hands
    /// out more than they have (an HR manager may create employees, not tenant admins),
    /// and nobody manages a user who holds more than they do (an HR manager may disable
    /// an employee's login, not a tenant admin's).
    async fn check_within_callers_permissions(
        &self,
        caller: &AuthContext,
        roles: &[String],
        refusal: &'static str,
    ) -> Result<()> {
        let custom = store::roles::permission_map(&self.db, &caller.tenant_id).await?;
        let granted = effective_permissions(roles, &custom, &self.known_permissions);
        if let Some(missing) = granted
            .iter()
            .find(|permission| !caller.has_permission(permission))
        {
            tracing::info!(%missing, refusal, "refused: beyond the caller's own permissions");
            return Err(Error::PermissionDenied(refusal));
        }
        Ok(())
    }

    /// Refuses acting on `target` when its roles grant more than the caller holds.
    async fn check_may_manage(&self, caller: &AuthContext, target: &UserRecord) -> Result<()> {
        self.check_within_callers_permissions(
            caller,
            &target.roles,
            "this user holds permissions you do not hold",
        )
        .await
    }

    /// Refuses taking the tenant's last active administrator away (disabling them or
    /// revoking their role), which would leave nobody able to manage the tenant. Run it
    /// inside the transaction that makes the change, after [`lock_tenant`].
    async fn check_not_last_admin(
        &self,
        txn: &impl ConnectionTrait,
        tenant: &TenantId,
        target: &UserRecord,
    ) -> Result<()> {
        let is_active_admin =
            target.is_active() && target.roles.iter().any(|role| role == TENANT_ADMIN);
        if is_active_admin
            && store::users::count_active_holders(txn, tenant, TENANT_ADMIN, &target.row.id).await?
                == 0
        {
            return Err(Error::FailedPrecondition {
                reason: "ERP:AUTH:LAST_ADMIN",
                message: "this is the tenant's last active administrator; make another user \
                          tenant_admin first"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// Creates a user in the caller's tenant, within the plan's user limit.
    pub async fn create_user(&self, caller: &AuthContext, new: NewUser) -> Result<UserRecord> {
        let tenant = &caller.tenant_id;
        self.check_roles_exist(
            tenant,
            new.roles
                .iter()
                .enumerate()
                .map(|(index, role)| (format!("roles[{index}]"), role.as_str())),
        )
        .await?;
        let role_names: Vec<String> = new
            .roles
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect();
        self.check_within_callers_permissions(
            caller,
            &role_names,
            "these roles grant permissions you do not hold",
        )
        .await?;
        let password_hash = self.hash_password(new.password.secret().clone()).await?;
        let txn = self.db.begin().await?;
        // Two concurrent creations cannot both pass the user limit.
        store::tenants::lock(&txn, tenant).await?;
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
        let user = store::users::insert(
            &txn,
            tenant,
            NewUserRow {
                email: &new.email,
                display_name: &new.display_name,
                password_hash,
                roles: &role_names,
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
        if let Some(role) = &filter.role {
            self.check_roles_exist(&caller.tenant_id, [("role".to_owned(), role.as_str())])
                .await?;
        }
        store::users::list(&self.db, &caller.tenant_id, &self.page_tokens, filter, page).await
    }

    /// Changes a user's email or display name.
    pub async fn update_user(
        &self,
        caller: &AuthContext,
        id: &str,
        update: UserUpdate,
    ) -> Result<UserRecord> {
        let target = store::users::get(&self.db, &caller.tenant_id, id).await?;
        self.check_may_manage(caller, &target).await?;
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
        let tenant = &caller.tenant_id;
        let target = store::users::get(&self.db, tenant, id).await?;
        self.check_may_manage(caller, &target).await?;
        let txn = self.db.begin().await?;
        store::tenants::lock(&txn, tenant).await?;
        let target = store::users::get(&txn, tenant, id).await?;
        self.check_not_last_admin(&txn, tenant, &target).await?;
        let user = self
            .disable_user_in(&txn, tenant, id, reason, &caller.user_id)
            .await?;
        txn.commit().await?;
        Ok(user)
    }

    /// Disables a user within `txn` (also used by the EmployeeTerminated consumer, which
    /// disables a leaver's login even when it is the tenant's last administrator's). An
    /// already disabled user is left as it is; a concurrent edit of the user (its version)
    /// does not stop it.
    pub(crate) async fn disable_user_in(
        &self,
        txn: &impl ConnectionTrait,
        tenant: &TenantId,
        id: &str,
        reason: &str,
        actor: &str,
    ) -> Result<UserRecord> {
        let changed = store::users::change_status(
            txn,
            tenant,
            id,
            UserStatus::Active,
            UserStatus::Disabled,
            actor,
        )
        .await?;
        let user = store::users::get(txn, tenant, id).await?;
        if !changed {
            return Ok(user);
        }
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
        // A stolen access token must not turn into unlimited guesses at the password:
        // wrong current passwords count against the same lockout as failed logins.
        let slug = store::tenants::get(&self.db, tenant).await?.row.slug;
        let account_key = super::sessions::account_key(&slug, user.row.email.as_str());
        self.reserve_attempt(&account_key, None).await?;
        let hasher = self.hasher.clone();
        let stored = user.row.password_hash.clone();
        let verification = tokio::task::spawn_blocking(move || hasher.verify(&old, &stored))
            .await
            .map_err(|error| Error::Unexpected(error.into()))?;
        if verification == Verification::Mismatch {
            return Err(Error::field("old_password", "is not the current password"));
        }
        store::attempts::clear(&self.db, &account_key).await?;
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
        if let Some(missing) = permissions
            .iter()
            .find(|permission| !caller.has_permission(permission))
        {
            tracing::info!(%missing, "refused a custom role beyond the caller's own permissions");
            return Err(Error::PermissionDenied(
                "a role cannot grant permissions you do not hold",
            ));
        }
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
        let tenant = &caller.tenant_id;
        self.check_roles_exist(tenant, [("role".to_owned(), role.as_str())])
            .await?;
        let target = store::users::get(&self.db, tenant, user_id).await?;
        self.check_may_manage(caller, &target).await?;
        self.check_within_callers_permissions(
            caller,
            &[role.as_str().to_owned()],
            "this role grants permissions you do not hold",
        )
        .await?;
        store::users::assign_role(&self.db, tenant, user_id, role.as_str()).await?;
        store::users::get(&self.db, tenant, user_id).await
    }

    /// Revokes a role from a user of the caller's tenant.
    pub async fn revoke_role(
        &self,
        caller: &AuthContext,
        user_id: &str,
        role: RoleName,
    ) -> Result<UserRecord> {
        let tenant = &caller.tenant_id;
        self.check_roles_exist(tenant, [("role".to_owned(), role.as_str())])
            .await?;
        let target = store::users::get(&self.db, tenant, user_id).await?;
        self.check_may_manage(caller, &target).await?;
        let txn = self.db.begin().await?;
        if role.as_str() == TENANT_ADMIN {
            store::tenants::lock(&txn, tenant).await?;
            let target = store::users::get(&txn, tenant, user_id).await?;
            self.check_not_last_admin(&txn, tenant, &target).await?;
        }
        store::users::revoke_role(&txn, tenant, user_id, role.as_str()).await?;
        if target.roles.iter().any(|held| held == role.as_str()) {
            // Their tokens carry the role's permissions until they expire: end their
            // sessions, so they log in again with what they hold now.
            store::sessions::revoke_all_of_user(&txn, tenant, user_id, None, "role revoked")
                .await?;
        }
        let user = store::users::get(&txn, tenant, user_id).await?;
        txn.commit().await?;
        Ok(user)
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
