//! erp-hrm-service figures: start-to-SERVING time, idle RSS, and GetEmployee and
//! ListEmployees throughput and latency with JWT verification and tenant scoping on,
//! compared in the same run with `pgbench -S` (a primary-key read) on the same
//! PostgreSQL server. HRM runs as its release binary; the auth service runs in this
//! process only to issue the token and serve the JWKS.
//!
//! `cargo bench -p erp-hrm-service --bench hrm` — prints figures, asserts nothing.

use std::{
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use erp_proto::erp::{
    auth::v1::{
        CreateTenantRequest, IssueOperatorTokenRequest, LoginRequest, Plan,
        auth_service_client::AuthServiceClient,
    },
    common::v1::{Module, PageRequest},
    hrm::v1::{GetEmployeeRequest, ListEmployeesRequest, hrm_service_client::HrmServiceClient},
};
use erp_testkit::{
    TestDatabase,
    bench::{
        CpuBudget, CpuMeter, ServiceProcess, bearer, cores, hire_employees, measure, micros, ms,
    },
};
use tonic::transport::Channel;

const EMPLOYEES: usize = 1_000;
const CONCURRENCY: usize = 16;
const GETS: usize = 20_000;
const LISTS: usize = 2_000;
const SECRET: &str = "bench-secret";
const PASSWORD: &str = "Bench-password-2026";

#[tokio::main]
async fn main() {
    println!(
        "erp-hrm-service benchmark (release build, PostgreSQL, 2 cores, concurrency {CONCURRENCY})"
    );
    let (auth_addr, token) = start_auth().await;
    let database = TestDatabase::postgres().await;
    let process = ServiceProcess::start(
        env!("CARGO_BIN_EXE_erp-hrm-service"),
        &[
            ("ERP_DATABASE__URL", database.url().to_owned()),
            // Two connections per core: 16 cost ~20% more service CPU per call here (more
            // PostgreSQL backends waking and sleeping), 2 left the database idle at times.
            ("ERP_DATABASE__MAX_CONNECTIONS", "4".to_owned()),
            ("ERP_EVENTS__ENABLED", "false".to_owned()),
            ("ERP_AUTH__JWKS_URL", format!("http://{auth_addr}")),
            ("ERP_UPSTREAMS__AUTH", format!("http://{auth_addr}")),
        ],
    )
    .await;
    println!(
        "start to SERVING (fresh database, migrations):  {:>7.0} ms",
        ms(process.start_to_serving)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "idle RSS:                                        {:>7.1} MiB",
        process.rss_mib()
    );

    let channel = process.channel().await;
    let hrm = HrmServiceClient::new(channel);
    let ids = hire_employees(hrm.clone(), &token, EMPLOYEES).await;
    let ids = Arc::new(ids);

    let get = {
        let (hrm, token, ids) = (hrm.clone(), token.clone(), ids.clone());
        move |index: usize| {
            let (mut hrm, token, id) = (hrm.clone(), token.clone(), ids[index % ids.len()].clone());
            async move {
                hrm.get_employee(bearer(GetEmployeeRequest { id }, &token))
                    .await
                    .expect("get");
            }
        }
    };
    measure(CONCURRENCY, 2_000, get.clone()).await;
    let meter = CpuMeter::start(Some(process.child.id()));
    let (get_rps, get_p50, get_p99) = measure(CONCURRENCY, GETS, get).await;
    let get_budget = meter.stop().per_call(GETS);
    let list = {
        let (hrm, token) = (hrm.clone(), token.clone());
        move |_| {
            let (mut hrm, token) = (hrm.clone(), token.clone());
            async move {
                let page = Some(PageRequest {
                    page_size: 50,
                    page_token: String::new(),
                });
                hrm.list_employees(bearer(
                    ListEmployeesRequest {
                        page,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("list");
            }
        }
    };
    let meter = CpuMeter::start(Some(process.child.id()));
    let (list_rps, list_p50, list_p99) = measure(CONCURRENCY, LISTS, list).await;
    let list_budget = meter.stop().per_call(LISTS);
    println!(
        "GetEmployee:   {get_rps:>8.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, HRM CPU {:.0} µs per call",
        ms(get_p50),
        ms(get_p99),
        micros(get_budget.service)
    );
    println!(
        "ListEmployees: {list_rps:>8.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, HRM CPU {:.0} µs per call (pages of 50)",
        ms(list_p50),
        ms(list_p99),
        micros(list_budget.service)
    );
    process.stop();

    println!("GetEmployee, machine CPU per call: {get_budget} (service = HRM)");
    match pgbench_select_tps() {
        Some((tps, budget)) => {
            println!(
                "pgbench -S -c {CONCURRENCY} -j 2 -T 10 (same server): {tps:>8.0} tps; GetEmployee reaches {:.2}x of it",
                get_rps / tps
            );
            // With every core busy, throughput is the cores' time over the machine CPU
            // one call costs: this is what a call may cost for 0.6x of pgbench.
            let allowed = Duration::from_secs_f64(cores() / (0.6 * tps));
            println!(
                "pgbench, machine CPU per transaction: {:.0} µs (cores {:.0}% busy); 0.6x of its rate leaves a GetEmployee call {:.0} µs of machine CPU, it now takes {:.0}",
                micros(budget.total()),
                budget.busy() * 100.0,
                micros(allowed),
                micros(get_budget.total())
            );
        }
        None => println!("pgbench not found or failed; no baseline"),
    }
}

async fn start_auth() -> (std::net::SocketAddr, String) {
    let database = Box::leak(Box::new(TestDatabase::postgres().await));
    let mut config = erp_auth_service::config::Config::default();
    config.server.grpc_port = 0;
    config.server.admin_port = 0;
    config.database = database.config();
    config.events.enabled = false;
    config.auth.bootstrap_secret = SECRET.to_owned().into();
    let application = erp_auth_service::Application::build(config)
        .await
        .expect("auth");
    let addr = application.local_addr();
    tokio::spawn(application.run_until_stopped());
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut auth = AuthServiceClient::new(channel);
    let operator = auth
        .issue_operator_token(IssueOperatorTokenRequest {
            bootstrap_secret: SECRET.to_owned(),
        })
        .await
        .expect("operator")
        .into_inner()
        .access_token;
    auth.create_tenant(bearer(
        CreateTenantRequest {
            slug: "bench".into(),
            display_name: "Bench".into(),
            plan: Some(Plan {
                name: "bench".into(),
                enabled_modules: vec![Module::Hrm as i32],
                max_users: 0,
            }),
            admin_email: "admin@bench.example.com".into(),
            admin_password: PASSWORD.into(),
            admin_display_name: String::new(),
        },
        &operator,
    ))
    .await
    .expect("tenant");
    let token = auth
        .login(LoginRequest {
            tenant_slug: "bench".into(),
            email: "admin@bench.example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    (addr, token)
}

/// `pgbench -S` TPS on a scratch database of the same server (scale 1), and the machine
/// CPU per transaction (pgbench's backends start and end within the run: they count as
/// `other`).
fn pgbench_select_tps() -> Option<(f64, CpuBudget)> {
    let url = std::env::var("ERP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    let scratch = format!("{base}/postgres");
    let admin = |sql: &str| {
        Command::new("psql")
            .args([scratch.as_str(), "-qc", sql])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
    };
    admin("DROP DATABASE IF EXISTS erp_bench_pgbench");
    admin("CREATE DATABASE erp_bench_pgbench")?;
    let target = format!("{base}/erp_bench_pgbench");
    Command::new("pgbench")
        .args(["-i", "-s", "1", "-q", target.as_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let meter = CpuMeter::start(None);
    let output = Command::new("pgbench")
        .args([
            "-S",
            "-c",
            &CONCURRENCY.to_string(),
            "-j",
            "2",
            "-T",
            "10",
            target.as_str(),
        ])
        .output()
        .ok()?;
    let budget = meter.stop();
    admin("DROP DATABASE IF EXISTS erp_bench_pgbench");
    let report = String::from_utf8_lossy(&output.stdout);
    let figure = |prefix: &str, index: usize| {
        report
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.split_whitespace().nth(index))
            .and_then(|figure| figure.parse::<f64>().ok())
    };
    let tps = figure("tps =", 2)?;
    let transactions = figure("number of transactions actually processed:", 5)?;
    Some((tps, budget.per_call(transactions as usize)))
}
