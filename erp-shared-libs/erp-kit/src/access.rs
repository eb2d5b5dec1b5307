//! Access control driven by the contracts: the `erp.common.v1.access` rule of the called
//! method decides. Public methods pass; others need a valid bearer token carrying the
//! method's permission, from a tenant whose plan enables the method's module. Used by the
//! server layer of every service and by the gateway, so both refuse the same calls.

use std::sync::Arc;

use erp_proto::{Contracts, Requirement};
use http::HeaderMap;
use tonic::{Code, Status};

use crate::{
    auth::{AuthContext, TokenError, TokenVerifier, module_claim},
    error::status_with_reason,
};

/// Reason of a call without a usable token.
pub const REASON_UNAUTHENTICATED: &str = "ERP:AUTH:UNAUTHENTICATED";
/// Reason of a token lacking the method's permission.
pub const REASON_PERMISSION_MISSING: &str = "ERP:AUTH:PERMISSION_MISSING";
/// Reason of a method whose module the tenant's plan does not enable.
pub const REASON_MODULE_NOT_ENABLED: &str = "ERP:AUTH:MODULE_NOT_ENABLED";
/// Reason of a token that could not be checked because the keys are unreachable.
pub const REASON_KEYS_UNAVAILABLE: &str = "ERP:AUTH:KEYS_UNAVAILABLE";

/// Why a server cannot start with the services it was given.
#[derive(Debug, thiserror::Error)]
pub enum AccessSetupError {
    /// A registered service is not in the contracts.
    #[error("the service {0} is not declared in the contracts")]
    UnknownService(String),
    /// A method has no access rule.
    #[error("the method {0} declares no access rule (option (erp.common.v1.access))")]
    MissingRule(String),
    /// Protected methods but nothing to verify tokens with.
    #[error("{0} has protected methods but the server has no token verifier")]
    NoVerifier(String),
}

/// Decides whether a call may proceed, and with which caller.
#[derive(Debug, Clone)]
pub struct AccessGuard {
    contracts: &'static Contracts,
    verifier: Option<Arc<TokenVerifier>>,
}

impl AccessGuard {
    /// A guard over `contracts`; without a verifier only public methods can be called.
    pub fn new(contracts: &'static Contracts, verifier: Option<Arc<TokenVerifier>>) -> Self {
        Self {
            contracts,
            verifier,
        }
    }

    /// Checks, before serving anything, that every method of `service` has a rule and
    /// that protected methods can be verified.
    pub fn check_service(&self, service: &str) -> Result<(), AccessSetupError> {
        let mut methods = self.contracts.service_methods(service).peekable();
        if methods.peek().is_none() {
            return Err(AccessSetupError::UnknownService(service.to_owned()));
        }
        let mut protected = false;
        for method in methods {
            let rule = method
                .access
                .as_ref()
                .ok_or_else(|| AccessSetupError::MissingRule(method.grpc_path.clone()))?;
            protected |= rule.requirement != Requirement::Public;
        }
        if protected && self.verifier.is_none() {
            return Err(AccessSetupError::NoVerifier(service.to_owned()));
        }
        Ok(())
    }

    /// The caller of `grpc_path` (`/erp.hrm.v1.HrmService/GetEmployee`), `None` for public
    /// methods and paths outside the contracts (health, reflection), or the refusal.
    pub async fn authorize(
        &self,
        grpc_path: &str,
        headers: &HeaderMap,
    ) -> Result<Option<AuthContext>, Status> {
        let Some(method) = self.contracts.method(grpc_path) else {
            return Ok(None);
        };
        let Some(rule) = &method.access else {
            // Unreachable for registered services (checked at startup); refuse to be safe.
            return Err(Status::permission_denied(
                "the method declares no access rule",
            ));
        };
        if rule.requirement == Requirement::Public {
            return Ok(None);
        }
        let token = bearer_token(headers).ok_or_else(|| {
            status_with_reason(
                Code::Unauthenticated,
                REASON_UNAUTHENTICATED,
                "this call needs `authorization: Bearer <access token>`",
                [],
            )
        })?;
        let verifier = self
            .verifier
            .as_ref()
            .ok_or_else(|| Status::unauthenticated("this server cannot verify tokens"))?;
        let context = verifier.verify(token).await.map_err(token_status)?;

        if let Some(permission) = rule.permission()
            && !context.has_permission(permission)
        {
            return Err(status_with_reason(
                Code::PermissionDenied,
                REASON_PERMISSION_MISSING,
                format!("this call needs the permission {permission}"),
                [("permission".to_owned(), permission.to_owned())],
            ));
        }
        if let Some(module) = module_claim(rule.module)
            && !context.modules.contains(module)
        {
            return Err(status_with_reason(
                Code::PermissionDenied,
                REASON_MODULE_NOT_ENABLED,
                format!("the tenant's plan does not include the {module} module"),
                [("module".to_owned(), module.to_owned())],
            ));
        }
        Ok(Some(context))
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

fn token_status(error: TokenError) -> Status {
    match error {
        TokenError::KeysUnavailable(cause) => {
            tracing::warn!(%cause, "token keys unavailable");
            status_with_reason(
                Code::Unavailable,
                REASON_KEYS_UNAVAILABLE,
                "the token could not be verified now; retry later",
                [],
            )
        }
        refused => status_with_reason(
            Code::Unauthenticated,
            REASON_UNAUTHENTICATED,
            refused.to_string(),
            [],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            authorization.parse().expect("header value"),
        );
        headers
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_trimmed() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
