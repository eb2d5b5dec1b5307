use erp_kit::error::reason;
use erp_proto::erp::common::v1::PageRequest;
use erp_proto::erp::hrm::v1::{
    ApproveLeaveRequestRequest, ApproverKind, CancelLeaveRequestRequest, GetLeaveBalancesRequest,
    LeaveLedgerEntryKind, LeaveRequestStatus, ListLeaveAllocationsRequest,
    ListLeaveLedgerEntriesRequest, ListLeaveRequestsRequest, SubmitLeaveRequestRequest,
    TerminateEmployeeRequest, UpdateDepartmentRequest,
};
use tonic::Code;

use crate::helpers::{Mesh, bearer, date};

/// The year of the tests' leave: 2026's calendar (November 2nd is a Monday), far enough
/// ahead that employees may still cancel it whenever the tests run.
const YEAR: i32 = 2071;

fn submit(
    leave_type: &str,
    from: (i32, i32, i32),
    to: (i32, i32, i32),
) -> SubmitLeaveRequestRequest {
    SubmitLeaveRequestRequest {
        leave_type_id: leave_type.to_owned(),
        start_date: date(from.0, from.1, from.2),
        end_date: date(to.0, to.1, to.2),
        reason: "holiday".to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_request_goes_through_two_approval_levels_and_the_balance_follows_the_ledger() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "ENG", "").await;
    let (manager, manager_token) = mesh.hire("MGR-1", &department, "").await;
    let (employee, employee_token) = mesh.hire("EMP-1", &department, &manager).await;
    let hr = mesh
        .user_with_role("hr@acme.example.com", "hr_manager")
        .await;
    let annual = mesh
        .leave_type("ANNUAL", &[ApproverKind::DirectManager, ApproverKind::Hr])
        .await;
    mesh.allocate(&employee, &annual, 20).await;
    assert_eq!(mesh.balance(&employee, &annual).await, (20, 0));
    let mut hrm = mesh.hrm().await;

    // Mon 11-02 .. Wed 11-04: three working days.
    let request = hrm
        .submit_leave_request(bearer(
            submit(&annual, (YEAR, 11, 2), (YEAR, 11, 4)),
            &employee_token,
        ))
        .await
        .expect("submitted")
        .into_inner()
        .leave_request
        .expect("request");
    assert_eq!(request.half_days, 6);
    assert_eq!(request.status, LeaveRequestStatus::Pending as i32);
    assert_eq!(
        mesh.balance(&employee, &annual).await,
        (20, 6),
        "pending days are held, not deducted"
    );
    let id = request.leave_request_id.clone();
    let approve = |token: &str| {
        bearer(
            ApproveLeaveRequestRequest {
                leave_request_id: id.clone(),
                comment: "ok".to_owned(),
            },
            token,
        )
    };

    let lister = hrm.clone();
    let awaiting = |token: &str| {
        let (mut hrm, request) = (
            lister.clone(),
            bearer(
                ListLeaveRequestsRequest {
                    awaiting_my_approval: true,
                    ..Default::default()
                },
                token,
            ),
        );
        async move {
            hrm.list_leave_requests(request)
                .await
                .expect("list")
                .into_inner()
                .leave_requests
                .into_iter()
                .map(|request| request.leave_request_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        awaiting(&manager_token).await,
        std::slice::from_ref(&id),
        "the manager's turn"
    );
    assert!(awaiting(&hr).await.is_empty(), "not HR's turn yet");

    for (who, token) in [
        ("HR before the manager", &hr),
        ("the employee", &employee_token),
    ] {
        let status = hrm
            .approve_leave_request(approve(token))
            .await
            .expect_err(who);
        assert_eq!(status.code(), Code::PermissionDenied, "{who}: {status:?}");
    }
    let first = hrm
        .approve_leave_request(approve(&manager_token))
        .await
        .expect("manager approves")
        .into_inner()
        .leave_request
        .expect("request");
    assert_eq!(
        (first.status, first.current_approval_level),
        (LeaveRequestStatus::Pending as i32, 1)
    );
    assert_eq!(mesh.balance(&employee, &annual).await, (20, 6));
    assert!(
        awaiting(&manager_token).await.is_empty(),
        "the manager is done"
    );
    assert_eq!(awaiting(&hr).await, std::slice::from_ref(&id), "HR's turn");
    let wrong_level = hrm
        .approve_leave_request(approve(&manager_token))
        .await
        .expect_err("HR's level");
    assert_eq!(wrong_level.code(), Code::PermissionDenied);

    let approved = hrm
        .approve_leave_request(approve(&hr))
        .await
        .expect("HR approves")
        .into_inner()
        .leave_request
        .expect("request");
    assert_eq!(approved.status, LeaveRequestStatus::Approved as i32);
    assert_eq!(approved.approvals.len(), 2);
    assert_eq!(
        mesh.balance(&employee, &annual).await,
        (14, 0),
        "deducted once approved"
    );
    let twice = hrm
        .approve_leave_request(approve(&hr))
        .await
        .expect_err("approving twice");
    assert_eq!(twice.code(), Code::FailedPrecondition);

    let overlap = hrm
        .submit_leave_request(bearer(
            submit(&annual, (YEAR, 11, 4), (YEAR, 11, 5)),
            &employee_token,
        ))
        .await
        .expect_err("overlaps");
    assert_eq!(
        reason(&overlap).as_deref(),
        Some("ERP:HRM:OVERLAPPING_REQUEST")
    );
    let too_long = hrm
        .submit_leave_request(bearer(
            submit(&annual, (YEAR, 11, 9), (YEAR, 11, 18)),
            &employee_token,
        ))
        .await
        .expect_err("16 half days > 14");
    assert_eq!(
        reason(&too_long).as_deref(),
        Some("ERP:HRM:INSUFFICIENT_BALANCE")
    );

    let cancelled = hrm
        .cancel_leave_request(bearer(
            CancelLeaveRequestRequest {
                leave_request_id: id.clone(),
                reason: "plans changed".to_owned(),
            },
            &employee_token,
        ))
        .await
        .expect("cancelled")
        .into_inner()
        .leave_request
        .expect("request");
    assert_eq!(cancelled.status, LeaveRequestStatus::Cancelled as i32);
    assert_eq!(
        mesh.balance(&employee, &annual).await,
        (20, 0),
        "the days came back"
    );
}

#[tokio::test]
async fn two_approvers_at_once_exactly_one_wins() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "OPS", "").await;
    let (employee, employee_token) = mesh.hire("EMP-2", &department, "").await;
    let hr_one = mesh
        .user_with_role("hr1@acme.example.com", "hr_manager")
        .await;
    let hr_two = mesh
        .user_with_role("hr2@acme.example.com", "hr_manager")
        .await;
    let sick = mesh.leave_type("SICK", &[ApproverKind::Hr]).await;
    mesh.allocate(&employee, &sick, 10).await;
    let id = mesh
        .submit_leave(submit(&sick, (YEAR, 11, 2), (YEAR, 11, 2)), &employee_token)
        .await;

    let (mut a, mut b) = (mesh.hrm().await, mesh.hrm().await);
    let (first, second) = tokio::join!(
        a.approve_leave_request(bearer(
            ApproveLeaveRequestRequest {
                leave_request_id: id.clone(),
                comment: String::new()
            },
            &hr_one
        )),
        b.approve_leave_request(bearer(
            ApproveLeaveRequestRequest {
                leave_request_id: id.clone(),
                comment: String::new()
            },
            &hr_two
        )),
    );
    let outcomes = [first.is_ok(), second.is_ok()];
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "exactly one approval wins: {first:?} / {second:?}"
    );
    let loser = first.err().or(second.err()).expect("one lost");
    assert!(
        matches!(loser.code(), Code::FailedPrecondition | Code::Aborted),
        "{loser:?}"
    );
    assert_eq!(
        mesh.balance(&employee, &sick).await,
        (8, 0),
        "deducted exactly once"
    );
}

