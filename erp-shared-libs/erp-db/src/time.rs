//! Timestamps both backends store identically: PostgreSQL keeps microseconds, so every
//! timestamp is truncated to microseconds before it is written or compared.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// Now, truncated to microseconds.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// `at`, truncated to microseconds.
pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}
