//! The units of this repository as the orchestrator sees them: every top-level folder
//! with a `service.yaml` manifest, its version checked against its `Cargo.toml`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use semver::Version;
use serde::Deserialize;

use crate::release::UnitKind;

/// A unit's `service.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The unit name.
    pub name: String,
    /// Its version (equals the crate version).
    pub version: Version,
    /// Where it lives as its own repository.
    pub repository: String,
    /// Service, gateway or library.
    pub kind: UnitKind,
    /// Default ports (`grpc`, `admin`, `http`).
    #[serde(default)]
    pub ports: BTreeMap<String, u16>,
    /// Contracts served and used.
    #[serde(default)]
    pub contracts: Option<ContractUse>,
    /// Topics published and consumed.
    #[serde(default)]
    pub events: Option<EventUse>,
    /// Units that must be up first.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// `contracts:` of a manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractUse {
    /// Fully qualified services it serves.
    #[serde(default)]
    pub serves: Vec<String>,
    /// Fully qualified services it calls.
    #[serde(default)]
    pub uses: Vec<String>,
}

/// `events:` of a manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventUse {
    /// Topics it publishes.
    #[serde(default)]
    pub publishes: Vec<String>,
    /// Topics it consumes.
    #[serde(default)]
    pub consumes: Vec<String>,
}

/// One unit of the repository.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The manifest.
    pub manifest: Manifest,
    /// Its folder.
    pub dir: PathBuf,
    /// The versions its `Cargo.toml` files say (one per crate), with their paths.
    pub crate_versions: Vec<(PathBuf, Option<Version>)>,
}

/// The repository's units by name.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The repository root.
    pub root: PathBuf,
    /// Units by name.
    pub units: BTreeMap<String, Unit>,
}

/// Why the repository could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// A file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// A manifest is malformed.
    #[error("{path}: {error}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        error: String,
    },
}

impl Workspace {
    /// Reads every `*/service.yaml` under `root`.
    pub fn discover(root: &Path) -> Result<Self, WorkspaceError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |error| WorkspaceError::Io { path, error }
        };
        let mut units = BTreeMap::new();
        let mut entries: Vec<_> = std::fs::read_dir(root)
            .map_err(io(root))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.join("service.yaml").is_file())
            .collect();
        entries.sort();
        for dir in entries {
            let path = dir.join("service.yaml");
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let manifest: Manifest =
                serde_yaml_ng::from_str(&text).map_err(|error| WorkspaceError::Manifest {
                    path: path.clone(),
                    error: error.to_string(),
                })?;
            let crate_versions = crate_manifests(&dir)
                .into_iter()
                .map(|cargo| {
                    let version = std::fs::read_to_string(&cargo)
                        .ok()
                        .and_then(|text| package_version(&text));
                    (cargo, version)
                })
                .collect();
            units.insert(
                manifest.name.clone(),
                Unit {
                    manifest,
                    dir,
                    crate_versions,
                },
            );
        }
        Ok(Self {
            root: root.to_owned(),
            units,
        })
    }

    /// The repository root above `start`: the first folder holding `release-orchestrator/`.
    pub fn find_root(start: &Path) -> Option<PathBuf> {
        start
            .ancestors()
            .find(|dir| {
                dir.join("release-orchestrator").is_dir() && dir.join("Cargo.toml").is_file()
            })
            .map(Path::to_owned)
    }
}

/// The unit's own `Cargo.toml`, or those of the crates one level below (a library unit).
fn crate_manifests(dir: &Path) -> Vec<PathBuf> {
    let own = dir.join("Cargo.toml");
    if own.is_file() {
        return vec![own];
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("Cargo.toml"))
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found
}

/// `version = "x.y.z"` of the `[package]` table.
fn package_version(cargo_toml: &str) -> Option<Version> {
    let mut in_package = false;
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package
            && let Some(value) = line.strip_prefix("version")
            && let Some(value) = value.trim_start().strip_prefix('=')
        {
            return Version::parse(value.trim().trim_matches('"')).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_units_are_found_with_their_versions() {
        let root = Workspace::find_root(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("root");
        let workspace = Workspace::discover(&root).expect("manifests read");
        let hrm = &workspace.units["erp-hrm-service"];
        assert_eq!(hrm.manifest.kind, UnitKind::Service);
        assert_eq!(hrm.crate_versions.len(), 1);
        assert_eq!(
            hrm.crate_versions[0].1.as_ref(),
            Some(&hrm.manifest.version)
        );
        let libs = &workspace.units["erp-shared-libs"];
        assert_eq!(libs.manifest.kind, UnitKind::Library);
        assert!(libs.crate_versions.len() >= 4, "{:?}", libs.crate_versions);
        assert_eq!(
            workspace.units["erp-api-gateway"].manifest.kind,
            UnitKind::Gateway
        );
    }

    #[test]
    fn the_package_version_is_read_from_its_table() {
        let text =
            "[package]\nname = \"x\"\nversion = \"1.2.3\"\n[dependencies]\nversion = \"9\"\n";
        assert_eq!(package_version(text), Some(Version::new(1, 2, 3)));
        assert_eq!(
            package_version("[dependencies]\nversion = \"1.0.0\"\n"),
            None
        );
    }
}