#[tokio::test]
async fn employees_see_their_own_leave_managers_their_reports_and_hr_everyone() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "SALES", "").await;
    let (manager, manager_token) = mesh.hire("MGR-3", &department, "").await;
    let (report, report_token) = mesh.hire("EMP-3", &department, &manager).await;
    let (_colleague, colleague_token) = mesh.hire("EMP-4", &department, "").await;
    let hr = mesh
        .user_with_role("hr3@acme.example.com", "hr_manager")
        .await;
    let annual = mesh
        .leave_type("ANNUAL", &[ApproverKind::DirectManager])
        .await;
    mesh.allocate(&report, &annual, 10).await;
    let mut hrm = mesh.hrm().await;
    let balances = |token: &str| {
        bearer(
            GetLeaveBalancesRequest {
                employee_id: report.clone(),
            },
            token,
        )
    };

    for (who, token) in [
        ("the employee", &report_token),
        ("their manager", &manager_token),
        ("HR", &hr),
    ] {
        hrm.get_leave_balances(balances(token))
            .await
            .unwrap_or_else(|status| panic!("{who}: {status:?}"));
    }
    let colleague = hrm
        .get_leave_balances(balances(&colleague_token))
        .await
        .expect_err("a colleague");
    assert_eq!(colleague.code(), Code::NotFound);

    // Allocations follow the same rule: a colleague sees none of the report's, whether
    // they ask for the report by id or list everything they may see.
    let allocations_seen = |token: &str, employee_id: &str| {
        let (mut hrm, request) = (
            hrm.clone(),
            bearer(
                ListLeaveAllocationsRequest {
                    employee_id: employee_id.to_owned(),
                    ..Default::default()
                },
                token,
            ),
        );
        async move {
            hrm.list_leave_allocations(request)
                .await
                .expect("list allocations")
                .into_inner()
                .allocations
                .len()
        }
    };
    assert_eq!(allocations_seen(&report_token, "").await, 1, "the employee");
    assert_eq!(
        allocations_seen(&manager_token, &report).await,
        1,
        "their manager"
    );
    assert_eq!(allocations_seen(&hr, "").await, 1, "HR");
    assert_eq!(
        allocations_seen(&colleague_token, &report).await,
        0,
        "a colleague, by id"
    );
    assert_eq!(
        allocations_seen(&colleague_token, "").await,
        0,
        "a colleague, all"
    );
    let on_behalf = hrm
        .submit_leave_request(bearer(
            SubmitLeaveRequestRequest {
                employee_id: report.clone(),
                ..submit(&annual, (YEAR, 11, 2), (YEAR, 11, 2))
            },
            &colleague_token,
        ))
        .await
        .expect_err("not for a colleague");
    assert_eq!(on_behalf.code(), Code::NotFound);

    // The report's request: another manager's employee neither decides nor sees it; their
    // own manager decides it but cannot cancel it (the employee or HR does).
    let request = mesh
        .submit_leave(submit(&annual, (YEAR, 11, 2), (YEAR, 11, 2)), &report_token)
        .await;
    let (_other_manager, other_manager_token) = mesh.hire("MGR-4", &department, "").await;
    let decide = |token: &str| {
        bearer(
            ApproveLeaveRequestRequest {
                leave_request_id: request.clone(),
                comment: "ok".to_owned(),
            },
            token,
        )
    };
    let not_theirs = hrm
        .approve_leave_request(decide(&other_manager_token))
        .await
        .expect_err("not their report");
    assert_eq!(not_theirs.code(), Code::NotFound);
    let cancel = |token: &str| {
        bearer(
            CancelLeaveRequestRequest {
                leave_request_id: request.clone(),
                reason: "covering".to_owned(),
            },
            token,
        )
    };
    let manager_cancels = hrm
        .cancel_leave_request(cancel(&manager_token))
        .await
        .expect_err("a manager does not cancel");
    assert_eq!(manager_cancels.code(), Code::PermissionDenied);
    hrm.approve_leave_request(decide(&manager_token))
        .await
        .expect("their manager approves");
    hrm.cancel_leave_request(cancel(&report_token))
        .await
        .expect("the employee cancels before the leave starts");

    let department_write = hrm
        .create_department(bearer(Default::default(), &report_token))
        .await
        .expect_err("employees cannot create departments");
    assert_eq!(department_write.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn unused_days_lapse_beyond_the_carry_forward_cap_and_leave_needs_an_allocation() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "OPS", "").await;
    let (employee, employee_token) = mesh.hire("EMP-9", &department, "").await;
    // No approval levels: approved on submission. The helper's cap is 10 half days.
    let annual = mesh.leave_type("ANNUAL", &[]).await;
    let last_year = mesh
        .allocate_in(&employee, &annual, 30, ((2025, 1, 1), (2025, 12, 31)))
        .await;
    mesh.allocate(&employee, &annual, 20).await;

    // 2025's period has ended with all 30 half days unused: 10 carry over, 20 lapse.
    assert_eq!(mesh.balance(&employee, &annual).await, (30, 0));
    let mut hrm = mesh.hrm().await;
    let ledger = hrm
        .list_leave_ledger_entries(bearer(
            ListLeaveLedgerEntriesRequest {
                employee_id: employee.clone(),
                leave_type_id: annual.clone(),
                page: None,
            },
            &mesh.admin,
        ))
        .await
        .expect("ledger")
        .into_inner()
        .entries;
    let expiries: Vec<_> = ledger
        .iter()
        .filter(|entry| entry.kind == LeaveLedgerEntryKind::Expiry as i32)
        .map(|entry| (entry.half_days_delta, entry.source_id.as_str()))
        .collect();
    assert_eq!(expiries, [(-20, last_year.as_str())], "{ledger:#?}");
    assert_eq!(
        mesh.balance(&employee, &annual).await,
        (30, 0),
        "an allocation lapses once"
    );

    // Leave is taken inside an allocation's period; the balance follows the ledger.
    for (from, to) in [((2100, 1, 4), (2100, 1, 4)), ((2024, 6, 3), (2024, 6, 4))] {
        let refused = hrm
            .submit_leave_request(bearer(submit(&annual, from, to), &employee_token))
            .await
            .expect_err("no allocation covers it");
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert_eq!(reason(&refused).as_deref(), Some("ERP:HRM:NO_ALLOCATION"));
    }
    let taken = mesh
        .submit_leave(
            submit(&annual, (2026, 11, 2), (2026, 11, 6)),
            &employee_token,
        )
        .await;
    assert_eq!(mesh.balance(&employee, &annual).await, (20, 0));

    // That week is past: the employee cannot hand the days back, HR can.
    let cancel = |token: &str| {
        bearer(
            CancelLeaveRequestRequest {
                leave_request_id: taken.clone(),
                reason: "booked by mistake".to_owned(),
            },
            token,
        )
    };
    let refused = hrm
        .cancel_leave_request(cancel(&employee_token))
        .await
        .expect_err("the leave has started");
    assert_eq!(reason(&refused).as_deref(), Some("ERP:HRM:LEAVE_STARTED"));
    hrm.cancel_leave_request(cancel(&mesh.admin))
        .await
        .expect("HR corrects it");
    assert_eq!(mesh.balance(&employee, &annual).await, (30, 0));

    // A morning off and an afternoon off on the same day do not overlap; a whole day does.
    let monday = (2026, 11, 9);
    for (half, start_half_day, end_half_day) in
        [("the morning", false, true), ("the afternoon", true, false)]
    {
        hrm.submit_leave_request(bearer(
            SubmitLeaveRequestRequest {
                start_half_day,
                end_half_day,
                ..submit(&annual, monday, monday)
            },
            &employee_token,
        ))
        .await
        .unwrap_or_else(|status| panic!("{half}: {status:?}"));
    }
    assert_eq!(mesh.balance(&employee, &annual).await, (28, 0));
    let whole_day = hrm
        .submit_leave_request(bearer(submit(&annual, monday, monday), &employee_token))
        .await
        .expect_err("both halves are taken");
    assert_eq!(
        reason(&whole_day).as_deref(),
        Some("ERP:HRM:OVERLAPPING_REQUEST")
    );
}

