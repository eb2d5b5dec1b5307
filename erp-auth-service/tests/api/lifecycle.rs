use erp_kit::error::reason;
use erp_proto::erp::auth::v1::{
    AssignRoleRequest, ChangePasswordRequest, GetUserRequest, ListUsersRequest, LogoutRequest,
    RefreshSessionRequest, ValidateTokenRequest,
};
use tonic::Code;

use crate::helpers::{USER_PASSWORD, bearer, claims_of, spawn_app};

#[tokio::test]
async fn the_whole_identity_lifecycle_works_end_to_end() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme", 0).await;
    let mut client = app.client().await;

    // The admin's token carries the tenant, every tenant permission and the plan's modules.
    let admin_claims = claims_of(&tenant.admin_token);
    assert_eq!(admin_claims["tid"], tenant.id.as_str());
    assert!(
        admin_claims["perms"]
            .as_array()
            .expect("perms")
            .iter()
            .any(|p| p == "auth.user.write")
    );
    assert_eq!(
        admin_claims["mods"],
        serde_json::json!(["hrm", "crm", "finance"])
    );

    // Create a user, give them a role, log them in.
    let user_id = app
        .user(&tenant, "grace@acme.example.com", &["employee"])
        .await;
    client
        .assign_role(bearer(
            AssignRoleRequest {
                user_id: user_id.clone(),
                role: "accountant".to_owned(),
            },
            &tenant.admin_token,
        ))
        .await
        .expect("role assigned");
    let login = app
        .login("ACME", " Grace@Acme.example.com ", USER_PASSWORD)
        .await
        .expect("user logs in");
    let tokens = login.tokens.expect("tokens");
    let claims = claims_of(&tokens.access_token);
    assert_eq!(claims["sub"], user_id.as_str());
    let permissions: Vec<&str> = claims["perms"]
        .as_array()
        .expect("perms")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(
        permissions.contains(&"hrm.leave.request"),
        "employee role: {permissions:?}"
    );
    assert!(
        permissions.contains(&"finance.journal.post"),
        "accountant role: {permissions:?}"
    );
    assert!(
        !permissions.contains(&"auth.user.write"),
        "no admin permission: {permissions:?}"
    );
    assert!(claims["sid"].is_string(), "the token names its session");

    // The user's token works where its permissions allow, and not elsewhere.
    let denied = client
        .list_users(bearer(ListUsersRequest::default(), &tokens.access_token))
        .await
        .expect_err("an employee cannot list users");
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Refresh rotates; the old refresh token reused revokes the whole family.
    let rotated = client
        .refresh_session(RefreshSessionRequest {
            refresh_token: tokens.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner()
        .tokens
        .expect("tokens");
    assert_ne!(rotated.refresh_token, tokens.refresh_token);
    let reused = client
        .refresh_session(RefreshSessionRequest {
            refresh_token: tokens.refresh_token.clone(),
        })
        .await
        .expect_err("reuse refused");
    assert_eq!(reused.code(), Code::Unauthenticated);
    let family = client
        .refresh_session(RefreshSessionRequest {
            refresh_token: rotated.refresh_token.clone(),
        })
        .await
        .expect_err("the newest token of the family is revoked too");
    assert_eq!(family.code(), Code::Unauthenticated);
    let validity = client
        .validate_token(ValidateTokenRequest {
            access_token: rotated.access_token.clone(),
        })
        .await
        .expect("answers")
        .into_inner();
    assert!(
        !validity.valid,
        "the revoked session's access token no longer validates"
    );

    // A fresh login, then logout ends that session.
    let second = app
        .login("acme", "grace@acme.example.com", USER_PASSWORD)
        .await
        .expect("login")
        .tokens
        .expect("tokens");
    client
        .logout(LogoutRequest {
            refresh_token: second.refresh_token.clone(),
        })
        .await
        .expect("logout");
    let after_logout = client
        .refresh_session(RefreshSessionRequest {
            refresh_token: second.refresh_token,
        })
        .await
        .expect_err("logged out");
    assert_eq!(after_logout.code(), Code::Unauthenticated);

    // The admin reads the user back with both roles.
    let user = client
        .get_user(bearer(
            GetUserRequest {
                user_id: user_id.clone(),
            },
            &tenant.admin_token,
        ))
        .await
        .expect("read back")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(
        user.roles,
        vec!["accountant".to_owned(), "employee".to_owned()]
    );
    assert_eq!(user.email, "grace@acme.example.com");
    assert!(user.last_login_time.is_some());
    assert!(reason(&reused).is_some());
}

#[tokio::test]
async fn changing_the_password_keeps_this_session_and_revokes_the_others() {
    let app = spawn_app().await;
    let tenant = app.tenant("globex", 0).await;
    app.user(&tenant, "hank@globex.example.com", &["employee"])
        .await;
    let here = app
        .login("globex", "hank@globex.example.com", USER_PASSWORD)
        .await
        .expect("login")
        .tokens
        .expect("tokens");
    let elsewhere = app
        .login("globex", "hank@globex.example.com", USER_PASSWORD)
        .await
        .expect("login")
        .tokens
        .expect("tokens");
    let mut client = app.client().await;

    let wrong_old = client
        .change_password(bearer(
            ChangePasswordRequest {
                old_password: "not-it-at-all-1".to_owned(),
                new_password: "Brand-new-password-1".to_owned(),
            },
            &here.access_token,
        ))
        .await
        .expect_err("the old password must be right");
    assert_eq!(wrong_old.code(), Code::InvalidArgument);

    client
        .change_password(bearer(
            ChangePasswordRequest {
                old_password: USER_PASSWORD.to_owned(),
                new_password: "Brand-new-password-1".to_owned(),
            },
            &here.access_token,
        ))
        .await
        .expect("changed");
    client
        .refresh_session(RefreshSessionRequest {
            refresh_token: here.refresh_token,
        })
        .await
        .expect("this session lives on");
    let other = client
        .refresh_session(RefreshSessionRequest {
            refresh_token: elsewhere.refresh_token,
        })
        .await
        .expect_err("the other session is revoked");
    assert_eq!(other.code(), Code::Unauthenticated);
    assert!(
        app.login("globex", "hank@globex.example.com", USER_PASSWORD)
            .await
            .is_err()
    );
    app.login("globex", "hank@globex.example.com", "Brand-new-password-1")
        .await
        .expect("the new password works");
}
