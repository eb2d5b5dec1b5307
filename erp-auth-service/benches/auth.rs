//! erp-auth-service figures: start-to-SERVING time, idle RSS, login throughput and latency
//! at the configured argon2id parameters, and ValidateToken throughput. Runs the release
//! binary as a process against PostgreSQL (ERP_TEST_DATABASE_URL).
//!
//! `cargo bench -p erp-auth-service --bench auth` — prints figures, asserts nothing.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use erp_proto::erp::{
    auth::v1::{
        CreateTenantRequest, IssueOperatorTokenRequest, LoginRequest, Plan, ValidateTokenRequest,
        auth_service_client::AuthServiceClient,
    },
    common::v1::Module,
};
use erp_testkit::TestDatabase;
use tokio::sync::Semaphore;
use tonic::{Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

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

    let (first, first_start) = start(&database).await;
    println!(
        "start to SERVING, fresh database (migrations): {:>6.0} ms",
        ms(first_start)
    );
    stop(first);
    let (process, start_time) = start(&database).await;
    println!(
        "start to SERVING, migrated database:           {:>6.0} ms",
        ms(start_time)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "idle RSS:                                      {:>6.1} MiB",
        rss_mib(process.0.id())
    );

    let channel = Channel::from_shared(format!("http://127.0.0.1:{}", process.1))
        .expect("url")
        .connect()
        .await
        .expect("connects");
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
    stop(process);
}

struct Running(Child, u16);

async fn start(database: &TestDatabase) -> (Running, Duration) {
    let port = free_port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_erp-auth-service"))
        .env("ERP_DATABASE__URL", database.url())
        .env("ERP_SERVER__GRPC_PORT", port.to_string())
        .env("ERP_SERVER__ADMIN_PORT", free_port().to_string())
        .env("ERP_EVENTS__ENABLED", "false")
        .env("ERP_AUTH__BOOTSTRAP_SECRET", SECRET)
        .env("ERP_TELEMETRY__LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the release binary starts");
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("url")
            .connect()
            .await
        {
            let status = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|response| response.into_inner().status());
            if status.ok() == Some(ServingStatus::Serving) {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the service did not become SERVING"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (Running(child, port), started.elapsed())
}

fn stop(mut running: Running) {
    let _ = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status();
    let _ = running.0.wait();
}

async fn measure<F, Fut>(count: usize, concurrency: usize, call: F) -> (f64, Duration, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: Future + Send + 'static,
{
    let limiter = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for index in 0..count {
        let permit = limiter.clone().acquire_owned().await.expect("semaphore");
        let call = call(index);
        tasks.push(tokio::spawn(async move {
            let begun = Instant::now();
            call.await;
            drop(permit);
            begun.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.push(task.await.expect("call"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (count as f64 / elapsed.as_secs_f64(), at(0.5), at(0.99))
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
