//! Sessions: opaque refresh tokens, stored only as hashes, rotated on every use and
//! grouped in a family per login. Presenting a token that was already rotated is a sign
//! of theft: the whole family is revoked (RFC 9700, refresh token rotation).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// A new refresh token: the value for the client and the hash to store.
#[derive(Debug)]
pub struct IssuedRefreshToken {
    /// Sent to the client once, never stored.
    pub value: SecretString,
    /// Stored and looked up.
    pub hash: String,
}

/// 32 random bytes, base64url.
pub fn new_refresh_token() -> IssuedRefreshToken {
    let bytes: [u8; 32] = rand::random();
    let value = URL_SAFE_NO_PAD.encode(bytes);
    IssuedRefreshToken {
        hash: hash_refresh_token(&value),
        value: SecretString::from(value),
    }
}

/// The stored form of a refresh token (hex SHA-256).
pub fn hash_refresh_token(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Where a stored refresh token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenState {
    /// The current token of its family.
    Active,
    /// Already exchanged for a newer one.
    Rotated,
    /// Revoked (logout, reuse, password change, disabled user).
    Revoked,
}

impl RefreshTokenState {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Rotated => "rotated",
            Self::Revoked => "revoked",
        }
    }

    /// From storage.
    pub fn from_name(name: &str) -> Self {
        match name {
            "active" => Self::Active,
            "rotated" => Self::Rotated,
            _ => Self::Revoked,
        }
    }
}

/// What to do with a presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Issue a new pair and mark this token rotated.
    Rotate,
    /// A rotated token came back: revoke the family.
    RevokeFamily,
    /// Refuse (expired, revoked, or its family is revoked).
    Refuse,
}

/// Decides on a presented token.
pub fn decide(
    state: RefreshTokenState,
    family_revoked: bool,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> RefreshDecision {
    match state {
        RefreshTokenState::Rotated if !family_revoked => RefreshDecision::RevokeFamily,
        RefreshTokenState::Active if !family_revoked && expires_at > now => RefreshDecision::Rotate,
        _ => RefreshDecision::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_hashes() {
        let first = new_refresh_token();
        let second = new_refresh_token();
        assert_ne!(first.hash, second.hash);
        assert_eq!(first.hash.len(), 64);
        use secrecy::ExposeSecret;
        assert_eq!(hash_refresh_token(first.value.expose_secret()), first.hash);
    }

    #[test]
    fn rotation_and_reuse_decisions() {
        let now = Utc::now();
        let later = now + Duration::days(1);
        assert_eq!(
            decide(RefreshTokenState::Active, false, later, now),
            RefreshDecision::Rotate
        );
        assert_eq!(
            decide(RefreshTokenState::Rotated, false, later, now),
            RefreshDecision::RevokeFamily
        );
        assert_eq!(
            decide(RefreshTokenState::Rotated, true, later, now),
            RefreshDecision::Refuse
        );
        assert_eq!(
            decide(RefreshTokenState::Active, true, later, now),
            RefreshDecision::Refuse
        );
        assert_eq!(
            decide(
                RefreshTokenState::Active,
                false,
                now - Duration::seconds(1),
                now
            ),
            RefreshDecision::Refuse
        );
        assert_eq!(
            decide(RefreshTokenState::Revoked, false, later, now),
            RefreshDecision::Refuse
        );
    }
}
