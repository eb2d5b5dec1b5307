use chrono::Utc;
use erp_auth_service::app::{EXPIRED_KEPT_FOR, Purged};
use erp_kit::auth::Claims;
use erp_proto::erp::auth::v1::{
    DisableUserRequest, GetJwksRequest, IssueOperatorTokenRequest, ListUsersRequest,
    RefreshSessionRequest, RotateSigningKeyRequest, ValidateTokenRequest,
};
use erp_testkit::{TestKeys, forge};
use tonic::Code;

use crate::helpers::{USER_PASSWORD, bearer, claims_of, spawn_app, spawn_app_with};

fn claims_from(token: &str) -> Claims {
    serde_json::from_value(claims_of(token)).expect("claims")
}

#[tokio::test]
async fn every_kind_of_bad_token_is_refused_at_a_protected_rpc() {
    let app = spawn_app().await;
    let tenant = app.tenant("initech", 0).await;
    let good = claims_from(&tenant.admin_token);
    let now = Utc::now().timestamp();
    let sign = |claims: Claims| {
        let auth = app.auth.clone();
        async move { auth.keyring().sign(&claims).await.expect("signed") }
    };
    let kid = {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(tenant.admin_token.split('.').next().expect("header"))
                .expect("b64"),
        )
        .expect("json");
        header["kid"].as_str().expect("kid").to_owned()
    };
    let jwks = app
        .client()
        .await
        .get_jwks(GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    let public_key = jwks.keys[0].x.clone().into_bytes();

    let cases = vec![
        (
            "expired",
            sign(Claims {
                exp: now - 120,
                nbf: now - 1000,
                iat: now - 1000,
                ..good.clone()
            })
            .await,
        ),
        (
            "not yet valid",
            sign(Claims {
                nbf: now + 600,
                ..good.clone()
            })
            .await,
        ),
        (
            "wrong issuer",
            sign(Claims {
                iss: "someone-else".to_owned(),
                ..good.clone()
            })
            .await,
        ),
        (
            "wrong audience",
            sign(Claims {
                aud: "another-mesh".to_owned(),
                ..good.clone()
            })
            .await,
        ),
        ("alg none", forge::unsigned(&good, &kid)),
        (
            "HS256 with the public key bytes",
            forge::hs256(&good, &kid, &public_key),
        ),
        (
            "unknown kid",
            TestKeys::generate()
                .token()
                .tenant(&tenant.id)
                .permissions(good.perms.clone())
                .sign(),
        ),
        (
            "tampered payload",
            forge::tamper(&tenant.admin_token, |claims| {
                claims["perms"] = serde_json::json!(["platform.tenant.write"])
            }),
        ),
    ];
    let mut client = app.client().await;
    for (case, token) in cases {
        let status = client
            .list_users(bearer(ListUsersRequest::default(), &token))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
    }
    client
        .list_users(bearer(ListUsersRequest::default(), &tenant.admin_token))
        .await
        .expect("the genuine token still works");
}

#[tokio::test]
async fn a_disabled_user_cannot_refresh_or_log_in() {
    let app = spawn_app().await;
    let tenant = app.tenant("umbrella", 0).await;
    let user_id = app
        .user(&tenant, "alice@umbrella.example.com", &["employee"])
        .await;
    let tokens = app
        .login("umbrella", "alice@umbrella.example.com", USER_PASSWORD)
        .await
        .expect("login")
        .tokens
        .expect("tokens");
    let mut client = app.client().await;
    client
        .disable_user(bearer(
            DisableUserRequest {
                user_id,
                reason: "left".to_owned(),
            },
            &tenant.admin_token,
        ))
        .await
        .expect("disabled");
    let refresh = client
        .refresh_session(RefreshSessionRequest {
            refresh_token: tokens.refresh_token,
        })
        .await
        .expect_err("sessions were revoked");
    assert_eq!(refresh.code(), Code::Unauthenticated);
    let login = app
        .login("umbrella", "alice@umbrella.example.com", USER_PASSWORD)
        .await
        .expect_err("disabled");
    assert_eq!(login.code(), Code::Unauthenticated);
    let validity = client
        .validate_token(ValidateTokenRequest {
            access_token: tokens.access_token,
        })
        .await
        .expect("answers")
        .into_inner();
    assert!(!validity.valid);
}

