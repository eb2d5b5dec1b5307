//! The orchestrator binary deploying our v1.0.0 to a local environment of its own (free
//! ports, a temporary state folder): real service binaries, the embedded broker, SQLite.
//! Deploy → health → smoke → status → down; and a release with a broken service rolled
//! back to the one that ran before, both attempts in the history.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use serde_json::Value;

mod support;
use support::{repository_root, transcript};

/// The debug binaries of the services, built once per test process.
fn bin_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(repository_root())
                .args([
                    "build",
                    "--quiet",
                    "--bins",
                    "-p",
                    "erp-events",
                    "-p",
                    "erp-auth-service",
                    "-p",
                    "erp-hrm-service",
                    "-p",
                    "erp-api-gateway",
                ])
                .status()
                .expect("cargo runs");
            assert!(status.success(), "the service binaries build");
            // This test runs from <target>/debug/deps/.
            std::env::current_exe()
                .expect("test binary path")
                .parent()
                .and_then(Path::parent)
                .expect("the profile folder")
                .to_owned()
        })
        .clone()
}

/// A free port below the kernel's ephemeral range: the services bind it only later, and a
/// port from `bind(0)` could meanwhile be handed to an outgoing connection or to another
/// test running at the same time.
fn free_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let low = 10_000_u16.min(ephemeral_start / 2);
    let span = u64::from(ephemeral_start - low);
    let mut seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |now| now.as_nanos() as u64)
        | 1;
    for _ in 0..1_000 {
        // xorshift: enough spread for two tests not to pick the same ports.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = low + u16::try_from(seed % span).unwrap_or(0);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {ephemeral_start}")
}

/// An environment file of its own: free ports and a temporary state folder.
struct TestEnvironment {
    dir: tempfile::TempDir,
}

impl TestEnvironment {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "name: test\ntarget: local\nstate_dir: {}\nhealth_timeout: 60s\nports:\n  erp-auth-service: {{grpc: {}, admin: {}}}\n  erp-hrm-service: {{grpc: {}, admin: {}}}\n  erp-api-gateway: {{http: {}}}\n",
            dir.path().join("state").display(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port()
        );
        std::fs::write(dir.path().join("test.yaml"), text).expect("environment file");
        Self { dir }
    }

    fn file(&self) -> String {
        self.dir.path().join("test.yaml").display().to_string()
    }

    fn orchestrator(&self, args: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_release-orchestrator"))
            .current_dir(repository_root())
            .args(args)
            .args(["--env", &self.file()])
            .output()
            .expect("the orchestrator runs");
        transcript(args, &output);
        output
    }

    fn deploy(&self, release: &str) -> Output {
        let bins = bin_dir().display().to_string();
        self.orchestrator(&["deploy", release, "--detach", "--bin-dir", &bins])
    }

    fn status(&self) -> Value {
        let output = self.orchestrator(&["status", "-o", "json"]);
        serde_json::from_slice(&output.stdout).expect("status JSON")
    }
}

impl Drop for TestEnvironment {
    fn drop(&mut self) {
        // Never leave processes behind, whatever the test did.
        let _ = self.orchestrator(&["down"]);
    }
}

