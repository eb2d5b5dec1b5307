//! Leave use cases: types, allocations, balances from the ledger, requests and their
//! level-by-level approval.

use chrono::NaiveDate;
use erp_kit::auth::{AuthContext, TenantId};
use erp_proto::erp::{
    common::v1::{PageRequest, PageResponse},
    events::v1::LeaveRequestApproved,
};
use sea_orm::{ConnectionTrait, TransactionTrait};

use super::{Hrm, employees::date};
use crate::{
    domain::{
        access::Actor,
        employee::EmployeeStatus,
        leave::{
            Approval, Chain, LeaveSpan, LedgerKind, RequestStatus, fits_balance, lapsing_half_days,
            resolve_chain, usable_half_days, working_half_days,
        },
    },
    error::{Error, Result},
    store::{
        self,
        entities::{leave_allocation, leave_approval, leave_ledger, leave_request, leave_type},
        leave::{Decision, LeaveTypeValues, NewAllocation, NewRequest, RequestFilter, levels_of},
    },
};

/// An employee's balance of one leave type.
#[derive(Debug, Clone)]
pub struct Balance {
    /// The leave type.
    pub leave_type: leave_type::Model,
    /// The ledger's sum.
    pub balance_half_days: i64,
    /// Held by pending requests.
    pub pending_half_days: i64,
}

/// A request with its decisions.
#[derive(Debug, Clone)]
pub struct LeaveRequestView {
    /// The request.
    pub request: leave_request::Model,
    /// Decisions, by level.
    pub approvals: Vec<leave_approval::Model>,
}

/// A validated request to submit.
#[derive(Debug, Clone)]
pub struct NewLeaveRequest {
    /// The employee (`None`: the caller's own record).
    pub employee_id: Option<String>,
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
    /// Why.
    pub reason: String,
}

/// Filters of a request list.
#[derive(Debug, Default, Clone)]
pub struct RequestListFilter {
    /// Only this employee.
    pub employee_id: Option<String>,
    /// Only this status.
    pub status: Option<RequestStatus>,
    /// Only requests waiting for the caller's decision.
    pub awaiting_my_approval: bool,
}

fn insufficient(balance: i64, pending: i64, requested: i32) -> Error {
    Error::FailedPrecondition {
        reason: "ERP:HRM:INSUFFICIENT_BALANCE",
        message: format!(
            "the request needs {requested} half days; the balance is {balance} with {pending} held by pending requests"
        ),
    }
}

/// What a request of `leave_type` dated `days` may draw on: its period's days and the
/// capped carry-forward of earlier ones, not a later period's (see [`usable_half_days`]).
async fn usable_for(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    employee_id: &str,
    leave_type: &leave_type::Model,
    days: (NaiveDate, NaiveDate),
) -> Result<i64> {
    let balance = store::leave::balance(db, tenant, employee_id, &leave_type.id).await?;
    let (later, current) =
        store::leave::granted_around(db, tenant, employee_id, &leave_type.id, days).await?;
    Ok(usable_half_days(
        balance,
        later,
        current,
        i64::from(leave_type.carry_forward_cap_half_days),
    ))
}

impl Hrm {
    /// Creates a leave type.
    pub async fn create_leave_type(
        &self,
        caller: &AuthContext,
        values: LeaveTypeValues,
    ) -> Result<leave_type::Model> {
        store::leave::insert_type(&self.db, &caller.tenant_id, &values, &caller.user_id).await
    }

    /// A leave type.
    pub async fn get_leave_type(
        &self,
        caller: &AuthContext,
        id: &str,
    ) -> Result<leave_type::Model> {
        store::leave::get_type(&self.db, &caller.tenant_id, id).await
    }

    /// A page of leave types.
    pub async fn list_leave_types(
        &self,
        caller: &AuthContext,
        include_inactive: bool,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<leave_type::Model>, PageResponse)> {
        store::leave::list_types(
            &self.db,
            &caller.tenant_id,
            &self.page_tokens,
            include_inactive,
            page,
        )
        .await
    }

