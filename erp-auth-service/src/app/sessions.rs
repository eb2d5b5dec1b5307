//! Login, refresh rotation, logout and token validation.

use chrono::{DateTime, Utc};
use erp_kit::auth::{AuthContext, Claims, TenantId};
use sea_orm::TransactionTrait;
use secrecy::SecretString;

use super::Auth;
use crate::{
    domain::{
        lockout::AttemptKey,
        password::Verification,
        role::effective_permissions,
        session::{RefreshDecision, RefreshTokenState, decide, hash_refresh_token},
        user::Email,
    },
    error::{Error, Result},
    store::{self, tenants::TenantRecord, users::UserRecord},
};

/// How long past its expiry a refresh token (and its session, once it has none left) is
/// kept before housekeeping deletes it.
pub const EXPIRED_KEPT_FOR: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// What one housekeeping round deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Refresh tokens expired more than [`EXPIRED_KEPT_FOR`] ago.
    pub refresh_tokens: u64,
    /// Sessions left without a refresh token.
    pub sessions: u64,
    /// Login counters whose window ended and that hold no lock.
    pub login_attempts: u64,
}

impl Auth {
    /// Deletes what can no longer matter as of `now`, so the tables do not grow without
    /// bound: refresh tokens a day past their expiry, the sessions left with none, and
    /// login counters that no longer count.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<Purged> {
        let (refresh_tokens, sessions) =
            store::sessions::purge_expired(&self.db, now - EXPIRED_KEPT_FOR).await?;
        let login_attempts =
            store::attempts::purge_stale(&self.db, &self.settings.lockout, now).await?;
        Ok(Purged {
            refresh_tokens,
            sessions,
            login_attempts,
        })
    }
}

pub(super) fn locked_out() -> Error {
    Error::ResourceExhausted {
        reason: "ERP:AUTH:LOCKED_OUT",
        message: "too many failed logins; try again later".to_owned(),
    }
}

/// The lockout counter of one login (tenant slug and email, as typed, normalised): login
/// failures and wrong current passwords at ChangePassword count against it alike.
pub(super) fn account_key(slug: &str, email: &str) -> String {
    format!(
        "account:{}:{}",
        slug.trim().to_ascii_lowercase(),
        email.trim().to_lowercase()
    )
}

const INVALID_CREDENTIALS: &str = "the tenant, email or password is not valid";
const INVALID_REFRESH_TOKEN: &str = "the refresh token is not valid";

/// A login as presented.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The tenant's slug.
    pub tenant_slug: String,
    /// The email as typed.
    pub email: String,
    /// The password.
    pub password: SecretString,
    /// The caller's address, for per-source lockout.
    pub source: Option<String>,
}

/// The tokens of a session.
#[derive(Debug)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: String,
    /// When it expires.
    pub access_expires_at: DateTime<Utc>,
    /// The refresh token (only ever here, in clear).
    pub refresh_token: SecretString,
    /// When it expires.
    pub refresh_expires_at: DateTime<Utc>,
    /// The user.
    pub user: UserRecord,
}

/// What ValidateToken answers.
#[derive(Debug)]
pub enum TokenValidity {
    /// Valid, with its claims.
    Valid(Box<Claims>),
    /// Invalid, and why.
    Invalid(String),
}

impl Auth {
    /// Counts an attempt at a secret against `account_key` and the caller's source
    /// before the secret is checked, so parallel guesses cannot all pass a check made
    /// before any of them failed; LOCKED_OUT when either is locked. Returns the source's
    /// key, to refund on success.
    pub(super) async fn reserve_attempt(
        &self,
        account_key: &str,
        source: Option<&str>,
    ) -> Result<Option<String>> {
        let policy = self.settings.lockout;
        let now = Utc::now();
        let account =
            store::attempts::reserve(&self.db, &policy, AttemptKey::Account, account_key, now)
                .await?;
        if account != store::attempts::Reservation::Allowed {
            return Err(locked_out());
        }
        let Some(source) = source else {
            return Ok(None);
        };
        let source_key = format!("source:{source}");
        let reserved =
            store::attempts::reserve(&self.db, &policy, AttemptKey::Source, &source_key, now)
                .await?;
        if reserved != store::attempts::Reservation::Allowed {
            // The attempt never ran, so the account should not pay for it.
            store::attempts::refund(&self.db, account_key).await?;
            return Err(locked_out());
        }
        Ok(Some(source_key))
    }

