//! HRM's tables.

use erp_db::{TenantOwned, Versioned};

macro_rules! tenant_owned {
    ($($module:ident),* $(,)?) => {$(
        impl TenantOwned for $module::Entity {
            fn tenant_column() -> $module::Column {
                $module::Column::TenantId
            }
        }
    )*};
}

macro_rules! versioned {
    ($($module:ident),* $(,)?) => {$(
        impl Versioned for $module::Entity {
            fn id_column() -> $module::Column {
                $module::Column::Id
            }

            fn version_column() -> $module::Column {
                $module::Column::Version
            }
        }
    )*};
}

/// Departments.
pub mod department {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "departments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub code: String,
        pub name: String,
        pub parent_id: Option<String>,
        pub head_employee_id: Option<String>,
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

/// Employees.
pub mod employee {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "employees")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub employee_number: String,
        pub first_name: String,
        pub last_name: String,
        pub email: String,
        pub phone: String,
        pub department_id: String,
        pub position: String,
        pub manager_id: Option<String>,
        pub hire_date: ChronoDate,
        pub employment_type: String,
        pub status: String,
        pub termination_date: Option<ChronoDate>,
        pub termination_reason: Option<String>,
        pub user_id: Option<String>,
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

/// Leave types.
pub mod leave_type {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leave_types")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub code: String,
        pub name: String,
        pub paid: bool,
        pub half_days_per_year: i32,
        pub carry_forward_cap_half_days: i32,
        /// Comma-separated approver kinds, in order.
        pub approval_levels: String,
        pub active: bool,
        pub created_at: ChronoDateTimeUtc,
        pub created_by: String,
        pub updated_at: ChronoDateTimeUtc,
        pub updated_by: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Leave allocations.
pub mod leave_allocation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leave_allocations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub employee_id: String,
        pub leave_type_id: String,
        pub period_start: ChronoDate,
        pub period_end: ChronoDate,
        pub half_days: i32,
        pub note: String,
        pub created_at: ChronoDateTimeUtc,
        pub created_by: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The append-only leave ledger.
pub mod leave_ledger {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leave_ledger")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub employee_id: String,
        pub leave_type_id: String,
        pub kind: String,
        pub half_days_delta: i32,
        pub source_id: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Leave requests.
pub mod leave_request {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leave_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub employee_id: String,
        pub leave_type_id: String,
        pub start_date: ChronoDate,
        pub end_date: ChronoDate,
        pub start_half_day: bool,
        pub end_half_day: bool,
        pub half_days: i32,
        pub reason: String,
        pub status: String,
        pub current_level: i32,
        /// The approval chain captured at submission.
        pub approval_levels: String,
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

/// Decisions on leave requests.
pub mod leave_approval {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leave_approvals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub leave_request_id: String,
        pub level: i32,
        pub approver_kind: String,
        pub approver_user_id: String,
        pub approved: bool,
        pub comment: String,
        pub decided_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Attendance records.
pub mod attendance_record {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attendance_records")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub employee_id: String,
        pub check_in_at: ChronoDateTimeUtc,
        pub check_out_at: Option<ChronoDateTimeUtc>,
        pub worked_minutes: i32,
        pub late: bool,
        pub note: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

tenant_owned!(
    department,
    employee,
    leave_type,
    leave_allocation,
    leave_ledger,
    leave_request,
    leave_approval,
    attendance_record,
);
versioned!(department, employee, leave_request);
