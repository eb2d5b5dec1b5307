//! Signing keys at rest: each Ed25519 seed is sealed with ChaCha20-Poly1305 under the
//! key-encryption key from config, its key id bound as associated data.

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit,
    aead::{Aead, Payload},
};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

/// The key that seals signing keys (32 bytes, base64 in config).
pub struct KeyEncryptionKey(SecretSlice<u8>);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(…)")
    }
}

/// Why a seed could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The configured key is not 32 bytes of base64.
    #[error("auth.key_encryption_key must be 32 bytes, base64-encoded")]
    InvalidKek,
    /// The stored seed does not open with this key (wrong key, or tampered).
    #[error("a stored signing key does not decrypt with auth.key_encryption_key")]
    Unseal,
}

/// A sealed seed: nonce and ciphertext.
#[derive(Debug, Clone)]
pub struct SealedSeed {
    /// 12 random bytes.
    pub nonce: Vec<u8>,
    /// The encrypted 32-byte seed with its tag.
    pub ciphertext: Vec<u8>,
}

impl KeyEncryptionKey {
    /// Parses the configured key.
    pub fn from_base64(encoded: &SecretString) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(encoded.expose_secret().trim())
            .map_err(|_| KeyError::InvalidKek)?;
        if bytes.len() != 32 {
            return Err(KeyError::InvalidKek);
        }
        Ok(Self(bytes.into()))
    }

    fn cipher(&self) -> Result<ChaCha20Poly1305, KeyError> {
        ChaCha20Poly1305::new_from_slice(self.0.expose_secret()).map_err(|_| KeyError::InvalidKek)
    }

    /// Seals `seed` for key `kid`.
    pub fn seal(&self, kid: &str, seed: &[u8]) -> Result<SealedSeed, KeyError> {
        let nonce: [u8; 12] = rand::random();
        let ciphertext = self
            .cipher()?
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: seed,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Unseal)?;
        Ok(SealedSeed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens the seed of key `kid`.
    pub fn open(&self, kid: &str, sealed: &SealedSeed) -> Result<[u8; 32], KeyError> {
        let nonce: [u8; 12] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Unseal)?;
        let seed = self
            .cipher()?
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Unseal)?;
        seed.as_slice().try_into().map_err(|_| KeyError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::from_base64(&SecretString::from(STANDARD.encode([7u8; 32])))
            .expect("valid kek")
    }

    #[test]
    fn a_sealed_seed_opens_only_for_its_kid() {
        let seed = [42u8; 32];
        let sealed = kek().seal("kid-1", &seed).expect("sealed");
        assert_ne!(sealed.ciphertext[..32], seed[..]);
        assert_eq!(kek().open("kid-1", &sealed).expect("opens"), seed);
        assert!(kek().open("kid-2", &sealed).is_err());
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(
            KeyEncryptionKey::from_base64(&SecretString::from(STANDARD.encode([1u8; 16]))).is_err()
        );
    }
}
