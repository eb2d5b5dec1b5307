//! The orchestrator binary deploying to the project's Kubernetes API simulator on
//! loopback: stages gated on rollouts (checked from the simulator's request log), the
//! history ConfigMap, `plan` against it, whole-release rollback when the last stage fails,
//! removal of services new in a failed release, and the deploy lock.

use std::{
    process::{Command, Output},
    time::Duration,
};

use release_orchestrator::kubernetes::simulator::{KubeSimulator, SimulatorOptions};
use serde_json::Value;

mod support;
use support::{repository_root, transcript};

const NAMESPACE: &str = "erp-test";
const ROLLOUT: Duration = Duration::from_millis(300);

struct Cluster {
    simulator: KubeSimulator,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Self {
        Self::start_with(ROLLOUT).await
    }

    async fn start_with(rollout: Duration) -> Self {
        let simulator = KubeSimulator::start(SimulatorOptions {
            rollout_delay: rollout,
            failing_image: Some("broken".to_owned()),
            failing_job_image: Some("broken".to_owned()),
        })
        .await
        .expect("simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("sim.yaml"),
            format!(
                "name: sim\ntarget: kubernetes\nhealth_timeout: 20s\nkubernetes:\n  context: none\n  namespace: {NAMESPACE}\n  api_url: {}\n  image_registry: ghcr.io/company\n  gates: {{smoke: true}}\n",
                simulator.url()
            ),
        )
        .expect("environment file");
        Self { simulator, dir }
    }

    /// A copy of our v1.0.0 with versions replaced, as `<name>.yml` in the temp folder.
    fn release(&self, name: &str, edits: &[(&str, &str)]) -> String {
        let mut text = std::fs::read_to_string(
            repository_root().join("release-orchestrator/release-configs/v1.0.0.yml"),
        )
        .expect("our release");
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        let path = self.dir.path().join(format!("{name}.yml"));
        std::fs::write(&path, text).expect("release");
        path.display().to_string()
    }

    async fn orchestrator(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_release-orchestrator"));
        command.current_dir(repository_root()).args(args).args([
            "--env",
            &self.dir.path().join("sim.yaml").display().to_string(),
        ]);
        let output = tokio::task::spawn_blocking(move || command.output().expect("runs"))
            .await
            .expect("joined");
        transcript(args, &output);
        output
    }

