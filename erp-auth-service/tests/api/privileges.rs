//! Nobody gains, hands out or takes away more than they hold: role grants, custom roles,
//! managing users who hold more, and the tenant's last administrator.

use erp_proto::erp::auth::v1::{
    AssignRoleRequest, CreateRoleRequest, CreateUserRequest, DisableUserRequest, RevokeRoleRequest,
    UpdateUserRequest,
};
use tonic::Code;

use crate::helpers::{TestApp, USER_PASSWORD, bearer, claims_of, spawn_app};

async fn token_of(app: &TestApp, slug: &str, email: &str) -> String {
    app.login(slug, email, USER_PASSWORD)
        .await
        .expect("logs in")
        .tokens
        .expect("tokens")
        .access_token
}

fn user_id_of(token: &str) -> String {
    claims_of(token)["sub"]
        .as_str()
        .expect("a subject")
        .to_owned()
}

fn role_request(name: &str, permissions: &[&str]) -> CreateRoleRequest {
    CreateRoleRequest {
        name: name.to_owned(),
        description: format!("{name} for the test"),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_role_grant_or_a_custom_role_never_exceeds_the_callers_permissions() {
    let app = spawn_app().await;
    let tenant = app.tenant("grants", 0).await;
    let mut client = app.client().await;
    for (name, permissions) in [
        ("role_clerk", &["auth.role.assign", "auth.user.read"][..]),
        ("role_writer", &["auth.role.write", "auth.role.read"][..]),
    ] {
        client
            .create_role(bearer(role_request(name, permissions), &tenant.admin_token))
            .await
            .expect("the admin creates the role");
    }
    app.user(&tenant, "clerk@grants.example.com", &["role_clerk"])
        .await;
    app.user(&tenant, "writer@grants.example.com", &["role_writer"])
        .await;
    // A login with no role yet: the clerk holds all it holds (nothing), so may manage it.
    let colleague = app.user(&tenant, "colleague@grants.example.com", &[]).await;
    let clerk = token_of(&app, "grants", "clerk@grants.example.com").await;
    let writer = token_of(&app, "grants", "writer@grants.example.com").await;

    let assign = |user_id: &str, role: &str| {
        bearer(
            AssignRoleRequest {
                user_id: user_id.to_owned(),
                role: role.to_owned(),
            },
            &clerk,
        )
    };
    let self_promotion = client
        .assign_role(assign(&user_id_of(&clerk), "tenant_admin"))
        .await
        .expect_err("a clerk cannot make themselves admin");
    assert_eq!(self_promotion.code(), Code::PermissionDenied);
    let beyond = client
        .assign_role(assign(&colleague, "hr_manager"))
        .await
        .expect_err("nor hand out HR's permissions");
    assert_eq!(beyond.code(), Code::PermissionDenied);
    client
        .assign_role(assign(&colleague, "role_clerk"))
        .await
        .expect("what the clerk holds, the clerk may hand out");

    let sneaky = client
        .create_role(bearer(
            role_request("role_sneaky", &["hrm.employee.write"]),
            &writer,
        ))
        .await
        .expect_err("a role writer cannot create a role beyond their own permissions");
    assert_eq!(sneaky.code(), Code::PermissionDenied);
    client
        .create_role(bearer(
            role_request("role_reader", &["auth.role.read"]),
            &writer,
        ))
        .await
        .expect("within their own permissions");
}

#[tokio::test]
async fn nobody_manages_a_user_who_holds_more_than_they_do() {
    let app = spawn_app().await;
    let tenant = app.tenant("managed", 0).await;
    let mut client = app.client().await;
    client
        .create_role(bearer(
            role_request("role_clerk", &["auth.role.assign", "auth.user.read"]),
            &tenant.admin_token,
        ))
        .await
        .expect("the admin creates the role");
    app.user(&tenant, "hr@managed.example.com", &["hr_manager"])
        .await;
    app.user(&tenant, "clerk@managed.example.com", &["role_clerk"])
        .await;
    let employee = app
        .user(&tenant, "employee@managed.example.com", &["employee"])
        .await;
    let hr = token_of(&app, "managed", "hr@managed.example.com").await;
    let clerk = token_of(&app, "managed", "clerk@managed.example.com").await;
    let admin = user_id_of(&tenant.admin_token);

    let disable = |user_id: &str, token: &str| {
        bearer(
            DisableUserRequest {
                user_id: user_id.to_owned(),
                reason: "test".to_owned(),
            },
            token,
        )
    };
    let disabling_the_admin = client
        .disable_user(disable(&admin, &hr))
        .await
        .expect_err("HR cannot lock the admin out");
    assert_eq!(disabling_the_admin.code(), Code::PermissionDenied);
    let renaming_the_admin = client
        .update_user(bearer(
            UpdateUserRequest {
                user_id: admin.clone(),
                display_name: "Former Admin".to_owned(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".to_owned()],
                }),
                ..Default::default()
            },
            &hr,
        ))
        .await
        .expect_err("HR cannot edit the admin");
    assert_eq!(renaming_the_admin.code(), Code::PermissionDenied);
    let demoting_the_admin = client
        .revoke_role(bearer(
            RevokeRoleRequest {
                user_id: admin.clone(),
                role: "tenant_admin".to_owned(),
            },
            &clerk,
        ))
        .await
        .expect_err("a clerk who may assign roles cannot demote the admin");
    assert_eq!(demoting_the_admin.code(), Code::PermissionDenied);

    client
        .disable_user(disable(&employee, &hr))
        .await
        .expect("HR disables an employee's login");
}

#[tokio::test]
async fn the_tenant_keeps_an_active_administrator() {
    let app = spawn_app().await;
    let tenant = app.tenant("keeper", 0).await;
    let mut client = app.client().await;
    let first = user_id_of(&tenant.admin_token);
    let revoke = |user_id: &str, token: &str| {
        bearer(
            RevokeRoleRequest {
                user_id: user_id.to_owned(),
                role: "tenant_admin".to_owned(),
            },
            token,
        )
    };
    let last_revoked = client
        .revoke_role(revoke(&first, &tenant.admin_token))
        .await
        .expect_err("the only admin stays admin");
    assert_eq!(last_revoked.code(), Code::FailedPrecondition);
    let last_disabled = client
        .disable_user(bearer(
            DisableUserRequest {
                user_id: first.clone(),
                reason: "leaving".to_owned(),
            },
            &tenant.admin_token,
        ))
        .await
        .expect_err("the only admin stays enabled");
    assert_eq!(last_disabled.code(), Code::FailedPrecondition);
    assert_eq!(
        erp_kit::error::reason(&last_revoked).as_deref(),
        Some("ERP:AUTH:LAST_ADMIN")
    );

    // Two admins demoting each other at once: exactly one of them goes.
    let second = app
        .user(&tenant, "second@keeper.example.com", &["tenant_admin"])
        .await;
    let second_token = token_of(&app, "keeper", "second@keeper.example.com").await;
    let mut other_client = app.client().await;
    let (one, other) = tokio::join!(
        client.revoke_role(revoke(&second, &tenant.admin_token)),
        other_client.revoke_role(revoke(&first, &second_token)),
    );
    let outcomes = [one.map(drop), other.map(drop)];
    assert_eq!(
        outcomes.iter().filter(|outcome| outcome.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let refused = outcomes
        .iter()
        .find_map(|outcome| outcome.as_ref().err())
        .expect("one refused");
    // The loser is the last admin (refused), or already demoted by the winner, whose
    // revocation ended the loser's sessions.
    assert!(
        [Code::FailedPrecondition, Code::Unauthenticated].contains(&refused.code()),
        "{refused:?}"
    );

    // Two admins disabling each other at once: exactly one of them goes.
    let (admin, admin_token) = if outcomes[0].is_ok() {
        (first, tenant.admin_token.clone())
    } else {
        (second, second_token)
    };
    // The demoted one's sessions ended with the role: the survivor adds a third admin.
    let third = client
        .create_user(bearer(
            CreateUserRequest {
                email: "third@keeper.example.com".to_owned(),
                password: USER_PASSWORD.to_owned(),
                display_name: "Third".to_owned(),
                roles: vec!["tenant_admin".to_owned()],
                employee_id: String::new(),
            },
            &admin_token,
        ))
        .await
        .expect("the surviving admin creates another")
        .into_inner()
        .user
        .expect("a user")
        .user_id;
    let third_token = token_of(&app, "keeper", "third@keeper.example.com").await;
    let disable = |user_id: &str, token: &str| {
        bearer(
            DisableUserRequest {
                user_id: user_id.to_owned(),
                reason: "race".to_owned(),
            },
            token,
        )
    };
    let (one, other) = tokio::join!(
        client.disable_user(disable(&third, &admin_token)),
        other_client.disable_user(disable(&admin, &third_token)),
    );
    let outcomes = [one.map(drop), other.map(drop)];
    assert_eq!(
        outcomes.iter().filter(|outcome| outcome.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn a_disabled_or_demoted_admins_token_no_longer_works_at_the_auth_service() {
    let app = spawn_app().await;
    let tenant = app.tenant("revoked", 0).await;
    let second = app
        .user(&tenant, "second@revoked.example.com", &["tenant_admin"])
        .await;
    let second_token = token_of(&app, "revoked", "second@revoked.example.com").await;
    let mut client = app.client().await;
    let list = |token: &str| bearer(erp_proto::erp::auth::v1::ListUsersRequest::default(), token);
    client
        .list_users(list(&second_token))
        .await
        .expect("the second admin works");

    client
        .disable_user(bearer(
            DisableUserRequest {
                user_id: second,
                reason: "left".to_owned(),
            },
            &tenant.admin_token,
        ))
        .await
        .expect("the first admin disables the second");
    let refused = client
        .list_users(list(&second_token))
        .await
        .expect_err("a disabled admin's unexpired token is refused");
    assert_eq!(refused.code(), Code::Unauthenticated);
    client
        .list_users(list(&tenant.admin_token))
        .await
        .expect("the first admin's session is untouched");

    // A demoted admin's token carries the old permissions: their sessions end too.
    let third = app
        .user(&tenant, "third@revoked.example.com", &["tenant_admin"])
        .await;
    let third_token = token_of(&app, "revoked", "third@revoked.example.com").await;
    client
        .revoke_role(bearer(
            RevokeRoleRequest {
                user_id: third,
                role: "tenant_admin".to_owned(),
            },
            &tenant.admin_token,
        ))
        .await
        .expect("the first admin demotes the third");
    let demoted = client
        .list_users(list(&third_token))
        .await
        .expect_err("a demoted admin's unexpired token is refused");
    assert_eq!(demoted.code(), Code::Unauthenticated);
}
