//! Sessions and their refresh tokens.

use chrono::{DateTime, TimeDelta, Utc};
use erp_db::scoped;
use erp_kit::auth::TenantId;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    Set,
    sea_query::{Expr, LockType},
};

use super::entities::{refresh_token, session};
use crate::{
    domain::session::{IssuedRefreshToken, RefreshTokenState, new_refresh_token},
    error::Result,
};

/// A refresh token as found by its hash, with its session.
#[derive(Debug, Clone)]
pub struct PresentedToken {
    /// The token row.
    pub token: refresh_token::Model,
    /// Its session.
    pub session: session::Model,
}

/// Starts a session for a user and returns its id and first refresh token.
pub async fn start(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    user_id: &str,
    ttl: TimeDelta,
    max_lifetime: TimeDelta,
) -> Result<(String, IssuedRefreshToken, DateTime<Utc>)> {
    let now = erp_db::time::now();
    let session_id = uuid::Uuid::now_v7().to_string();
    scoped::<session::Entity>(tenant)
        .stamp(session::ActiveModel {
            id: Set(session_id.clone()),
            user_id: Set(user_id.to_owned()),
            created_at: Set(now),
            revoked_at: Set(None),
            revoke_reason: Set(None),
            ..Default::default()
        })
        .insert(db)
        .await?;
    let ends_at = session_end(now, max_lifetime);
    let (token, expires_at) = issue_token(db, tenant, &session_id, user_id, ttl, ends_at).await?;
    Ok((session_id, token, expires_at))
}

/// When a session started at `started_at` ends, however often its tokens are refreshed.
pub fn session_end(started_at: DateTime<Utc>, max_lifetime: TimeDelta) -> DateTime<Utc> {
    started_at
        .checked_add_signed(max_lifetime)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Adds a new active refresh token to a session: valid for `ttl`, but not past the
/// session's end.
pub async fn issue_token(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    session_id: &str,
    user_id: &str,
    ttl: TimeDelta,
    session_ends_at: DateTime<Utc>,
) -> Result<(IssuedRefreshToken, DateTime<Utc>)> {
    let now = erp_db::time::now();
    let token = new_refresh_token();
    let expires_at = now
        .checked_add_signed(ttl)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
        .min(session_ends_at);
    scoped::<refresh_token::Entity>(tenant)
        .stamp(refresh_token::ActiveModel {
            token_hash: Set(token.hash.clone()),
            session_id: Set(session_id.to_owned()),
            user_id: Set(user_id.to_owned()),
            state: Set(RefreshTokenState::Active.as_str().to_owned()),
            expires_at: Set(expires_at),
            created_at: Set(now),
            ..Default::default()
        })
        .insert(db)
        .await?;
    Ok((token, expires_at))
}

/// The token with this hash (the token itself is the credential: no tenant yet).
pub async fn find_presented(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<PresentedToken>> {
    let Some(token) = refresh_token::Entity::find_by_id(token_hash.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let tenant = TenantId::new(token.tenant_id.clone());
    let Some(session) = scoped::<session::Entity>(&tenant)
        .find_by_id(token.session_id.clone())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(PresentedToken { token, session }))
}

/// Marks a token rotated, only if it is still active; false when another request
/// rotated it first (two concurrent refreshes with the same token).
pub async fn mark_rotated(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    token_hash: &str,
) -> Result<bool> {
    let updated = scoped::<refresh_token::Entity>(tenant)
        .update_many()
        .col_expr(
            refresh_token::Column::State,
            Expr::value(RefreshTokenState::Rotated.as_str()),
        )
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .filter(refresh_token::Column::State.eq(RefreshTokenState::Active.as_str()))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Revokes a session and every token of it.
pub async fn revoke(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    session_id: &str,
    reason: &str,
) -> Result<()> {
    revoke_where(db, tenant, session::Column::Id.eq(session_id), reason).await
}

/// Revokes every session of a user, except `keep` (the caller's own, on password change).
pub async fn revoke_all_of_user(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
) -> Result<()> {
    let mut condition = sea_orm::Condition::all().add(session::Column::UserId.eq(user_id));
    if let Some(keep) = keep {
        condition = condition.add(session::Column::Id.ne(keep));
    }
    revoke_where(db, tenant, condition, reason).await
}

async fn revoke_where(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    condition: impl sea_orm::sea_query::IntoCondition,
    reason: &str,
) -> Result<()> {
    let sessions: Vec<String> = scoped::<session::Entity>(tenant)
        .find()
        .filter(condition)
        .filter(session::Column::RevokedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    if sessions.is_empty() {
        return Ok(());
    }
    let now = erp_db::time::now();
    scoped::<session::Entity>(tenant)
        .update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokeReason, Expr::value(reason))
        .filter(session::Column::Id.is_in(sessions.clone()))
        .exec(db)
        .await?;
    scoped::<refresh_token::Entity>(tenant)
        .update_many()
        .col_expr(
            refresh_token::Column::State,
            Expr::value(RefreshTokenState::Revoked.as_str()),
        )
        .filter(refresh_token::Column::SessionId.is_in(sessions))
        .filter(refresh_token::Column::State.eq(RefreshTokenState::Active.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// Whether a session is still live, holding its row (PostgreSQL) until `txn` ends: a
/// concurrent revocation (a disabled user, a logout) waits for the rotation in `txn`, or
/// the rotation sees it.
pub async fn hold_if_live(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    session_id: &str,
) -> Result<bool> {
    Ok(scoped::<session::Entity>(tenant)
        .find_locked(txn, session_id.to_owned(), LockType::Update)
        .await?
        .is_some_and(|session| session.revoked_at.is_none()))
}

/// Whether a session is revoked (or unknown).
pub async fn is_revoked(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    session_id: &str,
) -> Result<bool> {
    Ok(scoped::<session::Entity>(tenant)
        .find_by_id(session_id.to_owned())
        .one(db)
        .await?
        .is_none_or(|session| session.revoked_at.is_some()))
}

/// Deletes refresh tokens that expired before `cutoff` (presented, they are refused as
/// unknown instead of as expired: the same answer), then the sessions started before it
/// with no token left (no access token of theirs can still be valid: those live shorter
/// than refresh tokens). Returns (tokens, sessions) deleted.
pub async fn purge_expired(db: &impl ConnectionTrait, cutoff: DateTime<Utc>) -> Result<(u64, u64)> {
    let tokens = erp_db::delete_in_batches(
        db,
        "refresh_tokens",
        "token_hash",
        "expires_at < $1",
        vec![cutoff.into()],
    )
    .await?;
    let sessions = erp_db::delete_in_batches(
        db,
        "sessions",
        "id",
        "created_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM refresh_tokens WHERE refresh_tokens.session_id = sessions.id)",
        vec![cutoff.into()],
    )
    .await?;
    Ok((tokens, sessions))
}
