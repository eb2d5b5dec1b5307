use std::time::Duration;

use erp_kit::error::reason;
use erp_proto::erp::{
    auth::v1::{GetUserRequest, ListUsersRequest, UserStatus},
    hrm::v1::{
        ApproverKind, EmployeeStatus, GetEmployeeRequest, LeaveRequestStatus, ListEmployeesRequest,
        ListLeaveRequestsRequest, SubmitLeaveRequestRequest, TerminateEmployeeRequest,
        UpdateEmployeeRequest,
    },
};
use erp_testkit::{broker::TestBroker, wait::eventually};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;

use crate::helpers::{Mesh, PASSWORD, bearer, date};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_cancels_open_requests_and_disables_the_login_through_kafka() {
    let broker = TestBroker::mock();
    let kafka = broker.kafka();
    let (auth_kafka, hrm_kafka) = (kafka.clone(), kafka.clone());
    let mesh = Mesh::start_with(
        |auth| {
            auth.events.enabled = true;
            auth.events.kafka = auth_kafka;
        },
        |hrm| {
            hrm.events.enabled = true;
            hrm.events.kafka = hrm_kafka;
            hrm.events.relay.idle_interval = Duration::from_millis(10);
        },
    )
    .await;
    let department = mesh.department(&mesh.admin, "ENG", "").await;
    let (employee, token) = mesh.hire("EMP-9", &department, "").await;
    let annual = mesh.leave_type("ANNUAL", &[ApproverKind::Hr]).await;
    mesh.allocate(&employee, &annual, 10).await;
    let mut hrm = mesh.hrm().await;
    hrm.submit_leave_request(bearer(
        SubmitLeaveRequestRequest {
            leave_type_id: annual.clone(),
            start_date: date(2026, 12, 7),
            end_date: date(2026, 12, 8),
            ..Default::default()
        },
        &token,
    ))
    .await
    .expect("submitted");
    // Leave approved at once (no levels) for a week after the last day.
    let holiday = mesh.leave_type("HOLIDAY", &[]).await;
    mesh.allocate(&employee, &holiday, 10).await;
    hrm.submit_leave_request(bearer(
        SubmitLeaveRequestRequest {
            leave_type_id: holiday.clone(),
            start_date: date(2026, 12, 14),
            end_date: date(2026, 12, 15),
            ..Default::default()
        },
        &token,
    ))
    .await
    .expect("approved on submission");
    assert_eq!(mesh.balance(&employee, &holiday).await, (6, 0));

    // A stale update is refused; a current one passes.
    let current = hrm
        .get_employee(bearer(
            GetEmployeeRequest {
                id: employee.clone(),
            },
            &mesh.admin,
        ))
        .await
        .expect("get")
        .into_inner()
        .employee
        .expect("employee");
    let update = UpdateEmployeeRequest {
        id: employee.clone(),
        employee: Some(erp_proto::erp::hrm::v1::Employee {
            position: "Staff Engineer".to_owned(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["position".to_owned()],
        }),
        expected_version: current.version,
    };
    hrm.update_employee(bearer(update.clone(), &mesh.admin))
        .await
        .expect("current version wins");
    let stale = hrm
        .update_employee(bearer(update.clone(), &mesh.admin))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);

    let terminated = hrm
        .terminate_employee(bearer(
            TerminateEmployeeRequest {
                id: employee.clone(),
                termination_date: date(2026, 11, 30),
                reason: "resigned".to_owned(),
            },
            &mesh.admin,
        ))
        .await
        .expect("terminated")
        .into_inner();
    assert_eq!(
        terminated.cancelled_leave_requests, 2,
        "the pending request and the approved one after the last day"
    );
    let statuses: Vec<i32> = hrm
        .list_leave_requests(bearer(
            ListLeaveRequestsRequest {
                employee_id: employee.clone(),
                ..Default::default()
            },
            &mesh.admin,
        ))
        .await
        .expect("requests")
        .into_inner()
        .leave_requests
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(statuses, [LeaveRequestStatus::Cancelled as i32; 2]);
    assert_eq!(
        mesh.balance(&employee, &holiday).await,
        (10, 0),
        "the approved days came back"
    );
    let record = terminated.employee.expect("employee");
    assert_eq!(record.status, EmployeeStatus::Terminated as i32);
    assert_eq!(record.termination_reason, "resigned");

    let user_id = record.user_id.clone();
    let auth = mesh.auth().await;
    eventually(Duration::from_secs(60), || {
        let mut auth = auth.clone();
        let request = bearer(
            GetUserRequest {
                user_id: user_id.clone(),
            },
            &mesh.admin,
        );
        async move {
            let user = auth.get_user(request).await.ok()?.into_inner().user?;
            (user.status == UserStatus::Disabled as i32).then_some(())
        }
    })
    .await;
    let login = mesh
        .login_in("acme", &record.email, PASSWORD)
        .await
        .expect_err("the login is disabled");
    assert_eq!(login.code(), Code::Unauthenticated);

    // Every change went out through the outbox, and the relay published each one (it
    // marks a row once the broker acknowledged it, which may trail the consumer).
    let events: Vec<(String, String, bool)> = eventually(Duration::from_secs(30), || async {
        let rows = mesh
            .hrm_db
            .query_all_raw(Statement::from_string(
                mesh.hrm_db.get_database_backend(),
                "SELECT event_type, aggregate_id, published_at IS NOT NULL AS published \
                 FROM outbox_events ORDER BY id",
            ))
            .await
            .expect("outbox rows");
        let events: Vec<(String, String, bool)> = rows
            .iter()
            .map(|row| {
                (
                    row.try_get("", "event_type").expect("type"),
                    row.try_get("", "aggregate_id").expect("aggregate"),
                    row.try_get("", "published").expect("published"),
                )
            })
            .collect();
        events
            .iter()
            .all(|(_, _, published)| *published)
            .then_some(events)
    })
    .await;
    let of_the_employee: Vec<&str> = events
        .iter()
        .filter(|(_, aggregate, _)| aggregate == &employee)
        .map(|(kind, _, _)| kind.as_str())
        .collect();
    assert_eq!(
        of_the_employee,
        ["employee.hired", "employee.updated", "employee.terminated"],
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|(kind, _, _)| kind == "leave_request.approved")
            .count(),
        1,
        "the holiday approved on submission: {events:?}"
    );
}

