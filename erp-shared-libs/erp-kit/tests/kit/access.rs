use erp_kit::{
    GrpcServerBuilder, ServerError,
    access::{
        AccessSetupError, REASON_MODULE_NOT_ENABLED, REASON_PERMISSION_MISSING,
        REASON_UNAUTHENTICATED,
    },
    error::reason,
};
use erp_proto::Contracts;
use erp_testkit::{
    TestKeys, forge,
    probe::{
        PROBE_DESCRIPTOR_SET, Probe,
        proto::{
            PingRequest, ReadPayrollRequest, WhoAmIRequest,
            probe_service_server::ProbeServiceServer,
        },
    },
};
use prost::Message;
use tonic::Code;

use crate::helpers::{bearer, probe_with, server_config};
use erp_testkit::probe::probe_client;

#[tokio::test]
async fn public_methods_answer_without_a_token() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let response = probe_client(&probe).await.ping(PingRequest {}).await;
    assert!(response.is_ok(), "{response:?}");
}

#[tokio::test]
async fn a_protected_method_without_a_token_is_unauthenticated() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let status = probe_client(&probe)
        .await
        .who_am_i(WhoAmIRequest {})
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status).as_deref(), Some(REASON_UNAUTHENTICATED));
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_as_its_auth_context() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let token = keys
        .token()
        .tenant("tenant-a")
        .user("user-1")
        .permissions(["x.y.z"]);
    let who = probe_client(&probe)
        .await
        .who_am_i(bearer(WhoAmIRequest {}, &token.sign()))
        .await
        .expect("accepted")
        .into_inner();
    assert_eq!(who.tenant_id, "tenant-a");
    assert_eq!(who.user_id, "user-1");
    assert_eq!(who.permissions, vec!["x.y.z".to_owned()]);
}

#[tokio::test]
async fn a_token_without_the_methods_permission_is_denied() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let token = keys.token().permissions(["hrm.employee.read"]).sign();
    let status = probe_client(&probe)
        .await
        .read_payroll(bearer(ReadPayrollRequest {}, &token))
        .await
        .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status).as_deref(), Some(REASON_PERMISSION_MISSING));
}

#[tokio::test]
async fn a_method_of_a_module_outside_the_plan_is_denied() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let token = keys
        .token()
        .permissions(["hrm.payroll.read"])
        .modules(["crm"])
        .sign();
    let status = probe_client(&probe)
        .await
        .read_payroll(bearer(ReadPayrollRequest {}, &token))
        .await
        .expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status).as_deref(), Some(REASON_MODULE_NOT_ENABLED));
}

#[tokio::test]
async fn the_permission_and_module_together_are_allowed() {
    let keys = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let token = keys
        .token()
        .tenant("t-9")
        .permissions(["hrm.payroll.read"])
        .modules(["hrm"])
        .sign();
    let answer = probe_client(&probe)
        .await
        .read_payroll(bearer(ReadPayrollRequest {}, &token))
        .await
        .expect("allowed");
    assert_eq!(answer.into_inner().tenant_id, "t-9");
}

