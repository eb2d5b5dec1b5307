//! The auth service's tables.

use erp_db::{TenantOwned, Versioned};

/// Tenants; a tenant's own id is its tenant column.
pub mod tenant {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(unique)]
        pub slug: String,
        pub display_name: String,
        pub plan_name: String,
        /// Comma-separated module names (`hrm,crm`).
        pub enabled_modules: String,
        /// 0 means unlimited.
        pub max_users: i32,
        pub status: String,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Users.
pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub email: String,
        pub display_name: String,
        pub password_hash: String,
        pub status: String,
        pub employee_id: Option<String>,
        pub last_login_at: Option<ChronoDateTimeUtc>,
        pub created_at: ChronoDateTimeUtc,
        pub created_by: String,
        pub updated_at: ChronoDateTimeUtc,
        pub updated_by: String,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Role assignments.
pub mod user_role {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub role: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Custom roles of a tenant.
pub mod custom_role {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "custom_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub description: String,
        /// Comma-separated permissions.
        pub permissions: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Sessions: one refresh-token family per login.
pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub user_id: String,
        pub created_at: ChronoDateTimeUtc,
        pub revoked_at: Option<ChronoDateTimeUtc>,
        pub revoke_reason: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Refresh tokens, stored as hashes.
pub mod refresh_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub tenant_id: String,
        pub session_id: String,
        pub user_id: String,
        pub state: String,
        pub expires_at: ChronoDateTimeUtc,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Signing keys (platform-wide), seeds sealed with the key-encryption key.
pub mod signing_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        pub sealed_seed: Vec<u8>,
        pub nonce: Vec<u8>,
        pub public_x: String,
        pub created_at: ChronoDateTimeUtc,
        /// When a newer key became current; published until its tokens expired.
        pub retired_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Failed-login counters by account or source.
pub mod login_attempt {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub failures: i32,
        pub window_started_at: ChronoDateTimeUtc,
        pub locked_until: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl TenantOwned for tenant::Entity {
    fn tenant_column() -> tenant::Column {
        tenant::Column::Id
    }
}

impl TenantOwned for user::Entity {
    fn tenant_column() -> user::Column {
        user::Column::TenantId
    }
}

impl Versioned for user::Entity {
    fn id_column() -> user::Column {
        user::Column::Id
    }

    fn version_column() -> user::Column {
        user::Column::Version
    }
}

impl TenantOwned for user_role::Entity {
    fn tenant_column() -> user_role::Column {
        user_role::Column::TenantId
    }
}

impl TenantOwned for custom_role::Entity {
    fn tenant_column() -> custom_role::Column {
        custom_role::Column::TenantId
    }
}

impl TenantOwned for session::Entity {
    fn tenant_column() -> session::Column {
        session::Column::TenantId
    }
}

impl TenantOwned for refresh_token::Entity {
    fn tenant_column() -> refresh_token::Column {
        refresh_token::Column::TenantId
    }
}
