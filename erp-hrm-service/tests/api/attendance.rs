use erp_kit::error::{field_violations, reason};
use erp_proto::erp::{
    common::v1::DateRange,
    hrm::v1::{
        CheckInRequest, CheckOutRequest, GetAttendanceSummaryRequest, ListAttendanceRecordsRequest,
        SummaryGranularity,
    },
};

use crate::helpers::{Mesh, bearer, date};

fn at(day: u32, hour: u32, minute: u32) -> Option<prost_types::Timestamp> {
    use chrono::TimeZone;
    let instant = chrono::Utc
        .with_ymd_and_hms(2026, 11, day, hour, minute, 0)
        .single()
        .expect("instant");
    Some(prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: 0,
    })
}

#[tokio::test]
async fn attendance_refuses_double_check_ins_and_summarises_worked_time() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "ENG", "").await;
    let (employee, token) = mesh.hire("EMP-AT", &department, "").await;
    let mut hrm = mesh.hrm().await;

    let not_in = hrm
        .check_out(bearer(CheckOutRequest::default(), &token))
        .await
        .expect_err("not checked in");
    assert_eq!(reason(&not_in).as_deref(), Some("ERP:HRM:NOT_CHECKED_IN"));
    let backdated = hrm
        .check_in(bearer(
            CheckInRequest {
                check_in_time: at(2, 9, 30),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("only HR corrects the past");
    assert_eq!(backdated.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        field_violations(&backdated)
            .into_iter()
            .map(|(field, _)| field)
            .collect::<Vec<_>>(),
        ["check_in_time"]
    );
    // HR records the past sessions on the employee's behalf.
    let on_behalf = |check_in_time| CheckInRequest {
        employee_id: employee.clone(),
        check_in_time,
        ..Default::default()
    };
    let out_on_behalf = |check_out_time| CheckOutRequest {
        employee_id: employee.clone(),
        check_out_time,
    };
    let before_hire = hrm
        .check_in(bearer(
            CheckInRequest {
                check_in_time: Some(prost_types::Timestamp {
                    seconds: -8_000_000_000_000, // about 250,000 years ago
                    nanos: 0,
                }),
                ..on_behalf(None)
            },
            &mesh.admin,
        ))
        .await
        .expect_err("not even HR records a time before the hire date");
    assert_eq!(
        field_violations(&before_hire)
            .into_iter()
            .map(|(field, _)| field)
            .collect::<Vec<_>>(),
        ["check_in_time"]
    );
    hrm.check_in(bearer(on_behalf(at(2, 9, 30)), &mesh.admin))
        .await
        .expect("in, late");
    let twice = hrm
        .check_in(bearer(CheckInRequest::default(), &token))
        .await
        .expect_err("twice");
    assert_eq!(
        reason(&twice).as_deref(),
        Some("ERP:HRM:ALREADY_CHECKED_IN")
    );
    assert!(
        twice
            .message()
            .contains("more than 24 hours ago; HR closes"),
        "a forgotten check-out says who can close it: {}",
        twice.message()
    );
    let out = hrm
        .check_out(bearer(out_on_behalf(at(2, 17, 30)), &mesh.admin))
        .await
        .expect("out")
        .into_inner()
        .record
        .expect("record");
    assert_eq!((out.worked_minutes, out.late), (480, true));
    hrm.check_in(bearer(on_behalf(at(3, 8, 50)), &mesh.admin))
        .await
        .expect("in");
    hrm.check_out(bearer(out_on_behalf(at(3, 12, 50)), &mesh.admin))
        .await
        .expect("out");
    // Back from lunch after the workday start: not a late arrival.
    let afternoon = hrm
        .check_in(bearer(on_behalf(at(3, 13, 30)), &mesh.admin))
        .await
        .expect("in after lunch")
        .into_inner()
        .record
        .expect("record");
    assert!(!afternoon.late, "the day's second check-in");
    hrm.check_out(bearer(out_on_behalf(at(3, 17, 0)), &mesh.admin))
        .await
        .expect("out");
    let period = Some(DateRange {
        start_date: date(2026, 11, 1),
        end_date: date(2026, 11, 30),
    });
    let weekly = hrm
        .get_attendance_summary(bearer(
            GetAttendanceSummaryRequest {
                period,
                employee_id: employee.clone(),
                granularity: SummaryGranularity::Week as i32,
                ..Default::default()
            },
            &mesh.admin,
        ))
        .await
        .expect("summary")
        .into_inner()
        .rows;
    assert_eq!(weekly.len(), 1);
    assert_eq!(
        (
            weekly[0].worked_minutes,
            weekly[0].late_arrivals,
            weekly[0].days_present
        ),
        (930, 1, 2)
    );
    let records = hrm
        .list_attendance_records(bearer(
            ListAttendanceRecordsRequest {
                period,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("records")
        .into_inner()
        .records;
    assert_eq!(records.len(), 3, "own records, newest first");
    assert!(
        records[0].check_in_time.as_ref().expect("time").seconds
            > records[1].check_in_time.as_ref().expect("time").seconds
    );

    // Self-service stamps now.
    let own = hrm
        .check_in(bearer(CheckInRequest::default(), &token))
        .await
        .expect("own check-in")
        .into_inner()
        .record
        .expect("record");
    assert!(own.check_out_time.is_none());
}

#[tokio::test]
async fn corrections_cannot_overlap_recorded_attendance() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "OPS", "").await;
    let (employee, _token) = mesh.hire("EMP-OV", &department, "").await;
    let mut hrm = mesh.hrm().await;
    let check_in = |check_in_time| {
        bearer(
            CheckInRequest {
                employee_id: employee.clone(),
                check_in_time,
                ..Default::default()
            },
            &mesh.admin,
        )
    };
    let check_out = |check_out_time| {
        bearer(
            CheckOutRequest {
                employee_id: employee.clone(),
                check_out_time,
            },
            &mesh.admin,
        )
    };
    let only_field = |status: &tonic::Status| {
        field_violations(status)
            .into_iter()
            .map(|(field, _)| field)
            .collect::<Vec<_>>()
    };
    hrm.check_in(check_in(at(4, 13, 0))).await.expect("in");
    hrm.check_out(check_out(at(4, 17, 0))).await.expect("out");

    let inside = hrm
        .check_in(check_in(at(4, 14, 0)))
        .await
        .expect_err("inside the afternoon's record");
    assert_eq!(inside.code(), tonic::Code::InvalidArgument);
    assert_eq!(only_field(&inside), ["check_in_time"]);
    assert!(
        inside.message().contains("falls inside"),
        "{}",
        inside.message()
    );

    // The forgotten morning may be added, but not stretched over the afternoon.
    hrm.check_in(check_in(at(4, 9, 0)))
        .await
        .expect("the morning, recorded afterwards");
    let over = hrm
        .check_out(check_out(at(4, 18, 0)))
        .await
        .expect_err("would count the afternoon twice");
    assert_eq!(only_field(&over), ["check_out_time"]);
    assert!(
        over.message().contains("would run over"),
        "{}",
        over.message()
    );
    hrm.check_out(check_out(at(4, 12, 0)))
        .await
        .expect("the morning ends before the afternoon");

    let summary = hrm
        .get_attendance_summary(bearer(
            GetAttendanceSummaryRequest {
                period: Some(DateRange {
                    start_date: date(2026, 11, 4),
                    end_date: date(2026, 11, 4),
                }),
                employee_id: employee.clone(),
                granularity: SummaryGranularity::Day as i32,
                ..Default::default()
            },
            &mesh.admin,
        ))
        .await
        .expect("summary")
        .into_inner()
        .rows;
    assert_eq!(summary.len(), 1);
    assert_eq!(
        summary[0].worked_minutes,
        7 * 60,
        "3 h + 4 h, nothing twice"
    );
}
