//! The outbox and inbox tables, and the migrations that create them (every service adds
//! [`migrations`] to its own migrator).

use sea_orm_migration::MigrationTrait;

pub(crate) mod outbox_event {
    use sea_orm::entity::prelude::*;

    /// One staged event; `published_at` is set once the broker acknowledged it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub event_id: String,
        pub tenant_id: String,
        pub topic: String,
        pub event_type: String,
        pub aggregate_id: String,
        pub traceparent: String,
        pub envelope: Vec<u8>,
        pub created_at: ChronoDateTimeUtc,
        pub published_at: Option<ChronoDateTimeUtc>,
        pub attempts: i32,
        pub last_error: Option<String>,
        /// A refused row is not tried again (nor any later row of its aggregate) before this.
        pub next_attempt_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod processed_event {
    use sea_orm::entity::prelude::*;

    /// One event a consumer applied; its key makes a second application impossible.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "processed_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub topic: String,
        pub processed_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The migrations of the outbox and inbox tables, to add to a service's migrator.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(schema::CreateOutboxEvents),
        Box::new(schema::CreateProcessedEvents),
        Box::new(schema::RetryScheduleAndRetention),
    ]
}

mod schema {
    use sea_orm_migration::prelude::*;

    #[derive(DeriveIden)]
    enum OutboxEvents {
        Table,
        Id,
        EventId,
        TenantId,
        Topic,
        EventType,
        AggregateId,
        Traceparent,
        Envelope,
        CreatedAt,
        PublishedAt,
        Attempts,
        LastError,
        NextAttemptAt,
    }

    #[derive(DeriveIden)]
    enum ProcessedEvents {
        Table,
        Consumer,
        EventId,
        Topic,
        ProcessedAt,
    }

    pub(super) struct CreateOutboxEvents;

    impl MigrationName for CreateOutboxEvents {
        fn name(&self) -> &str {
            "m20261121_000001_erp_events_create_outbox_events"
        }
    }

    // The trait's async_trait signature elides SchemaManager's lifetime; so must we.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreateOutboxEvents {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(OutboxEvents::Table)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(OutboxEvents::Id)
                                .big_integer()
                                .not_null()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(
                            ColumnDef::new(OutboxEvents::EventId)
                                .string()
                                .not_null()
                                .unique_key(),
                        )
                        .col(ColumnDef::new(OutboxEvents::TenantId).string().not_null())
                        .col(ColumnDef::new(OutboxEvents::Topic).string().not_null())
                        .col(ColumnDef::new(OutboxEvents::EventType).string().not_null())
                        .col(
                            ColumnDef::new(OutboxEvents::AggregateId)
                                .string()
                                .not_null(),
                        )
                        .col(
                            ColumnDef::new(OutboxEvents::Traceparent)
                                .string()
                                .not_null(),
                        )
                        .col(ColumnDef::new(OutboxEvents::Envelope).blob().not_null())
                        .col(
                            ColumnDef::new(OutboxEvents::CreatedAt)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .col(
                            ColumnDef::new(OutboxEvents::PublishedAt)
                                .timestamp_with_time_zone()
                                .null(),
                        )
                        .col(
                            ColumnDef::new(OutboxEvents::Attempts)
                                .integer()
                                .not_null()
                                .default(0),
                        )
                        .col(ColumnDef::new(OutboxEvents::LastError).text().null())
                        .to_owned(),
                )
                .await?;
            // The relay scans only unpublished rows, oldest first: a partial index keeps
            // that scan small however long the table grows (PostgreSQL and SQLite alike).
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE INDEX IF NOT EXISTS outbox_events_unpublished \
                     ON outbox_events (id) WHERE published_at IS NULL",
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(OutboxEvents::Table).to_owned())
                .await
        }
    }

    pub(super) struct CreateProcessedEvents;

    impl MigrationName for CreateProcessedEvents {
        fn name(&self) -> &str {
            "m20261121_000002_erp_events_create_processed_events"
        }
    }

    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreateProcessedEvents {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(ProcessedEvents::Table)
                        .if_not_exists()
                        .col(
                            ColumnDef::new(ProcessedEvents::Consumer)
                                .string()
                                .not_null(),
                        )
                        .col(ColumnDef::new(ProcessedEvents::EventId).string().not_null())
                        .col(ColumnDef::new(ProcessedEvents::Topic).string().not_null())
                        .col(
                            ColumnDef::new(ProcessedEvents::ProcessedAt)
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .primary_key(
                            Index::create()
                                .col(ProcessedEvents::Consumer)
                                .col(ProcessedEvents::EventId),
                        )
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(ProcessedEvents::Table).to_owned())
                .await
        }
    }

    pub(super) struct RetryScheduleAndRetention;

    impl MigrationName for RetryScheduleAndRetention {
        fn name(&self) -> &str {
            "m20261122_000001_erp_events_retry_schedule_and_retention"
        }
    }

    // A refused row waits for its own retry time, and so does the rest of its aggregate:
    // the relay's claim looks for an earlier unpublished row of the same aggregate, which
    // the first index answers from unpublished rows only. The other two find what
    // retention deletes: published rows and applied events by age.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for RetryScheduleAndRetention {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .alter_table(
                    Table::alter()
                        .table(OutboxEvents::Table)
                        .add_column(
                            ColumnDef::new(OutboxEvents::NextAttemptAt)
                                .timestamp_with_time_zone()
                                .null(),
                        )
                        .to_owned(),
                )
                .await?;
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE INDEX IF NOT EXISTS outbox_events_unpublished_by_aggregate \
                     ON outbox_events (aggregate_id, id) WHERE published_at IS NULL",
                )
                .await?;
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE INDEX IF NOT EXISTS outbox_events_published_at \
                     ON outbox_events (published_at) WHERE published_at IS NOT NULL",
                )
                .await?;
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE INDEX IF NOT EXISTS processed_events_by_age \
                     ON processed_events (consumer, processed_at)",
                )
                .await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for index in [
                "outbox_events_unpublished_by_aggregate",
                "outbox_events_published_at",
                "processed_events_by_age",
            ] {
                manager
                    .get_connection()
                    .execute_unprepared(&format!("DROP INDEX IF EXISTS {index}"))
                    .await?;
            }
            manager
                .alter_table(
                    Table::alter()
                        .table(OutboxEvents::Table)
                        .drop_column(OutboxEvents::NextAttemptAt)
                        .to_owned(),
                )
                .await
        }
    }
}
