//! Ed25519 signing keys and the signer that turns claims into compact JWS tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretSlice};

use super::{Claims, Jwk};

/// An Ed25519 key pair with its key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate(kid: impl Into<String>) -> Self {
        let seed: [u8; 32] = rand::random();
        Self::from_seed(kid, &seed)
    }

    /// The key of a 32-byte seed (as stored, encrypted, by the auth service).
    pub fn from_seed(kid: impl Into<String>, seed: &[u8; 32]) -> Self {
        Self {
            kid: kid.into(),
            key: ed25519_dalek::SigningKey::from_bytes(seed),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The 32-byte seed, for storage.
    pub fn seed(&self) -> SecretSlice<u8> {
        self.key.to_bytes().to_vec().into()
    }

    /// The public half as a JWK.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            kid: self.kid.clone(),
            x: URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
        }
    }
}

/// Signs claims as EdDSA JWTs with `kid` in the header.
#[derive(Clone)]
pub struct TokenSigner {
    kid: String,
    encoding_key: EncodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the token: {0}")]
pub struct SignError(String);

impl TokenSigner {
    /// A signer for `key`.
    pub fn new(key: &SigningKey) -> Result<Self, SignError> {
        let der = key
            .key
            .to_pkcs8_der()
            .map_err(|error| SignError(error.to_string()))?;
        let der: SecretSlice<u8> = der.as_bytes().to_vec().into();
        Ok(Self {
            kid: key.kid.clone(),
            encoding_key: EncodingKey::from_ed_der(der.expose_secret()),
        })
    }

    /// The key id put in every header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A compact JWS of `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, SignError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key)
            .map_err(|error| SignError(error.to_string()))
    }
}
