//! The plan of a release for one environment: its stages (as written, or derived from the
//! dependency graph with the most parallelism) and each service's change against what the
//! environment runs now.

use std::collections::BTreeMap;

use semver::Version;

use crate::{
    release::{Release, UnitKind},
    validate::kind_of,
    workspace::Workspace,
};

/// What deploying a service changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum Change {
    /// Not running yet.
    New,
    /// Running an older version.
    Upgrade {
        /// What runs now.
        from: String,
    },
    /// Running a newer version.
    Downgrade {
        /// What runs now.
        from: String,
    },
    /// Already at this version.
    Unchanged,
    /// A library: verified, not deployed.
    Library,
}

impl Change {
    /// Whether deploying does something.
    pub fn is_change(&self) -> bool {
        !matches!(self, Self::Unchanged | Self::Library)
    }
}

/// One service in the plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedService {
    /// The unit.
    pub name: String,
    /// The version deployed.
    pub version: String,
    /// Service, gateway or library.
    pub kind: UnitKind,
    /// Against what runs now.
    #[serde(flatten)]
    pub change: Change,
}

/// A stage: services deployed together.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedStage {
    /// 1-based.
    pub number: usize,
    /// Its services.
    pub services: Vec<PlannedService>,
}

/// The whole plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    /// The release version.
    pub release: String,
    /// The environment.
    pub environment: String,
    /// Whether the stages come from `deployment_order` or from the dependency graph.
    pub derived_order: bool,
    /// The stages in order.
    pub stages: Vec<PlannedStage>,
}

impl Plan {
    /// Whether anything would change.
    pub fn has_changes(&self) -> bool {
        self.stages
            .iter()
            .flat_map(|stage| &stage.services)
            .any(|service| service.change.is_change())
    }
}

/// The stages as service names: `deployment_order` when given, else dependency layers
/// (every service one stage after the last of its dependencies; names sorted inside a
/// stage). Assumes a validated release (no cycles).
pub fn stages(release: &Release) -> Vec<Vec<String>> {
    if let Some(order) = &release.order {
        return order
            .iter()
            .map(|stage| {
                stage
                    .services
                    .iter()
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .collect();
    }
    let index: BTreeMap<&str, usize> = release
        .services
        .iter()
        .enumerate()
        .map(|(at, service)| (service.name.as_str(), at))
        .collect();
    let count = release.services.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut waiting_on = vec![0usize; count];
    for (at, service) in release.services.iter().enumerate() {
        for dependency in &service.dependencies {
            if let Some(&target) = index.get(dependency.name.as_str()) {
                dependents[target].push(at);
                waiting_on[at] += 1;
            }
        }
    }
    let mut layer: Vec<usize> = (0..count).filter(|&at| waiting_on[at] == 0).collect();
    let mut layers = Vec::new();
    while !layer.is_empty() {
        let mut next = Vec::new();
        for &at in &layer {
            for &dependent in &dependents[at] {
                waiting_on[dependent] -= 1;
                if waiting_on[dependent] == 0 {
                    next.push(dependent);
                }
            }
        }
        let mut names: Vec<String> = layer
            .iter()
            .map(|&at| release.services[at].name.clone())
            .collect();
        names.sort();
        layers.push(names);
        layer = next;
    }
    layers
}

/// The plan of `release` for `environment`, given the versions it runs now.
pub fn plan(
    release: &Release,
    environment: &str,
    running: &BTreeMap<String, Version>,
    workspace: Option<&Workspace>,
) -> Plan {
    let stages = stages(release)
        .into_iter()
        .enumerate()
        .map(|(index, names)| PlannedStage {
            number: index + 1,
            services: names
                .into_iter()
                .map(|name| {
                    let version = release
                        .service(&name)
                        .and_then(|service| service.version.clone());
                    let kind = kind_of(release, &name, workspace);
                    let change = match (kind, running.get(&name), &version) {
                        (UnitKind::Library, _, _) => Change::Library,
                        (_, None, _) | (_, _, None) => Change::New,
                        (_, Some(now), Some(wanted)) if now < wanted => Change::Upgrade {
                            from: now.to_string(),
                        },
                        (_, Some(now), Some(wanted)) if now > wanted => Change::Downgrade {
                            from: now.to_string(),
                        },
                        _ => Change::Unchanged,
                    };
                    PlannedService {
                        name,
                        version: version.map(|v| v.to_string()).unwrap_or_default(),
                        kind,
                        change,
                    }
                })
                .collect(),
        })
        .collect();
    Plan {
        release: release
            .version
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        environment: environment.to_owned(),
        derived_order: release.order.is_none(),
        stages,
    }
}
