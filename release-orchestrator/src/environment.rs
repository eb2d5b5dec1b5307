//! Deployment environments: `infra/environments/<name>.yaml` (or a file given by path).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

/// Where an environment deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Local processes.
    Local,
    /// A Kubernetes cluster.
    Kubernetes,
}

/// An environment file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Its name.
    pub name: String,
    /// Where it deploys.
    pub target: Target,
    /// The state folder (relative paths are from the repository root).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// How long a service may take to report healthy.
    #[serde(default = "default_health_timeout", with = "humantime_serde")]
    pub health_timeout: Duration,
    /// Port overrides per unit: `{erp-api-gateway: {http: 8080}}` (local target).
    #[serde(default)]
    pub ports: BTreeMap<String, BTreeMap<String, u16>>,
    /// The cluster, for the Kubernetes target.
    #[serde(default)]
    pub kubernetes: Option<KubernetesSettings>,
}

/// Where and how a Kubernetes environment deploys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    /// The kubeconfig context.
    pub context: String,
    /// The namespace the units run in.
    pub namespace: String,
    /// The API server, instead of the kubeconfig context (the tests' simulator).
    #[serde(default)]
    pub api_url: Option<String>,
    /// Where images come from (`<registry>/<unit>:<version>`).
    pub image_registry: String,
    /// Helm values overrides per unit.
    #[serde(default)]
    pub values: BTreeMap<String, serde_yaml_ng::Value>,
    /// Which test gates decide a release.
    #[serde(default)]
    pub gates: Gates,
}

/// The `testing` entries that gate a release in an environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// Smoke tests.
    #[serde(default)]
    pub smoke: bool,
    /// Integration tests.
    #[serde(default)]
    pub integration: bool,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".erp/local")
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Environment {
    /// `name` from `infra/environments/` under `root`, or a path to an environment file.
    pub fn load(root: &Path, name: &str) -> anyhow::Result<Self> {
        let by_path = Path::new(name);
        let path = if by_path.extension().is_some() && by_path.is_file() {
            by_path.to_owned()
        } else {
            root.join("infra/environments").join(format!("{name}.yaml"))
        };
        let text = std::fs::read_to_string(&path).map_err(|error| {
            let known = known_environments(root);
            anyhow::anyhow!(
                "environment `{name}`: cannot read {}: {error} (known: {})",
                path.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )
        })?;
        let mut environment: Self = serde_yaml_ng::from_str(&text)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        if environment.state_dir.is_relative() {
            environment.state_dir = root.join(&environment.state_dir);
        }
        Ok(environment)
    }
}

fn known_environments(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("infra/environments"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            entry
                .path()
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_environment_file_of_the_repository_parses() {
        let root = crate::workspace::Workspace::find_root(Path::new(env!("CARGO_MANIFEST_DIR")))
            .expect("repository root");
        let names = known_environments(&root);
        assert!(names.len() >= 3, "{names:?}");
        for name in names {
            let environment = Environment::load(&root, &name).expect("parses");
            assert_eq!(environment.name, name);
            assert_eq!(
                environment.kubernetes.is_some(),
                environment.target == Target::Kubernetes,
                "{name}: Kubernetes settings exactly for the Kubernetes target"
            );
        }
    }
}
