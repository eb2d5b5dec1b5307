//! Everything that must hold before a release is deployed, checked together so one run
//! reports every problem: the order names defined services and each defined service once,
//! dependencies exist, form no cycle, come in an earlier stage and are satisfied by the
//! pinned versions; for a local deploy, every unit exists here at the pinned version.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    release::{Problem, Release, UnitKind},
    workspace::Workspace,
};

/// Every problem of `release` (sorted by line). With `workspace`, also that each unit
/// exists in it and its `Cargo.toml` carries the pinned version (the local environment
/// builds what is checked out).
pub fn validate(release: &Release, workspace: Option<&Workspace>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let defined: BTreeMap<&str, usize> = release
        .services
        .iter()
        .enumerate()
        .map(|(index, service)| (service.name.as_str(), index))
        .collect();

    let mut stage_of: BTreeMap<&str, usize> = BTreeMap::new();
    if let Some(order) = &release.order {
        for (index, stage) in order.iter().enumerate() {
            for (name, line) in &stage.services {
                if !defined.contains_key(name.as_str()) {
                    problems.push(Problem {
                        line: *line,
                        key: stage.key.clone(),
                        message: format!(
                            "stage {} names {name}, which `services` does not define",
                            index + 1
                        ),
                    });
                    continue;
                }
                if let Some(first) = stage_of.insert(name, index) {
                    problems.push(Problem {
                        line: *line,
                        key: stage.key.clone(),
                        message: format!(
                            "{name} is already deployed in stage {}; a service is deployed once",
                            first + 1
                        ),
                    });
                    stage_of.insert(name, first);
                }
            }
        }
        for service in &release.services {
            if !stage_of.contains_key(service.name.as_str()) {
                problems.push(Problem {
                    line: service.line,
                    key: format!("{}.name", service.key),
                    message: format!(
                        "{} is defined but no stage of deployment_order (line {}) deploys it",
                        service.name, release.order_line
                    ),
                });
            }
        }
    }

    for service in &release.services {
        for dependency in &service.dependencies {
            let Some(&target) = defined.get(dependency.name.as_str()) else {
                problems.push(Problem {
                    line: dependency.line,
                    key: dependency.key.clone(),
                    message: format!(
                        "{} depends on {}, which `services` does not define",
                        service.name, dependency.name
                    ),
                });
                continue;
            };
            let target = &release.services[target];
            if let (Some(requirement), Some(version)) = (&dependency.requirement, &target.version)
                && !requirement.matches(version)
            {
                problems.push(Problem {
                    line: dependency.line,
                    key: dependency.key.clone(),
                    message: format!(
                        "{} needs {} {requirement}, but the release pins {version}",
                        service.name, dependency.name
                    ),
                });
            }
            if let (Some(&own), Some(&theirs)) = (
                stage_of.get(service.name.as_str()),
                stage_of.get(dependency.name.as_str()),
            ) && theirs >= own
            {
                let when = if theirs == own {
                    "in the same stage".to_owned()
                } else {
                    format!("later, in stage {}", theirs + 1)
                };
                problems.push(Problem {
                    line: dependency.line,
                    key: dependency.key.clone(),
                    message: format!(
                        "{} (stage {}) depends on {}, which is deployed {when}",
                        service.name,
                        own + 1,
                        dependency.name
                    ),
                });
            }
        }
    }

    for cycle in cycles(release) {
        let first = &release.services[cycle[0]];
        let path: Vec<&str> = cycle
            .iter()
            .chain(std::iter::once(&cycle[0]))
            .map(|&index| release.services[index].name.as_str())
            .collect();
        problems.push(Problem {
            line: first.line,
            key: format!("{}.dependencies", first.key),
            message: format!("dependency cycle: {}", path.join(" → ")),
        });
    }

    if let Some(workspace) = workspace {
        for service in &release.services {
            let Some(unit) = workspace.units.get(&service.name) else {
                problems.push(Problem {
                    line: service.line,
                    key: format!("{}.name", service.key),
                    message: format!(
                        "no unit {} in this repository (no {}/service.yaml); the local environment runs what is checked out",
                        service.name, service.name
                    ),
                });
                continue;
            };
            let Some(pinned) = &service.version else {
                continue;
            };
            for (cargo, found) in &unit.crate_versions {
                if found.as_ref() != Some(pinned) {
                    let relative = cargo.strip_prefix(&workspace.root).unwrap_or(cargo);
                    problems.push(Problem {
                        line: service.line,
                        key: format!("{}.version", service.key),
                        message: format!(
                            "{} is pinned at {pinned}, but {} says {}",
                            service.name,
                            relative.display(),
                            found
                                .as_ref()
                                .map_or_else(|| "no version".to_owned(), ToString::to_string)
                        ),
                    });
                }
            }
            if let Some(kind) = service.kind
                && kind != unit.manifest.kind
            {
                problems.push(Problem {
                    line: service.line,
                    key: format!("{}.kind", service.key),
                    message: format!(
                        "{} is a {:?} here, but its service.yaml says {:?}",
                        service.name, kind, unit.manifest.kind
                    ),
                });
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// The kind of each service: as written, else as its manifest says, else a service.
pub fn kind_of(release: &Release, name: &str, workspace: Option<&Workspace>) -> UnitKind {
    release
        .service(name)
        .and_then(|service| service.kind)
        .or_else(|| workspace?.units.get(name).map(|unit| unit.manifest.kind))
        .unwrap_or(UnitKind::Service)
}

/// Every elementary dependency cycle found by a depth-first walk, each once (as indexes
/// into `release.services`, starting from its smallest index).
fn cycles(release: &Release) -> Vec<Vec<usize>> {
    let index: BTreeMap<&str, usize> = release
        .services
        .iter()
        .enumerate()
        .map(|(at, service)| (service.name.as_str(), at))
        .collect();
    let edges: Vec<Vec<usize>> = release
        .services
        .iter()
        .map(|service| {
            service
                .dependencies
                .iter()
                .filter_map(|dependency| index.get(dependency.name.as_str()).copied())
                .collect()
        })
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; edges.len()];
    let mut found: BTreeSet<Vec<usize>> = BTreeSet::new();
    for start in 0..edges.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // An explicit stack: (node, next edge to follow); the open path is the stack.
        let mut stack = vec![(start, 0usize)];
        marks[start] = Mark::Open;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&target) = edges[node].get(*next) {
                *next += 1;
                match marks[target] {
                    Mark::New => {
                        marks[target] = Mark::Open;
                        stack.push((target, 0));
                    }
                    Mark::Open => {
                        let from = stack
                            .iter()
                            .position(|&(open, _)| open == target)
                            .unwrap_or(0);
                        let mut cycle: Vec<usize> =
                            stack[from..].iter().map(|&(open, _)| open).collect();
                        let smallest = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, &node)| node)
                            .map_or(0, |(at, _)| at);
                        cycle.rotate_left(smallest);
                        found.insert(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    found.into_iter().collect()
}
