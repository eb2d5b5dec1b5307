//! erp-api-gateway figures: `GetEmployee` called directly over gRPC, over HTTP/JSON
//! through the gateway, and over gRPC passed through the gateway — same run, same
//! concurrency, same employees — with the throughput ratio and the p50 the gateway adds.
//! The gateway runs as its release binary; auth and HRM run in this process on PostgreSQL.
//!
//! `cargo bench -p erp-api-gateway --bench gateway` — prints figures, asserts nothing.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use erp_proto::erp::hrm::v1::{GetEmployeeRequest, hrm_service_client::HrmServiceClient};
use erp_testkit::{
    TestDatabase,
    bench::{CpuBudget, CpuMeter, bearer, free_port, hire_employees, measure, micros, ms},
};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, body::Bytes};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};
use tonic::transport::Channel;

// Auth and HRM run in this process: with the allocator their binaries use.
#[global_allocator]
static ALLOCATOR: erp_kit::allocator::ServiceAllocator = erp_kit::allocator::ServiceAllocator;

const EMPLOYEES: usize = 200;
const CONCURRENCY: usize = 16;
const CALLS: usize = 20_000;
const WARM_UP: usize = 2_000;
const SERIAL_CALLS: usize = 3_000;
const WORKER_THREADS: &str = "1";
const ROUNDS: usize = 4;

/// The mean throughput, p50 and p99 of several measurements.
fn mean(runs: &[(f64, Duration, Duration)]) -> (f64, Duration, Duration) {
    let count = u32::try_from(runs.len()).unwrap_or(1).max(1);
    let rps = runs.iter().map(|run| run.0).sum::<f64>() / f64::from(count);
    let p50 = runs.iter().map(|run| run.1).sum::<Duration>() / count;
    let p99 = runs.iter().map(|run| run.2).sum::<Duration>() / count;
    (rps, p50, p99)
}
const SECRET: &str = "bench-secret";
const PASSWORD: &str = "Bench-password-2026";

