//! Where verification keys come from: the auth service's `GetJwks` (production), a static
//! set (tests), and the cache that refreshes on an unknown `kid` — at most once per
//! interval, one refresh at a time, so a flood of made-up kids cannot hammer auth.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use erp_proto::erp::auth::v1::{GetJwksRequest, auth_service_client::AuthServiceClient};
use jsonwebtoken::DecodingKey;

/// The public part of an Ed25519 key: its id and `x` (base64url, no padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// Key id.
    pub kid: String,
    /// The 32-byte public key, base64url without padding.
    pub x: String,
}

/// Why keys could not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the key source is unavailable: {0}")]
pub struct KeySourceError(pub String);

/// Supplies the current verification keys.
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// Every key that may have signed an unexpired token.
    async fn fetch(&self) -> Result<Vec<Jwk>, KeySourceError>;
}

/// A fixed set of keys (tests, or a service configured with keys directly).
#[derive(Debug, Clone, Default)]
pub struct StaticKeySource {
    keys: Vec<Jwk>,
}

impl StaticKeySource {
    /// These keys, forever.
    pub fn new(keys: Vec<Jwk>) -> Self {
        Self { keys }
    }
}

#[async_trait]
impl KeySource for StaticKeySource {
    async fn fetch(&self) -> Result<Vec<Jwk>, KeySourceError> {
        Ok(self.keys.clone())
    }
}

/// Keys from the auth service's `GetJwks` RPC.
#[derive(Debug, Clone)]
pub struct GrpcJwksSource {
    client: AuthServiceClient<tonic::transport::Channel>,
}

impl GrpcJwksSource {
    /// Calls `GetJwks` at `url` (connects lazily, so auth may start later).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, KeySourceError> {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|error| KeySourceError(format!("invalid JWKS url {url}: {error}")))?
            .connect_timeout(timeout)
            .timeout(timeout);
        Ok(Self {
            client: AuthServiceClient::new(endpoint.connect_lazy()),
        })
    }
}

#[async_trait]
impl KeySource for GrpcJwksSource {
    async fn fetch(&self) -> Result<Vec<Jwk>, KeySourceError> {
        let response = self
            .client
            .clone()
            .get_jwks(GetJwksRequest {})
            .await
            .map_err(|status| KeySourceError(format!("GetJwks failed: {}", status.message())))?;
        Ok(response
            .into_inner()
            .keys
            .into_iter()
            .filter(|key| key.kty == "OKP" && key.crv == "Ed25519")
            .map(|key| Jwk {
                kid: key.kid,
                x: key.x,
            })
            .collect())
    }
}

/// The verification keys by kid, filled from a [`KeySource`].
pub struct JwksCache {
    source: Arc<dyn KeySource>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    min_refresh_interval: Duration,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("min_refresh_interval", &self.min_refresh_interval)
            .finish_non_exhaustive()
    }
}

/// The outcome of looking up a kid.
pub(crate) enum KeyLookup {
    Found(DecodingKey),
    Unknown,
    SourceUnavailable(KeySourceError),
}

impl JwksCache {
    /// An empty cache: the first lookup fetches.
    pub fn new(source: Arc<dyn KeySource>, min_refresh_interval: Duration) -> Self {
        Self {
            source,
            keys: RwLock::new(HashMap::new()),
            last_refresh: tokio::sync::Mutex::new(None),
            min_refresh_interval,
        }
    }

    /// Forgets the rate limit, so the next unknown kid fetches at once (the issuer calls
    /// this right after rotating its own key).
    pub async fn invalidate(&self) {
        *self.last_refresh.lock().await = None;
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    pub(crate) async fn lookup(&self, kid: &str) -> KeyLookup {
        if let Some(key) = self.cached(kid) {
            return KeyLookup::Found(key);
        }
        // One refresh at a time; whoever waited re-checks the cache first.
        let mut last_refresh = self.last_refresh.lock().await;
        if let Some(key) = self.cached(kid) {
            return KeyLookup::Found(key);
        }
        if last_refresh.is_some_and(|at| at.elapsed() < self.min_refresh_interval) {
            return KeyLookup::Unknown;
        }
        *last_refresh = Some(Instant::now());
        let fetched = match self.source.fetch().await {
            Ok(keys) => keys,
            Err(error) => {
                // Let the next caller retry instead of waiting out the interval.
                *last_refresh = None;
                return KeyLookup::SourceUnavailable(error);
            }
        };
        let mut decoded = HashMap::with_capacity(fetched.len());
        for jwk in fetched {
            match DecodingKey::from_ed_components(&jwk.x) {
                Ok(key) => {
                    decoded.insert(jwk.kid, key);
                }
                Err(error) => tracing::warn!(kid = %jwk.kid, %error, "ignoring an undecodable JWK"),
            }
        }
        let found = decoded.get(kid).cloned();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = decoded;
        found.map_or(KeyLookup::Unknown, KeyLookup::Found)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::auth::SigningKey;

    struct CountingSource {
        fetches: AtomicUsize,
        keys: Vec<Jwk>,
    }

    #[async_trait]
    impl KeySource for CountingSource {
        async fn fetch(&self) -> Result<Vec<Jwk>, KeySourceError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(self.keys.clone())
        }
    }

    #[tokio::test]
    async fn unknown_kids_refresh_at_most_once_per_interval() {
        let source = Arc::new(CountingSource {
            fetches: AtomicUsize::new(0),
            keys: vec![SigningKey::generate("k1").public_jwk()],
        });
        let cache = JwksCache::new(source.clone(), Duration::from_secs(60));
        assert!(matches!(cache.lookup("k1").await, KeyLookup::Found(_)));
        for attempt in 0..50 {
            assert!(
                matches!(
                    cache.lookup(&format!("bogus-{attempt}")).await,
                    KeyLookup::Unknown
                ),
                "made-up kid {attempt} is unknown"
            );
        }
        assert_eq!(
            source.fetches.load(Ordering::SeqCst),
            1,
            "one fetch for 51 lookups"
        );
    }
}
