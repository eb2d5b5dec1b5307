//! A test signing key and a builder for tokens of any tenant, user, permissions, modules
//! and lifetime; plus forged tokens (unsigned, HS256, tampered) for negative tests.

use std::sync::Arc;

use chrono::Utc;
use erp_kit::{
    auth::{
        Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Jwk, KeySource, SigningKey, StaticKeySource,
        TokenSigner, TokenVerifier,
    },
    config::AuthConfig,
};

/// An Ed25519 key pair standing in for the auth service's signing key.
#[derive(Debug, Clone)]
pub struct TestKeys {
    key: SigningKey,
    signer: TokenSigner,
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::generate()
    }
}

impl TestKeys {
    /// A fresh key with a random kid.
    pub fn generate() -> Self {
        let key = SigningKey::generate(format!("test-{}", uuid::Uuid::new_v4().simple()));
        let signer = TokenSigner::new(&key).unwrap_or_else(|error| panic!("test signer: {error}"));
        Self { key, signer }
    }

    /// The key id in every token's header.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Jwk {
        self.key.public_jwk()
    }

    /// A key source publishing this key.
    pub fn key_source(&self) -> Arc<dyn KeySource> {
        Arc::new(StaticKeySource::new(vec![self.jwk()]))
    }

    /// A verifier trusting this key, with the default issuer and audience.
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        let config = AuthConfig {
            jwks_min_refresh_interval: std::time::Duration::ZERO,
            ..AuthConfig::default()
        };
        Arc::new(TokenVerifier::new(&config, self.key_source()))
    }

    /// A token builder: a random tenant and user, every module, 15 minutes of life.
    pub fn token(&self) -> TokenBuilder<'_> {
        let now = Utc::now().timestamp();
        TokenBuilder {
            signer: &self.signer,
            claims: Claims {
                iss: DEFAULT_ISSUER.to_owned(),
                aud: DEFAULT_AUDIENCE.to_owned(),
                sub: uuid::Uuid::new_v4().to_string(),
                tid: uuid::Uuid::new_v4().to_string(),
                exp: now + 15 * 60,
                nbf: now,
                iat: now,
                jti: uuid::Uuid::new_v4().to_string(),
                roles: Vec::new(),
                perms: Vec::new(),
                mods: vec!["hrm".to_owned(), "crm".to_owned(), "finance".to_owned()],
                sid: None,
            },
        }
    }
}

/// Builds the claims of a test token; see [`TestKeys::token`].
#[derive(Debug, Clone)]
pub struct TokenBuilder<'k> {
    signer: &'k TokenSigner,
    claims: Claims,
}

impl TokenBuilder<'_> {
    /// The tenant (`tid`).
    pub fn tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.claims.tid = tenant_id.into();
        self
    }

    /// The user (`sub`).
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.claims.sub = user_id.into();
        self
    }

    /// The permissions (`perms`).
    pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        permissions: I,
    ) -> Self {
        self.claims.perms = permissions.into_iter().map(Into::into).collect();
        self
    }

    /// The roles (`roles`).
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.claims.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// The enabled modules (`mods`): `hrm`, `crm`, `finance`.
    pub fn modules<I: IntoIterator<Item = S>, S: Into<String>>(mut self, modules: I) -> Self {
        self.claims.mods = modules.into_iter().map(Into::into).collect();
        self
    }

    /// Expires `seconds` from now (negative: already expired).
    pub fn expires_in(mut self, seconds: i64) -> Self {
        self.claims.exp = Utc::now().timestamp() + seconds;
        self
    }

    /// Becomes valid `seconds` from now.
    pub fn not_before_in(mut self, seconds: i64) -> Self {
        self.claims.nbf = Utc::now().timestamp() + seconds;
        self
    }

    /// Another issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.claims.iss = issuer.into();
        self
    }

    /// Another audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.claims.aud = audience.into();
        self
    }

    /// The claims as built so far.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The signed token.
    pub fn sign(&self) -> String {
        self.signer
            .sign(&self.claims)
            .unwrap_or_else(|error| panic!("signing a test token: {error}"))
    }
}

/// Tokens no honest issuer produces.
pub mod forge {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use erp_kit::auth::Claims;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    /// `{"alg":"none"}` with the claims and an empty signature.
    pub fn unsigned(claims: &Claims, kid: &str) -> String {
        let header = serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid});
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default())
        )
    }

    /// HS256 with `secret` as the HMAC key: the classic attack of signing with the
    /// verifier's public key bytes.
    pub fn hs256(claims: &Claims, kid: &str, secret: &[u8]) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret))
            .unwrap_or_else(|error| panic!("forging an HS256 token: {error}"))
    }

    /// The token with its payload changed by `change` and the original signature kept.
    pub fn tamper(token: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            panic!("not a compact JWS: {token}");
        };
        let mut claims: serde_json::Value = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_else(|| panic!("payload of {token} is not JSON"));
        change(&mut claims);
        format!(
            "{header}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }
}
