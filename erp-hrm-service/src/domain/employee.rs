//! Employees and their lifecycle.

use chrono::NaiveDate;

/// An employee number: 1–32 of `[A-Za-z0-9_-]`.
pub fn parse_employee_number(raw: &str) -> Result<String, String> {
    let number = raw.trim();
    if number.is_empty() || number.len() > 32 {
        return Err("must be 1 to 32 characters".to_owned());
    }
    if !number
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("may contain only letters, digits, _ and -".to_owned());
    }
    Ok(number.to_owned())
}

/// Employment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmployeeStatus {
    /// Working.
    Active,
    /// On long leave, still employed.
    OnLeave,
    /// Employment ended.
    Terminated,
}

impl EmployeeStatus {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::OnLeave => "on_leave",
            Self::Terminated => "terminated",
        }
    }

    /// From storage.
    pub fn from_name(name: &str) -> Self {
        match name {
            "on_leave" => Self::OnLeave,
            "terminated" => Self::Terminated,
            _ => Self::Active,
        }
    }
}

/// Kind of contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmploymentType {
    /// Permanent full-time.
    FullTime,
    /// Permanent part-time.
    PartTime,
    /// Fixed term.
    Contract,
    /// Intern.
    Intern,
}

impl EmploymentType {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FullTime => "full_time",
            Self::PartTime => "part_time",
            Self::Contract => "contract",
            Self::Intern => "intern",
        }
    }

    /// From storage.
    pub fn from_name(name: &str) -> Self {
        match name {
            "part_time" => Self::PartTime,
            "contract" => Self::Contract,
            "intern" => Self::Intern,
            _ => Self::FullTime,
        }
    }
}

/// Checks a termination: not twice, not before the hire date.
pub fn check_termination(
    status: EmployeeStatus,
    hire_date: NaiveDate,
    termination_date: NaiveDate,
) -> Result<(), String> {
    if status == EmployeeStatus::Terminated {
        return Err("the employee is already terminated".to_owned());
    }
    if termination_date < hire_date {
        return Err("the termination date is before the hire date".to_owned());
    }
    Ok(())
}

/// Checks a status change by update: only between active and on leave.
pub fn check_status_change(from: EmployeeStatus, to: EmployeeStatus) -> Result<(), String> {
    match (from, to) {
        (EmployeeStatus::Terminated, _) => {
            Err("a terminated employee cannot change status".to_owned())
        }
        (_, EmployeeStatus::Terminated) => {
            Err("use TerminateEmployee to end an employment".to_owned())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminations_happen_once_and_not_before_hiring() {
        let hired = NaiveDate::from_ymd_opt(2024, 1, 15).expect("date");
        let later = NaiveDate::from_ymd_opt(2025, 1, 15).expect("date");
        assert!(check_termination(EmployeeStatus::Active, hired, later).is_ok());
        assert!(check_termination(EmployeeStatus::Terminated, hired, later).is_err());
        assert!(check_termination(EmployeeStatus::Active, later, hired).is_err());
    }

    #[test]
    fn updates_cannot_terminate_or_revive() {
        assert!(check_status_change(EmployeeStatus::Active, EmployeeStatus::OnLeave).is_ok());
        assert!(check_status_change(EmployeeStatus::Active, EmployeeStatus::Terminated).is_err());
        assert!(check_status_change(EmployeeStatus::Terminated, EmployeeStatus::Active).is_err());
    }
}
