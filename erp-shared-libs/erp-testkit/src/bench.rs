//! Helpers of the services' benchmark binaries: run a release binary and wait until its
//! health says SERVING, drive calls at a fixed concurrency, read a process's RSS and CPU
//! time, and seed
//! HRM with a department of employees.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use erp_proto::erp::{
    common::v1::Date,
    hrm::v1::{
        CreateDepartmentRequest, CreateEmployeeRequest, EmploymentType,
        hrm_service_client::HrmServiceClient,
    },
};
use tokio::sync::Semaphore;
use tonic::{Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A service process started by a benchmark.
pub struct ServiceProcess {
    /// The process.
    pub child: Child,
    /// Its gRPC port.
    pub port: u16,
    /// From spawn to health SERVING.
    pub start_to_serving: Duration,
}

impl ServiceProcess {
    /// Spawns `binary` with `env` on free ports and waits (at most 30 s) for SERVING.
    pub async fn start(binary: &str, env: &[(&str, String)]) -> Self {
        let port = free_port();
        let started = Instant::now();
        let child = Command::new(binary)
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .env("ERP_SERVER__GRPC_PORT", port.to_string())
            .env("ERP_SERVER__ADMIN_PORT", free_port().to_string())
            .env("ERP_TELEMETRY__LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {binary}: {error}"));
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
                "{binary} did not become SERVING"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Self {
            child,
            port,
            start_to_serving: started.elapsed(),
        }
    }

    /// `http://127.0.0.1:<port>`, connected.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://127.0.0.1:{}", self.port))
            .expect("url")
            .connect()
            .await
            .expect("connects")
    }

    /// Resident memory now, in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_mib(self.child.id())
    }

    /// CPU time the process has used so far (user + system).
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.child.id())
    }

    /// SIGTERM, then wait for the drain.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A process's resident memory now, in MiB (NaN when unknown).
pub fn rss_mib(pid: u32) -> f64 {
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

/// CPU time a process has used so far, user + system (zero when unknown). Divided by the
/// calls it served, it is a figure the other load on a shared machine barely moves.
pub fn cpu_time(pid: u32) -> Duration {
    // Fields 14 and 15 of /proc/<pid>/stat, counted after the parenthesised command name.
    const TICKS_PER_SECOND: f64 = 100.0;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = &stat[stat.rfind(')')? + 2..];
            let mut fields = after_name.split_whitespace().skip(11);
            let user: f64 = fields.next()?.parse().ok()?;
            let system: f64 = fields.next()?.parse().ok()?;
            Some(Duration::from_secs_f64((user + system) / TICKS_PER_SECOND))
        })
        .unwrap_or_default()
}

/// Throughput, p50 and p99 of `count` calls, at most `concurrency` at once.
pub async fn measure<F, Fut>(concurrency: usize, count: usize, call: F) -> (f64, Duration, Duration)
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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Milliseconds, for printing.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .expect("a token is a header value"),
    );
    request
}

/// An `ENG` department with `count` full-time employees hired into it; their ids.
pub async fn hire_employees(
    mut hrm: HrmServiceClient<Channel>,
    token: &str,
    count: usize,
) -> Vec<String> {
    let department = hrm
        .create_department(bearer(
            CreateDepartmentRequest {
                code: "ENG".into(),
                name: "Engineering".into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("department")
        .into_inner()
        .department
        .expect("department")
        .department_id;
    let mut ids = Vec::with_capacity(count);
    for index in 0..count {
        let employee = hrm
            .create_employee(bearer(
                CreateEmployeeRequest {
                    employee_id: format!("EMP-{index:05}"),
                    first_name: "Bench".into(),
                    last_name: format!("Person {index:05}"),
                    email: format!("p{index}@bench.example.com"),
                    department_id: department.clone(),
                    position: "Engineer".into(),
                    hire_date: Some(Date {
                        year: 2024,
                        month: 1,
                        day: 15,
                    }),
                    employment_type: EmploymentType::FullTime as i32,
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect("hired")
            .into_inner()
            .employee
            .expect("employee");
        ids.push(employee.id);
    }
    ids
}
