//! Leave types, allocations, the append-only ledger, requests and their decisions.

use chrono::NaiveDate;
use erp_db::{Direction, PageTokens, scoped, update_versioned};
use erp_kit::auth::TenantId;
use erp_proto::erp::common::v1::{PageRequest, PageResponse};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select, Set,
    sea_query::{Expr, Func},
};

use super::entities::{leave_allocation, leave_approval, leave_ledger, leave_request, leave_type};
use crate::{
    domain::leave::{ApproverKind, LedgerKind, RequestStatus},
    error::{Error, Result},
};

/// Stores an approval chain as `kind,kind`.
pub fn levels_column(levels: &[ApproverKind]) -> String {
    levels
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads an approval chain.
pub fn levels_of(column: &str) -> Vec<ApproverKind> {
    column
        .split(',')
        .filter_map(ApproverKind::from_name)
        .collect()
}

/// A validated leave type.
#[derive(Debug, Clone)]
pub struct LeaveTypeValues {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Paid.
    pub paid: bool,
    /// Half days per year.
    pub half_days_per_year: i32,
    /// Carry-forward cap.
    pub carry_forward_cap_half_days: i32,
    /// Approval chain.
    pub approval_levels: Vec<ApproverKind>,
    /// Usable for new requests.
    pub active: bool,
}

/// Inserts a leave type.
pub async fn insert_type(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    values: &LeaveTypeValues,
    actor: &str,
) -> Result<leave_type::Model> {
    let now = erp_db::time::now();
    scoped::<leave_type::Entity>(tenant)
        .stamp(leave_type::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            code: Set(values.code.clone()),
            name: Set(values.name.clone()),
            paid: Set(values.paid),
            half_days_per_year: Set(values.half_days_per_year),
            carry_forward_cap_half_days: Set(values.carry_forward_cap_half_days),
            approval_levels: Set(levels_column(&values.approval_levels)),
            active: Set(values.active),
            created_at: Set(now),
            created_by: Set(actor.to_owned()),
            updated_at: Set(now),
            updated_by: Set(actor.to_owned()),
            ..Default::default()
        })
        .insert(db)
        .await
        .map_err(super::taken(
            "ERP:HRM:LEAVE_TYPE_CODE_TAKEN",
            format!("the leave type code {} is taken", values.code),
        ))
}

/// A leave type of the tenant.
pub async fn get_type(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
) -> Result<leave_type::Model> {
    scoped::<leave_type::Entity>(tenant)
        .find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or(Error::NotFound("leave_type"))
}

/// A page of leave types by name.
pub async fn list_types(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    tokens: &PageTokens,
    include_inactive: bool,
    page: Option<&PageRequest>,
) -> Result<(Vec<leave_type::Model>, PageResponse)> {
    let list_key = format!("leave-types?inactive={include_inactive}");
    let mut select = scoped::<leave_type::Entity>(tenant).find();
    if !include_inactive {
        select = select.filter(leave_type::Column::Active.eq(true));
    }
    tokens
        .fetch(
            db,
            &list_key,
            page,
            select,
            &[leave_type::Column::Name, leave_type::Column::Id],
            |row| (row.name.clone(), row.id.clone()),
        )
        .await
}

/// Replaces a leave type's values.
pub async fn update_type(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
    values: &LeaveTypeValues,
    actor: &str,
) -> Result<leave_type::Model> {
    let mut row: leave_type::ActiveModel = get_type(db, tenant, id).await?.into();
    row.name = Set(values.name.clone());
    row.paid = Set(values.paid);
    row.half_days_per_year = Set(values.half_days_per_year);
    row.carry_forward_cap_half_days = Set(values.carry_forward_cap_half_days);
    row.approval_levels = Set(levels_column(&values.approval_levels));
    row.active = Set(values.active);
    row.updated_at = Set(erp_db::time::now());
    row.updated_by = Set(actor.to_owned());
    Ok(row.update(db).await?)
}

