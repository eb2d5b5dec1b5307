use erp_proto::erp::auth::v1::{
    AssignRoleRequest, DisableUserRequest, GetTenantRequest, GetUserRequest, ListUsersRequest,
    UpdateUserRequest,
};
use tonic::Code;

use crate::helpers::{bearer, spawn_app};

#[tokio::test]
async fn a_tenant_admin_cannot_touch_another_tenants_users() {
    let app = spawn_app().await;
    let a = app.tenant("tenant-a", 0).await;
    let b = app.tenant("tenant-b", 0).await;
    let b_user = app.user(&b, "bob@b.example.com", &["employee"]).await;
    let mut client = app.client().await;

    let read = client
        .get_user(bearer(
            GetUserRequest {
                user_id: b_user.clone(),
            },
            &a.admin_token,
        ))
        .await
        .expect_err("not visible");
    assert_eq!(read.code(), Code::NotFound);
    let update = client
        .update_user(bearer(
            UpdateUserRequest {
                user_id: b_user.clone(),
                display_name: "hijacked".to_owned(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".to_owned()],
                }),
                ..Default::default()
            },
            &a.admin_token,
        ))
        .await
        .expect_err("not updatable");
    assert_eq!(update.code(), Code::NotFound);
    let disable = client
        .disable_user(bearer(
            DisableUserRequest {
                user_id: b_user.clone(),
                reason: String::new(),
            },
            &a.admin_token,
        ))
        .await
        .expect_err("not disableable");
    assert_eq!(disable.code(), Code::NotFound);
    let assign = client
        .assign_role(bearer(
            AssignRoleRequest {
                user_id: b_user.clone(),
                role: "tenant_admin".to_owned(),
            },
            &a.admin_token,
        ))
        .await
        .expect_err("no role for a foreign user");
    assert_eq!(assign.code(), Code::NotFound);

    let listed = client
        .list_users(bearer(ListUsersRequest::default(), &a.admin_token))
        .await
        .expect("list")
        .into_inner()
        .users;
    assert!(
        listed.iter().all(|user| user.tenant_id == a.id),
        "only tenant A's users"
    );
    assert!(listed.iter().all(|user| user.user_id != b_user));

    let tenant = client
        .get_tenant(bearer(
            GetTenantRequest {
                tenant_id: b.id.clone(),
            },
            &a.admin_token,
        ))
        .await
        .expect_err("another tenant is not found");
    assert_eq!(tenant.code(), Code::NotFound);
    let own = client
        .get_tenant(bearer(
            GetTenantRequest {
                tenant_id: a.id.clone(),
            },
            &a.admin_token,
        ))
        .await
        .expect("own tenant")
        .into_inner();
    assert_eq!(own.tenant.expect("tenant").slug, "tenant-a");

    // B's user is untouched.
    let untouched = client
        .get_user(bearer(GetUserRequest { user_id: b_user }, &b.admin_token))
        .await
        .expect("B sees it")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(untouched.display_name, "bob@b.example.com");
    assert_eq!(untouched.roles, vec!["employee".to_owned()]);
}

#[tokio::test]
async fn users_list_in_pages_filtered_by_role() {
    let app = spawn_app().await;
    let tenant = app.tenant("paged", 0).await;
    for index in 0..5 {
        app.user(
            &tenant,
            &format!("user{index}@paged.example.com"),
            &["employee"],
        )
        .await;
    }
    app.user(&tenant, "seller@paged.example.com", &["sales_rep"])
        .await;
    let mut client = app.client().await;
    let mut emails = Vec::new();
    let mut page = erp_proto::erp::common::v1::PageRequest {
        page_size: 2,
        page_token: String::new(),
    };
    loop {
        let response = client
            .list_users(bearer(
                ListUsersRequest {
                    page: Some(page.clone()),
                    role: "employee".to_owned(),
                    ..Default::default()
                },
                &tenant.admin_token,
            ))
            .await
            .expect("page")
            .into_inner();
        assert!(response.users.len() <= 2);
        emails.extend(response.users.into_iter().map(|user| user.email));
        let next = response.page.expect("page info").next_page_token;
        if next.is_empty() {
            break;
        }
        page.page_token = next;
    }
    assert_eq!(
        emails,
        (0..5)
            .map(|i| format!("user{i}@paged.example.com"))
            .collect::<Vec<_>>()
    );
    let tampered = client
        .list_users(bearer(
            ListUsersRequest {
                page: Some(erp_proto::erp::common::v1::PageRequest {
                    page_size: 2,
                    page_token: "AAAA.BBBB".to_owned(),
                }),
                ..Default::default()
            },
            &tenant.admin_token,
        ))
        .await
        .expect_err("tampered page token");
    assert_eq!(tampered.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn nobody_hands_out_roles_beyond_their_own_permissions() {
    let app = spawn_app().await;
    let tenant = app.tenant("escalate", 0).await;
    app.user(&tenant, "hr@escalate.example.com", &["hr_manager"])
        .await;
    let hr = app
        .login(
            "escalate",
            "hr@escalate.example.com",
            crate::helpers::USER_PASSWORD,
        )
        .await
        .expect("hr logs in")
        .tokens
        .expect("tokens")
        .access_token;
    let mut client = app.client().await;
    let create = |roles: &[&str]| {
        bearer(
            erp_proto::erp::auth::v1::CreateUserRequest {
                email: format!("{}@escalate.example.com", roles.join("-")),
                password: crate::helpers::USER_PASSWORD.to_owned(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                ..Default::default()
            },
            &hr,
        )
    };
    let escalation = client
        .create_user(create(&["tenant_admin"]))
        .await
        .expect_err("HR cannot mint an admin");
    assert_eq!(escalation.code(), Code::PermissionDenied);
    client
        .create_user(create(&["employee"]))
        .await
        .expect("HR creates employees");
}