#[tokio::main]
async fn main() {
    println!(
        "erp-api-gateway benchmark (release build, PostgreSQL, 2 cores, concurrency {CONCURRENCY}, {CALLS} calls per path, gateway worker threads {WORKER_THREADS})"
    );
    let auth_database = TestDatabase::postgres().await;
    let mut auth_config = erp_auth_service::config::Config::default();
    auth_config.server.grpc_port = 0;
    auth_config.server.admin_port = 0;
    auth_config.database = auth_database.config();
    auth_config.events.enabled = false;
    auth_config.auth.bootstrap_secret = SECRET.to_owned().into();
    let auth = erp_auth_service::Application::build(auth_config)
        .await
        .expect("auth starts");
    let auth_addr = auth.local_addr();
    tokio::spawn(auth.run_until_stopped());

    let hrm_database = TestDatabase::postgres().await;
    let mut hrm_config = erp_hrm_service::config::Config::default();
    hrm_config.server.grpc_port = 0;
    hrm_config.server.admin_port = 0;
    hrm_config.database = hrm_database.config();
    hrm_config.database.max_connections = 16;
    hrm_config.events.enabled = false;
    hrm_config.upstreams.auth = format!("http://{auth_addr}");
    hrm_config.auth.jwks_url = format!("http://{auth_addr}");
    let hrm = erp_hrm_service::Application::build(hrm_config)
        .await
        .expect("hrm starts");
    let hrm_addr = hrm.local_addr();
    tokio::spawn(hrm.run_until_stopped());

    let gateway = Gateway::start(
        &format!("http://{auth_addr}"),
        &format!("http://{hrm_addr}"),
    )
    .await;
    println!(
        "gateway start to healthy:  {:>7.0} ms; idle RSS {:.1} MiB",
        ms(gateway.start_to_healthy),
        gateway.rss_mib()
    );
    let http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONCURRENCY)
        .build_http::<Full<Bytes>>();
    let base = format!("http://127.0.0.1:{}", gateway.port);
    let token = tenant_admin_token(&http, &base).await;

    let direct = HrmServiceClient::new(connect(&format!("http://{hrm_addr}")).await);
    let ids = Arc::new(hire_employees(direct.clone(), &token, EMPLOYEES).await);

    let grpc_get = |client: HrmServiceClient<Channel>| {
        let (token, ids) = (token.clone(), ids.clone());
        move |index: usize| {
            let (mut client, token, id) = (
                client.clone(),
                token.clone(),
                ids[index % ids.len()].clone(),
            );
            async move {
                client
                    .get_employee(bearer(GetEmployeeRequest { id }, &token))
                    .await
                    .expect("get");
            }
        }
    };
    let http_get = {
        let (http, base, token, ids) = (http.clone(), base.clone(), token.clone(), ids.clone());
        move |index: usize| {
            let request = Request::get(format!("{base}/v1/employees/{}", ids[index % ids.len()]))
                .header("authorization", format!("Bearer {token}"))
                .body(Full::new(Bytes::new()))
                .expect("request");
            let http = http.clone();
            async move {
                let response = http.request(request).await.expect("answer");
                assert_eq!(response.status(), StatusCode::OK);
                response.into_body().collect().await.expect("body");
            }
        }
    };
    let passthrough = HrmServiceClient::new(connect(&base).await);

    let direct_call = grpc_get(direct);
    let passthrough_call = grpc_get(passthrough);
    measure(CONCURRENCY, WARM_UP, direct_call.clone()).await;
    measure(CONCURRENCY, WARM_UP, http_get.clone()).await;
    measure(CONCURRENCY, WARM_UP, passthrough_call.clone()).await;
    // Saturated: every core busy (client, services, PostgreSQL and the gateway share two).
    // The three paths take turns, several rounds, so a slow moment of the machine does
    // not land on one path only; figures are the rounds' means.
    let mut rounds = [Vec::new(), Vec::new(), Vec::new()];
    // Where the machine's CPU goes on each path; the gateway's own share is a figure the
    // machine's other load barely moves.
    let mut budgets = [CpuBudget::default(); 3];
    for _ in 0..ROUNDS {
        let meter = CpuMeter::start(Some(gateway.child.id()));
        rounds[0].push(measure(CONCURRENCY, CALLS / ROUNDS, direct_call.clone()).await);
        budgets[0] = budgets[0] + meter.stop();
        let meter = CpuMeter::start(Some(gateway.child.id()));
        rounds[1].push(measure(CONCURRENCY, CALLS / ROUNDS, http_get.clone()).await);
        budgets[1] = budgets[1] + meter.stop();
        let meter = CpuMeter::start(Some(gateway.child.id()));
        rounds[2].push(measure(CONCURRENCY, CALLS / ROUNDS, passthrough_call.clone()).await);
        budgets[2] = budgets[2] + meter.stop();
    }
    let [direct, json, grpc] = rounds.map(|runs| mean(&runs));
    let [direct_budget, json_budget, grpc_budget] = budgets.map(|budget| budget.per_call(CALLS));
    let print = |name: &str,
                 (rps, p50, p99): (f64, Duration, Duration),
                 (base_rps, base_p50, _): (f64, Duration, Duration)| {
        println!(
            "{name:<36} {rps:>8.0} calls/s  p50 {:>5.2} ms  p99 {:>5.2} ms  {:.2}x direct, p50 {:+.2} ms",
            ms(p50),
            ms(p99),
            rps / base_rps,
            ms(p50) - ms(base_p50)
        );
    };
    println!("-- concurrency {CONCURRENCY} (saturated; {ROUNDS} alternating rounds)");
    print("GetEmployee direct gRPC", direct, direct);
    print("GetEmployee HTTP/JSON via gateway", json, direct);
    print("GetEmployee gRPC via gateway", grpc, direct);
    println!(
        "gateway CPU per call: HTTP/JSON {:.0} µs, gRPC passthrough {:.0} µs",
        micros(json_budget.service),
        micros(grpc_budget.service)
    );
    println!("machine CPU per call (service = the gateway; load = client, auth and HRM):");
    println!("  direct gRPC       {direct_budget}");
    println!("  HTTP/JSON         {json_budget}");
    println!("  gRPC passthrough  {grpc_budget}");
    // With every core busy, the ratio is the direct call's machine CPU over the gateway
    // path's: 0.8x allows the gateway path a quarter more than the direct call.
    println!(
        "0.8x direct allows a call via the gateway {:.0} µs of machine CPU; HTTP/JSON takes {:.0}, passthrough {:.0}",
        micros(direct_budget.total()) / 0.8,
        micros(json_budget.total()),
        micros(grpc_budget.total())
    );
    // One call at a time: what the extra hop itself costs.
    let direct_one = measure(1, SERIAL_CALLS, direct_call).await;
    let json_one = measure(1, SERIAL_CALLS, http_get).await;
    let grpc_one = measure(1, SERIAL_CALLS, passthrough_call).await;
    println!("-- concurrency 1 (the hop's own latency)");
    print("GetEmployee direct gRPC", direct_one, direct_one);
    print("GetEmployee HTTP/JSON via gateway", json_one, direct_one);
    print("GetEmployee gRPC via gateway", grpc_one, direct_one);
    println!("gateway RSS after the runs: {:.1} MiB", gateway.rss_mib());
    gateway.stop();
}

