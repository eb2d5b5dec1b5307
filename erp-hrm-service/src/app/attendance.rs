//! Attendance use cases.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use erp_kit::auth::AuthContext;
use erp_proto::erp::common::v1::{PageRequest, PageResponse};
use sea_orm::TransactionTrait;

use super::Hrm;
use crate::{
    domain::{
        attendance::{Session, SummaryRow, recorded_time, summarize, worked_minutes},
        employee::EmployeeStatus,
    },
    error::{Error, Result},
    store::{self, entities::attendance_record},
};

impl Hrm {
    /// Checks an employee in (the caller's own record by default).
    pub async fn check_in(
        &self,
        caller: &AuthContext,
        employee_id: Option<&str>,
        at: Option<DateTime<Utc>>,
        note: &str,
    ) -> Result<attendance_record::Model> {
        let actor = self.actor(caller).await?;
        let employee = self.target_employee(caller, &actor, employee_id).await?;
        if EmployeeStatus::from_name(&employee.status) == EmployeeStatus::Terminated {
            return Err(Error::FailedPrecondition {
                reason: "ERP:HRM:EMPLOYEE_TERMINATED",
                message: "a terminated employee cannot check in".to_owned(),
            });
        }
        let at = recorded_time(at, Utc::now(), actor.is_hr)
            .map_err(|message| Error::field("check_in_time", message))?;
        if self.workday.local_day(at) < employee.hire_date {
            // Also keeps HR's corrections within what the database can store.
            return Err(Error::field(
                "check_in_time",
                "is before the employee's hire date",
            ));
        }
        let at = erp_db::time::truncate(at);
        let tenant = &caller.tenant_id;
        // One attendance write per employee at a time, so two corrections cannot overlap
        // each other.
        let txn = self.db.begin().await?;
        store::employees::lock(&txn, tenant, &employee.id).await?;
        if let Some(open) = store::attendance::open_record(&txn, tenant, &employee.id).await? {
            // A forgotten check-out: only HR can close it (with the real time), so say so.
            if Utc::now() - open.check_in_at > Duration::hours(24) {
                return Err(Error::FailedPrecondition {
                    reason: "ERP:HRM:ALREADY_CHECKED_IN",
                    message: format!(
                        "the employee is still checked in since {}, more than 24 hours ago; HR closes that record with its real check-out time",
                        open.check_in_at
                    ),
                });
            }
            return Err(store::attendance::already_checked_in());
        }
        // A correction back in time must not fall inside time already recorded.
        if let Some(spanning) =
            store::attendance::closed_record_spanning(&txn, tenant, &employee.id, at).await?
        {
            return Err(Error::field(
                "check_in_time",
                overlap_message("falls inside", &spanning),
            ));
        }
        // Late: after the workday start and the day's first check-in (back from lunch
        // is not a late arrival).
        let late = self.workday.is_late(at)
            && !store::attendance::checked_in_between(
                &txn,
                tenant,
                &employee.id,
                (self.workday.day_start(self.workday.local_day(at)), at),
            )
            .await?;
        let record =
            store::attendance::check_in(&txn, tenant, &employee.id, at, late, note).await?;
        txn.commit().await?;
        Ok(record)
    }

    /// Checks an employee out of their open record.
    pub async fn check_out(
        &self,
        caller: &AuthContext,
        employee_id: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> Result<attendance_record::Model> {
        let actor = self.actor(caller).await?;
        let employee = self.target_employee(caller, &actor, employee_id).await?;
        let at = recorded_time(at, Utc::now(), actor.is_hr)
            .map_err(|message| Error::field("check_out_time", message))?;
        let at = erp_db::time::truncate(at);
        let tenant = &caller.tenant_id;
        let txn = self.db.begin().await?;
        store::employees::lock(&txn, tenant, &employee.id).await?;
        let open = store::attendance::open_record(&txn, tenant, &employee.id)
            .await?
            .ok_or_else(store::attendance::not_checked_in)?;
        let minutes = worked_minutes(open.check_in_at, at)
            .map_err(|message| Error::field("check_out_time", message))?;
        // A back-dated check-in closed after a later record began would count that time
        // twice.
        if let Some(later) =
            store::attendance::next_check_in(&txn, tenant, &employee.id, open.check_in_at).await?
            && later.check_in_at < at
        {
            return Err(Error::field(
                "check_out_time",
                overlap_message("would run over", &later),
            ));
        }
        let record = store::attendance::check_out(&txn, open, at, minutes).await?;
        txn.commit().await?;
        Ok(record)
    }

    async fn attendance_scope(
        &self,
        caller: &AuthContext,
        employee_id: Option<&str>,
    ) -> Result<Option<Vec<String>>> {
        let actor = self.actor(caller).await?;
        if let Some(one) = employee_id {
            let employee = self.target_employee(caller, &actor, Some(one)).await?;
            return Ok(Some(vec![employee.id]));
        }
        self.visible_employees(caller, &actor).await
    }

    /// A page of the records the caller may see.
    pub async fn list_attendance(
        &self,
        caller: &AuthContext,
        employee_id: Option<&str>,
        period: Option<(NaiveDate, NaiveDate)>,
        page: Option<&PageRequest>,
    ) -> Result<(Vec<attendance_record::Model>, PageResponse)> {
        let scope = self.attendance_scope(caller, employee_id).await?;
        let period =
            period.map(|(from, to)| (self.day_start(from), self.day_start(to) + Duration::days(1)));
        store::attendance::list(
            &self.db,
            &caller.tenant_id,
            &self.page_tokens,
            scope.as_deref(),
            period,
            page,
        )
        .await
    }

    /// Worked time and late arrivals per employee per day or week.
    pub async fn attendance_summary(
        &self,
        caller: &AuthContext,
        period: (NaiveDate, NaiveDate),
        employee_id: Option<&str>,
        department_id: Option<&str>,
        weekly: bool,
    ) -> Result<Vec<SummaryRow>> {
        let mut scope = self.attendance_scope(caller, employee_id).await?;
        if let Some(department) = department_id {
            // Every member, however many (a page of them left the rest out).
            store::departments::get(&self.db, &caller.tenant_id, department).await?;
            let members =
                store::employees::ids_in_department(&self.db, &caller.tenant_id, department)
                    .await?;
            scope = Some(match scope {
                Some(visible) => visible
                    .into_iter()
                    .filter(|id| members.contains(id))
                    .collect(),
                None => members,
            });
        }
        let records = store::attendance::in_period(
            &self.db,
            &caller.tenant_id,
            scope.as_deref(),
            self.day_start(period.0),
            self.day_start(period.1) + Duration::days(1),
        )
        .await?;
        let sessions: Vec<Session> = records
            .into_iter()
            .map(|record| Session {
                employee_id: record.employee_id,
                check_in: record.check_in_at,
                worked_minutes: record.worked_minutes,
            })
            .collect();
        Ok(summarize(&sessions, weekly, &self.workday))
    }

    fn day_start(&self, day: NaiveDate) -> DateTime<Utc> {
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        midnight - Duration::minutes(i64::from(self.workday.utc_offset_minutes))
    }
}

/// Names the recorded time a correction collides with.
fn overlap_message(collision: &str, record: &attendance_record::Model) -> String {
    match record.check_out_at {
        Some(out) => format!(
            "{collision} the recorded attendance from {} to {out}",
            record.check_in_at
        ),
        None => format!(
            "{collision} the attendance recorded from {} (still checked in)",
            record.check_in_at
        ),
    }
}
