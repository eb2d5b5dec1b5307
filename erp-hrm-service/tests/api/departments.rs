use std::sync::Arc;

use erp_hrm_service::config::Config;
use erp_kit::error::reason;
use erp_proto::erp::hrm::v1::{
    CreateDepartmentRequest, CreateEmployeeRequest, DeleteDepartmentRequest, EmploymentType,
    GetDepartmentTreeRequest, GetEmployeeRequest, GetEmployeesByDepartmentRequest,
    ListEmployeesRequest, UpdateDepartmentRequest, hrm_service_client::HrmServiceClient,
};
use erp_testkit::{TestDatabase, TestKeys};
use tonic::{Code, Request, transport::Channel};

use crate::helpers::{Mesh, bearer, date};

/// Moves `department` under `parent`, as the caller of `token`.
fn move_under(department: &str, parent: &str, token: &str) -> Request<UpdateDepartmentRequest> {
    bearer(
        UpdateDepartmentRequest {
            department_id: department.to_owned(),
            parent_department_id: parent.to_owned(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["parent_department_id".to_owned()],
            }),
            ..Default::default()
        },
        token,
    )
}

/// Deletes `department`, as the caller of `token`.
fn delete(department: &str, token: &str) -> Request<DeleteDepartmentRequest> {
    bearer(
        DeleteDepartmentRequest {
            department_id: department.to_owned(),
        },
        token,
    )
}

/// Of a delete and a write racing it, exactly one passed: the delete (the write was told
/// its department is gone) or the write (the delete found the department not empty).
fn exactly_one_wins<T: std::fmt::Debug, U: std::fmt::Debug>(
    round: usize,
    deleted: Result<T, tonic::Status>,
    written: Result<U, tonic::Status>,
) {
    match (deleted, written) {
        (Ok(_), Err(refused)) => assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}"),
        (Err(refused), Ok(_)) => assert_eq!(
            reason(&refused).as_deref(),
            Some("ERP:HRM:DEPARTMENT_NOT_EMPTY")
        ),
        (deleted, written) => {
            panic!("round {round}: exactly one wins: {deleted:?} / {written:?}")
        }
    }
}