    /// Updates a leave type with `change` applied to its current values.
    pub async fn update_leave_type(
        &self,
        caller: &AuthContext,
        id: &str,
        change: impl FnOnce(&mut LeaveTypeValues),
    ) -> Result<leave_type::Model> {
        let current = store::leave::get_type(&self.db, &caller.tenant_id, id).await?;
        let mut values = LeaveTypeValues {
            code: current.code.clone(),
            name: current.name.clone(),
            paid: current.paid,
            half_days_per_year: current.half_days_per_year,
            carry_forward_cap_half_days: current.carry_forward_cap_half_days,
            approval_levels: levels_of(&current.approval_levels),
            active: current.active,
        };
        change(&mut values);
        store::leave::update_type(&self.db, &caller.tenant_id, id, &values, &caller.user_id).await
    }

    /// Grants days to an employee.
    pub async fn allocate_leave(
        &self,
        caller: &AuthContext,
        employee_id: &str,
        leave_type_id: &str,
        period: (NaiveDate, NaiveDate),
        half_days: i32,
        note: &str,
    ) -> Result<leave_allocation::Model> {
        let tenant = &caller.tenant_id;
        let employee = store::employees::get(&self.db, tenant, employee_id).await?;
        if EmployeeStatus::from_name(&employee.status) == EmployeeStatus::Terminated {
            return Err(Error::FailedPrecondition {
                reason: "ERP:HRM:EMPLOYEE_TERMINATED",
                message: "leave cannot be allocated to a terminated employee".to_owned(),
            });
        }
        store::leave::get_type(&self.db, tenant, leave_type_id).await?;
        let txn = self.db.begin().await?;
        store::employees::hold(&txn, tenant, employee_id, "employee_id").await?;
        let allocation = store::leave::allocate(
            &txn,
            tenant,
            NewAllocation {
                employee_id,
                leave_type_id,
                period,
                half_days,
                note,
            },
            &caller.user_id,
        )
        .await?;
        txn.commit().await?;
        Ok(allocation)
    }

    /// A page of the allocations the caller may see: HR sees the tenant's, others their
    /// own and their reports' (as with requests and balances).
    pub async fn list_allocations(
        &self,
        caller: &AuthContext,
        employee_id: Option<&str>,
        leave_type_id: Option<&str>,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<leave_allocation::Model>, PageResponse)> {
        let actor = self.actor(caller).await?;
        let visible = self.visible_employees(caller, &actor).await?;
        store::leave::list_allocations(
            &self.db,
            &caller.tenant_id,
            &self.page_tokens,
            visible_subset(employee_id, visible).as_deref(),
            leave_type_id,
            page,
        )
        .await
    }

    /// Writes the expiry rows due for an employee: each allocation whose period ended
    /// before today loses what is left of it beyond its leave type's carry-forward cap
    /// (see [`lapsing_half_days`]). An allocation waits while a pending request of its
    /// leave type dated in or before its period is undecided: that request takes its days
    /// first when approved (a late sick note, a December request approved in January).
    /// `submitting` (leave type, first day) is a request about to be added, which waits
    /// like a pending one. Runs under the employee's lock, once per allocation (an expiry
    /// row names its allocation; a unique index keeps it to one).
    async fn lapse_ended_allocations(
        &self,
        txn: &impl ConnectionTrait,
        tenant: &TenantId,
        employee_id: &str,
        submitting: Option<(&str, NaiveDate)>,
    ) -> Result<()> {
        let ended =
            store::leave::unlapsed_ended_allocations(txn, tenant, employee_id, self.today())
                .await?;
        if ended.is_empty() {
            return Ok(());
        }
        let pending = store::leave::pending(txn, tenant, employee_id, None).await?;
        for allocation in ended {
            let leave_type_id = &allocation.leave_type_id;
            let waiting = pending
                .iter()
                .map(|request| (request.leave_type_id.as_str(), request.start_date))
                .chain(submitting)
                .any(|(kind, first_day)| {
                    kind == leave_type_id && first_day <= allocation.period_end
                });
            if waiting {
                continue;
            }
            let leave_type = store::leave::get_type(txn, tenant, leave_type_id).await?;
            let balance = store::leave::balance(txn, tenant, employee_id, leave_type_id).await?;
            let outliving = store::leave::granted_after(
                txn,
                tenant,
                employee_id,
                leave_type_id,
                allocation.period_end,
            )
            .await?;
            let lapsing = lapsing_half_days(
                balance,
                outliving,
                i64::from(leave_type.carry_forward_cap_half_days),
            );
            store::leave::append_ledger(
                txn,
                tenant,
                employee_id,
                leave_type_id,
                LedgerKind::Expiry,
                i32::try_from(-lapsing).unwrap_or(i32::MIN),
                &allocation.id,
            )
            .await?;
        }
        Ok(())
    }

