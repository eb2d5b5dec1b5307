//! The signing keyring: the current key (cached briefly so every replica picks up a
//! rotation within seconds), rotation, and the key source this service verifies its own
//! tokens with.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::TimeDelta;
use erp_kit::auth::{Claims, Jwk, KeySource, KeySourceError, TokenSigner};
use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::RwLock;

use crate::{
    domain::keys::KeyEncryptionKey,
    error::{Error, Result},
    store,
};

/// How long a replica signs with the key it loaded before looking for a newer one.
const SIGNER_CACHE: Duration = Duration::from_secs(10);

/// How long past its tokens' lifetime a retired key stays published: other replicas may
/// sign with it for [`SIGNER_CACHE`] after the rotation, and verifiers accept an expired
/// token for their clock leeway (30 s by default; a minute covers it).
const RETIRED_KEY_GRACE: Duration = Duration::from_secs(SIGNER_CACHE.as_secs() + 60);

/// How long a retired key stays in the JWKS: every token it may have signed is expired.
fn publication_after_retirement(access_ttl: TimeDelta) -> TimeDelta {
    access_ttl + TimeDelta::from_std(RETIRED_KEY_GRACE).unwrap_or(TimeDelta::MAX)
}

/// The current signing key and rotation.
pub struct Keyring {
    db: DatabaseConnection,
    kek: KeyEncryptionKey,
    access_ttl: TimeDelta,
    signer: RwLock<Option<(Arc<TokenSigner>, Instant)>>,
}

impl Keyring {
    pub(crate) fn new(
        db: DatabaseConnection,
        kek: KeyEncryptionKey,
        access_ttl: TimeDelta,
    ) -> Self {
        Self {
            db,
            kek,
            access_ttl,
            signer: RwLock::new(None),
        }
    }

    /// Creates the first key of a new installation.
    pub async fn ensure_current_key(&self) -> Result<()> {
        if store::keys::current(&self.db, &self.kek).await?.is_none() {
            let txn = self.db.begin().await?;
            let key = store::keys::rotate(&txn, &self.kek).await?;
            txn.commit().await?;
            tracing::info!(kid = key.kid(), "created the first signing key");
        }
        Ok(())
    }

    /// Signs `claims` with the current key.
    pub async fn sign(&self, claims: &Claims) -> Result<String> {
        let signer = self.current().await?;
        signer
            .sign(claims)
            .map_err(|error| Error::Unexpected(error.into()))
    }

    async fn current(&self) -> Result<Arc<TokenSigner>> {
        if let Some((signer, loaded)) = self.signer.read().await.as_ref()
            && loaded.elapsed() < SIGNER_CACHE
        {
            return Ok(signer.clone());
        }
        let key = store::keys::current(&self.db, &self.kek)
            .await?
            .ok_or_else(|| Error::Unexpected(anyhow::anyhow!("no current signing key")))?;
        let signer =
            Arc::new(TokenSigner::new(&key).map_err(|error| Error::Unexpected(error.into()))?);
        *self.signer.write().await = Some((signer.clone(), Instant::now()));
        Ok(signer)
    }

    /// Adds a new current key; the previous one stays published until its tokens expired.
    pub async fn rotate(&self) -> Result<String> {
        // Retiring the old key and inserting the new one commit together, or neither.
        let txn = self.db.begin().await?;
        let key = store::keys::rotate(&txn, &self.kek).await?;
        txn.commit().await?;
        let signer =
            Arc::new(TokenSigner::new(&key).map_err(|error| Error::Unexpected(error.into()))?);
        *self.signer.write().await = Some((signer, Instant::now()));
        tracing::info!(kid = key.kid(), "rotated the signing key");
        Ok(key.kid().to_owned())
    }

    /// The published public keys (GetJwks).
    pub async fn published(&self) -> Result<Vec<Jwk>> {
        store::keys::published(
            &self.db,
            publication_after_retirement(self.access_ttl),
            chrono::Utc::now(),
        )
        .await
    }
}

/// The auth service verifies its own tokens with keys read from its database.
#[derive(Debug, Clone)]
pub struct StoreKeySource {
    db: DatabaseConnection,
    access_ttl: TimeDelta,
}

impl StoreKeySource {
    pub(crate) fn new(db: DatabaseConnection, access_ttl: TimeDelta) -> Self {
        Self { db, access_ttl }
    }
}

#[async_trait]
impl KeySource for StoreKeySource {
    async fn fetch(&self) -> std::result::Result<Vec<Jwk>, KeySourceError> {
        store::keys::published(
            &self.db,
            publication_after_retirement(self.access_ttl),
            chrono::Utc::now(),
        )
        .await
        .map_err(|error| KeySourceError(error.to_string()))
    }
}