#[tokio::test]
async fn a_rotated_key_is_published_beside_the_previous_one_and_both_verify() {
    let app = spawn_app().await;
    let tenant = app.tenant("hooli", 0).await;
    let operator = app.operator_token().await;
    let mut client = app.client().await;
    let before = client
        .get_jwks(GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner()
        .keys;
    assert_eq!(before.len(), 1);
    assert_eq!(
        (
            before[0].kty.as_str(),
            before[0].crv.as_str(),
            before[0].alg.as_str()
        ),
        ("OKP", "Ed25519", "EdDSA")
    );

    let rotated = client
        .rotate_signing_key(bearer(RotateSigningKeyRequest {}, &operator))
        .await
        .expect("rotated")
        .into_inner();
    let after = client
        .get_jwks(GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner()
        .keys;
    assert_eq!(after.len(), 2, "current and previous");
    assert_eq!(after[0].kid, rotated.kid, "the current key first");
    assert_eq!(after[1].kid, before[0].kid);

    // A token of the old key still verifies; new logins use the new key.
    client
        .list_users(bearer(ListUsersRequest::default(), &tenant.admin_token))
        .await
        .expect("old-key token verifies");
    let fresh = app
        .login("hooli", &tenant.admin_email, crate::helpers::ADMIN_PASSWORD)
        .await
        .expect("login");
    let token = fresh.tokens.expect("tokens").access_token;
    client
        .list_users(bearer(ListUsersRequest::default(), &token))
        .await
        .expect("new-key token verifies");
    let denied = client
        .rotate_signing_key(bearer(RotateSigningKeyRequest {}, &token))
        .await
        .expect_err("tenant admins cannot rotate platform keys");
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn the_operator_token_needs_the_bootstrap_secret() {
    let app = spawn_app().await;
    let status = app
        .client()
        .await
        .issue_operator_token(IssueOperatorTokenRequest {
            bootstrap_secret: "guess".to_owned(),
        })
        .await
        .expect_err("wrong secret");
    assert_eq!(status.code(), Code::Unauthenticated);
    let token = app.operator_token().await;
    let claims = claims_of(&token);
    assert_eq!(claims["sub"], "platform-operator");
    assert!(
        claims["perms"]
            .as_array()
            .expect("perms")
            .iter()
            .any(|p| p == "platform.tenant.write")
    );
}

#[tokio::test]
async fn validate_token_answers_for_callers_that_cannot_verify() {
    let app = spawn_app().await;
    let tenant = app.tenant("massive", 0).await;
    let mut client = app.client().await;
    let valid = client
        .validate_token(ValidateTokenRequest {
            access_token: tenant.admin_token.clone(),
        })
        .await
        .expect("answers")
        .into_inner();
    assert!(valid.valid);
    let claims = valid.claims.expect("claims");
    assert_eq!(claims.tenant_id, tenant.id);
    assert!(claims.permissions.iter().any(|p| p == "hrm.employee.write"));
    let invalid = client
        .validate_token(ValidateTokenRequest {
            access_token: "x.y.z".to_owned(),
        })
        .await
        .expect("answers")
        .into_inner();
    assert!(!invalid.valid);
    assert!(!invalid.invalid_reason.is_empty());
}

#[tokio::test]
async fn expired_refresh_tokens_their_sessions_and_stale_login_counters_are_purged() {
    let app = spawn_app().await;
    let tenant = app.tenant("purge", 0).await;
    app.user(&tenant, "carol@purge.example.com", &["employee"])
        .await;
    let wrong = app
        .login("purge", "carol@purge.example.com", "not-her-password")
        .await
        .expect_err("wrong password");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let tokens = app
        .login("purge", "carol@purge.example.com", USER_PASSWORD)
        .await
        .expect("login")
        .tokens
        .expect("tokens");
    let mut client = app.client().await;
    let rotated = client
        .refresh_session(RefreshSessionRequest {
            refresh_token: tokens.refresh_token,
        })
        .await
        .expect("refreshed")
        .into_inner()
        .tokens
        .expect("tokens");

    // Now, and until a day after the refresh tokens expire, nothing matters less than
    // before: only the login counters, whose 15-minute window ended, may go.
    let now = Utc::now();
    assert_eq!(
        app.auth.purge_expired(now).await.expect("purged"),
        Purged::default()
    );
    let ttl = chrono::Duration::days(30);
    let before_due = app
        .auth
        .purge_expired(now + ttl + EXPIRED_KEPT_FOR - chrono::Duration::hours(1))
        .await
        .expect("purged");
    assert_eq!((before_due.refresh_tokens, before_due.sessions), (0, 0));
    assert!(before_due.login_attempts >= 1, "{before_due:?}");
    client
        .refresh_session(RefreshSessionRequest {
            refresh_token: rotated.refresh_token.clone(),
        })
        .await
        .expect("the live token survived");

    let due = app
        .auth
        .purge_expired(now + ttl + EXPIRED_KEPT_FOR + chrono::Duration::hours(1))
        .await
        .expect("purged");
    // The admin's session and Carol's (whose three tokens: the first, the rotated, the
    // one just issued).
    assert!(due.refresh_tokens >= 4, "{due:?}");
    assert!(due.sessions >= 2, "{due:?}");
    let validity = client
        .validate_token(ValidateTokenRequest {
            access_token: rotated.access_token,
        })
        .await
        .expect("answers")
        .into_inner();
    assert!(!validity.valid, "a purged session's token is not valid");
}

#[tokio::test]
async fn a_session_ends_at_its_maximum_lifetime_however_often_it_is_refreshed() {
    let app = spawn_app_with(|config| {
        config.auth.session_max_lifetime = std::time::Duration::from_secs(3600);
    })
    .await;
    let tenant = app.tenant("lifetime", 0).await;
    app.user(&tenant, "dave@lifetime.example.com", &["employee"])
        .await;
    let logged_in_at = Utc::now();
    let tokens = app
        .login("lifetime", "dave@lifetime.example.com", USER_PASSWORD)
        .await
        .expect("login")
        .tokens
        .expect("tokens");
    let ends_at = |tokens: &erp_proto::erp::auth::v1::TokenPair| {
        tokens
            .refresh_token_expire_time
            .as_ref()
            .expect("expiry")
            .seconds
    };
    assert!(
        ends_at(&tokens) <= logged_in_at.timestamp() + 3601,
        "the refresh token (30 days) does not outlive the session (an hour)"
    );
    let mut client = app.client().await;
    let refreshed = client
        .refresh_session(RefreshSessionRequest {
            refresh_token: tokens.refresh_token.clone(),
        })
        .await
        .expect("refreshed within the lifetime")
        .into_inner()
        .tokens
        .expect("tokens");
    assert_eq!(
        ends_at(&refreshed),
        ends_at(&tokens),
        "a refresh does not extend the session"
    );
}

#[tokio::test]
async fn a_shorter_maximum_lifetime_ends_sessions_that_began_before_it() {
    let app = spawn_app().await;
    let tenant = app.tenant("shorter", 0).await;
    app.user(&tenant, "erin@shorter.example.com", &["employee"])
        .await;
    let tokens = app
        .login("shorter", "erin@shorter.example.com", USER_PASSWORD)
        .await
        .expect("login")
        .tokens
        .expect("tokens");
    // The operator lowers the lifetime (to nothing, so no clock need pass): the token,
    // issued for 30 days, is still unexpired but its session is now too old.
    let lowered = app
        .replica(|config| {
            config.auth.session_max_lifetime = std::time::Duration::ZERO;
        })
        .await;
    let ended = lowered
        .client()
        .await
        .refresh_session(RefreshSessionRequest {
            refresh_token: tokens.refresh_token.clone(),
        })
        .await
        .expect_err("the session outlived the lowered lifetime");
    assert_eq!(ended.code(), Code::Unauthenticated);
    assert!(
        ended.message().contains("maximum lifetime"),
        "{}",
        ended.message()
    );
    app.client()
        .await
        .refresh_session(RefreshSessionRequest {
            refresh_token: tokens.refresh_token,
        })
        .await
        .expect("the refusal left the token as it was (the other replica still takes it)");
}

#[tokio::test]
async fn guesses_at_the_bootstrap_secret_lock_it_like_failed_logins() {
    let app = spawn_app().await;
    let mut client = app.client().await;
    let guess = |secret: &str| IssueOperatorTokenRequest {
        bootstrap_secret: secret.to_owned(),
    };
    // A success clears the count: four wrong, one right, then five wrong are allowed.
    for _ in 0..4 {
        let status = client
            .issue_operator_token(guess("guess"))
            .await
            .expect_err("wrong secret");
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    app.operator_token().await;
    for _ in 0..5 {
        let status = client
            .issue_operator_token(guess("guess"))
            .await
            .expect_err("wrong secret");
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let locked = client
        .issue_operator_token(guess(crate::helpers::BOOTSTRAP_SECRET))
        .await
        .expect_err("locked, even with the right secret");
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert_eq!(
        erp_kit::error::reason(&locked).as_deref(),
        Some("ERP:AUTH:LOCKED_OUT")
    );
}
