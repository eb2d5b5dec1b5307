//! EdDSA-only JWT verification: the algorithm is pinned (none, HS*, RS* are refused before
//! any key is touched), `iss`, `aud`, `exp` and `nbf` are checked with a small leeway, and
//! the key is found by `kid` in a [`JwksCache`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use secrecy::SecretString;

use super::{
    AuthContext, Claims, JwksCache, KeySource,
    jwks::{KeyLookup, KeySourceError},
};
use crate::config::AuthConfig;

/// Why a token was refused. The `Display` text is safe to send to the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS, or its header or claims do not decode.
    #[error("the token is malformed")]
    Malformed,
    /// Signed with another algorithm than EdDSA (or none).
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// No `kid`, or a kid no current key has.
    #[error("the token's signing key is unknown")]
    UnknownKey,
    /// The signature does not match.
    #[error("the token's signature is invalid")]
    Signature,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Wrong `iss`.
    #[error("the token's issuer is not accepted")]
    Issuer,
    /// Wrong `aud`.
    #[error("the token's audience is not accepted")]
    Audience,
    /// A required claim is missing.
    #[error("the token lacks the claim {0}")]
    MissingClaim(String),
    /// The keys could not be fetched: not the caller's fault.
    #[error("{0}")]
    KeysUnavailable(KeySourceError),
}

/// How many verified tokens are remembered (a client sends the same token on every call
/// for up to 15 minutes; re-verifying its signature and rebuilding its context each time
/// would be the biggest per-call cost).
const VERIFIED_CACHE_ENTRIES: usize = 10_000;

/// Verifies access tokens.
#[derive(Debug)]
pub struct TokenVerifier {
    issuer: String,
    audience: String,
    leeway: Duration,
    keys: JwksCache,
    verified: Mutex<HashMap<Arc<str>, Verified>>,
}

/// A token verified before: who it stands for, and the key that signed it (a token stays
/// good only while its key is still published).
#[derive(Debug, Clone)]
struct Verified {
    caller: AuthContext,
    kid: Arc<str>,
}

impl TokenVerifier {
    /// A verifier expecting `config`'s issuer and audience, with keys from `source`.
    pub fn new(config: &AuthConfig, source: Arc<dyn KeySource>) -> Self {
        Self {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway,
            keys: JwksCache::new(
                source,
                config.jwks_min_refresh_interval,
                config.jwks_max_age,
            ),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Lets the next unknown kid refresh the keys at once (after a rotation).
    pub async fn invalidate_keys(&self) {
        self.keys.invalidate().await;
    }

    /// The caller a valid token stands for. A token verified before is answered from
    /// memory (the same shared context) until it expires or its key is withdrawn; the
    /// signature, issuer and audience of a token never change.
    pub async fn verify(&self, token: &str) -> Result<AuthContext, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        if let Some(Verified { caller, kid }) = self.remembered(token) {
            if caller.claims.exp.saturating_add(leeway) <= now {
                return Err(TokenError::Expired);
            }
            self.key(&kid).await?;
            return Ok(caller);
        }
        let (claims, kid) = self.verify_signature(token).await?;
        let caller = AuthContext::from_claims(claims, SecretString::from(token.to_owned()));
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_CACHE_ENTRIES {
            // Forget expired tokens; if every entry is live, start over (bounded memory).
            verified.retain(|_, entry| entry.caller.claims.exp.saturating_add(leeway) > now);
            if verified.len() >= VERIFIED_CACHE_ENTRIES {
                verified.clear();
            }
        }
        verified.insert(
            Arc::from(token),
            Verified {
                caller: caller.clone(),
                kid: Arc::from(kid),
            },
        );
        Ok(caller)
    }

    fn remembered(&self, token: &str) -> Option<Verified> {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    async fn key(&self, kid: &str) -> Result<Arc<jsonwebtoken::DecodingKey>, TokenError> {
        match self.keys.lookup(kid).await {
            KeyLookup::Found(key) => Ok(key),
            KeyLookup::Unknown => Err(TokenError::UnknownKey),
            KeyLookup::SourceUnavailable(error) => Err(TokenError::KeysUnavailable(error)),
        }
    }

    /// The claims of a token whose signature checks out, and its key's id.
    async fn verify_signature(&self, token: &str) -> Result<(Claims, String), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway.as_secs();
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| (data.claims, kid))
            .map_err(|error| match error.into_kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer => TokenError::Issuer,
                ErrorKind::InvalidAudience => TokenError::Audience,
                ErrorKind::InvalidSignature => TokenError::Signature,
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::Algorithm,
                ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
                _ => TokenError::Malformed,
            })
    }
}