    fn image(&self, unit: &str) -> Option<String> {
        self.simulator
            .object("apps/v1", "deployments", NAMESPACE, unit)
            .map(|deployment| {
                deployment["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
    }

    fn history(&self) -> Vec<Value> {
        let map = self
            .simulator
            .object("v1", "configmaps", NAMESPACE, "erp-release-history")
            .expect("the history ConfigMap");
        serde_json::from_str(map["data"]["history.json"].as_str().expect("history")).expect("JSON")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_deploys_stage_by_stage_and_is_recorded() {
    let cluster = Cluster::start().await;
    let deployed = cluster.orchestrator(&["deploy", "v1.0.0.yml"]).await;
    assert!(deployed.status.success());
    assert_eq!(
        cluster.image("erp-auth-service").as_deref(),
        Some("ghcr.io/company/erp-auth-service:1.0.0")
    );
    assert_eq!(
        cluster.image("erp-api-gateway").as_deref(),
        Some("ghcr.io/company/erp-api-gateway:0.1.0")
    );

    // No unit is applied before what it depends on has rolled out.
    let requests = cluster.simulator.requests();
    let applies = |unit: &str| -> Vec<Duration> {
        requests
            .iter()
            .filter(|request| {
                request.method == "PATCH" && request.path.ends_with(&format!("/{unit}"))
            })
            .map(|request| request.at)
            .collect()
    };
    let (auth, hrm, gateway) = (
        applies("erp-auth-service"),
        applies("erp-hrm-service"),
        applies("erp-api-gateway"),
    );
    assert!(!auth.is_empty() && !hrm.is_empty() && !gateway.is_empty());
    let last = |times: &[Duration]| times.iter().max().copied().expect("some");
    let first = |times: &[Duration]| times.iter().min().copied().expect("some");
    assert!(
        first(&hrm) >= last(&auth) + ROLLOUT,
        "hrm waited for auth's rollout"
    );
    assert!(
        first(&gateway) >= last(&hrm) + ROLLOUT,
        "the gateway waited for hrm's rollout"
    );
    assert!(
        requests.iter().any(|request| request.method == "PATCH"
            && request.query.contains("fieldManager=release-orchestrator")),
        "server-side apply with our field manager"
    );
    assert!(
        requests
            .iter()
            .any(|request| request.query.contains("watch=true")),
        "rollouts are watched, not polled"
    );

    // The smoke suite ran as a Job once every stage was available.
    let job = requests
        .iter()
        .find(|request| request.method == "POST" && request.path.ends_with("/jobs"))
        .expect("a smoke test Job");
    assert!(job.at >= last(&gateway) + ROLLOUT);

    let history = cluster.history();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["release"], "1.0.0");
    assert_eq!(history[0]["result"], "succeeded");
    assert_eq!(history[0]["versions"]["erp-hrm-service"], "1.0.0");

    let plan = cluster
        .orchestrator(&["plan", "v1.0.0.yml", "--detailed-exitcode"])
        .await;
    assert_eq!(
        plan.status.code(),
        Some(0),
        "nothing to change against the history"
    );
    let upgrade = cluster.release(
        "v1.0.1",
        &[
            ("version: \"1.0.0\"\n  name", "version: \"1.0.1\"\n  name"),
            (
                "name: erp-hrm-service\n    version: \"1.0.0\"",
                "name: erp-hrm-service\n    version: \"1.0.1\"",
            ),
        ],
    );
    let plan = cluster
        .orchestrator(&["plan", &upgrade, "--detailed-exitcode"])
        .await;
    assert_eq!(plan.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&plan.stdout).contains("upgrade from 1.0.0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_last_stage_rolls_the_whole_release_back() {
    let cluster = Cluster::start().await;
    assert!(
        cluster
            .orchestrator(&["deploy", "v1.0.0.yml"])
            .await
            .status
            .success()
    );

    // 1.1.0 upgrades HRM, then the gateway's new image never becomes available.
    let broken = cluster.release(
        "v1.1.0",
        &[
            ("version: \"1.0.0\"\n  name", "version: \"1.1.0\"\n  name"),
            (
                "name: erp-hrm-service\n    version: \"1.0.0\"",
                "name: erp-hrm-service\n    version: \"1.1.0\"",
            ),
            (
                "name: erp-api-gateway\n    version: \"0.1.0\"",
                "name: erp-api-gateway\n    version: \"0.2.0-broken\"",
            ),
        ],
    );
    let failed = cluster.orchestrator(&["deploy", &broken]).await;
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("every service it changed is back on its previous version"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ProgressDeadlineExceeded") || stderr.contains("timed out progressing"),
        "{stderr}"
    );
    assert_eq!(
        cluster.image("erp-hrm-service").as_deref(),
        Some("ghcr.io/company/erp-hrm-service:1.0.0"),
        "HRM is back on 1.0.0"
    );
    assert_eq!(
        cluster.image("erp-api-gateway").as_deref(),
        Some("ghcr.io/company/erp-api-gateway:0.1.0")
    );
    let history = cluster.history();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["release"], "1.1.0");
    assert_eq!(history[1]["result"], "rolled_back");
}

#[tokio::test(flavor = "multi_thread")]
async fn services_new_in_a_failed_release_are_removed() {
    let cluster = Cluster::start().await;
    let broken = cluster.release(
        "v1.0.0-broken",
        &[(
            "name: erp-api-gateway\n    version: \"0.1.0\"",
            "name: erp-api-gateway\n    version: \"0.1.0-broken\"",
        )],
    );
    let failed = cluster.orchestrator(&["deploy", &broken]).await;
    assert_eq!(failed.status.code(), Some(1));
    for unit in ["erp-auth-service", "erp-hrm-service", "erp-api-gateway"] {
        assert_eq!(cluster.image(unit), None, "{unit} was new: removed again");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_deploy_is_refused_while_the_lock_is_held() {
    let cluster = Cluster::start().await;
    // Someone else holds the environment's lease, renewed just now.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let lease = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "erp-release-lock"},
        "spec": {"holderIdentity": "alice@ci pid 42", "leaseDurationSeconds": 30, "acquireTime": now, "renewTime": now},
    });
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<hyper::body::Bytes>>();
    let created = client
        .request(
            hyper::Request::post(format!(
                "{}/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases",
                cluster.simulator.url()
            ))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(hyper::body::Bytes::from(
                lease.to_string(),
            )))
            .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(created.status(), 201);
    let refused = cluster.orchestrator(&["deploy", "v1.0.0.yml"]).await;
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is being deployed by alice@ci pid 42"),
        "{stderr}"
    );
    assert_eq!(cluster.image("erp-auth-service"), None, "nothing applied");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_smoke_tests_roll_the_release_back() {
    let cluster = Cluster::start().await;
    assert!(
        cluster
            .orchestrator(&["deploy", "v1.0.0.yml"])
            .await
            .status
            .success()
    );
    let release = cluster.release(
        "v1.0.1",
        &[
            ("version: \"1.0.0\"\n  name", "version: \"1.0.1\"\n  name"),
            (
                "name: erp-hrm-service\n    version: \"1.0.0\"",
                "name: erp-hrm-service\n    version: \"1.0.1\"",
            ),
            (
                "company/erp-smoke-tests\"",
                "company/erp-smoke-tests-broken\"",
            ),
        ],
    );
    let failed = cluster.orchestrator(&["deploy", &release]).await;
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("the smoke tests failed"));
    assert_eq!(
        cluster.image("erp-hrm-service").as_deref(),
        Some("ghcr.io/company/erp-hrm-service:1.0.0"),
        "HRM went back once the smoke tests failed"
    );
    assert_eq!(cluster.history()[1]["result"], "rolled_back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suite_meant_for_another_environment_does_not_gate_this_one() {
    let cluster = Cluster::start().await;
    // The broken smoke tests are meant for production; this environment is `sim`.
    let release = cluster.release(
        "v1.0.0-prod-smoke",
        &[(
            "company/erp-smoke-tests\"",
            "company/erp-smoke-tests-broken\"\n    - environment: \"production\"",
        )],
    );
    let deployed = cluster.orchestrator(&["deploy", &release]).await;
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    assert_eq!(cluster.history()[0]["result"], "succeeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_release_that_only_retuned_a_service_puts_its_settings_back() {
    let cluster = Cluster::start().await;
    assert!(
        cluster
            .orchestrator(&["deploy", "v1.0.0.yml"])
            .await
            .status
            .success()
    );
    let replicas = || {
        cluster
            .simulator
            .object("apps/v1", "deployments", NAMESPACE, "erp-hrm-service")
            .expect("hrm")["spec"]["replicas"]
            .clone()
    };
    let before = replicas();
    // HRM keeps its version; only its replicas change, and the smoke tests fail.
    let release = cluster.release(
        "v1.0.1-retuned",
        &[
            ("version: \"1.0.0\"\n  name", "version: \"1.0.1\"\n  name"),
            (
                "    repository: \"company/erp-hrm-service\"\n",
                "    repository: \"company/erp-hrm-service\"\n    replicas: 5\n",
            ),
            (
                "company/erp-smoke-tests\"",
                "company/erp-smoke-tests-broken\"",
            ),
        ],
    );
    let failed = cluster.orchestrator(&["deploy", &release]).await;
    assert_eq!(failed.status.code(), Some(1));
    assert_ne!(before, 5);
    assert_eq!(
        replicas(),
        before,
        "HRM's replicas went back with the release"
    );
    assert_eq!(cluster.history()[1]["result"], "rolled_back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_killed_mid_stage_resumes_where_it_stopped() {
    let cluster = Cluster::start_with(Duration::from_millis(800)).await;
    let mut first = Command::new(env!("CARGO_BIN_EXE_release-orchestrator"))
        .current_dir(repository_root())
        .args(["deploy", "v1.0.0.yml", "--env"])
        .arg(cluster.dir.path().join("sim.yaml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    // Kill it once HRM (stage 3) is being applied.
    erp_testkit::wait::eventually(Duration::from_secs(20), || {
        let started = cluster.simulator.requests().iter().any(|request| {
            request.method == "PATCH" && request.path.ends_with("/deployments/erp-hrm-service")
        });
        std::future::ready(started.then_some(()))
    })
    .await;
    first.kill().expect("killed");
    let _ = first.wait();
    assert!(
        cluster
            .simulator
            .object("v1", "configmaps", NAMESPACE, "erp-release-history")
            .is_none(),
        "the crashed deploy recorded nothing"
    );

    let resumed = cluster.orchestrator(&["deploy", "v1.0.0.yml"]).await;
    assert!(resumed.status.success(), "the same deploy again continues");
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("resuming"));
    let auth = cluster
        .simulator
        .object("apps/v1", "deployments", NAMESPACE, "erp-auth-service")
        .expect("auth");
    assert_eq!(
        auth["metadata"]["generation"], 1,
        "auth was already available: reapplied unchanged"
    );
    assert_eq!(cluster.history()[0]["result"], "succeeded");
    assert_eq!(
        cluster.image("erp-api-gateway").as_deref(),
        Some("ghcr.io/company/erp-api-gateway:0.1.0")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_answers_watches_from_compacted_history_with_410_gone() {
    let cluster = Cluster::start().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<hyper::body::Bytes>>();
    let base = format!(
        "{}/api/v1/namespaces/{NAMESPACE}/configmaps",
        cluster.simulator.url()
    );
    for name in ["a", "b"] {
        let map = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}});
        let created = client
            .request(
                hyper::Request::post(&base)
                    .header("content-type", "application/json")
                    .body(http_body_util::Full::new(hyper::body::Bytes::from(
                        map.to_string(),
                    )))
                    .expect("request"),
            )
            .await
            .expect("answer");
        assert_eq!(created.status(), 201);
    }
    cluster.simulator.compact();
    let watch = client
        .request(
            hyper::Request::get(format!(
                "{base}?&watch=true&resourceVersion=1&timeoutSeconds=2"
            ))
            .body(http_body_util::Full::new(hyper::body::Bytes::new()))
            .expect("request"),
        )
        .await
        .expect("answer");
    let body = http_body_util::BodyExt::collect(watch.into_body())
        .await
        .expect("body")
        .to_bytes();
    let event: Value =
        serde_json::from_slice(body.split(|byte| *byte == b'\n').next().expect("a line"))
            .expect("JSON");
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
}

#[tokio::test(flavor = "multi_thread")]
async fn release_settings_reach_the_rendered_objects() {
    let cluster = Cluster::start().await;
    let release = cluster.release(
        "v1.0.0-tuned",
        &[(
            "    repository: \"company/erp-hrm-service\"\n",
            "    repository: \"company/erp-hrm-service\"\n    replicas: 3\n    env:\n      ERP_HRM__WORKDAY__STARTS_AT: \"08:30:00\"\n",
        )],
    );
    assert!(
        cluster
            .orchestrator(&["deploy", &release])
            .await
            .status
            .success()
    );
    let deployment = cluster
        .simulator
        .object("apps/v1", "deployments", NAMESPACE, "erp-hrm-service")
        .expect("hrm");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let config = cluster
        .simulator
        .object("v1", "configmaps", NAMESPACE, "erp-hrm-service")
        .expect("hrm's ConfigMap");
    assert_eq!(config["data"]["ERP_HRM__WORKDAY__STARTS_AT"], "08:30:00");
    let history = cluster.history();
    assert_eq!(
        history[0]["settings"]["erp-hrm-service"]["replicas"], 3,
        "kept for rollbacks"
    );
}
