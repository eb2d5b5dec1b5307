//! A small tenant-owned, versioned table for testing the helpers.

use erp_db::{TenantOwned, Versioned};
use sea_orm::entity::prelude::*;

pub use migration::Migrator;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "widgets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub version: i64,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub type Widget = Entity;

impl TenantOwned for Entity {
    fn tenant_column() -> Column {
        Column::TenantId
    }
}

impl Versioned for Entity {
    fn id_column() -> Column {
        Column::Id
    }

    fn version_column() -> Column {
        Column::Version
    }
}

mod migration {
    use sea_orm_migration::prelude::*;

    pub struct Migrator;

    #[async_trait::async_trait]
    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateWidgets)]
        }
    }

    #[derive(DeriveMigrationName)]
    struct CreateWidgets;

    #[derive(DeriveIden)]
    enum Widgets {
        Table,
        Id,
        TenantId,
        Name,
        Version,
        CreatedAt,
    }

    // The trait's async_trait signature elides SchemaManager's lifetime; so must we.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreateWidgets {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Widgets::Table)
                        .col(
                            ColumnDef::new(Widgets::Id)
                                .string()
                                .not_null()
                                .primary_key(),
                        )
                        .col(ColumnDef::new(Widgets::TenantId).string().not_null())
                        .col(ColumnDef::new(Widgets::Name).string().not_null())
                        .col(ColumnDef::new(Widgets::Version).big_integer().not_null())
                        .col(
                            ColumnDef::new(Widgets::CreatedAt)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .to_owned(),
                )
                .await
        }
    }
}
