//! Login lockout: failed logins are counted per account (tenant + email, whether or not
//! the account exists, so a lockout reveals nothing) and per source address within a
//! window; past the limit, logins are refused until the lock expires.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

/// Limits on failed logins (`ERP_AUTH__LOCKOUT__*`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutPolicy {
    /// Failures of one account within `window` that lock it.
    pub max_failures_per_account: u32,
    /// Failures from one source address within `window` that lock the source.
    pub max_failures_per_source: u32,
    /// The counting window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long a lock lasts.
    #[serde(with = "humantime_serde")]
    pub lock_for: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_source: 20,
            window: Duration::from_secs(15 * 60),
            lock_for: Duration::from_secs(15 * 60),
        }
    }
}

/// The failure record of one key (an account or a source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempts {
    /// Failures in the current window.
    pub failures: u32,
    /// When the current window started.
    pub window_started_at: DateTime<Utc>,
    /// Locked until then, if locked.
    pub locked_until: Option<DateTime<Utc>>,
}

/// What the counter is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKey {
    /// One account.
    Account,
    /// One source address.
    Source,
}

impl LockoutPolicy {
    /// Whether `attempts` lock the key now.
    pub fn is_locked(&self, attempts: Option<&Attempts>, now: DateTime<Utc>) -> bool {
        attempts
            .and_then(|attempts| attempts.locked_until)
            .is_some_and(|until| until > now)
    }

    /// The record after one more failure.
    pub fn after_failure(
        &self,
        key: AttemptKey,
        attempts: Option<Attempts>,
        now: DateTime<Utc>,
    ) -> Attempts {
        let window = TimeDelta::from_std(self.window).unwrap_or(TimeDelta::MAX);
        let mut attempts = match attempts {
            Some(attempts) if now - attempts.window_started_at < window => attempts,
            _ => Attempts {
                failures: 0,
                window_started_at: now,
                locked_until: None,
            },
        };
        attempts.failures += 1;
        let limit = match key {
            AttemptKey::Account => self.max_failures_per_account,
            AttemptKey::Source => self.max_failures_per_source,
        };
        if attempts.failures >= limit {
            attempts.locked_until =
                Some(now + TimeDelta::from_std(self.lock_for).unwrap_or(TimeDelta::MAX));
        }
        attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_locks_and_the_lock_expires() {
        let policy = LockoutPolicy::default();
        let now = Utc::now();
        let mut attempts = None;
        for _ in 0..4 {
            attempts = Some(policy.after_failure(AttemptKey::Account, attempts, now));
            assert!(!policy.is_locked(attempts.as_ref(), now));
        }
        attempts = Some(policy.after_failure(AttemptKey::Account, attempts, now));
        assert!(policy.is_locked(attempts.as_ref(), now));
        assert!(!policy.is_locked(attempts.as_ref(), now + TimeDelta::minutes(16)));
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let policy = LockoutPolicy::default();
        let now = Utc::now();
        let old = Attempts {
            failures: 4,
            window_started_at: now - TimeDelta::minutes(20),
            locked_until: None,
        };
        let attempts = policy.after_failure(AttemptKey::Account, Some(old), now);
        assert_eq!(attempts.failures, 1);
        assert!(!policy.is_locked(Some(&attempts), now));
    }
}
