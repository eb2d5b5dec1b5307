use erp_kit::error::field_violations;
use erp_proto::erp::auth::v1::{
    AssignRoleRequest, ChangePasswordRequest, CreateRoleRequest, CreateTenantRequest,
    CreateUserRequest, DisableUserRequest, GetTenantRequest, GetUserRequest,
    IssueOperatorTokenRequest, ListUsersRequest, LoginRequest, LogoutRequest, Plan,
    RefreshSessionRequest, RevokeRoleRequest, UpdateTenantPlanRequest, UpdateUserRequest,
    ValidateTokenRequest,
};
use tonic::{Code, Status};

use crate::helpers::{USER_PASSWORD, bearer, spawn_app};

fn assert_fields(case: &str, result: Result<impl std::fmt::Debug, Status>, expected: &[&str]) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    let fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert_eq!(fields, expected, "{case}: {status:?}");
}

#[tokio::test]
async fn bad_input_on_every_rpc_is_invalid_argument_with_field_violations() {
    let app = spawn_app().await;
    let tenant = app.tenant("strict", 0).await;
    let operator = app.operator_token().await;
    let admin = tenant.admin_token.as_str();
    let mut c = app.client().await;
    let long_email = format!("{}@example.com", "x".repeat(300));

    assert_fields(
        "CreateTenant",
        c.create_tenant(bearer(
            CreateTenantRequest {
                slug: "x".to_owned(),
                display_name: String::new(),
                plan: Some(Plan {
                    name: String::new(),
                    enabled_modules: vec![99],
                    max_users: -1,
                }),
                admin_email: "not-an-email".to_owned(),
                admin_password: "weak".to_owned(),
                admin_display_name: String::new(),
            },
            &operator,
        ))
        .await,
        &[
            "slug",
            "display_name",
            "plan.name",
            "plan.enabled_modules",
            "plan.max_users",
            "admin_email",
            "admin_password",
        ],
    );
    assert_fields(
        "CreateUser: malformed and weak",
        c.create_user(bearer(
            CreateUserRequest {
                email: "ada@".to_owned(),
                password: "alllowercaseletters".to_owned(),
                roles: vec!["Bad Role".to_owned()],
                ..Default::default()
            },
            admin,
        ))
        .await,
        &["email", "password", "roles[0]"],
    );
    assert_fields(
        "CreateUser: empty and oversize",
        c.create_user(bearer(
            CreateUserRequest {
                email: long_email.clone(),
                password: String::new(),
                ..Default::default()
            },
            admin,
        ))
        .await,
        &["email", "password"],
    );
    assert_fields(
        "CreateUser: unknown role",
        c.create_user(bearer(
            CreateUserRequest {
                email: "ok@strict.example.com".to_owned(),
                password: USER_PASSWORD.to_owned(),
                roles: vec!["astronaut".to_owned()],
                ..Default::default()
            },
            admin,
        ))
        .await,
        &["roles[0]"],
    );
    assert_fields(
        "GetUser",
        c.get_user(bearer(GetUserRequest::default(), admin)).await,
        &["user_id"],
    );
    assert_fields(
        "ListUsers",
        c.list_users(bearer(
            ListUsersRequest {
                status: 42,
                role: "NOPE!".to_owned(),
                ..Default::default()
            },
            admin,
        ))
        .await,
        &["status", "role"],
    );
    assert_fields(
        "UpdateUser: no mask",
        c.update_user(bearer(
            UpdateUserRequest {
                user_id: "u".to_owned(),
                ..Default::default()
            },
            admin,
        ))
        .await,
        &["update_mask"],
    );
    assert_fields(
        "UpdateUser: bad values",
        c.update_user(bearer(
            UpdateUserRequest {
                user_id: String::new(),
                email: "bad".to_owned(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".to_owned(), "status".to_owned()],
                }),
                expected_version: -1,
                ..Default::default()
            },
            admin,
        ))
        .await,
        &["user_id", "email", "update_mask", "expected_version"],
    );
    assert_fields(
        "DisableUser",
        c.disable_user(bearer(DisableUserRequest::default(), admin))
            .await,
        &["user_id"],
    );
    assert_fields(
        "ChangePassword",
        c.change_password(bearer(
            ChangePasswordRequest {
                old_password: String::new(),
                new_password: "short".to_owned(),
            },
            admin,
        ))
        .await,
        &["old_password", "new_password"],
    );
    assert_fields(
        "CreateRole: name and permissions",
        c.create_role(bearer(
            CreateRoleRequest {
                name: "1x".to_owned(),
                ..Default::default()
            },
            admin,
        ))
        .await,
        &["name"],
    );
    assert_fields(
        "CreateRole: built-in name, unknown and platform permissions",
        c.create_role(bearer(
            CreateRoleRequest {
                name: "tenant_admin".to_owned(),
                description: String::new(),
                permissions: vec![
                    "made.up.thing".to_owned(),
                    "platform.tenant.write".to_owned(),
                ],
            },
            admin,
        ))
        .await,
        &["name", "permissions[0]", "permissions[1]"],
    );
    assert_fields(
        "AssignRole",
        c.assign_role(bearer(
            AssignRoleRequest {
                user_id: String::new(),
                role: "NOT OK".to_owned(),
            },
            admin,
        ))
        .await,
        &["user_id", "role"],
    );
    assert_fields(
        "AssignRole: unknown role",
        c.assign_role(bearer(
            AssignRoleRequest {
                user_id: "someone".to_owned(),
                role: "astronaut".to_owned(),
            },
            admin,
        ))
        .await,
        &["role"],
    );
    assert_fields(
        "RevokeRole: unknown role",
        c.revoke_role(bearer(
            RevokeRoleRequest {
                user_id: "someone".to_owned(),
                role: "astronaut".to_owned(),
            },
            admin,
        ))
        .await,
        &["role"],
    );
    assert_fields(
        "ListUsers: unknown role",
        c.list_users(bearer(
            ListUsersRequest {
                role: "astronaut".to_owned(),
                ..Default::default()
            },
            admin,
        ))
        .await,
        &["role"],
    );
    assert_fields(
        "RevokeRole",
        c.revoke_role(bearer(
            RevokeRoleRequest {
                user_id: "u".to_owned(),
                role: String::new(),
            },
            admin,
        ))
        .await,
        &["role"],
    );
    assert_fields(
        "Login",
        c.login(LoginRequest::default()).await,
        &["tenant_slug", "email", "password"],
    );
    assert_fields(
        "Login: oversize email",
        c.login(LoginRequest {
            tenant_slug: "strict".to_owned(),
            email: long_email,
            password: "x".to_owned(),
        })
        .await,
        &["email"],
    );
    assert_fields(
        "RefreshSession",
        c.refresh_session(RefreshSessionRequest::default()).await,
        &["refresh_token"],
    );
    assert_fields(
        "Logout",
        c.logout(LogoutRequest::default()).await,
        &["refresh_token"],
    );
    assert_fields(
        "ValidateToken",
        c.validate_token(ValidateTokenRequest::default()).await,
        &["access_token"],
    );
    assert_fields(
        "IssueOperatorToken",
        c.issue_operator_token(IssueOperatorTokenRequest::default())
            .await,
        &["bootstrap_secret"],
    );
    assert_fields(
        "GetTenant",
        c.get_tenant(bearer(GetTenantRequest::default(), admin))
            .await,
        &["tenant_id"],
    );
    assert_fields(
        "UpdateTenantPlan",
        c.update_tenant_plan(bearer(
            UpdateTenantPlanRequest {
                tenant_id: tenant.id.clone(),
                plan: None,
            },
            &operator,
        ))
        .await,
        &["plan"],
    );
}

#[tokio::test]
async fn a_taken_email_is_already_exists_not_a_crash() {
    let app = spawn_app().await;
    let tenant = app.tenant("dupes", 0).await;
    app.user(&tenant, "same@dupes.example.com", &[]).await;
    let status = app
        .client()
        .await
        .create_user(bearer(
            CreateUserRequest {
                email: "SAME@dupes.example.com".to_owned(),
                password: USER_PASSWORD.to_owned(),
                ..Default::default()
            },
            &tenant.admin_token,
        ))
        .await
        .expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists);
    let slug = app
        .client()
        .await
        .create_tenant(bearer(
            CreateTenantRequest {
                slug: "dupes".to_owned(),
                display_name: "Again".to_owned(),
                plan: Some(Plan {
                    name: "p".to_owned(),
                    enabled_modules: vec![],
                    max_users: 0,
                }),
                admin_email: "a@b.example.com".to_owned(),
                admin_password: USER_PASSWORD.to_owned(),
                admin_display_name: String::new(),
            },
            &app.operator_token().await,
        ))
        .await
        .expect_err("slug taken");
    assert_eq!(slug.code(), Code::AlreadyExists);
}
