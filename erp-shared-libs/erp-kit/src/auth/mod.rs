//! Identity in the mesh: the claims of an access token, Ed25519 signing keys, EdDSA-only
//! JWT verification against a cached JWKS, and the typed [`AuthContext`] handlers receive.

mod claims;
mod context;
mod jwks;
mod keys;
mod verifier;

pub use claims::{Claims, module_claim};
pub use context::{AuthContext, Caller, TenantId, auth_context};
pub use jwks::{GrpcJwksSource, Jwk, JwksCache, KeySource, KeySourceError, StaticKeySource};
pub use keys::{SigningKey, TokenSigner};
pub use verifier::{TokenError, TokenVerifier};

/// The `iss` of tokens the auth service issues, unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "erp-auth-service";
/// The `aud` of tokens valid anywhere in the mesh, unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "erp-mesh";
