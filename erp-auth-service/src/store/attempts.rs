//! Login-attempt counters by account or source. Every attempt reserves its place with one
//! atomic upsert before the password is checked, so parallel guesses cannot slip past
//! the limit; attempts refused by a running lock do not count (so polling does not extend
//! the lock), and a successful login clears the account's counter and refunds the source's.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, Statement, Value};

use crate::{
    domain::lockout::{AttemptKey, LockoutPolicy},
    error::Result,
};

/// Whether an attempt may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Within the limit.
    Allowed,
    /// Locked until then.
    Locked(DateTime<Utc>),
}

const RESERVE: &str = "INSERT INTO login_attempts (key, failures, window_started_at, locked_until) \
     VALUES ($1, 1, $2, NULL) \
     ON CONFLICT (key) DO UPDATE SET \
       failures = CASE WHEN login_attempts.window_started_at < $3 \
                         OR (login_attempts.locked_until IS NOT NULL AND login_attempts.locked_until <= $2) \
                       THEN 1 \
                       WHEN login_attempts.locked_until IS NOT NULL THEN login_attempts.failures \
                       ELSE login_attempts.failures + 1 END, \
       window_started_at = CASE WHEN login_attempts.window_started_at < $3 \
                         OR (login_attempts.locked_until IS NOT NULL AND login_attempts.locked_until <= $2) \
                       THEN $2 ELSE login_attempts.window_started_at END, \
       locked_until = CASE WHEN login_attempts.locked_until IS NOT NULL AND login_attempts.locked_until <= $2 \
                       THEN NULL ELSE login_attempts.locked_until END \
     RETURNING failures, locked_until";

/// SQLite numbers its placeholders `?1`, PostgreSQL `$1`.
/// Counts one attempt of `key` and says whether it may proceed.
pub async fn reserve(
    db: &impl ConnectionTrait,
    policy: &LockoutPolicy,
    kind: AttemptKey,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Reservation> {
    let backend = db.get_database_backend();
    let window_start = now - TimeDelta::from_std(policy.window).unwrap_or(TimeDelta::MAX);
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            erp_db::numbered_placeholders(backend, RESERVE),
            [
                Value::from(key.to_owned()),
                Value::from(now),
                Value::from(window_start),
            ],
        ))
        .await?
        .ok_or_else(|| {
            crate::error::Error::unexpected(anyhow::anyhow!("the attempt upsert returned no row"))
        })?;
    let attempts: i32 = row.try_get("", "failures")?;
    let locked_until: Option<DateTime<Utc>> = row.try_get("", "locked_until")?;
    if let Some(until) = locked_until.filter(|until| *until > now) {
        return Ok(Reservation::Locked(until));
    }
    if u32::try_from(attempts).unwrap_or(u32::MAX) > policy.limit(kind) {
        let until = policy.lock_until(now);
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            erp_db::numbered_placeholders(
                backend,
                "UPDATE login_attempts SET locked_until = $1 WHERE key = $2",
            ),
            [Value::from(until), Value::from(key.to_owned())],
        ))
        .await?;
        return Ok(Reservation::Locked(until));
    }
    Ok(Reservation::Allowed)
}

/// Forgets an account's attempts (after a successful login).
pub async fn clear(db: &impl ConnectionTrait, key: &str) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        erp_db::numbered_placeholders(backend, "DELETE FROM login_attempts WHERE key = $1"),
        [Value::from(key.to_owned())],
    ))
    .await?;
    Ok(())
}

/// Gives an attempt back: a successful one to its source, or one a source lock refused to
/// its account.
pub async fn refund(db: &impl ConnectionTrait, key: &str) -> Result<()> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        erp_db::numbered_placeholders(
            backend,
            "UPDATE login_attempts SET failures = failures - 1 WHERE key = $1 AND failures > 0",
        ),
        [Value::from(key.to_owned())],
    ))
    .await?;
    Ok(())
}

/// Deletes counters that no longer count: their window ended before `now` and no lock of
/// theirs runs (the next attempt would start them afresh anyway). Returns how many went.
pub async fn purge_stale(
    db: &impl ConnectionTrait,
    policy: &LockoutPolicy,
    now: DateTime<Utc>,
) -> Result<u64> {
    let window_start = TimeDelta::from_std(policy.window)
        .ok()
        .and_then(|window| now.checked_sub_signed(window))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    Ok(erp_db::delete_in_batches(
        db,
        "login_attempts",
        "key",
        "window_started_at < $1 AND (locked_until IS NULL OR locked_until <= $2)",
        vec![window_start.into(), now.into()],
    )
    .await?)
}
