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

/// Where the machine's CPU went during a measurement: the service under test, PostgreSQL
/// (every `postgres` process), this benchmark process (the load generator and any
/// services it hosts) and everything else (other processes, the kernel's own threads).
/// Per call, the sum is what one call costs the whole machine — which bounds throughput
/// when every core is busy.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBudget {
    /// The process under test.
    pub service: Duration,
    /// Every PostgreSQL process that lived through the measurement.
    pub postgres: Duration,
    /// The benchmark process itself.
    pub load: Duration,
    /// The rest of the machine's busy time.
    pub other: Duration,
    /// The wall-clock time it was measured over.
    pub wall: Duration,
}

impl CpuBudget {
    /// The whole machine's CPU time.
    pub fn total(&self) -> Duration {
        self.service + self.postgres + self.load + self.other
    }

    /// How busy the machine's cores were, 0 to 1.
    pub fn busy(&self) -> f64 {
        self.total().as_secs_f64() / (self.wall.as_secs_f64() * cores()).max(f64::EPSILON)
    }

    /// Every figure divided by `calls`.
    pub fn per_call(&self, calls: usize) -> Self {
        let calls = u32::try_from(calls).unwrap_or(u32::MAX).max(1);
        Self {
            service: self.service / calls,
            postgres: self.postgres / calls,
            load: self.load / calls,
            other: self.other / calls,
            wall: self.wall / calls,
        }
    }
}

impl std::ops::Add for CpuBudget {
    type Output = Self;

    /// Two measurements as one.
    fn add(self, more: Self) -> Self {
        Self {
            service: self.service + more.service,
            postgres: self.postgres + more.postgres,
            load: self.load + more.load,
            other: self.other + more.other,
            wall: self.wall + more.wall,
        }
    }
}

impl std::fmt::Display for CpuBudget {
    /// `435 µs (service 195, PostgreSQL 80, load 120, other 40; cores 97% busy)`.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{:.0} µs (service {:.0}, PostgreSQL {:.0}, load generator {:.0}, other {:.0}; cores {:.0}% busy)",
            micros(self.total()),
            micros(self.service),
            micros(self.postgres),
            micros(self.load),
            micros(self.other),
            self.busy() * 100.0
        )
    }
}

/// A reading of the machine's CPU counters, to be compared with a later one.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    service: Option<u32>,
    started: Instant,
    machine_busy: Duration,
    service_time: Duration,
    postgres: std::collections::HashMap<u32, Duration>,
    load: Duration,
}

impl CpuMeter {
    /// Starts metering; `service` is the process under test, if it runs apart.
    pub fn start(service: Option<u32>) -> Self {
        Self {
            service,
            started: Instant::now(),
            machine_busy: machine_busy(),
            service_time: service.map(cpu_time).unwrap_or_default(),
            postgres: postgres_processes(),
            load: cpu_time(std::process::id()),
        }
    }

    /// The CPU used since [`CpuMeter::start`], by whom. PostgreSQL backends that started
    /// or ended in between count as `other`.
    pub fn stop(&self) -> CpuBudget {
        let wall = self.started.elapsed();
        let machine = machine_busy().saturating_sub(self.machine_busy);
        let service = self
            .service
            .map(|pid| cpu_time(pid).saturating_sub(self.service_time))
            .unwrap_or_default();
        let postgres = postgres_processes()
            .into_iter()
            .filter_map(|(pid, now)| Some(now.saturating_sub(*self.postgres.get(&pid)?)))
            .sum();
        let load = cpu_time(std::process::id()).saturating_sub(self.load);
        CpuBudget {
            service,
            postgres,
            load,
            other: machine.saturating_sub(service + postgres + load),
            wall,
        }
    }
}

/// Busy time of all cores so far (`/proc/stat`: user, nice, system, irq, softirq, steal).
fn machine_busy() -> Duration {
    const TICKS_PER_SECOND: f64 = 100.0;
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let line = stat.lines().next()?;
            let ticks: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|field| field.parse().ok())
                .collect();
            let busy = [0, 1, 2, 5, 6, 7]
                .iter()
                .filter_map(|&index| ticks.get(index))
                .sum::<f64>();
            Some(Duration::from_secs_f64(busy / TICKS_PER_SECOND))
        })
        .unwrap_or_default()
}

/// Every running `postgres` process and its CPU time so far.
fn postgres_processes() -> std::collections::HashMap<u32, Duration> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Default::default();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|name| name.trim_end() == "postgres")
        })
        .map(|pid| (pid, cpu_time(pid)))
        .collect()
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

/// The cores this machine offers: with all of them busy, throughput is their time over the
/// machine CPU one call costs.
pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, usize::from) as f64
}

/// Microseconds, for printing.
pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000_000.0
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
