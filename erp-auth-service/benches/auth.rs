//! erp-auth-service figures: start-to-SERVING time, idle RSS, login throughput and latency
//! at the configured argon2id parameters, and ValidateToken throughput. Runs the release
//! binary as a process against PostgreSQL (ERP_TEST_DATABASE_URL).
//!
//! `cargo bench -p erp-auth-service --bench auth` — prints figures, asserts nothing.

use std::time::Duration;

use erp_proto::erp::{
    auth::v1::{
        CreateTenantRequest, IssueOperatorTokenRequest, LoginRequest, Plan, ValidateTokenRequest,
        auth_service_client::AuthServiceClient,
    },
    common::v1::Module,
};
use erp_testkit::{
    TestDatabase,
    bench::{ServiceProcess, measure, ms},
};
use tonic::Request;

const SECRET: &str = "bench-bootstrap-secret";
const PASSWORD: &str = "Bench-password-2026";
const LOGINS: usize = 200;
const LOGIN_CONCURRENCY: usize = 4;
const VALIDATIONS: usize = 5_000;
const VALIDATION_CONCURRENCY: usize = 16;

#[tokio::main]
async fn main() {
    let database = TestDatabase::postgres().await;
    println!("erp-auth-service benchmark (release build, PostgreSQL, 2 cores)");

    let env = |database: &TestDatabase| {
        vec![
            ("ERP_DATABASE__URL", database.url().to_owned()),
            ("ERP_EVENTS__ENABLED", "false".to_owned()),
            ("ERP_AUTH__BOOTSTRAP_SECRET", SECRET.to_owned()),
        ]
    };
    let binary = env!("CARGO_BIN_EXE_erp-auth-service");
    let first = ServiceProcess::start(binary, &env(&database)).await;
    let first_start = first.start_to_serving;
    println!(
        "start to SERVING, fresh database (migrations): {:>6.0} ms",
        ms(first_start)
    );
    first.stop();
    let process = ServiceProcess::start(binary, &env(&database)).await;
    let start_time = process.start_to_serving;
    println!(
        "start to SERVING, migrated database:           {:>6.0} ms",
        ms(start_time)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "idle RSS:                                      {:>6.1} MiB",
        process.rss_mib()
    );

    let channel = process.channel().await;
    let mut client = AuthServiceClient::new(channel.clone());
    let operator = client
        .issue_operator_token(IssueOperatorTokenRequest {
            bootstrap_secret: SECRET.to_owned(),
        })
        .await
        .expect("operator")
        .into_inner()
        .access_token;
    let mut create = Request::new(CreateTenantRequest {
        slug: "bench".to_owned(),
        display_name: "Bench".to_owned(),
        plan: Some(Plan {
            name: "bench".to_owned(),
            enabled_modules: vec![Module::Hrm as i32],
            max_users: 0,
        }),
        admin_email: "admin@bench.example.com".to_owned(),
        admin_password: PASSWORD.to_owned(),
        admin_display_name: String::new(),
    });
    create.metadata_mut().insert(
        "authorization",
        format!("Bearer {operator}").parse().expect("header"),
    );
    client.create_tenant(create).await.expect("tenant");

    let login = || {
        let mut client = client.clone();
        async move {
            client
                .login(LoginRequest {
                    tenant_slug: "bench".to_owned(),
                    email: "admin@bench.example.com".to_owned(),
                    password: PASSWORD.to_owned(),
                })
                .await
                .expect("login")
                .into_inner()
        }
    };
    let token = login().await.tokens.expect("tokens").access_token;
    let (rate, p50, p99) = measure(LOGINS, LOGIN_CONCURRENCY, move |_| login()).await;
    println!(
        "Login (argon2id m=19456 KiB, t=2, p=1), concurrency {LOGIN_CONCURRENCY}: {rate:>6.0} logins/s, p50 {:.1} ms, p99 {:.1} ms",
        ms(p50),
        ms(p99)
    );
    let validate = move |_| {
        let mut client = client.clone();
        let token = token.clone();
        async move {
            assert!(
                client
                    .validate_token(ValidateTokenRequest {
                        access_token: token
                    })
                    .await
                    .expect("validate")
                    .into_inner()
                    .valid
            );
        }
    };
    let (rate, p50, p99) = measure(VALIDATIONS, VALIDATION_CONCURRENCY, validate).await;
    println!(
        "ValidateToken, concurrency {VALIDATION_CONCURRENCY}: {rate:>8.0} calls/s, p50 {:.2} ms, p99 {:.2} ms",
        ms(p50),
        ms(p99)
    );
    process.stop();
}
