//! Leave: working days between dates, the approval chain of a request as a state
//! machine, and the append-only ledger whose sum is the balance.

use chrono::{Datelike, NaiveDate, Weekday};

/// Who approves at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApproverKind {
    /// The employee's direct manager.
    DirectManager,
    /// The head of the employee's department.
    DepartmentHead,
    /// HR (the permission `hrm.leave.approve_any`).
    Hr,
}

impl ApproverKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DirectManager => "direct_manager",
            Self::DepartmentHead => "department_head",
            Self::Hr => "hr",
        }
    }

    /// From storage.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "direct_manager" => Some(Self::DirectManager),
            "department_head" => Some(Self::DepartmentHead),
            "hr" => Some(Self::Hr),
            _ => None,
        }
    }
}

/// The chain a request will actually follow: a level nobody can decide (no manager; no
/// department head, or the employee heads their own department) goes to HR, and repeated
/// HR levels collapse into one.
pub fn resolve_chain(
    levels: &[ApproverKind],
    has_manager: bool,
    has_other_head: bool,
) -> Vec<ApproverKind> {
    let mut resolved: Vec<ApproverKind> = Vec::with_capacity(levels.len());
    for kind in levels {
        let kind = match kind {
            ApproverKind::DirectManager if !has_manager => ApproverKind::Hr,
            ApproverKind::DepartmentHead if !has_other_head => ApproverKind::Hr,
            other => *other,
        };
        if !(kind == ApproverKind::Hr && resolved.last() == Some(&ApproverKind::Hr)) {
            resolved.push(kind);
        }
    }
    resolved
}

/// Longest request, in calendar days.
pub const MAX_REQUEST_DAYS: i64 = 366;

/// Working half days from `start` to `end` (inclusive), weekends excluded. A half-day
/// start takes only the afternoon of the first day; a half-day end only the morning of
/// the last.
pub fn working_half_days(
    start: NaiveDate,
    end: NaiveDate,
    start_half: bool,
    end_half: bool,
) -> Result<u32, String> {
    if end < start {
        return Err("the end date is before the start date".to_owned());
    }
    if (end - start).num_days() >= MAX_REQUEST_DAYS {
        return Err(format!("a request covers at most {MAX_REQUEST_DAYS} days"));
    }
    if start == end && start_half && end_half {
        return Err(
            "a one-day request cannot start in the afternoon and end in the morning".to_owned(),
        );
    }
    let is_working = |day: NaiveDate| !matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
    let mut half_days = 0u32;
    let mut day = start;
    while day <= end {
        if is_working(day) {
            half_days += 2;
        }
        day = day.succ_opt().ok_or("date out of range")?;
    }
    if start_half && is_working(start) {
        half_days -= 1;
    }
    if end_half && is_working(end) {
        half_days -= 1;
    }
    if half_days == 0 {
        return Err("the request covers no working day".to_owned());
    }
    Ok(half_days)
}

/// The days a request covers, to the half day: `start_half_day` leaves the first day's
/// morning free, `end_half_day` the last day's afternoon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaveSpan {
    /// First day.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
    /// Only the afternoon of the first day.
    pub start_half_day: bool,
    /// Only the morning of the last day.
    pub end_half_day: bool,
}

impl LeaveSpan {
    /// The first and last half day taken (0 morning, 1 afternoon).
    fn halves(self) -> ((NaiveDate, u8), (NaiveDate, u8)) {
        (
            (self.start, u8::from(self.start_half_day)),
            (self.end, u8::from(!self.end_half_day)),
        )
    }

    /// Whether the two take a common half day (a morning off and an afternoon off on
    /// the same day do not).
    pub fn overlaps(self, other: Self) -> bool {
        let (a, b) = (self.halves(), other.halves());
        a.0 <= b.1 && b.0 <= a.1
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    /// Waiting for the approver at the current level.
    Pending,
    /// Approved at every level; deducted.
    Approved,
    /// Refused.
    Rejected,
    /// Withdrawn.
    Cancelled,
}

impl RequestStatus {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    /// From storage.
    pub fn from_name(name: &str) -> Self {
        match name {
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "cancelled" => Self::Cancelled,
            _ => Self::Pending,
        }
    }
}

/// An illegal move of a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Only pending requests can be decided.
    #[error("the request is {0}, not pending")]
    NotPending(&'static str),
    /// Rejected or cancelled requests cannot be cancelled.
    #[error("the request is already {0}")]
    AlreadyClosed(&'static str),
}

/// The result of an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// The next level now decides.
    NextLevel(usize),
    /// That was the last level: approved, deduct the days.
    Approved,
}

/// A request's position in its approval chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Status.
    pub status: RequestStatus,
    /// The level awaiting a decision.
    pub level: usize,
    /// Levels, in order.
    pub levels: Vec<ApproverKind>,
}