#[tokio::test]
async fn departments_form_a_tree_that_refuses_cycles_and_keeps_its_members() {
    let mesh = Mesh::start().await;
    let company = mesh.department(&mesh.admin, "CO", "").await;
    let engineering = mesh.department(&mesh.admin, "ENG", &company).await;
    let platform = mesh.department(&mesh.admin, "PLAT", &engineering).await;
    let (_engineer, _) = mesh.hire("EMP-T", &platform, "").await;
    let mut hrm = mesh.hrm().await;

    let tree = hrm
        .get_department_tree(bearer(GetDepartmentTreeRequest::default(), &mesh.admin))
        .await
        .expect("tree")
        .into_inner()
        .roots;
    assert_eq!(tree.len(), 1);
    let eng = &tree[0].children[0];
    assert_eq!(eng.department.as_ref().expect("dept").code, "ENG");
    assert_eq!(eng.children[0].employee_count, 1);

    let cycle = hrm
        .update_department(move_under(&company, &platform, &mesh.admin))
        .await
        .expect_err("a cycle");
    assert_eq!(reason(&cycle).as_deref(), Some("ERP:HRM:DEPARTMENT_CYCLE"));

    let not_empty = hrm
        .delete_department(delete(&platform, &mesh.admin))
        .await
        .expect_err("has members");
    assert_eq!(not_empty.code(), Code::FailedPrecondition);

    let all = hrm
        .get_employees_by_department(bearer(
            GetEmployeesByDepartmentRequest {
                department_id: company.clone(),
                include_subdepartments: true,
                page: None,
            },
            &mesh.admin,
        ))
        .await
        .expect("by department")
        .into_inner()
        .employees;
    assert_eq!(all.len(), 1, "found through the sub-departments");
    let direct = hrm
        .get_employees_by_department(bearer(
            GetEmployeesByDepartmentRequest {
                department_id: company,
                include_subdepartments: false,
                page: None,
            },
            &mesh.admin,
        ))
        .await
        .expect("by department")
        .into_inner()
        .employees;
    assert!(direct.is_empty());
    let taken = hrm
        .create_department(bearer(
            CreateDepartmentRequest {
                code: "eng".to_owned(),
                name: "Again".to_owned(),
                ..Default::default()
            },
            &mesh.admin,
        ))
        .await
        .expect_err("code taken (codes are upper-cased)");
    assert_eq!(taken.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn two_moves_that_together_make_a_cycle_cannot_both_pass() {
    let mesh = Mesh::start().await;
    let hrm = mesh.hrm().await;
    let moving = |department: &str, parent: &str| {
        let (mut hrm, request) = (hrm.clone(), move_under(department, parent, &mesh.admin));
        async move { hrm.update_department(request).await }
    };
    // At once, A under B and B under A: each is fine alone, together they are a cycle.
    for round in 0..8 {
        let a = mesh.department(&mesh.admin, &format!("A{round}"), "").await;
        let b = mesh.department(&mesh.admin, &format!("B{round}"), "").await;
        let (a_under_b, b_under_a) = tokio::join!(moving(&a, &b), moving(&b, &a));
        let refused: Vec<_> = [a_under_b, b_under_a]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        assert_eq!(refused.len(), 1, "round {round}: exactly one move wins");
        assert_eq!(
            reason(&refused[0]).as_deref(),
            Some("ERP:HRM:DEPARTMENT_CYCLE"),
            "round {round}: {:?}",
            refused[0]
        );
    }
}

#[tokio::test]
async fn a_department_is_not_deleted_while_another_moves_under_it() {
    let mesh = Mesh::start().await;
    let hrm = mesh.hrm().await;
    for round in 0..8 {
        let parent = mesh.department(&mesh.admin, &format!("P{round}"), "").await;
        let child = mesh.department(&mesh.admin, &format!("C{round}"), "").await;
        let (mut deleting, mut moving) = (hrm.clone(), hrm.clone());
        let (deleted, moved) = tokio::join!(
            deleting.delete_department(delete(&parent, &mesh.admin)),
            moving.update_department(move_under(&child, &parent, &mesh.admin)),
        );
        exactly_one_wins(round, deleted, moved);
    }
}

#[tokio::test]
async fn a_department_is_not_deleted_while_a_child_is_created_under_it() {
    let mesh = Mesh::start().await;
    let hrm = mesh.hrm().await;
    for round in 0..8 {
        let parent = mesh.department(&mesh.admin, &format!("Q{round}"), "").await;
        let (mut deleting, mut creating) = (hrm.clone(), hrm.clone());
        let (deleted, created) = tokio::join!(
            deleting.delete_department(delete(&parent, &mesh.admin)),
            creating.create_department(bearer(
                CreateDepartmentRequest {
                    code: format!("QC{round}"),
                    name: format!("child {round}"),
                    parent_department_id: parent.clone(),
                    head_employee_id: String::new(),
                },
                &mesh.admin,
            )),
        );
        exactly_one_wins(round, deleted, created);
    }
}

#[tokio::test]
async fn a_department_is_not_deleted_while_someone_is_hired_into_it() {
    let mesh = Mesh::start().await;
    let hrm = mesh.hrm().await;
    for round in 0..8 {
        let department = mesh.department(&mesh.admin, &format!("H{round}"), "").await;
        let (mut deleting, mut hiring) = (hrm.clone(), hrm.clone());
        let (deleted, hired) = tokio::join!(
            deleting.delete_department(delete(&department, &mesh.admin)),
            hiring.create_employee(bearer(
                Mesh::hire_request(&format!("EMP-H{round}"), &department, "", false),
                &mesh.admin,
            )),
        );
        exactly_one_wins(round, deleted, hired);
    }
}

#[tokio::test]
async fn the_service_runs_on_sqlite_the_local_default() {
    let database = TestDatabase::sqlite();
    let keys = TestKeys::generate();
    let mut config = Config::default();
    config.server.grpc_port = 0;
    config.server.admin_port = 0;
    config.database = database.config();
    config.events.enabled = false;
    let application = erp_hrm_service::Application::build_with_keys(config, keys.key_source())
        .await
        .expect("starts on SQLite");
    let addr = application.local_addr();
    let shutdown = application.shutdown_handle();
    tokio::spawn(async move { application.run_until_stopped().await.expect("ran") });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut hrm = HrmServiceClient::new(channel);
    let token = keys
        .token()
        .permissions([
            "hrm.department.write",
            "hrm.employee.write",
            "hrm.employee.read",
        ])
        .modules(["hrm"])
        .sign();
    let department = hrm
        .create_department(bearer(
            CreateDepartmentRequest {
                code: "ENG".to_owned(),
                name: "Engineering".to_owned(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("department")
        .into_inner()
        .department
        .expect("department")
        .department_id;
    let hired = hrm
        .create_employee(bearer(
            CreateEmployeeRequest {
                employee_id: "EMP-S1".to_owned(),
                first_name: "Sam".to_owned(),
                last_name: "Lite".to_owned(),
                email: "sam@example.com".to_owned(),
                department_id: department,
                position: "Engineer".to_owned(),
                hire_date: date(2025, 3, 1),
                employment_type: EmploymentType::PartTime as i32,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("hired")
        .into_inner()
        .employee
        .expect("employee");
    let read = hrm
        .get_employee(bearer(
            GetEmployeeRequest {
                id: hired.id.clone(),
            },
            &token,
        ))
        .await
        .expect("read")
        .into_inner()
        .employee
        .expect("employee");
    assert_eq!(read.employee_id, "EMP-S1");
    let listed = hrm
        .list_employees(bearer(ListEmployeesRequest::default(), &token))
        .await
        .expect("list")
        .into_inner()
        .employees;
    assert_eq!(listed.len(), 1);
    shutdown.shutdown();
    let _ = Arc::new(());
}

#[tokio::test]
async fn paging_a_subtree_survives_a_sub_department_added_between_pages() {
    let mesh = Mesh::start().await;
    let company = mesh.department(&mesh.admin, "CO", "").await;
    let engineering = mesh.department(&mesh.admin, "ENG", &company).await;
    let mut hrm = mesh.hrm().await;
    for (number, department) in [("EMP-P1", &company), ("EMP-P2", &engineering)] {
        hrm.create_employee(bearer(
            Mesh::hire_request(number, department, "", false),
            &mesh.admin,
        ))
        .await
        .expect("hired");
    }
    let page = |page_token: String| {
        bearer(
            GetEmployeesByDepartmentRequest {
                department_id: company.clone(),
                include_subdepartments: true,
                page: Some(erp_proto::erp::common::v1::PageRequest {
                    page_size: 1,
                    page_token,
                }),
            },
            &mesh.admin,
        )
    };
    let first = hrm
        .get_employees_by_department(page(String::new()))
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(first.employees.len(), 1);
    let token = first.page.expect("page").next_page_token;
    assert!(!token.is_empty(), "a second page");

    mesh.department(&mesh.admin, "NEW", &engineering).await;
    let second = hrm
        .get_employees_by_department(page(token))
        .await
        .expect("the token still pages the same query")
        .into_inner();
    assert_eq!(second.employees.len(), 1);
    assert_ne!(second.employees[0].id, first.employees[0].id);
}
