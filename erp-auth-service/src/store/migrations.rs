//! The auth service's schema, plus the outbox and inbox of erp-events.

use sea_orm_migration::prelude::*;

/// Applies every migration of the service.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = erp_events::migrations();
        migrations.push(Box::new(CreateAuthTables));
        migrations.push(Box::new(HousekeepingIndexes));
        migrations
    }
}

struct CreateAuthTables;

impl MigrationName for CreateAuthTables {
    fn name(&self) -> &str {
        "m20261121_100001_auth_create_tables"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Slug,
    DisplayName,
    PlanName,
    EnabledModules,
    MaxUsers,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    TenantId,
    Email,
    DisplayName,
    PasswordHash,
    Status,
    EmployeeId,
    LastLoginAt,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
    UpdatedBy,
    Version,
}

#[derive(DeriveIden)]
enum UserRoles {
    Table,
    TenantId,
    UserId,
    Role,
}

#[derive(DeriveIden)]
enum CustomRoles {
    Table,
    TenantId,
    Name,
    Description,
    Permissions,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TenantId,
    UserId,
    CreatedAt,
    RevokedAt,
    RevokeReason,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    TenantId,
    SessionId,
    UserId,
    State,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    SealedSeed,
    Nonce,
    PublicX,
    CreatedAt,
    RetiredAt,
}

#[derive(DeriveIden)]
enum LoginAttempts {
    Table,
    Key,
    Failures,
    WindowStartedAt,
    LockedUntil,
}

fn text(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).string().not_null().to_owned()
}

fn timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn optional_timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

// The trait's async_trait signature elides SchemaManager's lifetime; so must we.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateAuthTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(text(Tenants::Id).primary_key())
                    .col(text(Tenants::Slug).unique_key())
                    .col(text(Tenants::DisplayName))
                    .col(text(Tenants::PlanName))
                    .col(text(Tenants::EnabledModules))
                    .col(ColumnDef::new(Tenants::MaxUsers).integer().not_null())
                    .col(text(Tenants::Status))
                    .col(timestamp(Tenants::CreatedAt))
                    .col(timestamp(Tenants::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(text(Users::Id).primary_key())
                    .col(text(Users::TenantId))
                    .col(text(Users::Email))
                    .col(text(Users::DisplayName))
                    .col(text(Users::PasswordHash))
                    .col(text(Users::Status))
                    .col(ColumnDef::new(Users::EmployeeId).string().null())
                    .col(optional_timestamp(Users::LastLoginAt))
                    .col(timestamp(Users::CreatedAt))
                    .col(text(Users::CreatedBy))
                    .col(timestamp(Users::UpdatedAt))
                    .col(text(Users::UpdatedBy))
                    .col(ColumnDef::new(Users::Version).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_tenant_email")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserRoles::Table)
                    .col(text(UserRoles::TenantId))
                    .col(text(UserRoles::UserId))
                    .col(text(UserRoles::Role))
                    .primary_key(
                        Index::create()
                            .col(UserRoles::TenantId)
                            .col(UserRoles::UserId)
                            .col(UserRoles::Role),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CustomRoles::Table)
                    .col(text(CustomRoles::TenantId))
                    .col(text(CustomRoles::Name))
                    .col(text(CustomRoles::Description))
                    .col(ColumnDef::new(CustomRoles::Permissions).text().not_null())
                    .col(timestamp(CustomRoles::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(CustomRoles::TenantId)
                            .col(CustomRoles::Name),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(text(Sessions::Id).primary_key())
                    .col(text(Sessions::TenantId))
                    .col(text(Sessions::UserId))
                    .col(timestamp(Sessions::CreatedAt))
                    .col(optional_timestamp(Sessions::RevokedAt))
                    .col(ColumnDef::new(Sessions::RevokeReason).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_user")
                    .table(Sessions::Table)
                    .col(Sessions::TenantId)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(text(RefreshTokens::TokenHash).primary_key())
                    .col(text(RefreshTokens::TenantId))
                    .col(text(RefreshTokens::SessionId))
                    .col(text(RefreshTokens::UserId))
                    .col(text(RefreshTokens::State))
                    .col(timestamp(RefreshTokens::ExpiresAt))
                    .col(timestamp(RefreshTokens::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(text(SigningKeys::Kid).primary_key())
                    .col(ColumnDef::new(SigningKeys::SealedSeed).blob().not_null())
                    .col(ColumnDef::new(SigningKeys::Nonce).blob().not_null())
                    .col(text(SigningKeys::PublicX))
                    .col(timestamp(SigningKeys::CreatedAt))
                    .col(optional_timestamp(SigningKeys::RetiredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LoginAttempts::Table)
                    .col(text(LoginAttempts::Key).primary_key())
                    .col(ColumnDef::new(LoginAttempts::Failures).integer().not_null())
                    .col(timestamp(LoginAttempts::WindowStartedAt))
                    .col(optional_timestamp(LoginAttempts::LockedUntil))
                    .to_owned(),
            )
            .await
    }
}

/// Indexes the hourly purge of expired refresh tokens, their sessions and stale login
/// counters reads by (and revocations, which find a session's tokens).
struct HousekeepingIndexes;

impl MigrationName for HousekeepingIndexes {
    fn name(&self) -> &str {
        "m20261123_100001_auth_housekeeping_indexes"
    }
}

#[allow(elided_lifetimes_in_paths)] // as above
#[async_trait::async_trait]
impl MigrationTrait for HousekeepingIndexes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in [
            Index::create()
                .name("refresh_tokens_session")
                .table(RefreshTokens::Table)
                .col(RefreshTokens::SessionId)
                .to_owned(),
            Index::create()
                .name("refresh_tokens_expires_at")
                .table(RefreshTokens::Table)
                .col(RefreshTokens::ExpiresAt)
                .to_owned(),
            Index::create()
                .name("sessions_created_at")
                .table(Sessions::Table)
                .col(Sessions::CreatedAt)
                .to_owned(),
            Index::create()
                .name("login_attempts_window_started_at")
                .table(LoginAttempts::Table)
                .col(LoginAttempts::WindowStartedAt)
                .to_owned(),
        ] {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("refresh_tokens_session", RefreshTokens::Table.into_iden()),
            (
                "refresh_tokens_expires_at",
                RefreshTokens::Table.into_iden(),
            ),
            ("sessions_created_at", Sessions::Table.into_iden()),
            (
                "login_attempts_window_started_at",
                LoginAttempts::Table.into_iden(),
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