impl Chain {
    /// The approver kind the current level needs.
    pub fn current_approver(&self) -> Option<ApproverKind> {
        (self.status == RequestStatus::Pending)
            .then(|| self.levels.get(self.level).copied())
            .flatten()
    }

    /// Approves the current level.
    pub fn approve(&self) -> Result<Approval, TransitionError> {
        if self.status != RequestStatus::Pending {
            return Err(TransitionError::NotPending(self.status.as_str()));
        }
        if self.level + 1 < self.levels.len() {
            Ok(Approval::NextLevel(self.level + 1))
        } else {
            Ok(Approval::Approved)
        }
    }

    /// Rejects the request.
    pub fn reject(&self) -> Result<(), TransitionError> {
        if self.status != RequestStatus::Pending {
            return Err(TransitionError::NotPending(self.status.as_str()));
        }
        Ok(())
    }

    /// Cancels; true when the days must be given back (it was approved).
    pub fn cancel(&self) -> Result<bool, TransitionError> {
        match self.status {
            RequestStatus::Pending => Ok(false),
            RequestStatus::Approved => Ok(true),
            closed => Err(TransitionError::AlreadyClosed(closed.as_str())),
        }
    }
}

/// Why a ledger row exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// Days granted.
    Allocation,
    /// Days taken by an approved request.
    RequestApproved,
    /// Days given back by cancelling an approved request.
    RequestCancelled,
    /// Days that lapsed.
    Expiry,
}

impl LedgerKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allocation => "allocation",
            Self::RequestApproved => "request_approved",
            Self::RequestCancelled => "request_cancelled",
            Self::Expiry => "expiry",
        }
    }

    /// From storage.
    pub fn from_name(name: &str) -> Self {
        match name {
            "request_approved" => Self::RequestApproved,
            "request_cancelled" => Self::RequestCancelled,
            "expiry" => Self::Expiry,
            _ => Self::Allocation,
        }
    }
}

/// Whether a request of `requested` half days fits: the balance minus what other
/// pending requests already hold.
pub fn fits_balance(balance: i64, pending: i64, requested: u32) -> bool {
    balance - pending >= i64::from(requested)
}

/// What a request may draw on, by the oldest-days-first rule: what is left of the
/// allocations whose period it falls in (`granted_current`), plus what is left of earlier
/// periods up to the carry-forward cap (the rest lapses when they end); never days
/// granted for a period that starts after it (`granted_later`, untouched while older
/// days remain).
pub fn usable_half_days(
    balance: i64,
    granted_later: i64,
    granted_current: i64,
    carry_forward_cap: i64,
) -> i64 {
    let up_to_its_period = balance - granted_later;
    let current_left = up_to_its_period.min(granted_current);
    let earlier_left = (up_to_its_period - granted_current).max(0);
    current_left + earlier_left.min(carry_forward_cap.max(0))
}

