//! Optimistic concurrency: rows carry a version; an update names the version the caller
//! read and succeeds only if it is still current (one conditional UPDATE), bumping it.

use erp_kit::auth::TenantId;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, QueryFilter, QuerySelect, Value,
    sea_query::{Expr, ExprTrait},
};

use crate::{DbError, TenantOwned};

/// A tenant-owned entity with an id and a version column.
pub trait Versioned: TenantOwned {
    /// The id column the update is keyed by.
    fn id_column() -> Self::Column;
    /// The version column, incremented by every update.
    fn version_column() -> Self::Column;
}

/// Applies `changes` to the row `id` of `tenant` if its version is still
/// `expected_version`, and returns the new version. Whatever `changes` says about the
/// tenant, id and version columns is ignored.
///
/// A changed row gives [`DbError::StaleVersion`]; a missing one (or another tenant's)
/// gives [`DbError::NotFound`].
pub async fn update_versioned<E, A, C>(
    db: &C,
    tenant: &TenantId,
    id: impl Into<Value> + Clone,
    expected_version: i64,
    mut changes: A,
) -> Result<i64, DbError>
where
    E: Versioned,
    A: ActiveModelTrait<Entity = E>,
    C: ConnectionTrait,
{
    // A change never moves a row to another tenant, renames its id or sets its version.
    changes.not_set(E::tenant_column());
    changes.not_set(E::id_column());
    changes.not_set(E::version_column());
    let updated = E::update_many()
        .set(changes)
        .col_expr(E::version_column(), Expr::col(E::version_column()).add(1))
        .filter(E::tenant_column().eq(tenant.as_str()))
        .filter(E::id_column().eq(id.clone()))
        .filter(E::version_column().eq(expected_version))
        .exec(db)
        .await?;
    if updated.rows_affected == 1 {
        return Ok(expected_version + 1);
    }
    let current: Option<i64> = E::find()
        .select_only()
        .column(E::version_column())
        .filter(E::tenant_column().eq(tenant.as_str()))
        .filter(E::id_column().eq(id))
        .into_tuple()
        .one(db)
        .await?;
    match current {
        None => Err(DbError::NotFound),
        Some(current) => Err(DbError::StaleVersion {
            expected: expected_version,
            current,
        }),
    }
}