#[tokio::test]
async fn hr_decides_what_waits_for_a_manager_who_left() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "SUPPORT", "").await;
    let (manager, _manager_token) = mesh.hire("MGR-8", &department, "").await;
    let (employee, employee_token) = mesh.hire("EMP-8", &department, &manager).await;
    let hr = mesh
        .user_with_role("hr8@acme.example.com", "hr_manager")
        .await;
    let annual = mesh
        .leave_type("ANNUAL", &[ApproverKind::DirectManager])
        .await;
    mesh.allocate(&employee, &annual, 20).await;
    let mut hrm = mesh.hrm().await;
    let waiting = mesh
        .submit_leave(
            submit(&annual, (YEAR, 11, 2), (YEAR, 11, 2)),
            &employee_token,
        )
        .await;
    let approve = |id: &str| {
        bearer(
            ApproveLeaveRequestRequest {
                leave_request_id: id.to_owned(),
                comment: "covering for the manager".to_owned(),
            },
            &hr,
        )
    };
    let not_yet = hrm
        .approve_leave_request(approve(&waiting))
        .await
        .expect_err("the manager can still decide");
    assert_eq!(not_yet.code(), Code::PermissionDenied);

    hrm.terminate_employee(bearer(
        TerminateEmployeeRequest {
            id: manager.clone(),
            termination_date: date(2026, 11, 30),
            reason: "left".to_owned(),
        },
        &mesh.admin,
    ))
    .await
    .expect("the manager leaves");
    let approved = hrm
        .approve_leave_request(approve(&waiting))
        .await
        .expect("HR takes over the manager's level")
        .into_inner()
        .leave_request
        .expect("request");
    assert_eq!(approved.status, LeaveRequestStatus::Approved as i32);

    // New requests go to HR from the start.
    let later = mesh
        .submit_leave(
            submit(&annual, (YEAR, 11, 3), (YEAR, 11, 3)),
            &employee_token,
        )
        .await;
    let decided = hrm
        .approve_leave_request(approve(&later))
        .await
        .expect("HR approves")
        .into_inner()
        .leave_request
        .expect("request");
    assert_eq!(decided.status, LeaveRequestStatus::Approved as i32);
    let kinds: Vec<i32> = decided
        .approvals
        .iter()
        .map(|approval| approval.approver_kind)
        .collect();
    assert_eq!(
        kinds,
        [ApproverKind::Hr as i32],
        "the manager's level became HR's at submission"
    );
    assert_eq!(mesh.balance(&employee, &annual).await, (16, 0));
}

