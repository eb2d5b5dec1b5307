//! The erp-service chart for every unit's values: `helm lint --strict` clean, and every
//! object `helm template` renders is a valid Kubernetes object (it round-trips through
//! k8s-openapi's types unchanged, so a misspelt or misplaced key fails), with gRPC probes
//! for services, a hardened security context and the recommended labels.

use std::{path::PathBuf, process::Command};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        autoscaling::v2::HorizontalPodAutoscaler,
        core::v1::{ConfigMap, Service, ServiceAccount},
        policy::v1::PodDisruptionBudget,
    },
    serde::{Serialize, de::DeserializeOwned},
};
use serde_json::Value;

fn infra() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository")
        .join("infra")
}

fn helm(args: &[&str]) -> String {
    let helm = erp_testkit::tools::installed_tool("helm", "helm-layer-2.2.2");
    let output = Command::new(helm)
        .current_dir(infra())
        .args(args)
        .output()
        .expect("helm runs");
    assert!(
        output.status.success(),
        "helm {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `value` read as `T` and written back must be `value` again.
fn round_trips<T: DeserializeOwned + Serialize>(value: &Value) {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|error| panic!("not a valid {}: {error}\n{value:#}", value["kind"]));
    let again = serde_json::to_value(&typed).expect("serializes");
    assert_eq!(
        &again, value,
        "{} {} changed in a round trip through k8s-openapi (an unknown or misplaced key?)",
        value["kind"], value["metadata"]["name"]
    );
}

fn units() -> Vec<String> {
    let mut units: Vec<String> = std::fs::read_dir(infra().join("values"))
        .expect("infra/values")
        .flatten()
        .filter_map(|entry| {
            entry
                .path()
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .collect();
    units.sort();
    units
}

#[test]
fn every_unit_renders_valid_hardened_objects() {
    let units = units();
    assert_eq!(
        units,
        ["erp-api-gateway", "erp-auth-service", "erp-hrm-service"]
    );
    for unit in &units {
        let values = format!("values/{unit}.yaml");
        helm(&[
            "lint",
            "--strict",
            "charts/erp-service",
            "-f",
            &values,
            "--set",
            "image.tag=1.0.0",
        ]);
        let rendered = helm(&[
            "template",
            unit,
            "charts/erp-service",
            "-f",
            &values,
            "--set",
            "image.tag=1.0.0,release=1.0.0",
        ]);
        let objects: Vec<Value> = rendered
            .split("\n---")
            .filter_map(|document| serde_yaml_ng::from_str::<Value>(document).ok())
            .filter(|value| !value.is_null())
            .collect();
        let mut kinds: Vec<&str> = objects
            .iter()
            .map(|object| object["kind"].as_str().expect("kind"))
            .collect();
        kinds.sort_unstable();
        for object in &objects {
            match object["kind"].as_str().unwrap_or_default() {
                "Deployment" => round_trips::<Deployment>(object),
                "Service" => round_trips::<Service>(object),
                "ConfigMap" => round_trips::<ConfigMap>(object),
                "ServiceAccount" => round_trips::<ServiceAccount>(object),
                "PodDisruptionBudget" => round_trips::<PodDisruptionBudget>(object),
                "HorizontalPodAutoscaler" => round_trips::<HorizontalPodAutoscaler>(object),
                other => panic!("{unit}: unexpected kind {other}"),
            }
            let labels = &object["metadata"]["labels"];
            assert_eq!(labels["app.kubernetes.io/name"], unit.as_str());
            assert_eq!(labels["app.kubernetes.io/part-of"], "erp-mesh");
            assert_eq!(labels["erp.io/release"], "1.0.0");
        }
        assert_eq!(
            kinds.iter().filter(|kind| **kind == "Service").count(),
            2,
            "{unit}: a ClusterIP and a headless Service"
        );
        let deployment = objects
            .iter()
            .find(|object| object["kind"] == "Deployment")
            .expect("a Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(
            container["image"],
            format!("ghcr.io/company/{unit}:1.0.0").as_str()
        );
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        if unit == "erp-api-gateway" {
            assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        } else {
            for probe in ["readinessProbe", "livenessProbe"] {
                assert!(
                    container[probe]["grpc"]["port"].is_number(),
                    "{unit}: {probe} uses the native gRPC probe"
                );
            }
            assert_eq!(
                deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"],
                "true"
            );
        }
        let headless = objects
            .iter()
            .find(|object| object["kind"] == "Service" && object["spec"]["clusterIP"] == "None")
            .expect("a headless Service");
        assert!(
            headless["metadata"]["name"]
                .as_str()
                .is_some_and(|name| name.ends_with("-headless"))
        );
    }
}

#[test]
fn the_umbrella_chart_installs_every_unit_with_the_same_values() {
    // Each section of the umbrella's values is that unit's own values file.
    let umbrella: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(infra().join("charts/erp/values.yaml")).expect("values"),
    )
    .expect("YAML");
    for unit in units() {
        let own: Value = serde_yaml_ng::from_str(
            &std::fs::read_to_string(infra().join(format!("values/{unit}.yaml"))).expect("values"),
        )
        .expect("YAML");
        let mut section = umbrella[unit.as_str()].clone();
        section
            .as_object_mut()
            .expect("a section per unit")
            .remove("enabled");
        assert_eq!(
            section, own,
            "charts/erp/values.yaml drifted from values/{unit}.yaml"
        );
    }

    // Dependencies built in a scratch copy, so the repository stays clean.
    let scratch = tempfile::tempdir().expect("temp dir");
    for chart in ["erp", "erp-service"] {
        let from = infra().join("charts").join(chart);
        let to = scratch.path().join(chart);
        erp_testkit::files::copy_tree(&from, &to);
    }
    let umbrella_dir = scratch.path().join("erp").display().to_string();
    helm(&["dependency", "build", &umbrella_dir]);
    let tags = "erp-auth-service.image.tag=1.0.0,erp-hrm-service.image.tag=1.0.0,erp-api-gateway.image.tag=0.1.0";
    helm(&["lint", "--strict", &umbrella_dir, "--set", tags]);
    let rendered = helm(&["template", "erp", &umbrella_dir, "--set", tags]);
    let deployments: Vec<String> = rendered
        .split("\n---")
        .filter_map(|document| serde_yaml_ng::from_str::<Value>(document).ok())
        .filter(|object| object["kind"] == "Deployment")
        .map(|object| {
            object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        deployments.len(),
        3,
        "auth, HRM and the gateway: {deployments:?}"
    );
}
