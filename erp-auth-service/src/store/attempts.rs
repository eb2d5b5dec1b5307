//! Failed-login counters.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

use super::entities::login_attempt;
use crate::{
    domain::lockout::{AttemptKey, Attempts, LockoutPolicy},
    error::Result,
};

/// The counter of one key (`account:<slug>:<email>` or `source:<address>`).
pub async fn load(db: &impl ConnectionTrait, key: &str) -> Result<Option<Attempts>> {
    Ok(login_attempt::Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
        .map(|row| Attempts {
            failures: u32::try_from(row.failures).unwrap_or(0),
            window_started_at: row.window_started_at,
            locked_until: row.locked_until,
        }))
}

/// Counts one more failure of `key`.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    policy: &LockoutPolicy,
    kind: AttemptKey,
    key: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let previous = load(db, key).await?;
    let exists = previous.is_some();
    let next = policy.after_failure(kind, previous, now);
    let row = login_attempt::ActiveModel {
        key: Set(key.to_owned()),
        failures: Set(i32::try_from(next.failures).unwrap_or(i32::MAX)),
        window_started_at: Set(next.window_started_at),
        locked_until: Set(next.locked_until),
    };
    if exists {
        row.update(db).await?;
    } else {
        row.insert(db).await?;
    }
    Ok(())
}

/// Forgets the failures of `key` (after a successful login).
pub async fn clear(db: &impl ConnectionTrait, key: &str) -> Result<()> {
    login_attempt::Entity::delete_by_id(key.to_owned())
        .exec(db)
        .await?;
    Ok(())
}
