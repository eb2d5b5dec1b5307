//! Tenant-scoped queries. Stores reach tenant-owned tables only through [`scoped`], whose
//! every query carries `tenant_id = <the caller's tenant>`: a query without a tenant is
//! not expressible through it, and a [`TenantId`] only comes from a verified token.

use std::marker::PhantomData;

use erp_kit::auth::TenantId;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, DeleteMany,
    EntityTrait, PrimaryKeyTrait, QueryFilter, QuerySelect, Select, UpdateMany,
    sea_query::LockType,
};

/// An entity whose rows belong to one tenant each.
pub trait TenantOwned: EntityTrait {
    /// The column holding the tenant id.
    fn tenant_column() -> Self::Column;
}

/// Queries over one tenant's rows of `E`.
#[derive(Debug)]
pub struct Scoped<'t, E> {
    tenant: &'t TenantId,
    entity: PhantomData<E>,
}

/// The queries of `tenant` over `E`.
pub fn scoped<E: TenantOwned>(tenant: &TenantId) -> Scoped<'_, E> {
    Scoped {
        tenant,
        entity: PhantomData,
    }
}

impl<E: TenantOwned> Scoped<'_, E> {
    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        self.tenant
    }

    /// Every row of the tenant.
    pub fn find(&self) -> Select<E> {
        E::find().filter(E::tenant_column().eq(self.tenant.as_str()))
    }

    /// One row of the tenant by primary key (none for another tenant's row).
    pub fn find_by_id<T>(&self, id: T) -> Select<E>
    where
        T: Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
    {
        E::find_by_id(id).filter(E::tenant_column().eq(self.tenant.as_str()))
    }

    /// An update of the tenant's rows (add filters to narrow it).
    pub fn update_many(&self) -> UpdateMany<E> {
        E::update_many().filter(E::tenant_column().eq(self.tenant.as_str()))
    }

    /// A delete of the tenant's rows (add filters to narrow it).
    pub fn delete_many(&self) -> DeleteMany<E> {
        E::delete_many().filter(E::tenant_column().eq(self.tenant.as_str()))
    }

    /// The row with this id, locked with `lock` until the transaction of `db` ends
    /// (PostgreSQL; SQLite runs one writer at a time, so it only reads): `Update` to
    /// serialise writers, `KeyShare` to keep the row from being deleted while updates of
    /// it go on. `None` when there is no such row (also when it was deleted while this
    /// waited).
    pub async fn find_locked<T, C>(
        &self,
        db: &C,
        id: T,
        lock: LockType,
    ) -> Result<Option<E::Model>, DbErr>
    where
        T: Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
        C: ConnectionTrait,
    {
        let mut select = self.find_by_id(id);
        if db.get_database_backend() == DatabaseBackend::Postgres {
            select = select.lock(lock);
        }
        select.one(db).await
    }

    /// Sets the tenant column of a new row, whatever the caller put there.
    pub fn stamp<A>(&self, mut model: A) -> A
    where
        A: ActiveModelTrait<Entity = E>,
    {
        model.set(E::tenant_column(), self.tenant.as_str().into());
        model
    }
}