fn pids(status: &Value) -> Vec<u32> {
    status["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|service| {
            u32::try_from(service["pid"].as_u64().expect("pid")).expect("a pid fits in u32")
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn v1_deploys_locally_passes_health_and_smoke_then_comes_down() {
    let environment = TestEnvironment::new();
    let deployed = environment.deploy("v1.0.0.yml");
    let stdout = String::from_utf8_lossy(&deployed.stdout);
    assert!(deployed.status.success(), "deploy succeeds");
    for expected in [
        "stage 0: embedded broker",
        "erp-auth-service 1.0.0: healthy",
        "erp-hrm-service 1.0.0: healthy",
        "erp-api-gateway 0.1.0: healthy",
        "smoke: login through the gateway ok",
        "smoke: erp-hrm-service GET",
        "release 1.0.0 is running",
    ] {
        assert!(stdout.contains(expected), "`{expected}` in:\n{stdout}");
    }

    let status = environment.status();
    assert_eq!(status["release"], "1.0.0");
    let running = pids(&status);
    assert_eq!(running.len(), 4, "broker, auth, hrm, gateway");
    assert!(
        status["services"]
            .as_array()
            .expect("services")
            .iter()
            .all(|service| service["alive"] == true)
    );

    // What runs now is what the release says: nothing to change.
    let plan = environment.orchestrator(&["plan", "v1.0.0.yml", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "an unchanged plan exits 0");
    assert!(String::from_utf8_lossy(&plan.stdout).contains("unchanged"));

    let logs = environment.orchestrator(&["logs", "erp-hrm-service", "-n", "5"]);
    assert!(logs.status.success());

    let down = environment.orchestrator(&["down"]);
    assert!(down.status.success());
    assert!(
        running.iter().all(|&pid| !alive(pid)),
        "every process stopped"
    );
    let after = environment.orchestrator(&["status"]);
    assert!(String::from_utf8_lossy(&after.stdout).contains("nothing deployed"));
}

#[test]
fn a_release_with_a_broken_service_is_rolled_back_to_the_previous_one() {
    let environment = TestEnvironment::new();
    assert!(environment.deploy("v1.0.0.yml").status.success());
    let before = pids(&environment.status());

    // v1.1.0: the same units, but HRM gets a database URL it cannot use.
    let ours = std::fs::read_to_string(
        repository_root().join("release-orchestrator/release-configs/v1.0.0.yml"),
    )
    .expect("our release");
    let broken = ours
        .replace("version: \"1.0.0\"\n  name: \"Initial Release\"", "version: \"1.1.0\"\n  name: \"Broken\"")
        .replace(
            "    repository: \"company/erp-hrm-service\"\n",
            "    repository: \"company/erp-hrm-service\"\n    env:\n      ERP_DATABASE__URL: \"mysql://nowhere/hrm\"\n",
        );
    assert_ne!(broken, ours, "the test release differs");
    let file = environment.dir.path().join("v1.1.0.yml");
    std::fs::write(&file, broken).expect("written");

    let failed = environment.deploy(&file.display().to_string());
    assert_eq!(failed.status.code(), Some(1), "a failed deploy exits 1");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("release 1.1.0 failed; release 1.0.0 runs again"),
        "{stderr}"
    );
    assert!(
        stderr.contains("erp-hrm-service did not become healthy"),
        "{stderr}"
    );

    let status = environment.status();
    assert_eq!(status["release"], "1.0.0", "the previous release is back");
    let after = pids(&status);
    assert!(after.iter().all(|&pid| alive(pid)));
    assert!(
        before.iter().all(|&pid| !alive(pid)),
        "the old processes were replaced"
    );

    // The restored release runs on the binaries kept when 1.0.0 was deployed.
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(environment.dir.path().join("state/state.json")).expect("state"),
    )
    .expect("state JSON");
    let kept = saved["bin_dir"]
        .as_str()
        .expect("a kept binary folder")
        .to_owned();
    assert!(kept.contains("/releases/1.0.0-"), "{kept}");
    for service in saved["services"].as_array().expect("services") {
        let pid = service["pid"].as_u64().expect("pid");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert!(
            exe.starts_with(&kept),
            "{} runs {}",
            service["name"],
            exe.display()
        );
    }

    let history = environment.orchestrator(&["history", "-o", "json"]);
    let entries: Value = serde_json::from_slice(&history.stdout).expect("history JSON");
    let summary: Vec<(String, String, String)> = entries
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| {
            (
                entry["action"].as_str().unwrap_or_default().to_owned(),
                entry["release"].as_str().unwrap_or_default().to_owned(),
                entry["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("deploy".into(), "1.0.0".into(), "succeeded".into()),
            ("deploy".into(), "1.1.0".into(), "failed".into()),
            ("rollback".into(), "1.0.0".into(), "succeeded".into()),
        ]
    );

    // Going back on purpose: a release deployed before comes back from its saved config.
    let bins = bin_dir().display().to_string();
    let again =
        environment.orchestrator(&["rollback", "--to", "1.0.0", "--detach", "--bin-dir", &bins]);
    assert!(again.status.success());
    assert_eq!(environment.status()["release"], "1.0.0");
    let never = environment.orchestrator(&["rollback", "--to", "9.9.9", "--bin-dir", &bins]);
    assert_eq!(never.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&never.stderr).contains("release 9.9.9 was never deployed"));
}
