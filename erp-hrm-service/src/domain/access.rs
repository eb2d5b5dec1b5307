//! Who may act on whose leave and attendance, beyond the method's permission: employees
//! on their own records, managers on their direct reports', department heads on their
//! department's, HR on everyone's.

use super::leave::ApproverKind;

/// The permission that makes a caller HR for leave and attendance.
pub const HR_PERMISSION: &str = "hrm.leave.approve_any";

/// The caller, as HRM sees them.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The caller's user id.
    pub user_id: String,
    /// The caller's own employee record, if they are an employee.
    pub employee_id: Option<String>,
    /// Whether the caller holds the HR permission.
    pub is_hr: bool,
}

/// What the rules need to know about the employee concerned.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The employee's record id.
    pub employee_id: &'a str,
    /// Their direct manager.
    pub manager_id: Option<&'a str>,
    /// The head of their department.
    pub department_head_id: Option<&'a str>,
}

impl Actor {
    fn is(&self, employee: Option<&str>) -> bool {
        matches!((&self.employee_id, employee), (Some(mine), Some(theirs)) if mine == theirs)
    }

    /// Whether the caller may see or act on `subject`'s leave and attendance.
    pub fn may_act_for(&self, subject: &Subject<'_>) -> bool {
        self.is_hr
            || self.is(Some(subject.employee_id))
            || self.is(subject.manager_id)
            || self.is(subject.department_head_id)
    }

    /// Whether the caller may decide at a level needing `kind`: its approver, or HR when
    /// the level has nobody (no manager or head, or one who cannot act). Nobody approves
    /// their own.
    pub fn may_approve(&self, kind: ApproverKind, subject: &Subject<'_>) -> bool {
        if self.is(Some(subject.employee_id)) {
            return false;
        }
        let approver = match kind {
            ApproverKind::DirectManager => subject.manager_id,
            ApproverKind::DepartmentHead => subject.department_head_id,
            ApproverKind::Hr => return self.is_hr,
        };
        match approver {
            Some(approver) => self.is(Some(approver)),
            None => self.is_hr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(employee: Option<&str>, is_hr: bool) -> Actor {
        Actor {
            user_id: "u".into(),
            employee_id: employee.map(str::to_owned),
            is_hr,
        }
    }

    const SUBJECT: Subject<'static> = Subject {
        employee_id: "emp",
        manager_id: Some("boss"),
        department_head_id: Some("head"),
    };

    #[test]
    fn employees_managers_and_hr_see_what_they_should() {
        assert!(actor(Some("emp"), false).may_act_for(&SUBJECT));
        assert!(actor(Some("boss"), false).may_act_for(&SUBJECT));
        assert!(actor(None, true).may_act_for(&SUBJECT));
        assert!(actor(Some("head"), false).may_act_for(&SUBJECT));
        assert!(!actor(Some("colleague"), false).may_act_for(&SUBJECT));
        assert!(!actor(None, false).may_act_for(&SUBJECT));
    }

    #[test]
    fn each_level_has_its_approver_and_nobody_approves_their_own() {
        assert!(actor(Some("boss"), false).may_approve(ApproverKind::DirectManager, &SUBJECT));
        assert!(!actor(Some("head"), false).may_approve(ApproverKind::DirectManager, &SUBJECT));
        assert!(actor(Some("head"), false).may_approve(ApproverKind::DepartmentHead, &SUBJECT));
        assert!(actor(None, true).may_approve(ApproverKind::Hr, &SUBJECT));
        assert!(!actor(Some("emp"), true).may_approve(ApproverKind::Hr, &SUBJECT));
        assert!(!actor(None, true).may_approve(ApproverKind::DirectManager, &SUBJECT));
    }

    #[test]
    fn hr_decides_levels_that_have_nobody() {
        let orphan = Subject {
            manager_id: None,
            department_head_id: None,
            ..SUBJECT
        };
        assert!(actor(None, true).may_approve(ApproverKind::DirectManager, &orphan));
        assert!(actor(None, true).may_approve(ApproverKind::DepartmentHead, &orphan));
        assert!(!actor(Some("boss"), false).may_approve(ApproverKind::DirectManager, &orphan));
    }
}