/// Appends a ledger row.
pub async fn append_ledger(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    leave_type_id: &str,
    kind: LedgerKind,
    half_days_delta: i32,
    source_id: &str,
) -> Result<leave_ledger::Model> {
    Ok(scoped::<leave_ledger::Entity>(tenant)
        .stamp(leave_ledger::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            employee_id: Set(employee_id.to_owned()),
            leave_type_id: Set(leave_type_id.to_owned()),
            kind: Set(kind.as_str().to_owned()),
            half_days_delta: Set(half_days_delta),
            source_id: Set(source_id.to_owned()),
            created_at: Set(erp_db::time::now()),
            ..Default::default()
        })
        .insert(db)
        .await?)
}

/// Days granted to one employee for one leave type and period.
#[derive(Debug, Clone, Copy)]
pub struct NewAllocation<'a> {
    /// The employee.
    pub employee_id: &'a str,
    /// The leave type.
    pub leave_type_id: &'a str,
    /// First and last day the days are valid.
    pub period: (NaiveDate, NaiveDate),
    /// Half days granted.
    pub half_days: i32,
    /// Why.
    pub note: &'a str,
}

/// Inserts an allocation and its ledger row.
pub async fn allocate(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    new: NewAllocation<'_>,
    actor: &str,
) -> Result<leave_allocation::Model> {
    let NewAllocation {
        employee_id,
        leave_type_id,
        period,
        half_days,
        note,
    } = new;
    let allocation = scoped::<leave_allocation::Entity>(tenant)
        .stamp(leave_allocation::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            employee_id: Set(employee_id.to_owned()),
            leave_type_id: Set(leave_type_id.to_owned()),
            period_start: Set(period.0),
            period_end: Set(period.1),
            half_days: Set(half_days),
            note: Set(note.to_owned()),
            created_at: Set(erp_db::time::now()),
            created_by: Set(actor.to_owned()),
            ..Default::default()
        })
        .insert(db)
        .await?;
    append_ledger(
        db,
        tenant,
        employee_id,
        leave_type_id,
        LedgerKind::Allocation,
        half_days,
        &allocation.id,
    )
    .await?;
    Ok(allocation)
}

/// A page of allocations, newest first.
pub async fn list_allocations(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    tokens: &PageTokens,
    employee_ids: Option<&[String]>,
    leave_type_id: Option<&str>,
    page: Option<&PageRequest>,
) -> Result<(Vec<leave_allocation::Model>, PageResponse)> {
    let list_key = format!(
        "allocations?employees={}&type={}",
        employee_ids.map(|ids| ids.join(",")).unwrap_or_default(),
        leave_type_id.unwrap_or("")
    );
    let mut select = scoped::<leave_allocation::Entity>(tenant).find();
    if let Some(employees) = employee_ids {
        select = select.filter(leave_allocation::Column::EmployeeId.is_in(employees.to_vec()));
    }
    if let Some(kind) = leave_type_id {
        select = select.filter(leave_allocation::Column::LeaveTypeId.eq(kind));
    }
    tokens
        .fetch_in(
            db,
            &list_key,
            page,
            select,
            (&[leave_allocation::Column::Id], Direction::Descending),
            |row| row.id.clone(),
        )
        .await
}

#[derive(Debug, FromQueryResult)]
struct Sum {
    leave_type_id: String,
    total: Option<i64>,
}

/// Balance per leave type of an employee: the sum of their ledger.
pub async fn balances(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
) -> Result<Vec<(String, i64)>> {
    let sums = scoped::<leave_ledger::Entity>(tenant)
        .find()
        .filter(leave_ledger::Column::EmployeeId.eq(employee_id))
        .select_only()
        .column(leave_ledger::Column::LeaveTypeId)
        .column_as(
            Expr::from(Func::sum(Expr::col(leave_ledger::Column::HalfDaysDelta))),
            "total",
        )
        .group_by(leave_ledger::Column::LeaveTypeId)
        .into_model::<Sum>()
        .all(db)
        .await?;
    Ok(sums
        .into_iter()
        .map(|sum| (sum.leave_type_id, sum.total.unwrap_or(0)))
        .collect())
}

/// The balance of one leave type.
pub async fn balance(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    leave_type_id: &str,
) -> Result<i64> {
    Ok(balances(db, tenant, employee_id)
        .await?
        .into_iter()
        .find(|(kind, _)| kind == leave_type_id)
        .map_or(0, |(_, total)| total))
}

