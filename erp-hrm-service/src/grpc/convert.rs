//! Store values to proto messages, and request fields to validated values.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use erp_kit::{error::ValidationError, values};
use erp_proto::erp::{
    common::v1::{AuditInfo, Date, DateRange},
    hrm::v1 as proto,
};

use crate::{
    app::{Balance, DepartmentNode, LeaveRequestView},
    domain::{
        attendance::SummaryRow,
        employee::{EmployeeStatus, EmploymentType},
        leave::{ApproverKind, LedgerKind, RequestStatus},
    },
    store::{
        entities::{
            attendance_record, department, employee, leave_allocation, leave_ledger, leave_type,
        },
        leave::levels_of,
    },
};

pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn from_timestamp(at: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)
}

pub(crate) fn date(value: NaiveDate) -> Date {
    Date {
        year: value.year(),
        month: i32::try_from(value.month()).unwrap_or(0),
        day: i32::try_from(value.day()).unwrap_or(0),
    }
}

pub(crate) fn audit(
    created_at: DateTime<Utc>,
    created_by: &str,
    updated_at: DateTime<Utc>,
    updated_by: &str,
) -> AuditInfo {
    AuditInfo {
        create_time: Some(timestamp(created_at)),
        created_by: created_by.to_owned(),
        update_time: Some(timestamp(updated_at)),
        updated_by: updated_by.to_owned(),
    }
}

/// Parsing helpers that collect every violation of a request.
pub(crate) struct Fields(pub(crate) ValidationError);

impl Fields {
    pub(crate) fn new() -> Self {
        Self(ValidationError::new())
    }

    pub(crate) fn id(&mut self, field: &str, raw: &str) -> Option<String> {
        self.0.check(field, values::parse_id(raw))
    }

    pub(crate) fn optional_id(&mut self, field: &str, raw: &str) -> Option<String> {
        self.0
            .check(field, values::parse_optional_id(raw))
            .flatten()
    }

    pub(crate) fn text(
        &mut self,
        field: &str,
        raw: &str,
        max: usize,
        required: bool,
    ) -> Option<String> {
        self.0.check(field, values::parse_text(raw, max, required))
    }

    pub(crate) fn email(&mut self, field: &str, raw: &str) -> Option<String> {
        self.0
            .check(field, values::Email::parse(raw))
            .map(|email| email.as_str().to_owned())
    }

    pub(crate) fn date(&mut self, field: &str, value: Option<&Date>) -> Option<NaiveDate> {
        let Some(value) = value else {
            self.0.add(field, "is required");
            return None;
        };
        let parsed = u32::try_from(value.month)
            .ok()
            .zip(u32::try_from(value.day).ok())
            .and_then(|(month, day)| NaiveDate::from_ymd_opt(value.year, month, day))
            .filter(|date| (1..=9999).contains(&date.year()));
        if parsed.is_none() {
            self.0.add(field, "is not a valid calendar date");
        }
        parsed
    }

    pub(crate) fn period(
        &mut self,
        field: &str,
        value: Option<&DateRange>,
    ) -> Option<(NaiveDate, NaiveDate)> {
        let Some(range) = value else {
            self.0.add(field, "is required");
            return None;
        };
        let start = self.date(&format!("{field}.start_date"), range.start_date.as_ref());
        let end = self.date(&format!("{field}.end_date"), range.end_date.as_ref());
        let (start, end) = (start?, end?);
        if end < start {
            self.0
                .add(format!("{field}.end_date"), "is before the start date");
            return None;
        }
        Some((start, end))
    }

    pub(crate) fn check(&mut self, field: &str, ok: bool, message: &str) {
        if !ok {
            self.0.add(field, message);
        }
    }

    pub(crate) fn finish(self) -> Result<(), crate::error::Error> {
        Ok(self.0.into_result()?)
    }
}

pub(crate) fn employment_type(value: i32) -> Option<EmploymentType> {
    match proto::EmploymentType::try_from(value).ok()? {
        proto::EmploymentType::FullTime => Some(EmploymentType::FullTime),
        proto::EmploymentType::PartTime => Some(EmploymentType::PartTime),
        proto::EmploymentType::Contract => Some(EmploymentType::Contract),
        proto::EmploymentType::Intern => Some(EmploymentType::Intern),
        proto::EmploymentType::Unspecified => None,
    }
}

