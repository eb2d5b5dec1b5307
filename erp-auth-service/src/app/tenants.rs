//! Tenant use cases and the platform operator's credential.

use chrono::{DateTime, Utc};
use erp_events::StagedEvent;
use erp_kit::auth::{AuthContext, Claims, TenantId};
use erp_proto::erp::{
    common::v1::Module as ProtoModule,
    events::v1::{TenantCreated, UserCreated},
};
use sea_orm::TransactionTrait;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::Auth;
use crate::{
    domain::{
        password::NewPassword,
        role::OPERATOR_PERMISSIONS,
        tenant::{Module, Plan, TenantSlug},
        user::Email,
    },
    error::{Error, Result},
    store::{
        self,
        tenants::TenantRecord,
        users::{NewUserRow, UserRecord},
    },
};

/// The subject of operator tokens.
pub const OPERATOR_SUBJECT: &str = "platform-operator";
/// The tenant claim of operator tokens.
pub const OPERATOR_TENANT: &str = "platform";

/// A validated tenant to create, with its first admin.
#[derive(Debug)]
pub struct NewTenant {
    /// Unique short name.
    pub slug: TenantSlug,
    /// Display name.
    pub display_name: String,
    /// Plan.
    pub plan: Plan,
    /// First admin's email.
    pub admin_email: Email,
    /// First admin's password.
    pub admin_password: NewPassword,
    /// First admin's display name.
    pub admin_display_name: String,
}

pub(crate) fn proto_module(module: Module) -> ProtoModule {
    match module {
        Module::Hrm => ProtoModule::Hrm,
        Module::Crm => ProtoModule::Crm,
        Module::Finance => ProtoModule::Finance,
    }
}

fn is_operator(caller: &AuthContext) -> bool {
    caller.has_permission("platform.tenant.write")
}

impl Auth {
    /// Exchanges the bootstrap secret for a short-lived operator token.
    pub async fn issue_operator_token(
        &self,
        presented: &str,
        source: Option<&str>,
    ) -> Result<(String, DateTime<Utc>)> {
        // Guesses at the secret count like failed logins, per caller address only: a
        // count shared by every caller would let anyone keep the operator locked out.
        let guesses_key = format!("operator:{}", source.unwrap_or("unknown-source"));
        self.reserve_attempt(&guesses_key, None).await?;
        let configured = self.settings.bootstrap_secret.expose_secret();
        let matches =
            !configured.is_empty() && bool::from(configured.as_bytes().ct_eq(presented.as_bytes()));
        if !matches {
            return Err(Error::Unauthenticated("the bootstrap secret is not valid"));
        }
        store::attempts::clear(&self.db, &guesses_key).await?;
        let now = Utc::now();
        let expires_at = now + super::ttl(self.settings.access_token_ttl);
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: OPERATOR_SUBJECT.to_owned(),
            tid: OPERATOR_TENANT.to_owned(),
            exp: expires_at.timestamp(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            roles: vec!["platform_operator".to_owned()],
            perms: OPERATOR_PERMISSIONS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            mods: Vec::new(),
            sid: None,
        };
        Ok((self.keyring.sign(&claims).await?, expires_at))
    }

    /// Creates a tenant and its first admin (role tenant_admin), with their events.
    pub async fn create_tenant(
        &self,
        new: NewTenant,
        actor: &str,
    ) -> Result<(TenantRecord, UserRecord)> {
        let password_hash = self
            .hash_password(new.admin_password.secret().clone())
            .await?;
        let tenant_id = uuid::Uuid::now_v7().to_string();
        let txn = self.db.begin().await?;
        let tenant = store::tenants::insert(
            &txn,
            &tenant_id,
            new.slug.as_str(),
            &new.display_name,
            &new.plan,
        )
        .await?;
        let tenant_key = tenant.id();
        let admin = store::users::insert(
            &txn,
            &tenant_key,
            NewUserRow {
                email: &new.admin_email,
                display_name: &new.admin_display_name,
                password_hash,
                roles: &["tenant_admin".to_owned()],
                employee_id: None,
                created_by: actor,
            },
        )
        .await?;
        let created: StagedEvent = self
            .outbox
            .stage(
                &txn,
                &tenant_key,
                &tenant_id,
                &TenantCreated {
                    tenant_id: tenant_id.clone(),
                    slug: tenant.row.slug.clone(),
                    display_name: tenant.row.display_name.clone(),
                    enabled_modules: tenant
                        .plan
                        .modules
                        .iter()
                        .map(|m| proto_module(*m) as i32)
                        .collect(),
                    admin_user_id: admin.row.id.clone(),
                },
            )
            .await?;
        self.outbox
            .stage(&txn, &tenant_key, &admin.row.id, &user_created(&admin))
            .await?;
        txn.commit().await?;
        tracing::info!(tenant = %tenant_id, slug = %tenant.row.slug, event = %created.event_id, "tenant created");
        Ok((tenant, admin))
    }

    /// A tenant: operators see any, tenant users only their own (others are not found).
    pub async fn get_tenant(&self, caller: &AuthContext, id: &str) -> Result<TenantRecord> {
        if !is_operator(caller) && caller.tenant_id.as_str() != id {
            return Err(Error::NotFound("tenant"));
        }
        store::tenants::get(&self.db, &TenantId::new(id)).await
    }

    /// Replaces a tenant's plan (operators only, by the method's permission).
    pub async fn update_tenant_plan(&self, id: &str, plan: Plan) -> Result<TenantRecord> {
        store::tenants::update_plan(&self.db, &TenantId::new(id), &plan).await
    }
}

pub(crate) fn user_created(user: &UserRecord) -> UserCreated {
    UserCreated {
        user_id: user.row.id.clone(),
        email: user.row.email.clone(),
        display_name: user.row.display_name.clone(),
        roles: user.roles.clone(),
        employee_id: user.row.employee_id.clone().unwrap_or_default(),
    }
}