    /// Logs in. Unknown tenant, unknown email and wrong password look the same and take
    /// the same time; repeated failures lock the account and the source for a while.
    pub async fn login(&self, attempt: LoginAttempt) -> Result<IssuedTokens> {
        let slug = attempt.tenant_slug.trim().to_ascii_lowercase();
        let email_key = attempt.email.trim().to_lowercase();
        let account_key = account_key(&slug, &email_key);
        let source_key = self
            .reserve_attempt(&account_key, attempt.source.as_deref())
            .await?;

        let tenant = store::tenants::find_by_slug(&self.db, &slug).await?;
        let user = match (&tenant, Email::parse(&email_key)) {
            (Some(tenant), Ok(email)) => {
                store::users::find_by_email(&self.db, &tenant.id(), &email).await?
            }
            _ => None,
        };
        let hasher = self.hasher.clone();
        let password = attempt.password.clone();
        let stored = user.as_ref().map(|user| user.row.password_hash.clone());
        let verification = tokio::task::spawn_blocking(move || match stored {
            Some(stored) => hasher.verify(&password, &stored),
            None => {
                hasher.verify_decoy(&password);
                Verification::Mismatch
            }
        })
        .await
        .map_err(|error| Error::Unexpected(error.into()))?;

        let (Some(tenant), Some(user), true) =
            (tenant, user, verification != Verification::Mismatch)
        else {
            return Err(Error::Unauthenticated(INVALID_CREDENTIALS));
        };
        if !user.is_active() || !tenant.is_active() {
            return Err(Error::Unauthenticated(INVALID_CREDENTIALS));
        }
        store::attempts::clear(&self.db, &account_key).await?;
        if let Some(key) = &source_key {
            store::attempts::refund(&self.db, key).await?;
        }
        let tenant_id = tenant.id();
        if verification == Verification::MatchNeedsRehash {
            let hash = self.hash_password(attempt.password).await?;
            let rehashed = store::users::rehash_password(
                &self.db,
                &tenant_id,
                &user.row.id,
                &user.row.password_hash,
                hash,
            )
            .await?;
            if !rehashed {
                // The password changed while this login checked the old one.
                return Err(Error::Unauthenticated(INVALID_CREDENTIALS));
            }
        }
        let txn = self.db.begin().await?;
        store::users::touch_login(&txn, &tenant_id, &user.row.id).await?;
        let (session_id, refresh, refresh_expires_at) = store::sessions::start(
            &txn,
            &tenant_id,
            &user.row.id,
            super::ttl(self.settings.refresh_token_ttl),
            super::ttl(self.settings.session_max_lifetime),
        )
        .await?;
        txn.commit().await?;
        let (access_token, access_expires_at) =
            self.access_token(&tenant, &user, &session_id).await?;
        Ok(IssuedTokens {
            access_token,
            access_expires_at,
            refresh_token: refresh.value,
            refresh_expires_at,
            user,
        })
    }

