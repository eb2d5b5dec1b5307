//! HRM's schema, plus the outbox and inbox of erp-events.

use sea_orm_migration::prelude::*;

/// Applies every migration of the service.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = erp_events::migrations();
        migrations.push(Box::new(CreateHrmTables));
        migrations.push(Box::new(OneExpiryPerAllocation));
        migrations
    }
}

struct CreateHrmTables;

impl MigrationName for CreateHrmTables {
    fn name(&self) -> &str {
        "m20261121_200001_hrm_create_tables"
    }
}

/// Column kinds of the HRM tables, in declaration order.
enum Kind {
    Key,
    Text,
    OptionalText,
    Int,
    BigInt,
    Bool,
    Date,
    OptionalDate,
    Timestamp,
    OptionalTimestamp,
}

fn column(name: &str, kind: Kind) -> ColumnDef {
    let mut column = ColumnDef::new(Alias::new(name));
    match kind {
        Kind::Key => column.string().not_null().primary_key(),
        Kind::Text => column.string().not_null(),
        Kind::OptionalText => column.string().null(),
        Kind::Int => column.integer().not_null(),
        Kind::BigInt => column.big_integer().not_null(),
        Kind::Bool => column.boolean().not_null(),
        Kind::Date => column.date().not_null(),
        Kind::OptionalDate => column.date().null(),
        Kind::Timestamp => column.timestamp_with_time_zone().not_null(),
        Kind::OptionalTimestamp => column.timestamp_with_time_zone().null(),
    };
    column
}

fn table(name: &str, columns: Vec<(&str, Kind)>) -> TableCreateStatement {
    let mut table = Table::create();
    table.table(Alias::new(name));
    for (column_name, kind) in columns {
        table.col(column(column_name, kind));
    }
    table
}

const AUDIT: [(&str, Kind); 4] = [
    ("created_at", Kind::Timestamp),
    ("created_by", Kind::Text),
    ("updated_at", Kind::Timestamp),
    ("updated_by", Kind::Text),
];

fn with_audit(mut columns: Vec<(&'static str, Kind)>) -> Vec<(&'static str, Kind)> {
    columns.extend(AUDIT);
    columns
}

// The trait's async_trait signature elides SchemaManager's lifetime; so must we.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateHrmTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Kind::*;
        let tables = [
            table(
                "departments",
                with_audit(vec![
                    ("id", Key),
                    ("tenant_id", Text),
                    ("code", Text),
                    ("name", Text),
                    ("parent_id", OptionalText),
                    ("head_employee_id", OptionalText),
                    ("version", BigInt),
                ]),
            ),
            table(
                "employees",
                with_audit(vec![
                    ("id", Key),
                    ("tenant_id", Text),
                    ("employee_number", Text),
                    ("first_name", Text),
                    ("last_name", Text),
                    ("email", Text),
                    ("phone", Text),
                    ("department_id", Text),
                    ("position", Text),
                    ("manager_id", OptionalText),
                    ("hire_date", Date),
                    ("employment_type", Text),
                    ("status", Text),
                    ("termination_date", OptionalDate),
                    ("termination_reason", OptionalText),
                    ("user_id", OptionalText),
                    ("version", BigInt),
                ]),
            ),
            table(
                "leave_types",
                with_audit(vec![
                    ("id", Key),
                    ("tenant_id", Text),
                    ("code", Text),
                    ("name", Text),
                    ("paid", Bool),
                    ("half_days_per_year", Int),
                    ("carry_forward_cap_half_days", Int),
                    ("approval_levels", Text),
                    ("active", Bool),
                ]),
            ),
            table(
                "leave_allocations",
                vec![
                    ("id", Key),
                    ("tenant_id", Text),
                    ("employee_id", Text),
                    ("leave_type_id", Text),
                    ("period_start", Date),
                    ("period_end", Date),
                    ("half_days", Int),
                    ("note", Text),
                    ("created_at", Timestamp),
                    ("created_by", Text),
                ],
            ),
            table(
                "leave_ledger",
                vec![
                    ("id", Key),
                    ("tenant_id", Text),
                    ("employee_id", Text),
                    ("leave_type_id", Text),
                    ("kind", Text),
                    ("half_days_delta", Int),
                    ("source_id", Text),
                    ("created_at", Timestamp),
                ],
            ),
            table(
                "leave_requests",
                with_audit(vec![
                    ("id", Key),
                    ("tenant_id", Text),
                    ("employee_id", Text),
                    ("leave_type_id", Text),
                    ("start_date", Date),
                    ("end_date", Date),
                    ("start_half_day", Bool),
                    ("end_half_day", Bool),
                    ("half_days", Int),
                    ("reason", Text),
                    ("status", Text),
                    ("current_level", Int),
                    ("approval_levels", Text),
                    ("version", BigInt),
                ]),
            ),
            table(
                "leave_approvals",
                vec![
                    ("id", Key),
                    ("tenant_id", Text),
                    ("leave_request_id", Text),
                    ("level", Int),
                    ("approver_kind", Text),
                    ("approver_user_id", Text),
                    ("approved", Bool),
                    ("comment", Text),
                    ("decided_at", Timestamp),
                ],
            ),
            table(
                "attendance_records",
                vec![
                    ("id", Key),
                    ("tenant_id", Text),
                    ("employee_id", Text),
                    ("check_in_at", Timestamp),
                    ("check_out_at", OptionalTimestamp),
                    ("worked_minutes", Int),
                    ("late", Bool),
                    ("note", Text),
                ],
            ),
        ];
        for statement in tables {
            manager.create_table(statement).await?;
        }
        // Uniqueness the business needs, plus the lookups every list does. The partial
        // unique index makes a second open check-in impossible, even under races; the
        // approval one makes a level decidable once.
        for sql in [
            "CREATE UNIQUE INDEX departments_code ON departments (tenant_id, code)",
            "CREATE INDEX departments_parent ON departments (tenant_id, parent_id)",
            "CREATE UNIQUE INDEX employees_number ON employees (tenant_id, employee_number)",
            "CREATE UNIQUE INDEX employees_email ON employees (tenant_id, email)",
            "CREATE INDEX employees_by_name ON employees (tenant_id, last_name, first_name, id)",
            "CREATE INDEX employees_department ON employees (tenant_id, department_id)",
            "CREATE INDEX employees_user ON employees (tenant_id, user_id)",
            "CREATE UNIQUE INDEX leave_types_code ON leave_types (tenant_id, code)",
            "CREATE INDEX leave_ledger_balance ON leave_ledger (tenant_id, employee_id, leave_type_id)",
            "CREATE INDEX leave_requests_employee ON leave_requests (tenant_id, employee_id, status)",
            "CREATE UNIQUE INDEX leave_approvals_level ON leave_approvals (tenant_id, leave_request_id, level)",
            "CREATE INDEX attendance_employee ON attendance_records (tenant_id, employee_id, check_in_at)",
            "CREATE UNIQUE INDEX attendance_one_open ON attendance_records (tenant_id, employee_id) WHERE check_out_at IS NULL",
        ] {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }
}

/// An allocation's unused days lapse once: at most one expiry row names it.
struct OneExpiryPerAllocation;

impl MigrationName for OneExpiryPerAllocation {
    fn name(&self) -> &str {
        "m20261121_230001_hrm_one_expiry_per_allocation"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for OneExpiryPerAllocation {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX leave_ledger_one_expiry ON leave_ledger (tenant_id, source_id) WHERE kind = 'expiry'",
            )
            .await?;
        Ok(())
    }
}
