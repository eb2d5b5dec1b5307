//! Signing keys: the current key signs; retired keys stay published until every token
//! they signed has expired.

use chrono::{DateTime, TimeDelta, Utc};
use erp_kit::auth::{Jwk, SigningKey};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::Expr,
};

use super::entities::signing_key;
use crate::{
    domain::keys::{KeyEncryptionKey, SealedSeed},
    error::Result,
};

/// The current key, if there is one.
pub async fn current(
    db: &impl ConnectionTrait,
    kek: &KeyEncryptionKey,
) -> Result<Option<SigningKey>> {
    let Some(row) = signing_key::Entity::find()
        .filter(signing_key::Column::RetiredAt.is_null())
        .order_by_desc(signing_key::Column::CreatedAt)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let sealed = SealedSeed {
        nonce: row.nonce,
        ciphertext: row.sealed_seed,
    };
    let seed = kek
        .open(&row.kid, &sealed)
        .map_err(|error| crate::error::Error::Unexpected(error.into()))?;
    Ok(Some(SigningKey::from_seed(row.kid, &seed)))
}

/// Creates a new current key and retires the previous ones.
pub async fn rotate(db: &impl ConnectionTrait, kek: &KeyEncryptionKey) -> Result<SigningKey> {
    let now = erp_db::time::now();
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::RetiredAt, Expr::value(now))
        .filter(signing_key::Column::RetiredAt.is_null())
        .exec(db)
        .await?;
    let kid = format!(
        "{}-{}",
        now.format("%Y%m%d"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let key = SigningKey::generate(kid.clone());
    let sealed = {
        use secrecy::ExposeSecret;
        kek.seal(&kid, key.seed().expose_secret())
            .map_err(|error| crate::error::Error::Unexpected(error.into()))?
    };
    signing_key::ActiveModel {
        kid: Set(kid),
        sealed_seed: Set(sealed.ciphertext),
        nonce: Set(sealed.nonce),
        public_x: Set(key.public_jwk().x),
        created_at: Set(now),
        retired_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(key)
}

/// The public keys that may have signed an unexpired token: the current one first.
pub async fn published(
    db: &impl ConnectionTrait,
    kept_after_retirement: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Vec<Jwk>> {
    let rows = signing_key::Entity::find()
        .order_by_desc(signing_key::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| {
            row.retired_at
                .is_none_or(|retired| retired + kept_after_retirement > now)
        })
        .map(|row| Jwk {
            kid: row.kid,
            x: row.public_x,
        })
        .collect())
}