#[tokio::test]
async fn an_ended_period_waits_for_its_pending_requests_and_keeps_what_comes_back() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "OPS", "").await;
    let (employee, employee_token) = mesh.hire("EMP-L", &department, "").await;
    let hr = mesh
        .user_with_role("hr-l@acme.example.com", "hr_manager")
        .await;
    // HR approves each request; the helper's carry-forward cap is 10 half days.
    let annual = mesh.leave_type("ANNUAL", &[ApproverKind::Hr]).await;
    mesh.allocate_in(&employee, &annual, 30, ((2025, 1, 1), (2025, 12, 31)))
        .await;
    mesh.allocate(&employee, &annual, 20).await;

    // A late request for two days of last December: 2025 does not lapse while it waits.
    let december = mesh
        .submit_leave(
            submit(&annual, (2025, 12, 1), (2025, 12, 2)),
            &employee_token,
        )
        .await;
    assert_eq!(mesh.balance(&employee, &annual).await, (50, 4));
    let mut hrm = mesh.hrm().await;
    hrm.approve_leave_request(bearer(
        ApproveLeaveRequestRequest {
            leave_request_id: december.clone(),
            comment: "late sick note".to_owned(),
        },
        &hr,
    ))
    .await
    .expect("approved");
    // Approved from 2025's days: 26 of them left, 10 carried over, 16 lapse.
    assert_eq!(mesh.balance(&employee, &annual).await, (30, 0));

    // Cancelled after 2025 lapsed: its days go back to 2025, and lapse with it.
    hrm.cancel_leave_request(bearer(
        CancelLeaveRequestRequest {
            leave_request_id: december,
            reason: "not sick after all".to_owned(),
        },
        &hr,
    ))
    .await
    .expect("HR cancels");
    assert_eq!(mesh.balance(&employee, &annual).await, (30, 0));
}

