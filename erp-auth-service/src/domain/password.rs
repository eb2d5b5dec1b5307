//! Passwords: the policy a new password must meet, and argon2id hashing in PHC strings
//! (OWASP minimum parameters by default) with rehash-on-login when parameters change.

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A password that meets the policy: 12–128 characters, at least two of lower case,
/// upper case, digits and symbols.
#[derive(Debug)]
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Checks the policy.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let length = raw.chars().count();
        if length < 12 {
            return Err("must be at least 12 characters".to_owned());
        }
        if length > 128 {
            return Err("must be at most 128 characters".to_owned());
        }
        let classes = [
            raw.chars().any(|c| c.is_lowercase()),
            raw.chars().any(|c| c.is_uppercase()),
            raw.chars().any(|c| c.is_ascii_digit()),
            raw.chars().any(|c| !c.is_alphanumeric()),
        ];
        if classes.iter().filter(|present| **present).count() < 2 {
            return Err(
                "must mix at least two of: lower case, upper case, digits, symbols".to_owned(),
            );
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// The password.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// argon2id cost parameters (`ERP_AUTH__PASSWORD_HASHING__*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HashingParams {
    /// Memory in KiB (OWASP minimum 19456).
    pub memory_kib: u32,
    /// Iterations (OWASP minimum 2 at 19 MiB).
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashingParams {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Why a hash could not be made or checked.
#[derive(Debug, thiserror::Error)]
#[error("password hashing: {0}")]
pub struct HashingError(String);

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password.
    Mismatch,
    /// Right password, hash current.
    Match,
    /// Right password, hashed with other parameters: store a new hash.
    MatchNeedsRehash,
}

/// Hashes and verifies passwords with one set of parameters.
#[derive(Clone)]
pub struct PasswordHasher {
    params: HashingParams,
    argon2: Argon2<'static>,
    /// A real hash of a random password, verified when the user is unknown so that
    /// unknown emails and wrong passwords take the same time.
    decoy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with `params`.
    pub fn new(params: HashingParams) -> Result<Self, HashingError> {
        let argon_params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|error| HashingError(error.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
        let mut hasher = Self {
            params,
            argon2,
            decoy: String::new(),
        };
        let decoy_password = format!("decoy-{}", uuid::Uuid::new_v4());
        hasher.decoy = hasher.hash(&SecretString::from(decoy_password))?;
        Ok(hasher)
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `password`.
    pub fn hash(&self, password: &SecretString) -> Result<String, HashingError> {
        self.argon2
            .hash_password(password.expose_secret().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| HashingError(error.to_string()))
    }

    /// Checks `password` against a stored PHC string.
    pub fn verify(&self, password: &SecretString, stored: &str) -> Verification {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Verification::Mismatch;
        };
        if self
            .argon2
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_err()
        {
            return Verification::Mismatch;
        }
        let current = |name: &str| parsed.params.get_decimal(name);
        let same = parsed.algorithm.as_str() == "argon2id"
            && current("m") == Some(self.params.memory_kib)
            && current("t") == Some(self.params.iterations)
            && current("p") == Some(self.params.parallelism);
        if same {
            Verification::Match
        } else {
            Verification::MatchNeedsRehash
        }
    }

    /// Spends the time a real verification takes, for an unknown user.
    pub fn verify_decoy(&self, password: &SecretString) {
        let _ = self.verify(password, &self.decoy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashingParams {
        HashingParams {
            memory_kib: 1_024,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn the_policy_wants_length_and_two_character_classes() {
        assert!(NewPassword::parse("short1A").is_err());
        assert!(NewPassword::parse("alllowercaseletters").is_err());
        assert!(NewPassword::parse("lowercase-and-symbols").is_ok());
        assert!(NewPassword::parse("Correct Horse Battery").is_ok());
        assert!(NewPassword::parse(&"aA".repeat(65)).is_err());
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(cheap()).expect("hasher");
        let password = SecretString::from("Correct Horse Battery".to_owned());
        let stored = hasher.hash(&password).expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{stored}"
        );
        assert_eq!(hasher.verify(&password, &stored), Verification::Match);
        let wrong = SecretString::from("Correct Horse Battery!".to_owned());
        assert_eq!(hasher.verify(&wrong, &stored), Verification::Mismatch);
        assert_eq!(
            hasher.verify(&password, "not a phc string"),
            Verification::Mismatch
        );
    }

    #[test]
    fn a_hash_with_other_parameters_asks_for_a_rehash() {
        let old = PasswordHasher::new(cheap()).expect("hasher");
        let password = SecretString::from("Correct Horse Battery".to_owned());
        let stored = old.hash(&password).expect("hash");
        let newer = PasswordHasher::new(HashingParams {
            iterations: 2,
            ..cheap()
        })
        .expect("hasher");
        assert_eq!(
            newer.verify(&password, &stored),
            Verification::MatchNeedsRehash
        );
    }
}
