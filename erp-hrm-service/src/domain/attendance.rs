//! Attendance: worked time, lateness against the workday start, and summaries.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;

/// When the working day starts, in the tenant's local time (`ERP_HRM__WORKDAY__*`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkdayPolicy {
    /// Check-ins after this local time are late ("09:00").
    pub starts_at: NaiveTime,
    /// Local time's offset from UTC, in minutes.
    pub utc_offset_minutes: i32,
}

impl Default for WorkdayPolicy {
    fn default() -> Self {
        Self {
            starts_at: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            utc_offset_minutes: 0,
        }
    }
}

impl WorkdayPolicy {
    fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.utc_offset_minutes * 60)
            .unwrap_or(FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()))
    }

    /// The local calendar day of an instant.
    pub fn local_day(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.offset()).date_naive()
    }

    /// The instant the local day `day` starts.
    pub fn day_start(&self, day: NaiveDate) -> DateTime<Utc> {
        day.and_time(NaiveTime::MIN)
            .and_local_timezone(self.offset())
            .single()
            .map_or_else(
                || day.and_time(NaiveTime::MIN).and_utc(),
                |start| start.to_utc(),
            )
    }

    /// Whether a check-in is after the workday start (an arrival is late only when it
    /// is also the day's first check-in).
    pub fn is_late(&self, check_in: DateTime<Utc>) -> bool {
        check_in.with_timezone(&self.offset()).time() > self.starts_at
    }
}

/// How far from the server's clock a self-service check-in or check-out may be stamped.
pub const SELF_SERVICE_SLACK: Duration = Duration::minutes(5);

/// The time to record: now when none is asked; an asked time within
/// [`SELF_SERVICE_SLACK`] of now for anyone, any past time only for HR (corrections).
/// Nobody records a time in the future beyond the slack.
pub fn recorded_time(
    asked: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    is_hr: bool,
) -> Result<DateTime<Utc>, String> {
    let Some(asked) = asked else {
        return Ok(now);
    };
    if asked > now + SELF_SERVICE_SLACK {
        return Err("the time is in the future".to_owned());
    }
    if !is_hr && asked < now - SELF_SERVICE_SLACK {
        return Err(format!(
            "only HR may record a time more than {} minutes ago",
            SELF_SERVICE_SLACK.num_minutes()
        ));
    }
    Ok(asked)
}

/// Minutes between check-in and check-out; the check-out may not precede the check-in.
pub fn worked_minutes(check_in: DateTime<Utc>, check_out: DateTime<Utc>) -> Result<i32, String> {
    if check_out < check_in {
        return Err("the check-out is before the check-in".to_owned());
    }
    let minutes = (check_out - check_in).num_minutes();
    if minutes > 24 * 60 {
        return Err(
            "a work session cannot last more than 24 hours; HR records the real check-out time"
                .to_owned(),
        );
    }
    i32::try_from(minutes).map_err(|_| "too long".to_owned())
}

/// One closed or open record, as the summary needs it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The employee.
    pub employee_id: String,
    /// Check-in.
    pub check_in: DateTime<Utc>,
    /// Minutes worked (0 while open).
    pub worked_minutes: i32,
}

/// One summary row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// The employee.
    pub employee_id: String,
    /// The bucket's first day.
    pub bucket_start: NaiveDate,
    /// Minutes worked.
    pub worked_minutes: i32,
    /// Late check-ins.
    pub late_arrivals: i32,
    /// Days with a check-in.
    pub days_present: i32,
}