#[tokio::test]
async fn department_heads_find_what_awaits_them_page_after_full_page() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "LAB", "").await;
    let (head, head_token) = mesh.hire("HEAD-1", &department, "").await;
    let mut hrm = mesh.hrm().await;
    hrm.update_department(bearer(
        UpdateDepartmentRequest {
            department_id: department.clone(),
            head_employee_id: head,
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["head_employee_id".to_owned()],
            }),
            ..Default::default()
        },
        &mesh.admin,
    ))
    .await
    .expect("the head is set");
    let by_head = mesh
        .leave_type("BYHEAD", &[ApproverKind::DepartmentHead])
        .await;
    let by_hr = mesh.leave_type("BYHR", &[ApproverKind::Hr]).await;
    // Three members without a manager; requests awaiting the head and requests awaiting
    // HR alternate in the list.
    let mut for_the_head = Vec::new();
    let mut members = Vec::new();
    for n in 0..3 {
        let (member, token) = mesh.hire(&format!("MEM-{n}"), &department, "").await;
        members.push(member.clone());
        mesh.allocate(&member, &by_head, 10).await;
        mesh.allocate(&member, &by_hr, 10).await;
        for (leave_type, day) in [(&by_head, 2 + n), (&by_hr, 9 + n)] {
            let id = mesh
                .submit_leave(submit(leave_type, (YEAR, 11, day), (YEAR, 11, day)), &token)
                .await;
            if leave_type == &by_head {
                for_the_head.push(id);
            }
        }
    }

    let mut found = Vec::new();
    let mut page_token = String::new();
    for _ in 0..6 {
        let reply = hrm
            .list_leave_requests(bearer(
                ListLeaveRequestsRequest {
                    awaiting_my_approval: true,
                    page: Some(PageRequest {
                        page_size: 1,
                        page_token: page_token.clone(),
                    }),
                    ..Default::default()
                },
                &head_token,
            ))
            .await
            .expect("a page")
            .into_inner();
        let next = reply
            .page
            .map(|page| page.next_page_token)
            .unwrap_or_default();
        assert!(
            reply.leave_requests.len() == 1 || next.is_empty(),
            "only the last page may be short: {:?}",
            reply.leave_requests
        );
        found.extend(reply.leave_requests.into_iter().map(|r| r.leave_request_id));
        if next.is_empty() {
            break;
        }
        page_token = next;
    }
    let first_members_request = for_the_head[0].clone();
    found.sort();
    for_the_head.sort();
    assert_eq!(found, for_the_head, "every request awaiting the head, once");

    let visible = hrm
        .list_leave_requests(bearer(ListLeaveRequestsRequest::default(), &head_token))
        .await
        .expect("list")
        .into_inner()
        .leave_requests;
    assert_eq!(visible.len(), 6, "the head sees the department's requests");

    // A member whose request waits for the head becomes the head: nobody approves their
    // own, so HR decides it (it could be decided by nobody).
    let hr = mesh
        .user_with_role("hr-head@acme.example.com", "hr_manager")
        .await;
    hrm.update_department(bearer(
        UpdateDepartmentRequest {
            department_id: department.clone(),
            head_employee_id: members[0].clone(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["head_employee_id".to_owned()],
            }),
            ..Default::default()
        },
        &mesh.admin,
    ))
    .await
    .expect("a new head");
    let decided = hrm
        .approve_leave_request(bearer(
            ApproveLeaveRequestRequest {
                leave_request_id: first_members_request,
                comment: String::new(),
            },
            &hr,
        ))
        .await
        .expect("HR decides the new head's own request")
        .into_inner()
        .leave_request
        .expect("request");
    assert_eq!(decided.status, LeaveRequestStatus::Approved as i32);
}