/// The half days that lapse when an allocation's period ends: what is left of it (and of
/// allocations that ended before it) beyond the carry-forward cap. Approved requests take
/// the oldest days first, so what is left of the ended allocations is the balance less
/// the days of allocations that outlive it (`outliving`), never below zero.
pub fn lapsing_half_days(balance: i64, outliving: i64, carry_forward_cap: i64) -> i64 {
    let left = (balance - outliving).max(0);
    (left - carry_forward_cap.max(0)).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        // November 2026: the 2nd is a Monday.
        NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
    }

    #[test]
    fn a_request_draws_on_its_period_and_capped_carry_forward_only() {
        // 20 days left of a period that ends before the request (cap 5 days), 10 granted
        // for the request's period, 8 for a later one: 10 + 5.
        assert_eq!(usable_half_days(76, 16, 20, 10), 30);
        // A request in the earlier period draws on it whole (the later ones wait).
        assert_eq!(usable_half_days(76, 36, 40, 10), 40);
        // Nothing left of earlier periods: the request's own period only.
        assert_eq!(usable_half_days(12, 0, 20, 10), 12);
    }

    #[test]
    fn weekends_do_not_count() {
        assert_eq!(
            working_half_days(day(2), day(6), false, false),
            Ok(10),
            "Mon–Fri"
        );
        assert_eq!(
            working_half_days(day(6), day(9), false, false),
            Ok(4),
            "Fri–Mon"
        );
        assert!(
            working_half_days(day(7), day(8), false, false).is_err(),
            "a weekend only"
        );
    }

    #[test]
    fn half_days_take_the_afternoon_of_the_first_and_the_morning_of_the_last() {
        assert_eq!(working_half_days(day(2), day(3), true, false), Ok(3));
        assert_eq!(working_half_days(day(2), day(3), true, true), Ok(2));
        assert_eq!(working_half_days(day(2), day(2), true, false), Ok(1));
        assert!(working_half_days(day(2), day(2), true, true).is_err());
    }

    #[test]
    fn backwards_and_huge_ranges_are_refused() {
        assert!(working_half_days(day(5), day(2), false, false).is_err());
        let far = NaiveDate::from_ymd_opt(2028, 1, 1).expect("date");
        assert!(working_half_days(day(2), far, false, false).is_err());
    }

    #[test]
    fn a_two_level_chain_moves_level_by_level_then_approves() {
        let mut chain = Chain {
            status: RequestStatus::Pending,
            level: 0,
            levels: vec![ApproverKind::DirectManager, ApproverKind::Hr],
        };
        assert_eq!(chain.current_approver(), Some(ApproverKind::DirectManager));
        assert_eq!(chain.approve(), Ok(Approval::NextLevel(1)));
        chain.level = 1;
        assert_eq!(chain.current_approver(), Some(ApproverKind::Hr));
        assert_eq!(chain.approve(), Ok(Approval::Approved));
        chain.status = RequestStatus::Approved;
        assert!(chain.approve().is_err(), "approving twice is refused");
        assert_eq!(
            chain.cancel(),
            Ok(true),
            "cancelling an approved request restores the days"
        );
    }

    #[test]
    fn levels_nobody_can_decide_escalate_to_hr() {
        use ApproverKind::*;
        assert_eq!(
            resolve_chain(&[DirectManager, Hr], true, true),
            vec![DirectManager, Hr]
        );
        assert_eq!(resolve_chain(&[DirectManager, Hr], false, true), vec![Hr]);
        assert_eq!(
            resolve_chain(&[DepartmentHead, DirectManager], true, false),
            vec![Hr, DirectManager]
        );
        assert!(resolve_chain(&[], false, false).is_empty());
    }

    #[test]
    fn closed_requests_cannot_move() {
        let chain = Chain {
            status: RequestStatus::Rejected,
            level: 0,
            levels: vec![ApproverKind::Hr],
        };
        assert!(chain.approve().is_err());
        assert!(chain.reject().is_err());
        assert!(chain.cancel().is_err());
    }

    #[test]
    fn requests_overlap_when_they_share_a_half_day() {
        let span = |start, end, start_half_day, end_half_day| LeaveSpan {
            start: day(start),
            end: day(end),
            start_half_day,
            end_half_day,
        };
        assert!(span(2, 4, false, false).overlaps(span(4, 6, false, false)));
        assert!(!span(2, 3, false, false).overlaps(span(4, 6, false, false)));
        // Off until Wednesday noon, then off from Wednesday afternoon: no common half day.
        assert!(!span(2, 4, false, true).overlaps(span(4, 6, true, false)));
        assert!(span(2, 4, false, true).overlaps(span(4, 6, false, false)));
        // One day: the morning and the afternoon are separate; a whole day takes both.
        assert!(!span(5, 5, false, true).overlaps(span(5, 5, true, false)));
        assert!(span(5, 5, false, false).overlaps(span(5, 5, true, false)));
    }

    #[test]
    fn unused_days_beyond_the_carry_forward_cap_lapse() {
        // 20 granted last year, nothing taken, 10 granted this year, 4 may carry over.
        assert_eq!(lapsing_half_days(30, 10, 4), 16);
        // 14 of last year's 20 taken: 6 left, 4 carry over.
        assert_eq!(lapsing_half_days(16, 10, 4), 2);
        // Fewer left than the cap: nothing lapses.
        assert_eq!(lapsing_half_days(13, 10, 4), 0);
        // Last year's days all taken and some of this year's too: nothing left to lapse.
        assert_eq!(lapsing_half_days(7, 10, 4), 0);
        // No carry-forward: everything left lapses; a negative balance lapses nothing.
        assert_eq!(lapsing_half_days(8, 0, 0), 8);
        assert_eq!(lapsing_half_days(-3, 0, 0), 0);
    }

    #[test]
    fn pending_requests_hold_their_days() {
        assert!(fits_balance(10, 4, 6));
        assert!(!fits_balance(10, 4, 7));
    }
}