pub(crate) fn employee_status(value: i32) -> Option<EmployeeStatus> {
    match proto::EmployeeStatus::try_from(value).ok()? {
        proto::EmployeeStatus::Active => Some(EmployeeStatus::Active),
        proto::EmployeeStatus::OnLeave => Some(EmployeeStatus::OnLeave),
        proto::EmployeeStatus::Terminated => Some(EmployeeStatus::Terminated),
        proto::EmployeeStatus::Unspecified => None,
    }
}

pub(crate) fn approver_kind(value: i32) -> Option<ApproverKind> {
    match proto::ApproverKind::try_from(value).ok()? {
        proto::ApproverKind::DirectManager => Some(ApproverKind::DirectManager),
        proto::ApproverKind::DepartmentHead => Some(ApproverKind::DepartmentHead),
        proto::ApproverKind::Hr => Some(ApproverKind::Hr),
        proto::ApproverKind::Unspecified => None,
    }
}

fn proto_approver(kind: ApproverKind) -> proto::ApproverKind {
    match kind {
        ApproverKind::DirectManager => proto::ApproverKind::DirectManager,
        ApproverKind::DepartmentHead => proto::ApproverKind::DepartmentHead,
        ApproverKind::Hr => proto::ApproverKind::Hr,
    }
}

pub(crate) fn request_status(value: i32) -> Option<Option<RequestStatus>> {
    match proto::LeaveRequestStatus::try_from(value).ok()? {
        proto::LeaveRequestStatus::Unspecified => Some(None),
        proto::LeaveRequestStatus::Pending => Some(Some(RequestStatus::Pending)),
        proto::LeaveRequestStatus::Approved => Some(Some(RequestStatus::Approved)),
        proto::LeaveRequestStatus::Rejected => Some(Some(RequestStatus::Rejected)),
        proto::LeaveRequestStatus::Cancelled => Some(Some(RequestStatus::Cancelled)),
    }
}

pub(crate) fn department(row: &department::Model) -> proto::Department {
    proto::Department {
        department_id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        code: row.code.clone(),
        name: row.name.clone(),
        parent_department_id: row.parent_id.clone().unwrap_or_default(),
        head_employee_id: row.head_employee_id.clone().unwrap_or_default(),
        audit: Some(audit(
            row.created_at,
            &row.created_by,
            row.updated_at,
            &row.updated_by,
        )),
        version: row.version,
    }
}

pub(crate) fn department_node(node: &DepartmentNode) -> proto::DepartmentNode {
    proto::DepartmentNode {
        department: Some(department(&node.department)),
        children: node.children.iter().map(department_node).collect(),
        employee_count: i32::try_from(node.employee_count).unwrap_or(i32::MAX),
    }
}

pub(crate) fn employee(row: &employee::Model) -> proto::Employee {
    proto::Employee {
        id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        employee_id: row.employee_number.clone(),
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        email: row.email.clone(),
        department_id: row.department_id.clone(),
        position: row.position.clone(),
        status: match EmployeeStatus::from_name(&row.status) {
            EmployeeStatus::Active => proto::EmployeeStatus::Active,
            EmployeeStatus::OnLeave => proto::EmployeeStatus::OnLeave,
            EmployeeStatus::Terminated => proto::EmployeeStatus::Terminated,
        } as i32,
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        manager_id: row.manager_id.clone().unwrap_or_default(),
        hire_date: Some(date(row.hire_date)),
        employment_type: match EmploymentType::from_name(&row.employment_type) {
            EmploymentType::FullTime => proto::EmploymentType::FullTime,
            EmploymentType::PartTime => proto::EmploymentType::PartTime,
            EmploymentType::Contract => proto::EmploymentType::Contract,
            EmploymentType::Intern => proto::EmploymentType::Intern,
        } as i32,
        termination_date: row.termination_date.map(date),
        termination_reason: row.termination_reason.clone().unwrap_or_default(),
        user_id: row.user_id.clone().unwrap_or_default(),
        version: row.version,
        phone: row.phone.clone(),
    }
}

pub(crate) fn leave_type(row: &leave_type::Model) -> proto::LeaveType {
    proto::LeaveType {
        leave_type_id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        code: row.code.clone(),
        name: row.name.clone(),
        paid: row.paid,
        half_days_per_year: row.half_days_per_year,
        carry_forward_cap_half_days: row.carry_forward_cap_half_days,
        approval_levels: levels_of(&row.approval_levels)
            .into_iter()
            .map(|kind| proto_approver(kind) as i32)
            .collect(),
        active: row.active,
        audit: Some(audit(
            row.created_at,
            &row.created_by,
            row.updated_at,
            &row.updated_by,
        )),
    }
}

