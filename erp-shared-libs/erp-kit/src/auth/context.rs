//! What a handler knows about its caller, put in the request extensions by the access layer.

use std::{collections::BTreeSet, ops::Deref, sync::Arc};

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tonic::Status;

use super::Claims;

/// The tenant a call acts for. Only the access layer creates it from a verified token,
/// so store functions that take a `&TenantId` are always scoped by the caller's tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// The tenant of a verified token (or of a record the service itself created).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The verified caller of a protected method.
///
/// Cloning is cheap: the verifier builds one context per token and every call presenting
/// that token shares it (handlers, the request context and outgoing calls included).
#[derive(Debug, Clone)]
pub struct AuthContext(Arc<Caller>);

/// What a verified access token says about its bearer (reached through [`AuthContext`]).
#[derive(Debug)]
pub struct Caller {
    /// The caller's tenant.
    pub tenant_id: TenantId,
    /// The caller's user id.
    pub user_id: String,
    /// Permissions in the token.
    pub permissions: BTreeSet<String>,
    /// Modules the tenant's plan enables.
    pub modules: BTreeSet<String>,
    /// `Bearer <token>`, ready for the `authorization` header of outgoing calls (marked
    /// sensitive, so HTTP/2 never indexes it).
    pub authorization: Option<HeaderValue>,
    /// Everything the token carried (the session id, absent for operator tokens, is
    /// `claims.sid`).
    pub claims: Claims,
}

impl AuthContext {
    /// The context of a verified token.
    pub fn from_claims(claims: Claims, bearer_token: SecretString) -> Self {
        let authorization =
            HeaderValue::from_str(&format!("Bearer {}", bearer_token.expose_secret()))
                .ok()
                .map(|mut value| {
                    value.set_sensitive(true);
                    value
                });
        Self(Arc::new(Caller {
            tenant_id: TenantId::new(claims.tid.clone()),
            user_id: claims.sub.clone(),
            permissions: claims.perms.iter().cloned().collect(),
            modules: claims.mods.iter().cloned().collect(),
            authorization,
            claims,
        }))
    }

    /// Whether the token carries `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }
}

impl Deref for AuthContext {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

/// The caller of a protected method, as put there by the access layer.
///
/// Fails with `UNAUTHENTICATED` on a public method called without a token.
pub fn auth_context<T>(request: &tonic::Request<T>) -> Result<&AuthContext, Status> {
    request
        .extensions()
        .get::<AuthContext>()
        .ok_or_else(|| Status::unauthenticated("this call needs a bearer token"))
}
