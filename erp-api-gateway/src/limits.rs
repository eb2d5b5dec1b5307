//! Token-bucket rate limits at the edge: one bucket per tenant for authenticated calls and
//! one per client address for public ones (login, JWKS). A refused call learns how long to
//! wait (`Retry-After`).

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use serde::Deserialize;

/// Rates and bursts (`ERP_LIMITS__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained calls per second of one tenant (a positive number).
    #[serde(deserialize_with = "positive_rate")]
    pub tenant_per_second: f64,
    /// Calls one tenant may make at once after being idle.
    pub tenant_burst: u32,
    /// Sustained unauthenticated calls per second from one client address (positive).
    #[serde(deserialize_with = "positive_rate")]
    pub address_per_second: f64,
    /// Unauthenticated calls one address may make at once.
    pub address_burst: u32,
    /// The largest request body accepted, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// The longest request target (path and query), in bytes (longer: 414).
    pub max_uri_bytes: usize,
    /// The most header bytes (names and values together) a request may carry (more: 431).
    pub max_header_bytes: usize,
    /// The longest a client may take to send its body (slower: 408).
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            tenant_per_second: 200.0,
            tenant_burst: 400,
            address_per_second: 5.0,
            address_burst: 20,
            max_body_bytes: 4 * 1024 * 1024,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// A rate must be a positive, finite number of calls per second: with 0 no bucket ever
/// refills, and nobody could be told when to come back.
fn positive_rate<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let rate = f64::deserialize(deserializer)?;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(serde::de::Error::custom(format!(
            "must be a positive number of calls per second, not {rate}"
        )))
    }
}

/// Buckets beyond this many are pruned of the idle (full) ones.
const PRUNE_ABOVE: usize = 100_000;

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `per_second` sustained, `burst` at once.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`, or says how long until one is there.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| bucket.refilled(now, per_second, burst) < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        bucket.tokens = bucket.refilled(now, self.per_second, self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(
            Duration::try_from_secs_f64((1.0 - bucket.tokens) / self.per_second)
                .unwrap_or(Duration::MAX),
        )
    }
}

impl Bucket {
    fn refilled(&self, now: Instant, per_second: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * per_second).min(burst)
    }
}

/// A streamed request body that fails once more than its limit has come, and remembers
/// that it did (the gRPC proxy streams bodies through instead of reading them first).
#[derive(Debug)]
pub struct CappedBody {
    inner: axum::body::Body,
    left: usize,
    exceeded: Arc<AtomicBool>,
}

/// The error of a body over its limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than the limit")]
pub struct BodyTooLarge;

impl CappedBody {
    /// `inner`, failing after `limit` bytes; the flag it returns says whether it did.
    pub fn new(inner: axum::body::Body, limit: usize) -> (Self, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        let body = Self {
            inner,
            left: limit,
            exceeded: exceeded.clone(),
        };
        (body, exceeded)
    }
}

impl http_body::Body for CappedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let size = frame.data_ref().map_or(0, Bytes::len);
                if size > this.left {
                    this.exceeded.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                }
                this.left -= size;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Box::new(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_capped_body_passes_up_to_its_limit_and_fails_beyond() {
        use http_body_util::BodyExt as _;
        let (body, exceeded) = CappedBody::new(axum::body::Body::from(vec![7u8; 10]), 10);
        assert_eq!(body.collect().await.expect("within").to_bytes().len(), 10);
        assert!(!exceeded.load(Ordering::Acquire));
        let (body, exceeded) = CappedBody::new(axum::body::Body::from(vec![7u8; 11]), 10);
        body.collect().await.expect_err("over");
        assert!(exceeded.load(Ordering::Acquire));
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let limiter = RateLimiter::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("t", start).is_ok());
        }
        let wait = limiter.take("t", start).expect_err("burst spent");
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(
            limiter
                .take("t", start + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            limiter
                .take("t", start + Duration::from_millis(500))
                .is_err()
        );
        assert!(limiter.take("other", start).is_ok(), "keys are separate");
    }

    #[test]
    fn idle_buckets_refill_only_up_to_the_burst() {
        let limiter = RateLimiter::new(100.0, 2);
        let start = Instant::now();
        let later = start + Duration::from_secs(60);
        assert!(limiter.take("t", start).is_ok());
        for _ in 0..2 {
            assert!(limiter.take("t", later).is_ok());
        }
        assert!(limiter.take("t", later).is_err());
    }
}