/// Allocations of an employee whose period ended before `today` and whose unused days
/// have not been lapsed yet (no expiry row names them), oldest period first.
pub async fn unlapsed_ended_allocations(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    today: NaiveDate,
) -> Result<Vec<leave_allocation::Model>> {
    let lapsed: Vec<String> = scoped::<leave_ledger::Entity>(tenant)
        .find()
        .filter(leave_ledger::Column::EmployeeId.eq(employee_id))
        .filter(leave_ledger::Column::Kind.eq(LedgerKind::Expiry.as_str()))
        .select_only()
        .column(leave_ledger::Column::SourceId)
        .into_tuple()
        .all(db)
        .await?;
    let ended = scoped::<leave_allocation::Entity>(tenant)
        .find()
        .filter(leave_allocation::Column::EmployeeId.eq(employee_id))
        .filter(leave_allocation::Column::PeriodEnd.lt(today))
        .order_by_asc(leave_allocation::Column::PeriodEnd)
        .order_by_asc(leave_allocation::Column::Id)
        .all(db)
        .await?;
    Ok(ended
        .into_iter()
        .filter(|allocation| !lapsed.contains(&allocation.id))
        .collect())
}

/// The allocations of one employee and leave type.
fn allocations_of(
    tenant: &TenantId,
    employee_id: &str,
    leave_type_id: &str,
) -> Select<leave_allocation::Entity> {
    scoped::<leave_allocation::Entity>(tenant)
        .find()
        .filter(leave_allocation::Column::EmployeeId.eq(employee_id))
        .filter(leave_allocation::Column::LeaveTypeId.eq(leave_type_id))
}

/// Whether an allocation of the leave type whose period covers `day` has lapsed (an
/// expiry row names it).
pub async fn lapsed_allocation_covers(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    leave_type_id: &str,
    day: NaiveDate,
) -> Result<bool> {
    let covering: Vec<String> = allocations_of(tenant, employee_id, leave_type_id)
        .filter(leave_allocation::Column::PeriodStart.lte(day))
        .filter(leave_allocation::Column::PeriodEnd.gte(day))
        .select_only()
        .column(leave_allocation::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    if covering.is_empty() {
        return Ok(false);
    }
    Ok(scoped::<leave_ledger::Entity>(tenant)
        .find()
        .filter(leave_ledger::Column::EmployeeId.eq(employee_id))
        .filter(leave_ledger::Column::Kind.eq(LedgerKind::Expiry.as_str()))
        .filter(leave_ledger::Column::SourceId.is_in(covering))
        .one(db)
        .await?
        .is_some())
}

/// Half days granted to an employee for a leave type by allocations whose period ends
/// after `after`.
pub async fn granted_after(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    leave_type_id: &str,
    after: NaiveDate,
) -> Result<i64> {
    let granted: Vec<i32> = allocations_of(tenant, employee_id, leave_type_id)
        .filter(leave_allocation::Column::PeriodEnd.gt(after))
        .select_only()
        .column(leave_allocation::Column::HalfDays)
        .into_tuple()
        .all(db)
        .await?;
    Ok(granted.into_iter().map(i64::from).sum())
}

/// The half days granted to an employee for a leave type, around the days `start` to
/// `end`: for periods that start after them, and for periods that are not over before
/// them (the request's own). Periods that ended before them are left out.
pub async fn granted_around(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    leave_type_id: &str,
    (start, end): (NaiveDate, NaiveDate),
) -> Result<(i64, i64)> {
    let allocations: Vec<(NaiveDate, NaiveDate, i32)> =
        allocations_of(tenant, employee_id, leave_type_id)
            .select_only()
            .column(leave_allocation::Column::PeriodStart)
            .column(leave_allocation::Column::PeriodEnd)
            .column(leave_allocation::Column::HalfDays)
            .into_tuple()
            .all(db)
            .await?;
    let (mut later, mut current) = (0, 0);
    for (period_start, period_end, half_days) in allocations {
        if period_start > end {
            later += i64::from(half_days);
        } else if period_end >= start {
            current += i64::from(half_days);
        }
    }
    Ok((later, current))
}

/// Whether one allocation of the leave type covers every day from `start` to `end`.
pub async fn covered(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    leave_type_id: &str,
    (start, end): (NaiveDate, NaiveDate),
) -> Result<bool> {
    Ok(allocations_of(tenant, employee_id, leave_type_id)
        .filter(leave_allocation::Column::PeriodStart.lte(start))
        .filter(leave_allocation::Column::PeriodEnd.gte(end))
        .one(db)
        .await?
        .is_some())
}

/// A page of an employee's ledger, oldest first.
pub async fn ledger(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    tokens: &PageTokens,
    employee_id: &str,
    leave_type_id: Option<&str>,
    page: Option<&PageRequest>,
) -> Result<(Vec<leave_ledger::Model>, PageResponse)> {
    let list_key = format!(
        "ledger?employee={employee_id}&type={}",
        leave_type_id.unwrap_or("")
    );
    let mut select = scoped::<leave_ledger::Entity>(tenant)
        .find()
        .filter(leave_ledger::Column::EmployeeId.eq(employee_id));
    if let Some(kind) = leave_type_id {
        select = select.filter(leave_ledger::Column::LeaveTypeId.eq(kind));
    }
    tokens
        .fetch(
            db,
            &list_key,
            page,
            select,
            &[leave_ledger::Column::Id],
            |row| row.id.clone(),
        )
        .await
}

/// A validated request, its days counted.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// Employee.
    pub employee_id: String,
    /// Leave type.
    pub leave_type_id: String,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: NaiveDate,
    /// Afternoon only on the first day.
    pub start_half_day: bool,
    /// Morning only on the last day.
    pub end_half_day: bool,
    /// Working half days.
    pub half_days: i32,
    /// Why.
    pub reason: String,
}