#[tokio::test]
async fn every_kind_of_bad_token_is_unauthenticated() {
    let keys = TestKeys::generate();
    let strangers = TestKeys::generate();
    let probe = probe_with(&keys, server_config()).await;
    let good = keys.token().permissions(["hrm.payroll.read"]);
    let public_key_bytes = keys.jwk().x.into_bytes();
    let cases = [
        ("expired", keys.token().expires_in(-120).sign()),
        ("not yet valid", keys.token().not_before_in(600).sign()),
        ("wrong issuer", keys.token().issuer("someone-else").sign()),
        (
            "wrong audience",
            keys.token().audience("another-mesh").sign(),
        ),
        ("alg none", forge::unsigned(good.claims(), keys.kid())),
        (
            "HS256 with the public key",
            forge::hs256(good.claims(), keys.kid(), &public_key_bytes),
        ),
        (
            "tampered payload",
            forge::tamper(&good.sign(), |claims| {
                claims["tid"] = "another-tenant".into()
            }),
        ),
        ("unknown kid", strangers.token().sign()),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    let mut client = probe_client(&probe).await;
    for (case, token) in cases {
        let status = client
            .who_am_i(bearer(WhoAmIRequest {}, &token))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert_eq!(
            reason(&status).as_deref(),
            Some(REASON_UNAUTHENTICATED),
            "{case}"
        );
    }
}

/// A key source whose keys change while the server runs, like a JWKS after rotation.
#[derive(Default)]
struct RotatingSource(std::sync::Mutex<Vec<erp_kit::auth::Jwk>>);

#[async_trait::async_trait]
impl erp_kit::auth::KeySource for RotatingSource {
    async fn fetch(&self) -> Result<Vec<erp_kit::auth::Jwk>, erp_kit::auth::KeySourceError> {
        Ok(self.0.lock().expect("lock").clone())
    }
}

#[tokio::test]
async fn a_key_published_after_start_is_fetched_on_its_unknown_kid() {
    let first = TestKeys::generate();
    let second = TestKeys::generate();
    let source = std::sync::Arc::new(RotatingSource::default());
    source.0.lock().expect("lock").push(first.jwk());
    let config = erp_kit::config::AuthConfig {
        jwks_min_refresh_interval: std::time::Duration::ZERO,
        ..Default::default()
    };
    let verifier = std::sync::Arc::new(erp_kit::auth::TokenVerifier::new(&config, source.clone()));
    let probe = erp_testkit::probe::spawn_probe(server_config(), Some(verifier))
        .await
        .expect("starts");
    let mut client = probe_client(&probe).await;
    client
        .who_am_i(bearer(WhoAmIRequest {}, &first.token().sign()))
        .await
        .expect("the first key verifies");
    let before_rotation = client
        .who_am_i(bearer(WhoAmIRequest {}, &second.token().sign()))
        .await
        .expect_err("the second key is not published yet");
    assert_eq!(before_rotation.code(), Code::Unauthenticated);

    source.0.lock().expect("lock").push(second.jwk());
    client
        .who_am_i(bearer(WhoAmIRequest {}, &second.token().sign()))
        .await
        .expect("the rotated-in key is fetched and verifies");
}

#[tokio::test]
async fn a_service_with_a_method_lacking_an_access_rule_is_refused_at_startup() {
    // Re-encoding through prost_types drops every custom option: no method has a rule.
    let stripped = prost_types::FileDescriptorSet::decode(PROBE_DESCRIPTOR_SET)
        .expect("decodes")
        .encode_to_vec();
    let contracts: &'static Contracts = Box::leak(Box::new(
        Contracts::decode(&stripped).expect("still a descriptor set"),
    ));
    let result = GrpcServerBuilder::new(server_config())
        .with_contracts(contracts, Box::leak(stripped.into_boxed_slice()))
        .add_service(ProbeServiceServer::new(Probe::default()))
        .bind()
        .await;
    assert!(
        matches!(
            result,
            Err(ServerError::Access(AccessSetupError::MissingRule(_)))
        ),
        "{:?}",
        result.err()
    );
}

#[tokio::test]
async fn a_service_outside_the_contracts_is_refused_at_startup() {
    let result = GrpcServerBuilder::new(server_config())
        .add_service(ProbeServiceServer::new(Probe::default()))
        .bind()
        .await;
    assert!(
        matches!(
            result,
            Err(ServerError::Access(AccessSetupError::UnknownService(_)))
        ),
        "{:?}",
        result.err()
    );
}

#[tokio::test]
async fn protected_methods_without_a_verifier_are_refused_at_startup() {
    let result = erp_testkit::probe::spawn_probe(server_config(), None).await;
    assert!(
        matches!(
            result,
            Err(ServerError::Access(AccessSetupError::NoVerifier(_)))
        ),
        "{:?}",
        result.err()
    );
}