    /// Lapses what is due before an employee's balances or ledger are shown, in a
    /// transaction of its own; when nothing is due (the usual case) nothing is written.
    /// A read never fails for it: if another call is lapsing the same rows (SQLite runs
    /// one writer at a time), this one shows the ledger as it is.
    async fn lapse_due(&self, tenant: &TenantId, employee_id: &str) {
        if let Err(error) = self.try_lapse_due(tenant, employee_id).await {
            tracing::warn!(%error, employee = %employee_id, "lapsing ended allocations failed; shown as they are");
        }
    }

    async fn try_lapse_due(&self, tenant: &TenantId, employee_id: &str) -> Result<()> {
        let due =
            store::leave::unlapsed_ended_allocations(&self.db, tenant, employee_id, self.today())
                .await?;
        if due.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await?;
        store::employees::lock(&txn, tenant, employee_id).await?;
        self.lapse_ended_allocations(&txn, tenant, employee_id, None)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// When days given back belong to a period that has already lapsed (leave cancelled
    /// after its allocation's period ended), they lapse with it: an expiry row of the
    /// same size, named after the request.
    async fn lapse_restored_days(
        &self,
        txn: &impl ConnectionTrait,
        tenant: &TenantId,
        request: &leave_request::Model,
    ) -> Result<()> {
        if store::leave::lapsed_allocation_covers(
            txn,
            tenant,
            &request.employee_id,
            &request.leave_type_id,
            request.start_date,
        )
        .await?
        {
            store::leave::append_ledger(
                txn,
                tenant,
                &request.employee_id,
                &request.leave_type_id,
                LedgerKind::Expiry,
                -request.half_days,
                &request.id,
            )
            .await?;
        }
        Ok(())
    }

    /// An employee's balances (the employee, their manager, or HR).
    pub async fn balances(&self, caller: &AuthContext, employee_id: &str) -> Result<Vec<Balance>> {
        let actor = self.actor(caller).await?;
        let employee = self
            .target_employee(caller, &actor, Some(employee_id))
            .await?;
        let tenant = &caller.tenant_id;
        self.lapse_due(tenant, &employee.id).await;
        let pending = store::leave::pending(&self.db, tenant, &employee.id, None).await?;
        let mut balances = Vec::new();
        for (leave_type_id, balance) in
            store::leave::balances(&self.db, tenant, &employee.id).await?
        {
            let leave_type = store::leave::get_type(&self.db, tenant, &leave_type_id).await?;
            let held: i64 = pending
                .iter()
                .filter(|request| request.leave_type_id == leave_type_id)
                .map(|request| i64::from(request.half_days))
                .sum();
            balances.push(Balance {
                leave_type,
                balance_half_days: balance,
                pending_half_days: held,
            });
        }
        balances.sort_by(|a, b| a.leave_type.name.cmp(&b.leave_type.name));
        Ok(balances)
    }

    /// A page of an employee's ledger.
    pub async fn ledger(
        &self,
        caller: &AuthContext,
        employee_id: &str,
        leave_type_id: Option<&str>,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<leave_ledger::Model>, PageResponse)> {
        let actor = self.actor(caller).await?;
        let employee = self
            .target_employee(caller, &actor, Some(employee_id))
            .await?;
        self.lapse_due(&caller.tenant_id, &employee.id).await;
        store::leave::ledger(
            &self.db,
            &caller.tenant_id,
            &self.page_tokens,
            &employee.id,
            leave_type_id,
            page,
        )
        .await
    }

    /// Submits a request: no overlap with the employee's open requests, and enough
    /// balance once pending requests are held back. An empty approval chain approves it
    /// at once.
    pub async fn submit_leave_request(
        &self,
        caller: &AuthContext,
        new: NewLeaveRequest,
    ) -> Result<LeaveRequestView> {
        let tenant = &caller.tenant_id;
        let actor = self.actor(caller).await?;
        let employee = self
            .target_employee(caller, &actor, new.employee_id.as_deref())
            .await?;
        let leave_type = store::leave::get_type(&self.db, tenant, &new.leave_type_id)
            .await
            .map_err(|_| Error::field("leave_type_id", "no such leave type"))?;
        if !leave_type.active {
            return Err(Error::field("leave_type_id", "the leave type is inactive"));
        }
        let half_days = working_half_days(
            new.start_date,
            new.end_date,
            new.start_half_day,
            new.end_half_day,
        )
        .map_err(|message| Error::field("end_date", message))?;
        let half_days = i32::try_from(half_days).unwrap_or(i32::MAX);
        let txn = self.db.begin().await?;
        // One employee's requests and approvals run one at a time: the overlap and
        // balance checks below then see every other committed request.
        store::employees::lock(&txn, tenant, &employee.id).await?;
        // Termination may have committed while this request waited for the lock.
        if EmployeeStatus::from_name(
            &store::employees::get(&txn, tenant, &employee.id)
                .await?
                .status,
        ) == EmployeeStatus::Terminated
        {
            return Err(Error::FailedPrecondition {
                reason: "ERP:HRM:EMPLOYEE_TERMINATED",
                message: "a terminated employee cannot request leave".to_owned(),
            });
        }
        if !store::leave::covered(
            &txn,
            tenant,
            &employee.id,
            &leave_type.id,
            (new.start_date, new.end_date),
        )
        .await?
        {
            return Err(Error::FailedPrecondition {
                reason: "ERP:HRM:NO_ALLOCATION",
                message: format!(
                    "no allocation of {} covers {} to {}: leave is taken within an allocation's period",
                    leave_type.name, new.start_date, new.end_date
                ),
            });
        }
        self.lapse_ended_allocations(
            &txn,
            tenant,
            &employee.id,
            Some((&leave_type.id, new.start_date)),
        )
        .await?;
        let span = LeaveSpan {
            start: new.start_date,
            end: new.end_date,
            start_half_day: new.start_half_day,
            end_half_day: new.end_half_day,
        };
        if store::leave::open_overlapping(&txn, tenant, &employee.id, new.start_date, new.end_date)
            .await?
            .iter()
            .any(|open| {
                span.overlaps(LeaveSpan {
                    start: open.start_date,
                    end: open.end_date,
                    start_half_day: open.start_half_day,
                    end_half_day: open.end_half_day,
                })
            })
        {
            return Err(Error::FailedPrecondition {
                reason: "ERP:HRM:OVERLAPPING_REQUEST",
                message: "the employee has a pending or approved request for part of this time"
                    .to_owned(),
            });
        }
        let balance = usable_for(
            &txn,
            tenant,
            &employee.id,
            &leave_type,
            (new.start_date, new.end_date),
        )
        .await?;
        let held: i64 = store::leave::pending(&txn, tenant, &employee.id, Some(&leave_type.id))
            .await?
            .iter()
            .map(|request| i64::from(request.half_days))
            .sum();
        if !fits_balance(balance, held, u32::try_from(half_days).unwrap_or(u32::MAX)) {
            return Err(insufficient(balance, held, half_days));
        }
        let facts = self.approval_facts(&txn, tenant, &employee).await?;
        let has_other_head = facts
            .department_head_id
            .as_deref()
            .is_some_and(|head| head != employee.id);
        let levels = resolve_chain(
            &levels_of(&leave_type.approval_levels),
            facts.manager_id.is_some(),
            has_other_head,
        );
        let request = store::leave::insert_request(
            &txn,
            tenant,
            &NewRequest {
                employee_id: employee.id.clone(),
                leave_type_id: leave_type.id.clone(),
                start_date: new.start_date,
                end_date: new.end_date,
                start_half_day: new.start_half_day,
                end_half_day: new.end_half_day,
                half_days,
                reason: new.reason,
            },
            &levels,
            &caller.user_id,
        )
        .await?;
        if levels.is_empty() {
            self.deduct(&txn, caller, &request, &leave_type).await?;
        }
        txn.commit().await?;
        Ok(LeaveRequestView {
            request,
            approvals: Vec::new(),
        })
    }

    async fn deduct(
        &self,
        txn: &impl ConnectionTrait,
        caller: &AuthContext,
        request: &leave_request::Model,
        leave_type: &leave_type::Model,
    ) -> Result<()> {
        let tenant = &caller.tenant_id;
        store::leave::append_ledger(
            txn,
            tenant,
            &request.employee_id,
            &request.leave_type_id,
            LedgerKind::RequestApproved,
            -request.half_days,
            &request.id,
        )
        .await?;
        self.outbox
            .stage(
                txn,
                tenant,
                &request.id,
                &LeaveRequestApproved {
                    leave_request_id: request.id.clone(),
                    employee_id: request.employee_id.clone(),
                    leave_type_id: request.leave_type_id.clone(),
                    paid: leave_type.paid,
                    start_date: Some(date(request.start_date)),
                    end_date: Some(date(request.end_date)),
                    half_days: request.half_days,
                    approved_by_user_id: caller.user_id.clone(),
                },
            )
            .await?;
        Ok(())
    }

    async fn view(
        &self,
        caller: &AuthContext,
        request: leave_request::Model,
    ) -> Result<LeaveRequestView> {
        let approvals = store::leave::decisions(
            &self.db,
            &caller.tenant_id,
            std::slice::from_ref(&request.id),
        )
        .await?;
        Ok(LeaveRequestView { request, approvals })
    }

    /// A request the caller may see.
    pub async fn get_leave_request(
        &self,
        caller: &AuthContext,
        id: &str,
    ) -> Result<LeaveRequestView> {
        let request = self.visible_request(caller, id).await?;
        self.view(caller, request).await
    }

    async fn visible_request(
        &self,
        caller: &AuthContext,
        id: &str,
    ) -> Result<leave_request::Model> {
        let request = store::leave::get_request(&self.db, &caller.tenant_id, id).await?;
        let actor = self.actor(caller).await?;
        self.target_employee(caller, &actor, Some(&request.employee_id))
            .await
            .map_err(|_| Error::NotFound("leave_request"))?;
        Ok(request)
    }

    /// A page of the requests the caller may see, newest first.
    pub async fn list_leave_requests(
        &self,
        caller: &AuthContext,
        filter: &RequestListFilter,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<LeaveRequestView>, PageResponse)> {
        let tenant = &caller.tenant_id;
        let actor = self.actor(caller).await?;
        let visible = self.visible_employees(caller, &actor).await?;
        let employee_ids = visible_subset(filter.employee_id.as_deref(), visible);
        let status = if filter.awaiting_my_approval {
            Some(RequestStatus::Pending)
        } else {
            filter.status
        };
        let store_filter = RequestFilter {
            employee_ids,
            status,
        };
        let (requests, page) = if filter.awaiting_my_approval {
            self.awaiting(caller, &actor, &store_filter, page).await?
        } else {
            store::leave::list_requests(&self.db, tenant, &self.page_tokens, &store_filter, page)
                .await?
        };
        let ids: Vec<String> = requests.iter().map(|request| request.id.clone()).collect();
        let decisions = store::leave::decisions(&self.db, tenant, &ids).await?;
        let views = requests
            .into_iter()
            .map(|request| LeaveRequestView {
                approvals: decisions
                    .iter()
                    .filter(|d| d.leave_request_id == request.id)
                    .cloned()
                    .collect(),
                request,
            })
            .collect();
        Ok((views, page))
    }

    /// A page of the pending requests the caller can decide now. Which ones those are is
    /// known only row by row, so pages of the pending list are read until this page is
    /// full (each read asks for what is still missing: the page never overfills, and its
    /// token continues after the last row read).
    async fn awaiting(
        &self,
        caller: &AuthContext,
        actor: &Actor,
        filter: &RequestFilter,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<leave_request::Model>, PageResponse)> {
        let tenant = &caller.tenant_id;
        let mut window = page.cloned().unwrap_or_default();
        let wanted = match window.page_size {
            // A negative size: the store refuses it with the field.
            size if size < 0 => {
                return store::leave::list_requests(
                    &self.db,
                    tenant,
                    &self.page_tokens,
                    filter,
                    Some(&window),
                )
                .await;
            }
            0 => erp_db::page::DEFAULT_PAGE_SIZE,
            size => u64::from(size.unsigned_abs()).min(erp_db::page::MAX_PAGE_SIZE),
        };
        let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
        let mut mine = Vec::new();
        loop {
            window.page_size = i32::try_from(wanted - mine.len()).unwrap_or(i32::MAX);
            let (requests, next) = store::leave::list_requests(
                &self.db,
                tenant,
                &self.page_tokens,
                filter,
                Some(&window),
            )
            .await?;
            for request in requests {
                let employee =
                    store::employees::get(&self.db, tenant, &request.employee_id).await?;
                let facts = self.approval_facts(&self.db, tenant, &employee).await?;
                if chain_of(&request)
                    .current_approver()
                    .is_some_and(|kind| actor.may_approve(kind, &facts.subject()))
                {
                    mine.push(request);
                }
            }
            if mine.len() >= wanted || next.next_page_token.is_empty() {
                return Ok((mine, next));
            }
            window.page_token = next.next_page_token;
        }
    }

    /// Approves the current level, by the approver it needs. The last level approves the
    /// request and deducts its days. Two approvers at once: one wins, the other is told
    /// the level was decided.
    pub async fn approve_leave_request(
        &self,
        caller: &AuthContext,
        id: &str,
        comment: &str,
    ) -> Result<LeaveRequestView> {
        self.decide(caller, id, comment, true).await
    }

    /// Rejects a pending request.
    pub async fn reject_leave_request(
        &self,
        caller: &AuthContext,
        id: &str,
        comment: &str,
    ) -> Result<LeaveRequestView> {
        self.decide(caller, id, comment, false).await
    }

    async fn decide(
        &self,
        caller: &AuthContext,
        id: &str,
        comment: &str,
        approve: bool,
    ) -> Result<LeaveRequestView> {
        let tenant = &caller.tenant_id;
        let request = store::leave::get_request(&self.db, tenant, id).await?;
        let actor = self.actor(caller).await?;
        let employee = store::employees::get(&self.db, tenant, &request.employee_id).await?;
        let facts = self.approval_facts(&self.db, tenant, &employee).await?;
        if !actor.may_act_for(&facts.subject()) {
            return Err(Error::NotFound("leave_request"));
        }
        let chain = chain_of(&request);
        let outcome = if approve {
            chain.approve().map(Some)
        } else {
            chain.reject().map(|()| None)
        }
        .map_err(|error| Error::FailedPrecondition {
            reason: "ERP:HRM:REQUEST_NOT_PENDING",
            message: error.to_string(),
        })?;
        let kind = chain.current_approver().ok_or_else(|| {
            Error::Unexpected(anyhow::anyhow!("a pending request without a level"))
        })?;
        if !actor.may_approve(kind, &facts.subject()) {
            return Err(Error::PermissionDenied(
                "you are not the approver this level of the request needs",
            ));
        }
        let leave_type = store::leave::get_type(&self.db, tenant, &request.leave_type_id).await?;
        let txn = self.db.begin().await?;
        store::employees::lock(&txn, tenant, &request.employee_id).await?;
        store::leave::record_decision(
            &txn,
            tenant,
            Decision {
                request_id: &request.id,
                level: request.current_level,
                kind,
                approver: &caller.user_id,
                approved: approve,
                comment,
            },
        )
        .await?;
        let updated = match outcome {
            None => {
                store::leave::set_request_state(
                    &txn,
                    tenant,
                    &request,
                    RequestStatus::Rejected,
                    request.current_level,
                    &caller.user_id,
                )
                .await?
            }
            Some(Approval::NextLevel(level)) => {
                store::leave::set_request_state(
                    &txn,
                    tenant,
                    &request,
                    RequestStatus::Pending,
                    i32::try_from(level).unwrap_or(i32::MAX),
                    &caller.user_id,
                )
                .await?
            }
            Some(Approval::Approved) => {
                // The balance may have changed since submission (expiries, other approvals).
                self.lapse_ended_allocations(&txn, tenant, &request.employee_id, None)
                    .await?;
                let balance = usable_for(
                    &txn,
                    tenant,
                    &request.employee_id,
                    &leave_type,
                    (request.start_date, request.end_date),
                )
                .await?;
                if balance < i64::from(request.half_days) {
                    return Err(insufficient(balance, 0, request.half_days));
                }
                let approved = store::leave::set_request_state(
                    &txn,
                    tenant,
                    &request,
                    RequestStatus::Approved,
                    request.current_level,
                    &caller.user_id,
                )
                .await?;
                self.deduct(&txn, caller, &approved, &leave_type).await?;
                approved
            }
        };
        txn.commit().await.map_err(Error::from)?;
        self.view(caller, updated).await
    }

    /// Cancels a request (the employee, or HR); an approved one gets its days back.
    pub async fn cancel_leave_request(
        &self,
        caller: &AuthContext,
        id: &str,
    ) -> Result<LeaveRequestView> {
        let tenant = &caller.tenant_id;
        let request = self.visible_request(caller, id).await?;
        let actor = self.actor(caller).await?;
        let own = actor.employee_id.as_deref() == Some(request.employee_id.as_str());
        if !own && !actor.is_hr {
            return Err(Error::PermissionDenied(
                "only the employee or HR can cancel a leave request",
            ));
        }
        let restore = chain_of(&request)
            .cancel()
            .map_err(|error| Error::FailedPrecondition {
                reason: "ERP:HRM:REQUEST_CLOSED",
                message: error.to_string(),
            })?;
        // Days already (being) taken are not handed back by the employee alone.
        if restore && !actor.is_hr && request.start_date <= self.today() {
            return Err(Error::FailedPrecondition {
                reason: "ERP:HRM:LEAVE_STARTED",
                message: format!(
                    "the leave started on {}; only HR can cancel leave that has started",
                    request.start_date
                ),
            });
        }
        let txn = self.db.begin().await?;
        let cancelled = self
            .cancel_within(&txn, tenant, &request, restore, &caller.user_id)
            .await?;
        txn.commit().await?;
        self.view(caller, cancelled).await
    }

    /// Cancels a request inside `txn`; with `restore` (it was approved) its days come back
    /// to the ledger, and lapse again if their period already has.
    pub(crate) async fn cancel_within(
        &self,
        txn: &impl ConnectionTrait,
        tenant: &TenantId,
        request: &leave_request::Model,
        restore: bool,
        actor: &str,
    ) -> Result<leave_request::Model> {
        let cancelled = store::leave::set_request_state(
            txn,
            tenant,
            request,
            RequestStatus::Cancelled,
            request.current_level,
            actor,
        )
        .await?;
        if restore {
            store::leave::append_ledger(
                txn,
                tenant,
                &request.employee_id,
                &request.leave_type_id,
                LedgerKind::RequestCancelled,
                request.half_days,
                &request.id,
            )
            .await?;
            self.lapse_restored_days(txn, tenant, request).await?;
        }
        Ok(cancelled)
    }
}

/// The employees a list may show: the one asked for, if the caller may see them, or all
/// the caller may see (`None`: the whole tenant).
fn visible_subset(asked: Option<&str>, visible: Option<Vec<String>>) -> Option<Vec<String>> {
    match (asked, visible) {
        (Some(one), Some(visible)) if !visible.iter().any(|id| id == one) => Some(Vec::new()),
        (Some(one), _) => Some(vec![one.to_owned()]),
        (None, visible) => visible,
    }
}

fn chain_of(request: &leave_request::Model) -> Chain {
    Chain {
        status: RequestStatus::from_name(&request.status),
        level: usize::try_from(request.current_level).unwrap_or(0),
        levels: levels_of(&request.approval_levels),
    }
}
