//! `erp.auth.v1.AuthService`: each handler parses its request (every violation at once),
//! calls one use case and maps the result.

use std::sync::Arc;

use erp_kit::{
    auth::{AuthContext, auth_context},
    error::ValidationError,
};
use erp_proto::erp::auth::v1::{self as proto, auth_service_server::AuthService};
use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, Response, Status};

use super::convert::{
    self, parse_email, parse_name, parse_plan, parse_role, require_id, timestamp, user_and_role,
};
use crate::{
    app::{Auth, IssuedTokens, LoginAttempt, NewTenant, NewUser, TokenValidity, UserUpdate},
    domain::{password::NewPassword, tenant::TenantSlug, user::UserStatus},
    store::users::UserFilter,
};

/// The handlers.
#[derive(Debug, Clone)]
pub struct AuthGrpc {
    auth: Arc<Auth>,
}

impl AuthGrpc {
    /// Handlers over the use cases.
    pub fn new(auth: Arc<Auth>) -> Self {
        Self { auth }
    }

    /// The verified caller, if their session is still live: the identity service itself
    /// does not take orders from a logged-out, disabled or password-changed session for
    /// the rest of its token's life (other services accept the token until it expires).
    async fn live_caller<T>(&self, request: &Request<T>) -> Result<AuthContext, Status> {
        let caller = auth_context(request)?.clone();
        self.auth.check_session_live(&caller).await?;
        Ok(caller)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

fn token_pair(tokens: &IssuedTokens) -> proto::TokenPair {
    proto::TokenPair {
        access_token: tokens.access_token.clone(),
        access_token_expire_time: Some(timestamp(tokens.access_expires_at)),
        refresh_token: tokens.refresh_token.expose_secret().to_owned(),
        refresh_token_expire_time: Some(timestamp(tokens.refresh_expires_at)),
        token_type: "Bearer".to_owned(),
    }
}

/// Passwords, secrets and refresh tokens are short; access tokens carry permissions.
const MAX_SECRET_BYTES: usize = 1024;
const MAX_ACCESS_TOKEN_BYTES: usize = 16 * 1024;

fn required_secret(errors: &mut ValidationError, field: &str, raw: String) -> SecretString {
    required_bounded(errors, field, raw, MAX_SECRET_BYTES)
}

fn required_bounded(
    errors: &mut ValidationError,
    field: &str,
    raw: String,
    max_bytes: usize,
) -> SecretString {
    if raw.is_empty() {
        errors.add(field, "is required");
    } else if raw.len() > max_bytes {
        errors.add(field, format!("must be at most {max_bytes} bytes"));
    }
    SecretString::from(raw)
}

fn new_password(errors: &mut ValidationError, field: &str, raw: &str) -> Option<NewPassword> {
    errors.check(field, NewPassword::parse(raw))
}

/// The caller's address: the peer, or (only when configured, behind the gateway) the
/// last `x-forwarded-for` hop, the one the gateway itself appended.
fn source_address<T>(request: &Request<T>, trust_forwarded_for: bool) -> Option<String> {
    let forwarded = trust_forwarded_for
        .then(|| request.metadata().get("x-forwarded-for"))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .map(|last| last.trim().to_owned())
        .filter(|last| !last.is_empty());
    forwarded.or_else(|| {
        request
            .remote_addr()
            .map(|address| address.ip().to_string())
    })
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn issue_operator_token(
        &self,
        request: Request<proto::IssueOperatorTokenRequest>,
    ) -> Reply<proto::IssueOperatorTokenResponse> {
        let source = source_address(&request, self.auth.trusts_forwarded_for());
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        let secret = required_secret(&mut errors, "bootstrap_secret", request.bootstrap_secret);
        errors.into_result().map_err(crate::error::Error::from)?;
        let (access_token, expires_at) = self
            .auth
            .issue_operator_token(secret.expose_secret(), source.as_deref())
            .await?;
        reply(proto::IssueOperatorTokenResponse {
            access_token,
            expire_time: Some(timestamp(expires_at)),
        })
    }

    async fn create_tenant(
        &self,
        request: Request<proto::CreateTenantRequest>,
    ) -> Reply<proto::CreateTenantResponse> {
        let actor = self.live_caller(&request).await?.user_id.clone();
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        let slug = errors.check("slug", TenantSlug::parse(&request.slug));
        let display_name = parse_name(&mut errors, "display_name", &request.display_name, true);
        let plan = parse_plan(&mut errors, "plan", request.plan.as_ref());
        let admin_email = parse_email(&mut errors, "admin_email", &request.admin_email);
        let admin_password = new_password(&mut errors, "admin_password", &request.admin_password);
        let admin_display_name = parse_name(
            &mut errors,
            "admin_display_name",
            &request.admin_display_name,
            false,
        );
        let (
            Some(slug),
            Some(display_name),
            Some(plan),
            Some(admin_email),
            Some(admin_password),
            Some(admin_display_name),
        ) = (
            slug,
            display_name,
            plan,
            admin_email,
            admin_password,
            admin_display_name,
        )
        else {
            return Err(crate::error::Error::from(errors).into());
        };
        let admin_display_name = if admin_display_name.is_empty() {
            admin_email.as_str().to_owned()
        } else {
            admin_display_name
        };
        let (tenant, admin) = self
            .auth
            .create_tenant(
                NewTenant {
                    slug,
                    display_name,
                    plan,
                    admin_email,
                    admin_password,
                    admin_display_name,
                },
                &actor,
            )
            .await?;
        reply(proto::CreateTenantResponse {
            tenant: Some(convert::tenant(&tenant)),
            admin_user: Some(convert::user(&admin)),
        })
    }

    async fn get_tenant(
        &self,
        request: Request<proto::GetTenantRequest>,
    ) -> Reply<proto::GetTenantResponse> {
        let caller = self.live_caller(&request).await?;
        let mut errors = ValidationError::new();
        let id = require_id(&mut errors, "tenant_id", &request.get_ref().tenant_id);
        let Some(id) = id else {
            return Err(crate::error::Error::from(errors).into());
        };
        let tenant = self.auth.get_tenant(&caller, &id).await?;
        reply(proto::GetTenantResponse {
            tenant: Some(convert::tenant(&tenant)),
        })
    }

    async fn update_tenant_plan(
        &self,
        request: Request<proto::UpdateTenantPlanRequest>,
    ) -> Reply<proto::UpdateTenantPlanResponse> {
        self.live_caller(&request).await?;
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        let id = require_id(&mut errors, "tenant_id", &request.tenant_id);
        let plan = parse_plan(&mut errors, "plan", request.plan.as_ref());
        let (Some(id), Some(plan)) = (id, plan) else {
            return Err(crate::error::Error::from(errors).into());
        };
        let tenant = self.auth.update_tenant_plan(&id, plan).await?;
        reply(proto::UpdateTenantPlanResponse {
            tenant: Some(convert::tenant(&tenant)),
        })
    }

    async fn create_user(
        &self,
        request: Request<proto::CreateUserRequest>,
    ) -> Reply<proto::CreateUserResponse> {
        let caller = self.live_caller(&request).await?;
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        let email = parse_email(&mut errors, "email", &request.email);
        let password = new_password(&mut errors, "password", &request.password);
        let display_name = parse_name(&mut errors, "display_name", &request.display_name, false);
        let roles: Vec<_> = request
            .roles
            .iter()
            .enumerate()
            .filter_map(|(index, role)| parse_role(&mut errors, &format!("roles[{index}]"), role))
            .collect();
        let employee_id = request.employee_id.trim();
        if employee_id.len() > 64 {
            errors.add("employee_id", "must be at most 64 characters");
        }
        let (Some(email), Some(password), Some(display_name)) = (email, password, display_name)
        else {
            return Err(crate::error::Error::from(errors).into());
        };
        errors.into_result().map_err(crate::error::Error::from)?;
        let display_name = if display_name.is_empty() {
            email.as_str().to_owned()
        } else {
            display_name
        };
        let user = self
            .auth
            .create_user(
                &caller,
                NewUser {
                    email,
                    password,
                    display_name,
                    roles,
                    employee_id: (!employee_id.is_empty()).then(|| employee_id.to_owned()),
                },
            )
            .await?;
        reply(proto::CreateUserResponse {
            user: Some(convert::user(&user)),
        })
    }

    async fn get_user(
        &self,
        request: Request<proto::GetUserRequest>,
    ) -> Reply<proto::GetUserResponse> {
        let caller = self.live_caller(&request).await?;
        let mut errors = ValidationError::new();
        let Some(id) = require_id(&mut errors, "user_id", &request.get_ref().user_id) else {
            return Err(crate::error::Error::from(errors).into());
        };
        let user = self.auth.get_user(&caller, &id).await?;
        reply(proto::GetUserResponse {
            user: Some(convert::user(&user)),
        })
    }

    async fn list_users(
        &self,
        request: Request<proto::ListUsersRequest>,
    ) -> Reply<proto::ListUsersResponse> {
        let caller = self.live_caller(&request).await?;
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        let status = match proto::UserStatus::try_from(request.status) {
            Ok(proto::UserStatus::Unspecified) => None,
            Ok(proto::UserStatus::Active) => Some(UserStatus::Active),
            Ok(proto::UserStatus::Disabled) => Some(UserStatus::Disabled),
            Err(_) => {
                errors.add("status", "is not a UserStatus");
                None
            }
        };
        let role = if request.role.is_empty() {
            None
        } else {
            parse_role(&mut errors, "role", &request.role).map(|role| role.as_str().to_owned())
        };
        errors.into_result().map_err(crate::error::Error::from)?;
        let (users, page) = self
            .auth
            .list_users(&caller, &UserFilter { status, role }, request.page.as_ref())
            .await?;
        reply(proto::ListUsersResponse {
            users: users.iter().map(convert::user).collect(),
            page: Some(page),
        })
    }

    async fn update_user(
        &self,
        request: Request<proto::UpdateUserRequest>,
    ) -> Reply<proto::UpdateUserResponse> {
        let caller = self.live_caller(&request).await?;
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        let id = require_id(&mut errors, "user_id", &request.user_id);
        let mut update = UserUpdate {
            expected_version: request.expected_version,
            ..UserUpdate::default()
        };
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        if paths.is_empty() {
            errors.add(
                "update_mask",
                "must name at least one field: email, display_name",
            );
        }
        for path in &paths {
            match path.as_str() {
                "email" => update.email = parse_email(&mut errors, "email", &request.email),
                "display_name" => {
                    update.display_name =
                        parse_name(&mut errors, "display_name", &request.display_name, true);
                }
                other => errors.add(
                    "update_mask",
                    format!("{other} cannot be updated (email, display_name)"),
                ),
            }
        }
        if request.expected_version < 0 {
            errors.add("expected_version", "must not be negative");
        }
        let Some(id) = id else {
            return Err(crate::error::Error::from(errors).into());
        };
        errors.into_result().map_err(crate::error::Error::from)?;
        let user = self.auth.update_user(&caller, &id, update).await?;
        reply(proto::UpdateUserResponse {
            user: Some(convert::user(&user)),
        })
    }

    async fn disable_user(
        &self,
        request: Request<proto::DisableUserRequest>,
    ) -> Reply<proto::DisableUserResponse> {
        let caller = self.live_caller(&request).await?;
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        let id = require_id(&mut errors, "user_id", &request.user_id);
        if request.reason.len() > 500 {
            errors.add("reason", "must be at most 500 characters");
        }
        let Some(id) = id else {
            return Err(crate::error::Error::from(errors).into());
        };
        errors.into_result().map_err(crate::error::Error::from)?;
        if id == caller.user_id {
            return Err(crate::error::Error::FailedPrecondition {
                reason: "ERP:AUTH:CANNOT_DISABLE_SELF",
                message: "you cannot disable your own user".to_owned(),
            }
            .into());
        }
        let user = self
            .auth
            .disable_user(&caller, &id, &request.reason)
            .await?;
        reply(proto::DisableUserResponse {
            user: Some(convert::user(&user)),
        })
    }

    async fn change_password(
        &self,
        request: Request<proto::ChangePasswordRequest>,
    ) -> Reply<proto::ChangePasswordResponse> {
        let caller = self.live_caller(&request).await?;
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        let old = required_secret(&mut errors, "old_password", request.old_password);
        let new = new_password(&mut errors, "new_password", &request.new_password);
        let Some(new) = new else {
            return Err(crate::error::Error::from(errors).into());
        };
        errors.into_result().map_err(crate::error::Error::from)?;
        self.auth.change_password(&caller, old, new).await?;
        reply(proto::ChangePasswordResponse {})
    }

    async fn list_roles(
        &self,
        request: Request<proto::ListRolesRequest>,
    ) -> Reply<proto::ListRolesResponse> {
        let caller = self.live_caller(&request).await?;
        let roles = self.auth.list_roles(&caller).await?;
        reply(proto::ListRolesResponse {
            roles: roles
                .into_iter()
                .map(|role| proto::Role {
                    name: role.name,
                    description: role.description,
                    permissions: role.permissions.into_iter().collect(),
                    built_in: role.built_in,
                })
                .collect(),
        })
    }

    async fn create_role(
        &self,
        request: Request<proto::CreateRoleRequest>,
    ) -> Reply<proto::CreateRoleResponse> {
        let caller = self.live_caller(&request).await?;
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        let name = parse_role(&mut errors, "name", &request.name);
        if request.description.chars().count() > 500 {
            errors.add("description", "must be at most 500 characters");
        }
        let Some(name) = name else {
            return Err(crate::error::Error::from(errors).into());
        };
        errors.into_result().map_err(crate::error::Error::from)?;
        let role = self
            .auth
            .create_role(
                &caller,
                name,
                request.description.trim().to_owned(),
                request.permissions,
            )
            .await?;
        reply(proto::CreateRoleResponse {
            role: Some(proto::Role {
                name: role.name,
                description: role.description,
                permissions: role.permissions.into_iter().collect(),
                built_in: role.built_in,
            }),
        })
    }

    async fn list_permissions(
        &self,
        request: Request<proto::ListPermissionsRequest>,
    ) -> Reply<proto::ListPermissionsResponse> {
        self.live_caller(&request).await?;
        reply(proto::ListPermissionsResponse {
            permissions: self
                .auth
                .list_permissions()
                .into_iter()
                .map(|(name, description)| proto::Permission { name, description })
                .collect(),
        })
    }

    async fn assign_role(
        &self,
        request: Request<proto::AssignRoleRequest>,
    ) -> Reply<proto::AssignRoleResponse> {
        let caller = self.live_caller(&request).await?;
        let request = request.into_inner();
        let (id, role) = user_and_role(&request.user_id, &request.role)?;
        let user = self.auth.assign_role(&caller, &id, role).await?;
        reply(proto::AssignRoleResponse {
            user: Some(convert::user(&user)),
        })
    }

    async fn revoke_role(
        &self,
        request: Request<proto::RevokeRoleRequest>,
    ) -> Reply<proto::RevokeRoleResponse> {
        let caller = self.live_caller(&request).await?;
        let request = request.into_inner();
        let (id, role) = user_and_role(&request.user_id, &request.role)?;
        let user = self.auth.revoke_role(&caller, &id, role).await?;
        reply(proto::RevokeRoleResponse {
            user: Some(convert::user(&user)),
        })
    }

    async fn login(&self, request: Request<proto::LoginRequest>) -> Reply<proto::LoginResponse> {
        let source = source_address(&request, self.auth.trusts_forwarded_for());
        let request = request.into_inner();
        let mut errors = ValidationError::new();
        if request.tenant_slug.trim().is_empty() {
            errors.add("tenant_slug", "is required");
        }
        if request.email.trim().is_empty() {
            errors.add("email", "is required");
        } else if request.email.len() > 254 {
            errors.add("email", "must be at most 254 characters");
        }
        let password = required_secret(&mut errors, "password", request.password);
        errors.into_result().map_err(crate::error::Error::from)?;
        let tokens = self
            .auth
            .login(LoginAttempt {
                tenant_slug: request.tenant_slug,
                email: request.email,
                password,
                source,
            })
            .await?;
        reply(proto::LoginResponse {
            tokens: Some(token_pair(&tokens)),
            user: Some(convert::user(&tokens.user)),
        })
    }

    async fn refresh_session(
        &self,
        request: Request<proto::RefreshSessionRequest>,
    ) -> Reply<proto::RefreshSessionResponse> {
        let mut errors = ValidationError::new();
        let token = required_secret(
            &mut errors,
            "refresh_token",
            request.into_inner().refresh_token,
        );
        errors.into_result().map_err(crate::error::Error::from)?;
        let tokens = self.auth.refresh(token.expose_secret()).await?;
        reply(proto::RefreshSessionResponse {
            tokens: Some(token_pair(&tokens)),
        })
    }

    async fn logout(&self, request: Request<proto::LogoutRequest>) -> Reply<proto::LogoutResponse> {
        let mut errors = ValidationError::new();
        let token = required_secret(
            &mut errors,
            "refresh_token",
            request.into_inner().refresh_token,
        );
        errors.into_result().map_err(crate::error::Error::from)?;
        self.auth.logout(token.expose_secret()).await?;
        reply(proto::LogoutResponse {})
    }

    async fn validate_token(
        &self,
        request: Request<proto::ValidateTokenRequest>,
    ) -> Reply<proto::ValidateTokenResponse> {
        let mut errors = ValidationError::new();
        let token = required_bounded(
            &mut errors,
            "access_token",
            request.into_inner().access_token,
            MAX_ACCESS_TOKEN_BYTES,
        );
        errors.into_result().map_err(crate::error::Error::from)?;
        let response = match self.auth.validate_token(token.expose_secret()).await? {
            TokenValidity::Valid(claims) => proto::ValidateTokenResponse {
                valid: true,
                claims: Some(proto::TokenClaims {
                    user_id: claims.sub,
                    tenant_id: claims.tid,
                    roles: claims.roles,
                    permissions: claims.perms,
                    enabled_modules: claims.mods,
                    token_id: claims.jti,
                    issue_time: Some(prost_types::Timestamp {
                        seconds: claims.iat,
                        nanos: 0,
                    }),
                    expire_time: Some(prost_types::Timestamp {
                        seconds: claims.exp,
                        nanos: 0,
                    }),
                }),
                invalid_reason: String::new(),
            },
            TokenValidity::Invalid(reason) => proto::ValidateTokenResponse {
                valid: false,
                claims: None,
                invalid_reason: reason,
            },
        };
        reply(response)
    }

    async fn get_jwks(&self, _: Request<proto::GetJwksRequest>) -> Reply<proto::GetJwksResponse> {
        let keys = self.auth.keyring().published().await?;
        reply(proto::GetJwksResponse {
            keys: keys
                .into_iter()
                .map(|key| proto::JsonWebKey {
                    kty: "OKP".to_owned(),
                    crv: "Ed25519".to_owned(),
                    kid: key.kid,
                    x: key.x,
                    alg: "EdDSA".to_owned(),
                    r#use: "sig".to_owned(),
                })
                .collect(),
        })
    }

    async fn rotate_signing_key(
        &self,
        request: Request<proto::RotateSigningKeyRequest>,
    ) -> Reply<proto::RotateSigningKeyResponse> {
        self.live_caller(&request).await?;
        let kid = self.auth.rotate_signing_key().await?;
        reply(proto::RotateSigningKeyResponse { kid })
    }
}