/// Sums sessions per employee per day (or per ISO week, starting Monday). A late arrival
/// is a day whose first check-in is after the workday start: coming back from lunch is
/// not arriving late.
pub fn summarize(sessions: &[Session], weekly: bool, policy: &WorkdayPolicy) -> Vec<SummaryRow> {
    let mut first_check_in: BTreeMap<(&str, NaiveDate), DateTime<Utc>> = BTreeMap::new();
    let mut buckets: BTreeMap<(&str, NaiveDate), (i32, std::collections::BTreeSet<NaiveDate>)> =
        BTreeMap::new();
    let bucket_of = |day: NaiveDate| {
        if weekly {
            day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
        } else {
            day
        }
    };
    for session in sessions {
        let employee = session.employee_id.as_str();
        let day = policy.local_day(session.check_in);
        first_check_in
            .entry((employee, day))
            .and_modify(|first| *first = (*first).min(session.check_in))
            .or_insert(session.check_in);
        let entry = buckets.entry((employee, bucket_of(day))).or_default();
        entry.0 += session.worked_minutes;
        entry.1.insert(day);
    }
    let mut late_days: BTreeMap<(&str, NaiveDate), i32> = BTreeMap::new();
    for ((employee, day), first) in first_check_in {
        if policy.is_late(first) {
            *late_days.entry((employee, bucket_of(day))).or_default() += 1;
        }
    }
    buckets
        .into_iter()
        .map(|(key, (worked_minutes, days))| SummaryRow {
            employee_id: key.0.to_owned(),
            bucket_start: key.1,
            worked_minutes,
            late_arrivals: late_days.get(&key).copied().unwrap_or(0),
            days_present: i32::try_from(days.len()).unwrap_or(i32::MAX),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn only_hr_records_times_far_from_now() {
        let now = Utc::now();
        let an_hour_ago = now - Duration::hours(1);
        assert_eq!(recorded_time(None, now, false), Ok(now));
        assert_eq!(
            recorded_time(Some(now - Duration::minutes(4)), now, false),
            Ok(now - Duration::minutes(4))
        );
        assert!(recorded_time(Some(an_hour_ago), now, false).is_err());
        assert_eq!(recorded_time(Some(an_hour_ago), now, true), Ok(an_hour_ago));
        assert!(recorded_time(Some(now + Duration::hours(1)), now, true).is_err());
    }

    fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0)
            .single()
            .expect("instant")
    }

    #[test]
    fn lateness_is_judged_in_local_time() {
        let utc = WorkdayPolicy::default();
        assert!(!utc.is_late(at(2, 9, 0)));
        assert!(utc.is_late(at(2, 9, 1)));
        let berlin = WorkdayPolicy {
            utc_offset_minutes: 60,
            ..WorkdayPolicy::default()
        };
        assert!(!berlin.is_late(at(2, 7, 59)), "08:59 local");
        assert!(berlin.is_late(at(2, 8, 30)), "09:30 local");
    }

    #[test]
    fn local_days_start_at_local_midnight() {
        let tokyo = WorkdayPolicy {
            utc_offset_minutes: 540,
            ..WorkdayPolicy::default()
        };
        let day = NaiveDate::from_ymd_opt(2026, 11, 2).expect("day");
        assert_eq!(tokyo.day_start(day), at(1, 15, 0), "00:00 in UTC+9");
        assert_eq!(WorkdayPolicy::default().day_start(day), at(2, 0, 0));
    }

    #[test]
    fn worked_time_is_check_out_minus_check_in() {
        assert_eq!(worked_minutes(at(2, 9, 0), at(2, 17, 30)), Ok(510));
        assert!(worked_minutes(at(2, 9, 0), at(2, 8, 0)).is_err());
    }

    #[test]
    fn summaries_bucket_by_day_and_by_week() {
        let policy = WorkdayPolicy::default();
        let sessions = vec![
            Session {
                employee_id: "e".into(),
                check_in: at(2, 9, 30),
                worked_minutes: 240,
            },
            Session {
                employee_id: "e".into(),
                check_in: at(2, 14, 0),
                worked_minutes: 180,
            },
            Session {
                employee_id: "e".into(),
                check_in: at(4, 8, 45),
                worked_minutes: 480,
            },
        ];
        let daily = summarize(&sessions, false, &policy);
        assert_eq!(daily.len(), 2);
        assert_eq!(
            (
                daily[0].worked_minutes,
                daily[0].late_arrivals,
                daily[0].days_present
            ),
            (420, 1, 1),
            "back from lunch at 14:00 is not a second late arrival"
        );
        let weekly = summarize(&sessions, true, &policy);
        assert_eq!(weekly.len(), 1);
        assert_eq!(
            weekly[0].bucket_start,
            NaiveDate::from_ymd_opt(2026, 11, 2).expect("monday")
        );
        assert_eq!(
            (
                weekly[0].worked_minutes,
                weekly[0].late_arrivals,
                weekly[0].days_present
            ),
            (900, 1, 2)
        );
    }
}