pub(crate) fn allocation(row: &leave_allocation::Model) -> proto::LeaveAllocation {
    proto::LeaveAllocation {
        leave_allocation_id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        employee_id: row.employee_id.clone(),
        leave_type_id: row.leave_type_id.clone(),
        period: Some(DateRange {
            start_date: Some(date(row.period_start)),
            end_date: Some(date(row.period_end)),
        }),
        half_days: row.half_days,
        note: row.note.clone(),
        audit: Some(audit(
            row.created_at,
            &row.created_by,
            row.created_at,
            &row.created_by,
        )),
    }
}

pub(crate) fn ledger_entry(row: &leave_ledger::Model) -> proto::LeaveLedgerEntry {
    proto::LeaveLedgerEntry {
        leave_ledger_entry_id: row.id.clone(),
        employee_id: row.employee_id.clone(),
        leave_type_id: row.leave_type_id.clone(),
        kind: match LedgerKind::from_name(&row.kind) {
            LedgerKind::Allocation => proto::LeaveLedgerEntryKind::Allocation,
            LedgerKind::RequestApproved => proto::LeaveLedgerEntryKind::RequestApproved,
            LedgerKind::RequestCancelled => proto::LeaveLedgerEntryKind::RequestCancelled,
            LedgerKind::Expiry => proto::LeaveLedgerEntryKind::Expiry,
        } as i32,
        half_days_delta: row.half_days_delta,
        source_id: row.source_id.clone(),
        create_time: Some(timestamp(row.created_at)),
    }
}

pub(crate) fn balance(value: &Balance) -> proto::LeaveBalance {
    proto::LeaveBalance {
        leave_type_id: value.leave_type.id.clone(),
        leave_type_name: value.leave_type.name.clone(),
        balance_half_days: i32::try_from(value.balance_half_days).unwrap_or(i32::MAX),
        pending_half_days: i32::try_from(value.pending_half_days).unwrap_or(i32::MAX),
    }
}

pub(crate) fn leave_request(view: &LeaveRequestView) -> proto::LeaveRequest {
    let row = &view.request;
    proto::LeaveRequest {
        leave_request_id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        employee_id: row.employee_id.clone(),
        leave_type_id: row.leave_type_id.clone(),
        start_date: Some(date(row.start_date)),
        end_date: Some(date(row.end_date)),
        start_half_day: row.start_half_day,
        end_half_day: row.end_half_day,
        half_days: row.half_days,
        reason: row.reason.clone(),
        status: match RequestStatus::from_name(&row.status) {
            RequestStatus::Pending => proto::LeaveRequestStatus::Pending,
            RequestStatus::Approved => proto::LeaveRequestStatus::Approved,
            RequestStatus::Rejected => proto::LeaveRequestStatus::Rejected,
            RequestStatus::Cancelled => proto::LeaveRequestStatus::Cancelled,
        } as i32,
        current_approval_level: row.current_level,
        approvals: view
            .approvals
            .iter()
            .map(|decision| proto::LeaveApproval {
                level: decision.level,
                approver_kind: ApproverKind::from_name(&decision.approver_kind)
                    .map_or(0, |kind| proto_approver(kind) as i32),
                approver_user_id: decision.approver_user_id.clone(),
                approved: decision.approved,
                comment: decision.comment.clone(),
                decide_time: Some(timestamp(decision.decided_at)),
            })
            .collect(),
        audit: Some(audit(
            row.created_at,
            &row.created_by,
            row.updated_at,
            &row.updated_by,
        )),
        version: row.version,
    }
}

pub(crate) fn attendance(row: &attendance_record::Model) -> proto::AttendanceRecord {
    proto::AttendanceRecord {
        attendance_record_id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        employee_id: row.employee_id.clone(),
        check_in_time: Some(timestamp(row.check_in_at)),
        check_out_time: row.check_out_at.map(timestamp),
        worked_minutes: row.worked_minutes,
        late: row.late,
        note: row.note.clone(),
    }
}

pub(crate) fn summary_row(row: &SummaryRow) -> proto::AttendanceSummaryRow {
    proto::AttendanceSummaryRow {
        employee_id: row.employee_id.clone(),
        bucket_start: Some(date(row.bucket_start)),
        worked_minutes: row.worked_minutes,
        late_arrivals: row.late_arrivals,
        days_present: row.days_present,
    }
}
