//! The use cases of the auth service: each one validates with the domain, works through
//! the store in one transaction (with its outbox events), and returns plain values. The
//! gRPC handlers and the event consumer are thin adapters over them.

mod keyring;
mod sessions;
mod tenants;
mod users;

use std::{collections::BTreeSet, sync::Arc};

use chrono::TimeDelta;
use erp_db::PageTokens;
use erp_events::Outbox;
use erp_kit::auth::TokenVerifier;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;

pub use keyring::{Keyring, StoreKeySource};
pub use sessions::{EXPIRED_KEPT_FOR, IssuedTokens, LoginAttempt, Purged, TokenValidity};
pub use tenants::NewTenant;
pub(crate) use tenants::proto_module;
pub use users::{NewUser, UserUpdate};

use crate::{
    config::{AuthSettings, SERVICE_NAME},
    domain::{keys::KeyEncryptionKey, password::PasswordHasher, role::DATA_PERMISSIONS},
    error::{Error, Result},
};

/// The service's state and use cases.
pub struct Auth {
    pub(crate) db: DatabaseConnection,
    pub(crate) settings: AuthSettings,
    pub(crate) hasher: Arc<PasswordHasher>,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) verifier: Arc<TokenVerifier>,
    pub(crate) outbox: Outbox,
    pub(crate) page_tokens: PageTokens,
    pub(crate) known_permissions: BTreeSet<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// The use cases over `db`, with keys sealed by the configured key-encryption key.
    pub async fn new(db: DatabaseConnection, settings: AuthSettings) -> Result<Self> {
        let kek = KeyEncryptionKey::from_base64(&settings.key_encryption_key)
            .map_err(|error| Error::Unexpected(error.into()))?;
        let hasher = PasswordHasher::new(settings.password_hashing)
            .map_err(|error| Error::Unexpected(error.into()))?;
        let access_ttl = ttl(settings.access_token_ttl);
        let keyring = Arc::new(Keyring::new(db.clone(), kek, access_ttl));
        keyring.ensure_current_key().await?;
        let verifier_config = erp_kit::config::AuthConfig {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            jwks_min_refresh_interval: std::time::Duration::from_secs(1),
            ..erp_kit::config::AuthConfig::default()
        };
        let verifier = Arc::new(TokenVerifier::new(
            &verifier_config,
            Arc::new(StoreKeySource::new(db.clone(), access_ttl)),
        ));
        let mut known_permissions: BTreeSet<String> = erp_proto::Contracts::bundled()
            .permissions()
            .into_iter()
            .map(str::to_owned)
            .collect();
        known_permissions.extend(DATA_PERMISSIONS.iter().map(|(name, _)| (*name).to_owned()));
        Ok(Self {
            page_tokens: PageTokens::new(settings.page_token_secret.expose_secret()),
            hasher: Arc::new(hasher),
            outbox: Outbox::new(SERVICE_NAME),
            keyring,
            verifier,
            known_permissions,
            settings,
            db,
        })
    }

    /// The verifier of this service's own tokens (keys straight from its database).
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        self.verifier.clone()
    }

    /// Whether the source of a login may come from `x-forwarded-for`.
    pub fn trusts_forwarded_for(&self) -> bool {
        self.settings.lockout.trust_forwarded_for
    }

    /// The signing keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Makes a new key current; this service's own verifier picks it up at once.
    pub async fn rotate_signing_key(&self) -> Result<String> {
        let kid = self.keyring.rotate().await?;
        self.verifier.invalidate_keys().await;
        Ok(kid)
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Hashes a password off the async runtime (argon2 takes tens of milliseconds).
    async fn hash_password(&self, password: secrecy::SecretString) -> Result<String> {
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(|error| Error::Unexpected(error.into()))?
            .map_err(|error| Error::Unexpected(error.into()))
    }
}

pub(crate) fn ttl(duration: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}