/// Inserts a request with its approval chain (approved at once when the chain is empty).
pub async fn insert_request(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    new: &NewRequest,
    levels: &[ApproverKind],
    actor: &str,
) -> Result<leave_request::Model> {
    let now = erp_db::time::now();
    let status = if levels.is_empty() {
        RequestStatus::Approved
    } else {
        RequestStatus::Pending
    };
    Ok(scoped::<leave_request::Entity>(tenant)
        .stamp(leave_request::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            employee_id: Set(new.employee_id.clone()),
            leave_type_id: Set(new.leave_type_id.clone()),
            start_date: Set(new.start_date),
            end_date: Set(new.end_date),
            start_half_day: Set(new.start_half_day),
            end_half_day: Set(new.end_half_day),
            half_days: Set(new.half_days),
            reason: Set(new.reason.clone()),
            status: Set(status.as_str().to_owned()),
            current_level: Set(0),
            approval_levels: Set(levels_column(levels)),
            created_at: Set(now),
            created_by: Set(actor.to_owned()),
            updated_at: Set(now),
            updated_by: Set(actor.to_owned()),
            version: Set(1),
            ..Default::default()
        })
        .insert(db)
        .await?)
}

/// A request of the tenant.
pub async fn get_request(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
) -> Result<leave_request::Model> {
    scoped::<leave_request::Entity>(tenant)
        .find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or(Error::NotFound("leave_request"))
}

