//! The claims of a mesh access token, shared by the issuer (auth service) and every verifier.

use erp_proto::erp::common::v1::Module;
use serde::{Deserialize, Serialize};

/// The payload of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The tenant id.
    pub tid: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// Role names at issue time.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Permissions at issue time, e.g. `hrm.employee.read`.
    #[serde(default)]
    pub perms: Vec<String>,
    /// Modules the tenant's plan enables: `hrm`, `crm`, `finance`.
    #[serde(default)]
    pub mods: Vec<String>,
    /// The session (refresh-token family) the token was issued for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// The claim value naming a module in `mods`; `None` for core methods (always enabled).
pub fn module_claim(module: Module) -> Option<&'static str> {
    match module {
        Module::Unspecified => None,
        Module::Hrm => Some("hrm"),
        Module::Crm => Some("crm"),
        Module::Finance => Some("finance"),
    }
}
