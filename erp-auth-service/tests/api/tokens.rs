use chrono::Utc;
use erp_kit::auth::Claims;
use erp_proto::erp::auth::v1::{
    DisableUserRequest, GetJwksRequest, IssueOperatorTokenRequest, ListUsersRequest,
    RefreshSessionRequest, RotateSigningKeyRequest, ValidateTokenRequest,
};
use erp_testkit::{TestKeys, forge};
use tonic::Code;

use crate::helpers::{USER_PASSWORD, bearer, claims_of, spawn_app};

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