    /// Rotates a refresh token. A token that was already rotated revokes its session.
    pub async fn refresh(&self, presented: &str) -> Result<IssuedTokens> {
        let hash = hash_refresh_token(presented);
        let Some(found) = store::sessions::find_presented(&self.db, &hash).await? else {
            return Err(Error::Unauthenticated(INVALID_REFRESH_TOKEN));
        };
        let tenant_id = TenantId::new(found.token.tenant_id.clone());
        let decision = decide(
            RefreshTokenState::from_name(&found.token.state),
            found.session.revoked_at.is_some(),
            found.token.expires_at,
            Utc::now(),
        );
        match decision {
            RefreshDecision::Refuse => Err(Error::Unauthenticated(INVALID_REFRESH_TOKEN)),
            RefreshDecision::RevokeFamily => {
                store::sessions::revoke(
                    &self.db,
                    &tenant_id,
                    &found.session.id,
                    "refresh token reused",
                )
                .await?;
                tracing::warn!(session = %found.session.id, user = %found.session.user_id, "a rotated refresh token was reused; session revoked");
                Err(Error::Unauthenticated(
                    "the refresh token was already used; the session is revoked",
                ))
            }
            RefreshDecision::Rotate => {
                let txn = self.db.begin().await?;
                // The session is held first, and the user and tenant read after: a user
                // disabled meanwhile is seen here, or their disabling waits for this
                // rotation and revokes its result.
                let live =
                    store::sessions::hold_if_live(&txn, &tenant_id, &found.session.id).await?;
                let tenant = store::tenants::get(&txn, &tenant_id).await?;
                let user = store::users::get(&txn, &tenant_id, &found.session.user_id).await?;
                if !live {
                    return Err(Error::Unauthenticated(INVALID_REFRESH_TOKEN));
                }
                if !store::sessions::mark_rotated(&txn, &tenant_id, &hash).await? {
                    drop(txn);
                    store::sessions::revoke(
                        &self.db,
                        &tenant_id,
                        &found.session.id,
                        "refresh token reused",
                    )
                    .await?;
                    return Err(Error::Unauthenticated(
                        "the refresh token was already used; the session is revoked",
                    ));
                }
                let session_ends_at = store::sessions::session_end(
                    found.session.created_at,
                    super::ttl(self.settings.session_max_lifetime),
                );
                if session_ends_at <= Utc::now() {
                    return Err(Error::Unauthenticated(
                        "the session reached its maximum lifetime; log in again",
                    ));
                }
                if !user.is_active() || !tenant.is_active() {
                    store::sessions::revoke(
                        &txn,
                        &tenant_id,
                        &found.session.id,
                        "user or tenant disabled",
                    )
                    .await?;
                    txn.commit().await?;
                    return Err(Error::Unauthenticated(INVALID_REFRESH_TOKEN));
                }
                let (refresh, refresh_expires_at) = store::sessions::issue_token(
                    &txn,
                    &tenant_id,
                    &found.session.id,
                    &user.row.id,
                    super::ttl(self.settings.refresh_token_ttl),
                    session_ends_at,
                )
                .await?;
                // Sign before committing the rotation: a failure here leaves the old token valid.
                let (access_token, access_expires_at) =
                    self.access_token(&tenant, &user, &found.session.id).await?;
                txn.commit().await?;
                Ok(IssuedTokens {
                    access_token,
                    access_expires_at,
                    refresh_token: refresh.value,
                    refresh_expires_at,
                    user,
                })
            }
        }
    }

    /// Ends the session of a refresh token; unknown tokens are ignored (no oracle).
    pub async fn logout(&self, presented: &str) -> Result<()> {
        if let Some(found) =
            store::sessions::find_presented(&self.db, &hash_refresh_token(presented)).await?
        {
            let tenant = TenantId::new(found.token.tenant_id);
            store::sessions::revoke(&self.db, &tenant, &found.session.id, "logout").await?;
        }
        Ok(())
    }

    /// Refuses a caller whose session was revoked since their token was issued (logout,
    /// a disabled user, a password change, refresh-token reuse). Tokens without a session
    /// (operator tokens) have nothing to revoke.
    pub async fn check_session_live(&self, caller: &AuthContext) -> Result<()> {
        if let Some(session) = &caller.claims.sid
            && store::sessions::is_revoked(&self.db, &caller.tenant_id, session).await?
        {
            return Err(Error::Unauthenticated("the session was revoked"));
        }
        Ok(())
    }

    /// Checks an access token, including whether its session was revoked since.
    pub async fn validate_token(&self, token: &str) -> Result<TokenValidity> {
        let claims = match self.verifier.verify(token).await {
            Ok(caller) => caller.claims.clone(),
            Err(error) => return Ok(TokenValidity::Invalid(error.to_string())),
        };
        if let Some(session) = &claims.sid
            && store::sessions::is_revoked(&self.db, &TenantId::new(claims.tid.clone()), session)
                .await?
        {
            return Ok(TokenValidity::Invalid("the session was revoked".to_owned()));
        }
        Ok(TokenValidity::Valid(Box::new(claims)))
    }

    /// An access token for `user` of `tenant` in session `session_id`, with the
    /// permissions its roles grant now and the modules the plan enables.
    async fn access_token(
        &self,
        tenant: &TenantRecord,
        user: &UserRecord,
        session_id: &str,
    ) -> Result<(String, DateTime<Utc>)> {
        let custom = store::roles::permission_map(&self.db, &tenant.id()).await?;
        let permissions = effective_permissions(&user.roles, &custom, &self.known_permissions);
        let now = Utc::now();
        let expires_at = now + super::ttl(self.settings.access_token_ttl);
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: user.row.id.clone(),
            tid: tenant.row.id.clone(),
            exp: expires_at.timestamp(),
            nbf: now.timestamp(),
            iat: now.timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            roles: user.roles.clone(),
            perms: permissions.into_iter().collect(),
            mods: tenant
                .plan
                .modules
                .iter()
                .map(|module| module.as_str().to_owned())
                .collect(),
            sid: Some(session_id.to_owned()),
        };
        Ok((self.keyring.sign(&claims).await?, expires_at))
    }
}