#[tokio::test]
async fn a_request_in_a_new_period_draws_on_the_old_one_only_up_to_the_carry_forward_cap() {
    let mesh = Mesh::start().await;
    let department = mesh.department(&mesh.admin, "FIN", "").await;
    let (employee, employee_token) = mesh.hire("EMP-P", &department, "").await;
    // HR approves; the helper's carry-forward cap is 10 half days (5 days).
    let annual = mesh.leave_type("ANNUAL", &[ApproverKind::Hr]).await;
    // 20 days in 2070 (not over yet when the request is made for 2071), 10 days in 2071.
    mesh.allocate_in(&employee, &annual, 40, ((2070, 1, 1), (2070, 12, 31)))
        .await;
    mesh.allocate_in(&employee, &annual, 20, ((2071, 1, 1), (2071, 12, 31)))
        .await;
    let mut hrm = mesh.hrm().await;

    // 25 working days in February 2071: 2071's 10 and at most 5 carried from 2070 are 15.
    let too_much = hrm
        .submit_leave_request(bearer(
            submit(&annual, (2071, 2, 2), (2071, 3, 6)),
            &employee_token,
        ))
        .await
        .expect_err("2070's days beyond the cap lapse before 2071");
    assert_eq!(
        reason(&too_much).as_deref(),
        Some("ERP:HRM:INSUFFICIENT_BALANCE"),
        "{too_much:?}"
    );
    let sixteen = hrm
        .submit_leave_request(bearer(
            submit(&annual, (2071, 2, 2), (2071, 2, 23)),
            &employee_token,
        ))
        .await
        .expect_err("one day over");
    assert_eq!(
        reason(&sixteen).as_deref(),
        Some("ERP:HRM:INSUFFICIENT_BALANCE")
    );
    // 15 days fit exactly.
    mesh.submit_leave(
        submit(&annual, (2071, 2, 2), (2071, 2, 20)),
        &employee_token,
    )
    .await;
}
