//! Login lockout: attempts are counted per account (tenant + email, whether or not the
//! account exists, so a lockout reveals nothing) and per source address within a window;
//! past the limit, logins are refused until the lock expires. The counting itself is one
//! atomic statement in the store.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

/// Limits on failed logins (`ERP_AUTH__LOCKOUT__*`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutPolicy {
    /// Failed logins of one account within `window` before it locks.
    pub max_failures_per_account: u32,
    /// Failed logins from one source address within `window` before it locks.
    pub max_failures_per_source: u32,
    /// The counting window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long a lock lasts.
    #[serde(with = "humantime_serde")]
    pub lock_for: Duration,
    /// Take the source address from `x-forwarded-for` (only behind the gateway, which sets
    /// it); otherwise the connecting peer's address counts.
    pub trust_forwarded_for: bool,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_source: 20,
            window: Duration::from_secs(15 * 60),
            lock_for: Duration::from_secs(15 * 60),
            trust_forwarded_for: false,
        }
    }
}

/// What a counter is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKey {
    /// One account.
    Account,
    /// One source address.
    Source,
}

impl LockoutPolicy {
    /// Attempts allowed per window for this kind of key.
    pub fn limit(&self, key: AttemptKey) -> u32 {
        match key {
            AttemptKey::Account => self.max_failures_per_account,
            AttemptKey::Source => self.max_failures_per_source,
        }
    }

    /// The end of a lock starting `now`.
    pub fn lock_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + TimeDelta::from_std(self.lock_for).unwrap_or(TimeDelta::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_sources_have_their_own_limits() {
        let policy = LockoutPolicy::default();
        assert_eq!(policy.limit(AttemptKey::Account), 5);
        assert_eq!(policy.limit(AttemptKey::Source), 20);
        let now = Utc::now();
        assert_eq!(policy.lock_until(now) - now, TimeDelta::minutes(15));
    }
}
