//! Where verification keys come from: the auth service's `GetJwks` (production), a static
//! set (tests), and the cache that refreshes on an unknown `kid` — at most once per
//! interval, one refresh at a time, so a flood of made-up kids cannot hammer auth — and
//! when its keys are older than their maximum age, so a withdrawn key stops verifying.

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
    keys: RwLock<KeySet>,
    refresh: tokio::sync::Mutex<RefreshState>,
    min_refresh_interval: Duration,
    max_age: Duration,
}

/// The keys of the last successful fetch.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
}

/// When the source was last asked, and what went wrong if it failed.
#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_error: Option<KeySourceError>,
}

/// After a failed fetch the source is asked again at most this often (or at the refresh
/// interval, if shorter): a flood of tokens with made-up kids during an auth outage must
/// not turn into a flood of `GetJwks` calls, each holding a request slot while it waits.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("min_refresh_interval", &self.min_refresh_interval)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// The outcome of looking up a kid.
pub(crate) enum KeyLookup {
    Found(Arc<DecodingKey>),
    Unknown,
    SourceUnavailable(KeySourceError),
}

impl JwksCache {
    /// An empty cache: the first lookup fetches. An unknown kid refreshes the keys at
    /// most once per `min_refresh_interval`; keys older than `max_age` are fetched again
    /// before they are trusted, so a key the issuer withdrew stops verifying.
    pub fn new(
        source: Arc<dyn KeySource>,
        min_refresh_interval: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            source,
            keys: RwLock::new(KeySet::default()),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            min_refresh_interval,
            max_age,
        }
    }

    /// Forgets the rate limit, so the next unknown kid fetches at once (the issuer calls
    /// this right after rotating its own key).
    pub async fn invalidate(&self) {
        self.refresh.lock().await.last_attempt = None;
    }

    /// The key of `kid` if it is known; `fresh` asks that the set is younger than the
    /// maximum age.
    fn cached(&self, kid: &str, fresh: bool) -> Option<Arc<DecodingKey>> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if fresh
            && keys
                .fetched_at
                .is_none_or(|at| at.elapsed() >= self.max_age)
        {
            return None;
        }
        keys.by_kid.get(kid).cloned()
    }

    pub(crate) async fn lookup(&self, kid: &str) -> KeyLookup {
        if let Some(key) = self.cached(kid, true) {
            return KeyLookup::Found(key);
        }
        // One refresh at a time. A known key that is merely old is not worth waiting
        // for: while another call refreshes, this one goes on with the key it has.
        let mut refresh = match self.cached(kid, false) {
            Some(stale) => match self.refresh.try_lock() {
                Ok(refresh) => refresh,
                Err(_) => return KeyLookup::Found(stale),
            },
            None => self.refresh.lock().await,
        };
        // Whoever waited re-checks the cache first.
        if let Some(key) = self.cached(kid, true) {
            return KeyLookup::Found(key);
        }
        let wait = if refresh.last_error.is_some() {
            self.min_refresh_interval.min(RETRY_AFTER_FAILURE)
        } else {
            self.min_refresh_interval
        };
        // Counted from the end of the last fetch: a slow or hanging source is asked by
        // one call, and the calls queued behind it take its answer.
        if refresh.last_attempt.is_some_and(|at| at.elapsed() < wait) {
            return match (self.cached(kid, false), &refresh.last_error) {
                (Some(key), _) => KeyLookup::Found(key),
                (None, Some(error)) => KeyLookup::SourceUnavailable(error.clone()),
                (None, None) => KeyLookup::Unknown,
            };
        }
        let fetched = self.source.fetch().await;
        refresh.last_attempt = Some(Instant::now());
        let fetched = match fetched {
            Ok(keys) => keys,
            Err(error) => {
                refresh.last_error = Some(error.clone());
                // While the issuer cannot be asked, the keys it published last still
                // verify: an auth outage must not log everyone out.
                return match self.cached(kid, false) {
                    Some(key) => {
                        tracing::warn!(%error, "cannot refresh the verification keys; using the last ones");
                        KeyLookup::Found(key)
                    }
                    None => KeyLookup::SourceUnavailable(error),
                };
            }
        };
        refresh.last_error = None;
        let mut by_kid = HashMap::with_capacity(fetched.len());
        for jwk in fetched {
            match DecodingKey::from_ed_components(&jwk.x) {
                Ok(key) => {
                    by_kid.insert(jwk.kid, Arc::new(key));
                }
                Err(error) => tracing::warn!(kid = %jwk.kid, %error, "ignoring an undecodable JWK"),
            }
        }
        let found = by_kid.get(kid).cloned();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = KeySet {
            by_kid,
            fetched_at: Some(Instant::now()),
        };
        found.map_or(KeyLookup::Unknown, KeyLookup::Found)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;
    use crate::auth::SigningKey;

    /// Publishes what the test sets (`None`: the source is down) and counts fetches.
    struct ScriptedSource {
        fetches: AtomicUsize,
        keys: Mutex<Option<Vec<Jwk>>>,
    }

    impl ScriptedSource {
        fn publishing(keys: Vec<Jwk>) -> Arc<Self> {
            Arc::new(Self {
                fetches: AtomicUsize::new(0),
                keys: Mutex::new(Some(keys)),
            })
        }

        fn publish(&self, keys: Option<Vec<Jwk>>) {
            *self.keys.lock().expect("lock") = keys;
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl KeySource for ScriptedSource {
        async fn fetch(&self) -> Result<Vec<Jwk>, KeySourceError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            self.keys
                .lock()
                .expect("lock")
                .clone()
                .ok_or_else(|| KeySourceError("down".to_owned()))
        }
    }

    #[tokio::test]
    async fn unknown_kids_refresh_at_most_once_per_interval() {
        let source = ScriptedSource::publishing(vec![SigningKey::generate("k1").public_jwk()]);
        let cache = JwksCache::new(
            source.clone(),
            Duration::from_secs(60),
            Duration::from_secs(300),
        );
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
        assert_eq!(source.fetches(), 1, "one fetch for 51 lookups");
    }

    #[tokio::test]
    async fn a_failing_source_is_not_asked_once_per_made_up_kid() {
        let source = ScriptedSource::publishing(Vec::new());
        source.publish(None);
        let cache = JwksCache::new(
            source.clone(),
            Duration::from_secs(60),
            Duration::from_secs(300),
        );
        for attempt in 0..50 {
            assert!(
                matches!(
                    cache.lookup(&format!("bogus-{attempt}")).await,
                    KeyLookup::SourceUnavailable(_)
                ),
                "lookup {attempt} reports the outage"
            );
        }
        assert_eq!(source.fetches(), 1, "one fetch within the retry interval");
    }

    /// Publishes `keys`, but each fetch waits until the test opens the gate.
    struct GatedSource {
        keys: Vec<Jwk>,
        gate: tokio::sync::Semaphore,
        fetches: AtomicUsize,
    }

    #[async_trait]
    impl KeySource for GatedSource {
        async fn fetch(&self) -> Result<Vec<Jwk>, KeySourceError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let _pass = self.gate.acquire().await.expect("gate open");
            Ok(self.keys.clone())
        }
    }

    #[tokio::test]
    async fn calls_with_an_old_but_known_key_do_not_wait_for_a_slow_refresh() {
        let source = Arc::new(GatedSource {
            keys: vec![SigningKey::generate("k1").public_jwk()],
            gate: tokio::sync::Semaphore::new(1),
            fetches: AtomicUsize::new(0),
        });
        let max_age = Duration::from_millis(20);
        let cache = Arc::new(JwksCache::new(source.clone(), Duration::ZERO, max_age));
        assert!(matches!(cache.lookup("k1").await, KeyLookup::Found(_)));

        // The keys grow old; the next refresh hangs until the gate opens.
        let held = source.gate.acquire().await.expect("gate");
        tokio::time::sleep(max_age * 2).await;
        let refreshing = tokio::spawn({
            let cache = cache.clone();
            async move { matches!(cache.lookup("k1").await, KeyLookup::Found(_)) }
        });
        while source.fetches.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        for _ in 0..10 {
            let answered = tokio::time::timeout(Duration::from_secs(5), cache.lookup("k1"))
                .await
                .expect("answered while the refresh hangs");
            assert!(matches!(answered, KeyLookup::Found(_)));
        }
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2, "one refresh");
        drop(held);
        assert!(refreshing.await.expect("joins"));
    }

    #[tokio::test]
    async fn a_withdrawn_key_stops_verifying_once_the_keys_are_old() {
        let key = SigningKey::generate("k1").public_jwk();
        let source = ScriptedSource::publishing(vec![key.clone()]);
        let max_age = Duration::from_millis(50);
        let cache = JwksCache::new(source.clone(), Duration::ZERO, max_age);
        assert!(matches!(cache.lookup("k1").await, KeyLookup::Found(_)));

        // The issuer cannot be asked: the last keys still verify, past their age.
        source.publish(None);
        tokio::time::sleep(max_age * 2).await;
        assert!(matches!(cache.lookup("k1").await, KeyLookup::Found(_)));

        // The issuer withdrew the key: it stops verifying at the next refresh.
        source.publish(Some(Vec::new()));
        tokio::time::sleep(RETRY_AFTER_FAILURE.min(max_age * 2)).await;
        assert!(matches!(cache.lookup("k1").await, KeyLookup::Unknown));
    }
}
