use std::time::Duration;

use erp_kit::error::reason;
use erp_proto::erp::auth::v1::{ChangePasswordRequest, CreateUserRequest};
use erp_testkit::wait::eventually;
use tonic::Code;

use crate::helpers::{ADMIN_PASSWORD, USER_PASSWORD, bearer, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_plans_user_limit_is_enforced() {
    let app = spawn_app().await;
    let tenant = app.tenant("small", 2).await;
    app.user(&tenant, "second@small.example.com", &["employee"])
        .await;
    let status = app
        .client()
        .await
        .create_user(bearer(
            CreateUserRequest {
                email: "third@small.example.com".to_owned(),
                password: USER_PASSWORD.to_owned(),
                ..Default::default()
            },
            &tenant.admin_token,
        ))
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        reason(&status).as_deref(),
        Some("ERP:AUTH:USER_LIMIT_REACHED")
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_account_until_the_lock_expires() {
    let app = spawn_app_with(|config| {
        config.auth.lockout.max_failures_per_account = 3;
        config.auth.lockout.lock_for = Duration::from_secs(2);
    })
    .await;
    let tenant = app.tenant("locky", 0).await;
    for _ in 0..3 {
        let wrong = app
            .login("locky", &tenant.admin_email, "wrong-password-123")
            .await
            .expect_err("wrong");
        assert_eq!(wrong.code(), Code::Unauthenticated);
    }
    let locked = app
        .login("locky", &tenant.admin_email, ADMIN_PASSWORD)
        .await
        .expect_err("locked");
    assert_eq!(
        locked.code(),
        Code::ResourceExhausted,
        "even the right password waits out the lock"
    );

    // An unknown account locks the same way: a lock tells nothing about existence.
    for _ in 0..3 {
        app.login("locky", "ghost@locky.example.com", "whatever-123456")
            .await
            .expect_err("unknown");
    }
    let ghost = app
        .login("locky", "ghost@locky.example.com", "whatever-123456")
        .await
        .expect_err("locked");
    assert_eq!(ghost.code(), Code::ResourceExhausted);

    eventually(Duration::from_secs(10), || async {
        app.login("locky", &tenant.admin_email, ADMIN_PASSWORD)
            .await
            .ok()
    })
    .await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let tenant = app.tenant("samey", 0).await;
    let unknown = app
        .login("samey", "nobody@samey.example.com", "some-password-1")
        .await
        .expect_err("unknown");
    let wrong = app
        .login("samey", &tenant.admin_email, "some-password-1")
        .await
        .expect_err("wrong");
    let no_tenant = app
        .login("no-such-tenant", &tenant.admin_email, ADMIN_PASSWORD)
        .await
        .expect_err("no tenant");
    for status in [&unknown, &wrong, &no_tenant] {
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), unknown.message());
    }
}

#[tokio::test]
async fn wrong_current_passwords_at_change_password_lock_like_failed_logins() {
    let app = spawn_app_with(|config| {
        config.auth.lockout.max_failures_per_account = 3;
    })
    .await;
    let tenant = app.tenant("guessy", 0).await;
    let mut client = app.client().await;
    let change = |old: &str| {
        bearer(
            ChangePasswordRequest {
                old_password: old.to_owned(),
                new_password: "Brand-new-password-1".to_owned(),
            },
            &tenant.admin_token,
        )
    };
    for guess in 0..3 {
        let wrong = client
            .change_password(change(&format!("guess-{guess}-123456")))
            .await
            .expect_err("a wrong current password");
        assert_eq!(wrong.code(), Code::InvalidArgument);
    }
    let locked = client
        .change_password(change(ADMIN_PASSWORD))
        .await
        .expect_err("the account is locked, whatever the guess");
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert_eq!(reason(&locked).as_deref(), Some("ERP:AUTH:LOCKED_OUT"));
    let login = app
        .login("guessy", &tenant.admin_email, ADMIN_PASSWORD)
        .await
        .expect_err("and logins wait too");
    assert_eq!(login.code(), Code::ResourceExhausted);
}
