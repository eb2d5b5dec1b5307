//! Attendance records.

use chrono::{DateTime, Utc};
use erp_db::{Direction, PageTokens, scoped};
use erp_kit::auth::TenantId;
use erp_proto::erp::common::v1::{PageRequest, PageResponse};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::Expr,
};

use super::entities::attendance_record;
use crate::error::{Error, Result};

/// The employee's open record (checked in, not out).
pub async fn open_record(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
) -> Result<Option<attendance_record::Model>> {
    Ok(scoped::<attendance_record::Entity>(tenant)
        .find()
        .filter(attendance_record::Column::EmployeeId.eq(employee_id))
        .filter(attendance_record::Column::CheckOutAt.is_null())
        .one(db)
        .await?)
}

/// Whether the employee checked in at or after `from` and before `to`.
pub async fn checked_in_between(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<bool> {
    Ok(scoped::<attendance_record::Entity>(tenant)
        .find()
        .filter(attendance_record::Column::EmployeeId.eq(employee_id))
        .filter(attendance_record::Column::CheckInAt.gte(from))
        .filter(attendance_record::Column::CheckInAt.lt(to))
        .one(db)
        .await?
        .is_some())
}

/// A closed record of the employee's that spans `at` (checked in at or before it, out
/// after it).
pub async fn closed_record_spanning(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    at: DateTime<Utc>,
) -> Result<Option<attendance_record::Model>> {
    Ok(scoped::<attendance_record::Entity>(tenant)
        .find()
        .filter(attendance_record::Column::EmployeeId.eq(employee_id))
        .filter(attendance_record::Column::CheckInAt.lte(at))
        .filter(attendance_record::Column::CheckOutAt.gt(at))
        .one(db)
        .await?)
}

/// The employee's first record checked in after `after`.
pub async fn next_check_in(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    after: DateTime<Utc>,
) -> Result<Option<attendance_record::Model>> {
    Ok(scoped::<attendance_record::Entity>(tenant)
        .find()
        .filter(attendance_record::Column::EmployeeId.eq(employee_id))
        .filter(attendance_record::Column::CheckInAt.gt(after))
        .order_by_asc(attendance_record::Column::CheckInAt)
        .one(db)
        .await?)
}

/// Opens a record; a second open one is refused (also under races, by a unique index).
pub async fn check_in(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    at: DateTime<Utc>,
    late: bool,
    note: &str,
) -> Result<attendance_record::Model> {
    scoped::<attendance_record::Entity>(tenant)
        .stamp(attendance_record::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            employee_id: Set(employee_id.to_owned()),
            check_in_at: Set(at),
            check_out_at: Set(None),
            worked_minutes: Set(0),
            late: Set(late),
            note: Set(note.to_owned()),
            ..Default::default()
        })
        .insert(db)
        .await
        .map_err(|error| {
            if erp_db::is_unique_violation(&error) {
                already_checked_in()
            } else {
                Error::from(error)
            }
        })
}

pub(crate) fn already_checked_in() -> Error {
    Error::FailedPrecondition {
        reason: "ERP:HRM:ALREADY_CHECKED_IN",
        message: "the employee is already checked in; check out first".to_owned(),
    }
}

/// Closes a record, unless a parallel check-out closed it first.
pub async fn check_out(
    db: &impl ConnectionTrait,
    record: attendance_record::Model,
    at: DateTime<Utc>,
    worked_minutes: i32,
) -> Result<attendance_record::Model> {
    let closed = attendance_record::Entity::update_many()
        .col_expr(attendance_record::Column::CheckOutAt, Expr::value(Some(at)))
        .col_expr(
            attendance_record::Column::WorkedMinutes,
            Expr::value(worked_minutes),
        )
        .filter(attendance_record::Column::Id.eq(&record.id))
        .filter(attendance_record::Column::TenantId.eq(&record.tenant_id))
        .filter(attendance_record::Column::CheckOutAt.is_null())
        .exec(db)
        .await?;
    if closed.rows_affected == 0 {
        return Err(not_checked_in());
    }
    Ok(attendance_record::Model {
        check_out_at: Some(at),
        worked_minutes,
        ..record
    })
}

pub(crate) fn not_checked_in() -> Error {
    Error::FailedPrecondition {
        reason: "ERP:HRM:NOT_CHECKED_IN",
        message: "the employee is not checked in".to_owned(),
    }
}

/// A page of records, newest check-in first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    tokens: &PageTokens,
    employee_ids: Option<&[String]>,
    period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    page: Option<&PageRequest>,
) -> Result<(Vec<attendance_record::Model>, PageResponse)> {
    let list_key = format!(
        "attendance?employees={}&period={}",
        employee_ids.map(|ids| ids.join(",")).unwrap_or_default(),
        period
            .map(|(from, to)| format!("{from}..{to}"))
            .unwrap_or_default()
    );
    let mut select = scoped::<attendance_record::Entity>(tenant).find();
    if let Some(employees) = employee_ids {
        select = select.filter(attendance_record::Column::EmployeeId.is_in(employees.to_vec()));
    }
    if let Some((from, to)) = period {
        select = select
            .filter(attendance_record::Column::CheckInAt.gte(from))
            .filter(attendance_record::Column::CheckInAt.lt(to));
    }
    tokens
        .fetch_in(
            db,
            &list_key,
            page,
            select,
            (&[attendance_record::Column::Id], Direction::Descending),
            |row| row.id.clone(),
        )
        .await
}

/// Every record in a period (summaries).
pub async fn in_period(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_ids: Option<&[String]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<attendance_record::Model>> {
    let mut select = scoped::<attendance_record::Entity>(tenant)
        .find()
        .filter(attendance_record::Column::CheckInAt.gte(from))
        .filter(attendance_record::Column::CheckInAt.lt(to));
    if let Some(employees) = employee_ids {
        select = select.filter(attendance_record::Column::EmployeeId.is_in(employees.to_vec()));
    }
    Ok(select
        .order_by_asc(attendance_record::Column::CheckInAt)
        .all(db)
        .await?)
}
