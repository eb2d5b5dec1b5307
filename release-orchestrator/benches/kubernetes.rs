//! A 100-service release in 10 stages deployed to the Kubernetes API simulator, every
//! rollout taking 200 ms: the stages' wall time against the ideal (the sum of the stage
//! maxima, 10 × 200 ms), the rendering that precedes them, and API requests per service.
//! Goal: stages ≤ 1.1× the ideal.
//!
//! `cargo bench -p release-orchestrator --bench kubernetes` — prints figures, asserts nothing.

use std::{
    fmt::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use release_orchestrator::{
    environment::{Environment, KubernetesSettings, Target},
    kubernetes::{
        KubeTarget,
        simulator::{KubeSimulator, SimulatorOptions},
    },
    local::ReleaseSource,
    release::parse,
    report::Reporter,
    workspace::Workspace,
};

const STAGES: usize = 10;
const PER_STAGE: usize = 10;
const ROLLOUT: Duration = Duration::from_millis(200);

/// A repository of 100 units (manifest and values each) sharing our chart.
fn repository(root: &Path) -> String {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository");
    erp_testkit::files::copy_tree(&ours.join("infra/charts"), &root.join("infra/charts"));
    std::fs::create_dir_all(root.join("infra/values")).expect("values dir");
    let mut release = String::from("release: {version: \"1.0.0\", name: \"Bench\"}\nservices:\n");
    let mut order = String::from("deployment_order:\n");
    for stage in 0..STAGES {
        let mut names = Vec::new();
        for index in 0..PER_STAGE {
            let name = format!("svc-{:03}", stage * PER_STAGE + index);
            std::fs::create_dir_all(root.join(&name)).expect("unit dir");
            std::fs::write(
                root.join(&name).join("service.yaml"),
                format!("name: {name}\nversion: 1.0.0\nrepository: company/{name}\nkind: service\nports: {{grpc: 50051, admin: 9051}}\ndepends_on: []\n"),
            )
            .expect("manifest");
            std::fs::write(
                root.join(format!("infra/values/{name}.yaml")),
                format!("unit: {name}\nkind: service\nimage: {{repository: ghcr.io/company/{name}}}\nports: {{grpc: 50051, admin: 9051}}\n"),
            )
            .expect("values");
            let _ = writeln!(release, "  - name: {name}\n    version: \"1.0.0\"");
            if stage > 0 {
                let _ = writeln!(
                    release,
                    "    dependencies: [{{svc-{:03}: \"1\"}}]",
                    (stage - 1) * PER_STAGE
                );
            }
            names.push(name);
        }
        let _ = writeln!(order, "  - [{}]", names.join(", "));
    }
    release + &order
}

#[tokio::main]
async fn main() {
    let simulator = KubeSimulator::start(SimulatorOptions {
        rollout_delay: ROLLOUT,
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator");
    let root = tempfile::tempdir().expect("temp dir");
    let text = repository(root.path());
    let (release, problems) = parse(&text);
    assert!(problems.is_empty(), "{problems:?}");
    let workspace = Workspace::discover(root.path()).expect("units");
    let environment = Environment {
        name: "bench".to_owned(),
        target: Target::Kubernetes,
        state_dir: root.path().join("state"),
        health_timeout: Duration::from_secs(60),
        ports: Default::default(),
        kubernetes: Some(KubernetesSettings {
            context: "none".to_owned(),
            namespace: "bench".to_owned(),
            api_url: Some(simulator.url()),
            image_registry: "ghcr.io/company".to_owned(),
            values: Default::default(),
            gates: Default::default(),
        }),
    };
    let reporter = Reporter::quiet();
    let target = KubeTarget::connect(&workspace, &environment, &reporter)
        .await
        .expect("connects");
    let source = ReleaseSource {
        path: root.path().join("release.yml"),
        text,
        release,
    };
    let started = Instant::now();
    target.deploy(&source).await.expect("deploys");
    let total = started.elapsed();

    let requests = simulator.requests();
    let first_apply = requests
        .iter()
        .filter(|request| request.method == "PATCH" && request.path.contains("/deployments/"))
        .map(|request| request.at)
        .min()
        .expect("applies");
    let last = requests
        .iter()
        .map(|request| request.at)
        .max()
        .expect("requests");
    let stages = last - first_apply;
    let ideal = ROLLOUT * u32::try_from(STAGES).expect("small");
    let services = STAGES * PER_STAGE;
    println!(
        "{services} services in {STAGES} stages, {} ms rollouts (release-orchestrator --bench kubernetes)",
        ROLLOUT.as_millis()
    );
    println!(
        "stages (first apply → last request): {:.2} s = {:.2}x the ideal {:.2} s (goal ≤ 1.1x)",
        stages.as_secs_f64(),
        stages.as_secs_f64() / ideal.as_secs_f64(),
        ideal.as_secs_f64()
    );
    println!(
        "rendering {services} charts with helm beforehand: {:.2} s; whole deploy: {:.2} s",
        (total - stages).as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "API requests: {} ({:.1} per service)",
        requests.len(),
        requests.len() as f64 / services as f64
    );
}