#[tokio::test]
async fn a_hire_with_a_login_while_auth_is_down_creates_nothing() {
    let mesh = Mesh::start_with(
        |_| {},
        |hrm| hrm.upstreams.auth = "http://127.0.0.1:9".to_owned(),
    )
    .await;
    let department = mesh.department(&mesh.admin, "ENG", "").await;
    let mut hrm = mesh.hrm().await;
    let status = hrm
        .create_employee(bearer(
            Mesh::hire_request("EMP-DOWN", &department, "", true),
            &mesh.admin,
        ))
        .await
        .expect_err("auth is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let employees = hrm
        .list_employees(bearer(ListEmployeesRequest::default(), &mesh.admin))
        .await
        .expect("list")
        .into_inner()
        .employees;
    assert!(employees.is_empty(), "no employee row");
    let outbox = mesh
        .hrm_db
        .query_one_raw(Statement::from_string(
            mesh.hrm_db.get_database_backend(),
            "SELECT COUNT(*) AS count FROM outbox_events",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "count")
        .expect("count");
    assert_eq!(outbox, 0, "no outbox row");

    // Without a login the same hire works.
    hrm.create_employee(bearer(
        Mesh::hire_request("EMP-DOWN", &department, "", false),
        &mesh.admin,
    ))
    .await
    .expect("hired without a login");
}

#[tokio::test]
async fn a_hire_that_fails_after_creating_its_login_leaves_that_login_disabled() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "OPS", "").await;
    // Fault injection: a deferred trigger refuses every new employee row at COMMIT, that is
    // after the auth service created the login.
    for sql in [
        "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'injected: the commit fails'; END $$",
        "CREATE CONSTRAINT TRIGGER hire_fails_at_commit AFTER INSERT ON employees \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()",
    ] {
        mesh.hrm_db
            .execute_unprepared(sql)
            .await
            .expect("fault injected");
    }
    let mut hrm = mesh.hrm().await;
    let failed = hrm
        .create_employee(bearer(
            Mesh::hire_request("EMP-ORPHAN", &department, "", true),
            &mesh.admin,
        ))
        .await
        .expect_err("the commit fails");
    assert_eq!(failed.code(), Code::Internal, "{failed:?}");

    // The login the hire created exists, disabled: nobody signs in with it.
    let users = mesh
        .auth()
        .await
        .list_users(bearer(ListUsersRequest::default(), &mesh.admin))
        .await
        .expect("users")
        .into_inner()
        .users;
    let orphan = users
        .iter()
        .find(|user| user.email == "emp-orphan@acme.example.com")
        .expect("the hire created the login before its commit failed");
    assert_eq!(orphan.status, UserStatus::Disabled as i32);
    let login = mesh
        .login_in("acme", &orphan.email, PASSWORD)
        .await
        .expect_err("disabled");
    assert_eq!(login.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn reporting_lines_cannot_loop_even_when_changed_at_once() {
    let mesh = Mesh::start().await;
    let hrm = mesh.hrm().await;
    let department = mesh.department(&mesh.admin, "LINES", "").await;
    let hire = |number: String, manager: String| {
        let (mut hrm, department) = (hrm.clone(), department.clone());
        let admin = mesh.admin.clone();
        async move {
            hrm.create_employee(bearer(
                Mesh::hire_request(&number, &department, &manager, false),
                &admin,
            ))
            .await
            .expect("hired")
            .into_inner()
            .employee
            .expect("employee")
        }
    };
    let reporting_to = |employee: &erp_proto::erp::hrm::v1::Employee, manager: &str| {
        let mut hrm = hrm.clone();
        let request = bearer(
            UpdateEmployeeRequest {
                id: employee.id.clone(),
                employee: Some(erp_proto::erp::hrm::v1::Employee {
                    manager_id: manager.to_owned(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["manager_id".to_owned()],
                }),
                expected_version: employee.version,
            },
            &mesh.admin,
        );
        async move { hrm.update_employee(request).await }
    };
    // A line: A ← B ← C (C reports to B, B to A).
    let a = hire("LN-A".to_owned(), String::new()).await;
    let b = hire("LN-B".to_owned(), a.id.clone()).await;
    let c = hire("LN-C".to_owned(), b.id.clone()).await;
    for manager in [&c, &b] {
        let looped = reporting_to(&a, &manager.id)
            .await
            .expect_err("A cannot report to someone below them");
        assert_eq!(looped.code(), Code::FailedPrecondition);
        assert_eq!(reason(&looped).as_deref(), Some("ERP:HRM:REPORTING_CYCLE"));
    }
    reporting_to(&c, &a.id)
        .await
        .expect("C may report to A directly: no loop");

    // At once, D under E and E under D: each is fine alone, together they loop.
    for round in 0..8 {
        let d = hire(format!("LN-D{round}"), String::new()).await;
        let e = hire(format!("LN-E{round}"), String::new()).await;
        let (d_under_e, e_under_d) = tokio::join!(reporting_to(&d, &e.id), reporting_to(&e, &d.id));
        let refused: Vec<_> = [d_under_e, e_under_d]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        assert_eq!(refused.len(), 1, "round {round}: exactly one change wins");
        assert_eq!(
            reason(&refused[0]).as_deref(),
            Some("ERP:HRM:REPORTING_CYCLE"),
            "round {round}: {:?}",
            refused[0]
        );
    }
}

#[tokio::test]
async fn an_employee_created_in_error_is_deleted_only_when_nothing_names_them() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "MISTAKES", "").await;
    let mut hrm = mesh.hrm().await;
    let (mistake, _token) = mesh.hire("EMP-MIS", &department, "").await;
    let delete = |id: &str| {
        bearer(
            erp_proto::erp::hrm::v1::DeleteEmployeeRequest { id: id.to_owned() },
            &mesh.admin,
        )
    };
    let refused_because = |status: tonic::Status| {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        reason(&status).expect("a reason")
    };

    // A report names them.
    let report = hrm
        .create_employee(bearer(
            Mesh::hire_request("EMP-REP", &department, &mistake, false),
            &mesh.admin,
        ))
        .await
        .expect("hired")
        .into_inner()
        .employee
        .expect("employee");
    let status = hrm
        .delete_employee(delete(&mistake))
        .await
        .expect_err("has a report");
    assert_eq!(refused_because(status), "ERP:HRM:EMPLOYEE_HAS_HISTORY");
    hrm.delete_employee(delete(&report.id))
        .await
        .expect("the report has no history");
    let gone = hrm
        .get_employee(bearer(
            GetEmployeeRequest {
                id: report.id.clone(),
            },
            &mesh.admin,
        ))
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);

    // A department names them as its head.
    let headed = hrm
        .create_department(bearer(
            erp_proto::erp::hrm::v1::CreateDepartmentRequest {
                code: "HEADED".to_owned(),
                name: "Headed".to_owned(),
                parent_department_id: String::new(),
                head_employee_id: mistake.clone(),
            },
            &mesh.admin,
        ))
        .await
        .expect("created")
        .into_inner()
        .department
        .expect("department")
        .department_id;
    let status = hrm
        .delete_employee(delete(&mistake))
        .await
        .expect_err("heads a department");
    assert_eq!(refused_because(status), "ERP:HRM:EMPLOYEE_HEADS_DEPARTMENT");
    hrm.delete_department(bearer(
        erp_proto::erp::hrm::v1::DeleteDepartmentRequest {
            department_id: headed,
        },
        &mesh.admin,
    ))
    .await
    .expect("an empty department");
    hrm.delete_employee(delete(&mistake))
        .await
        .expect("nothing names them now");

    // The deletion went out with the login to disable (the auth service's consumer of it
    // is tested there, through a broker).
    let rows = mesh
        .hrm_db
        .query_all_raw(Statement::from_string(
            mesh.hrm_db.get_database_backend(),
            format!(
                "SELECT event_type FROM outbox_events WHERE aggregate_id = '{mistake}' ORDER BY id"
            ),
        ))
        .await
        .expect("outbox rows");
    let kinds: Vec<String> = rows
        .iter()
        .map(|row| row.try_get("", "event_type").expect("type"))
        .collect();
    assert_eq!(kinds, ["employee.hired", "employee.deleted"]);

    // A manager is not deleted while someone is hired to report to them.
    for round in 0..8 {
        let manager = hrm
            .create_employee(bearer(
                Mesh::hire_request(&format!("EMP-M{round}"), &department, "", false),
                &mesh.admin,
            ))
            .await
            .expect("hired")
            .into_inner()
            .employee
            .expect("employee")
            .id;
        let (mut deleting, mut hiring) = (hrm.clone(), hrm.clone());
        let (deleted, hired) = tokio::join!(
            deleting.delete_employee(delete(&manager)),
            hiring.create_employee(bearer(
                Mesh::hire_request(&format!("EMP-R{round}"), &department, &manager, false),
                &mesh.admin,
            )),
        );
        match (deleted, hired) {
            (Ok(_), Err(refused)) => {
                assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}")
            }
            (Err(refused), Ok(_)) => {
                assert_eq!(refused_because(refused), "ERP:HRM:EMPLOYEE_HAS_HISTORY")
            }
            (deleted, hired) => panic!("round {round}: exactly one wins: {deleted:?} / {hired:?}"),
        }
    }
}