/// The gateway's release binary on a free port, rate limits out of the way.
struct Gateway {
    child: Child,
    port: u16,
    start_to_healthy: Duration,
}

impl Gateway {
    async fn start(auth: &str, hrm: &str) -> Self {
        let port = free_port();
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_erp-api-gateway"))
            .env("ERP_GATEWAY__HOST", "127.0.0.1")
            .env("ERP_GATEWAY__HTTP_PORT", port.to_string())
            .env("ERP_UPSTREAMS__AUTH", auth)
            .env("ERP_UPSTREAMS__HRM", hrm)
            .env("ERP_AUTH__JWKS_URL", auth)
            .env("ERP_LIMITS__TENANT_PER_SECOND", "1000000")
            .env("ERP_LIMITS__TENANT_BURST", "1000000")
            .env("ERP_TELEMETRY__LOG_LEVEL", "warn")
            // Client, auth, HRM and PostgreSQL share the two cores: one gateway thread.
            .env("ERP_GATEWAY__WORKER_THREADS", WORKER_THREADS)
            .stdout(Stdio::null())
            .spawn()
            .expect("the gateway binary starts");
        let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        loop {
            let probe = Request::get(format!("http://127.0.0.1:{port}/healthz"))
                .body(Full::new(Bytes::new()))
                .expect("request");
            if let Ok(response) = http.request(probe).await
                && response.status() == StatusCode::OK
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the gateway did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Self {
            child,
            port,
            start_to_healthy: started.elapsed(),
        }
    }

    fn rss_mib(&self) -> f64 {
        erp_testkit::bench::rss_mib(self.child.id())
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

async fn connect(url: &str) -> Channel {
    Channel::from_shared(url.to_owned())
        .expect("url")
        .connect()
        .await
        .expect("connects")
}

/// Operator token, tenant with HRM, admin login — over HTTP/JSON through the gateway.
async fn tenant_admin_token(
    http: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    base: &str,
) -> String {
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request =
            Request::post(format!("{base}{path}")).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        let http = http.clone();
        async move {
            let response = http.request(request).await.expect("answer");
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            let value: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(status, StatusCode::OK, "{value}");
            value
        }
    };
    let operator = post(
        "/v1/operator:token",
        None,
        json!({"bootstrapSecret": SECRET}),
    )
    .await;
    let operator = operator["accessToken"]
        .as_str()
        .expect("operator token")
        .to_owned();
    post(
        "/v1/tenants",
        Some(&operator),
        json!({
            "slug": "bench",
            "displayName": "Bench",
            "plan": {"name": "bench", "enabledModules": ["MODULE_HRM"]},
            "adminEmail": "admin@bench.example.com",
            "adminPassword": PASSWORD,
        }),
    )
    .await;
    let login = post(
        "/v1/sessions:login",
        None,
        json!({"tenantSlug": "bench", "email": "admin@bench.example.com", "password": PASSWORD}),
    )
    .await;
    login["tokens"]["accessToken"]
        .as_str()
        .expect("access token")
        .to_owned()
}