/// The employee's pending and approved requests overlapping a period.
pub async fn open_overlapping(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<leave_request::Model>> {
    Ok(scoped::<leave_request::Entity>(tenant)
        .find()
        .filter(leave_request::Column::EmployeeId.eq(employee_id))
        .filter(leave_request::Column::Status.is_in([
            RequestStatus::Pending.as_str(),
            RequestStatus::Approved.as_str(),
        ]))
        .filter(leave_request::Column::StartDate.lte(end))
        .filter(leave_request::Column::EndDate.gte(start))
        .all(db)
        .await?)
}

/// The employee's pending requests (of one leave type, or all).
pub async fn pending(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    leave_type_id: Option<&str>,
) -> Result<Vec<leave_request::Model>> {
    let mut select = scoped::<leave_request::Entity>(tenant)
        .find()
        .filter(leave_request::Column::EmployeeId.eq(employee_id))
        .filter(leave_request::Column::Status.eq(RequestStatus::Pending.as_str()));
    if let Some(kind) = leave_type_id {
        select = select.filter(leave_request::Column::LeaveTypeId.eq(kind));
    }
    Ok(select
        .order_by_asc(leave_request::Column::Id)
        .all(db)
        .await?)
}

/// The employee's approved requests whose leave starts after `day`.
pub async fn approved_starting_after(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    day: NaiveDate,
) -> Result<Vec<leave_request::Model>> {
    Ok(scoped::<leave_request::Entity>(tenant)
        .find()
        .filter(leave_request::Column::EmployeeId.eq(employee_id))
        .filter(leave_request::Column::Status.eq(RequestStatus::Approved.as_str()))
        .filter(leave_request::Column::StartDate.gt(day))
        .order_by_asc(leave_request::Column::Id)
        .all(db)
        .await?)
}

/// Moves a request at `expected_version`: a concurrent decision makes this a stale update.
pub async fn set_request_state(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    request: &leave_request::Model,
    status: RequestStatus,
    level: i32,
    actor: &str,
) -> Result<leave_request::Model> {
    let row = leave_request::ActiveModel {
        status: Set(status.as_str().to_owned()),
        current_level: Set(level),
        updated_at: Set(erp_db::time::now()),
        updated_by: Set(actor.to_owned()),
        ..Default::default()
    };
    update_versioned(db, tenant, request.id.clone(), request.version, row).await?;
    get_request(db, tenant, &request.id).await
}

/// One approver's decision at one level of a request.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// The request.
    pub request_id: &'a str,
    /// The level decided.
    pub level: i32,
    /// Who that level needed.
    pub kind: ApproverKind,
    /// The deciding user.
    pub approver: &'a str,
    /// Approved or rejected.
    pub approved: bool,
    /// Their comment.
    pub comment: &'a str,
}

/// Records a decision (unique per request and level).
pub async fn record_decision(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    decision: Decision<'_>,
) -> Result<()> {
    scoped::<leave_approval::Entity>(tenant)
        .stamp(leave_approval::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            leave_request_id: Set(decision.request_id.to_owned()),
            level: Set(decision.level),
            approver_kind: Set(decision.kind.as_str().to_owned()),
            approver_user_id: Set(decision.approver.to_owned()),
            approved: Set(decision.approved),
            comment: Set(decision.comment.to_owned()),
            decided_at: Set(erp_db::time::now()),
            ..Default::default()
        })
        .insert(db)
        .await
        .map_err(|error| {
            if erp_db::is_unique_violation(&error) {
                Error::FailedPrecondition {
                    reason: "ERP:HRM:ALREADY_DECIDED",
                    message: "this level of the request was decided by someone else".to_owned(),
                }
            } else {
                Error::from(error)
            }
        })?;
    Ok(())
}

/// The decisions on requests, by request id.
pub async fn decisions(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    request_ids: &[String],
) -> Result<Vec<leave_approval::Model>> {
    Ok(scoped::<leave_approval::Entity>(tenant)
        .find()
        .filter(leave_approval::Column::LeaveRequestId.is_in(request_ids.to_vec()))
        .order_by_asc(leave_approval::Column::Level)
        .all(db)
        .await?)
}

/// Filters of a request list.
#[derive(Debug, Default, Clone)]
pub struct RequestFilter {
    /// Only these employees (`None`: all).
    pub employee_ids: Option<Vec<String>>,
    /// Only this status.
    pub status: Option<RequestStatus>,
}

/// A page of requests, newest first.
pub async fn list_requests(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    tokens: &PageTokens,
    filter: &RequestFilter,
    page: Option<&PageRequest>,
) -> Result<(Vec<leave_request::Model>, PageResponse)> {
    let list_key = format!(
        "leave-requests?employees={}&status={}",
        filter
            .employee_ids
            .as_ref()
            .map(|ids| ids.join(","))
            .unwrap_or_default(),
        filter.status.map_or("", RequestStatus::as_str)
    );
    let mut select = scoped::<leave_request::Entity>(tenant).find();
    if let Some(employees) = &filter.employee_ids {
        select = select.filter(leave_request::Column::EmployeeId.is_in(employees.clone()));
    }
    if let Some(status) = filter.status {
        select = select.filter(leave_request::Column::Status.eq(status.as_str()));
    }
    tokens
        .fetch_in(
            db,
            &list_key,
            page,
            select,
            (&[leave_request::Column::Id], Direction::Descending),
            |row| row.id.clone(),
        )
        .await
}
