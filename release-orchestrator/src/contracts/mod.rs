//! Which units a contract change affects, how, and whether it is allowed: the contracts at
//! two git revisions compiled and compared symbol by symbol, every change followed through
//! message nesting to the methods and events that carry it, then to the units whose
//! `service.yaml` serves, uses, publishes or consumes them. Changes under
//! `erp-shared-libs/<crate>` reach the units whose crates depend on it (their
//! `Cargo.toml` files at the head revision). A wire or REST
//! break inside an existing `vN` package fails the check; it belongs in `vN+1`.

pub mod diff;
pub mod dispatch;
pub mod source;

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    path::Path,
};

use anyhow::Context as _;
use serde::Serialize;

use self::diff::{Carrier, ChangeClass, ContractVersion, SymbolChange};
use crate::workspace::Manifest;

/// How one unit is affected.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UnitImpact {
    /// The unit.
    pub unit: String,
    /// Its repository (where CI is triggered).
    pub repository: String,
    /// The classes of change that reach it.
    pub classes: BTreeSet<ChangeClass>,
    /// Shared-library crates it depends on that changed.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub shared_libs: BTreeSet<String>,
    /// Why, one line per path by which a change reaches it.
    pub reasons: BTreeSet<String>,
}

impl UnitImpact {
    /// The classes by name, `shared_lib` last when a shared library reaches it.
    pub fn class_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> =
            self.classes.iter().map(|class| class.as_str()).collect();
        if !self.shared_libs.is_empty() {
            names.push("shared_lib");
        }
        names
    }
}

/// A change the contract policy refuses.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Violation {
    /// The symbol.
    pub symbol: String,
    /// What changed.
    pub what: String,
    /// The rule it breaks.
    pub rule: String,
}

/// Everything `contracts affected` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The base revision (commit).
    pub base: String,
    /// The head revision (commit).
    pub head: String,
    /// Packages with any change.
    pub changed_packages: BTreeSet<String>,
    /// Every changed symbol.
    pub changes: Vec<SymbolChange>,
    /// The affected units, by name.
    pub units: Vec<UnitImpact>,
    /// Policy violations (non-empty fails the check).
    pub violations: Vec<Violation>,
}

/// The affected units of `changes`, through the manifests.
pub fn analyse(
    base: &ContractVersion,
    head: &ContractVersion,
    changes: &[SymbolChange],
    manifests: &[Manifest],
) -> (Vec<UnitImpact>, Vec<Violation>) {
    let reach = Reach::new(base, head);
    let mut units: BTreeMap<String, UnitImpact> = BTreeMap::new();
    let base_packages = base.packages();
    let mut violations = Vec::new();
    for change in changes {
        if change.class.is_breaking() && base_packages.contains(&change.package) {
            violations.push(Violation {
                symbol: change.symbol.clone(),
                what: change.what.clone(),
                rule: format!(
                    "{} breaks {} clients inside the released package {}; make it additive, or put it in a new major version ({})",
                    change.symbol,
                    if change.class == ChangeClass::Rest {
                        "JSON/REST"
                    } else {
                        "protobuf"
                    },
                    change.package,
                    next_major(&change.package)
                ),
            });
        }
        let (services, topics) = reach.of(&change.carrier);
        for manifest in manifests {
            let contracts = manifest.contracts.clone().unwrap_or_default();
            let events = manifest.events.clone().unwrap_or_default();
            let mut hits: Vec<(ChangeClass, String)> = Vec::new();
            for (role, entries) in [("serves", &contracts.serves), ("uses", &contracts.uses)] {
                for service in &services {
                    if entries.iter().any(|entry| covers(entry, service)) {
                        hits.push((
                            change.class,
                            format!("{role} {service}: {} {}", change.symbol, change.what),
                        ));
                    }
                }
            }
            for topic in &topics {
                if events.publishes.contains(topic) {
                    hits.push((
                        change.class,
                        format!("publishes {topic}: {} {}", change.symbol, change.what),
                    ));
                }
                if events.consumes.contains(topic) {
                    // Events travel as binary protobuf: JSON names do not matter to consumers,
                    // anything that breaks the wire breaks the consumer.
                    let class = match change.class {
                        ChangeClass::Wire => Some(ChangeClass::Event),
                        ChangeClass::Rest | ChangeClass::Access => None,
                        other => Some(other),
                    };
                    if let Some(class) = class {
                        hits.push((
                            class,
                            format!("consumes {topic}: {} {}", change.symbol, change.what),
                        ));
                    }
                }
            }
            if hits.is_empty() {
                continue;
            }
            let impact = units
                .entry(manifest.name.clone())
                .or_insert_with(|| UnitImpact {
                    unit: manifest.name.clone(),
                    repository: manifest.repository.clone(),
                    classes: BTreeSet::new(),
                    shared_libs: BTreeSet::new(),
                    reasons: BTreeSet::new(),
                });
            for (class, reason) in hits {
                impact.classes.insert(class);
                impact.reasons.insert(reason);
            }
        }
    }
    violations.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    violations.dedup();
    (units.into_values().collect(), violations)
}

/// `erp.hrm.v1` → `erp.hrm.v2`.
fn next_major(package: &str) -> String {
    match package.rsplit_once(".v") {
        Some((stem, version)) => match version.parse::<u32>() {
            Ok(number) => format!("{stem}.v{}", number + 1),
            Err(_) => format!("{package}.v2"),
        },
        None => format!("{package}.v2"),
    }
}

/// Whether a manifest entry (a service, or a whole package) covers `service`.
fn covers(entry: &str, service: &str) -> bool {
    entry == service
        || service
            .strip_prefix(entry)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Where a changed message, enum, method or event reaches: services and topics.
struct Reach {
    /// Message or enum → the messages that have a field of that type.
    contained_in: BTreeMap<String, BTreeSet<String>>,
    /// Service of each method, with its request and response types.
    methods: Vec<(String, String, String, String)>,
    /// Payload type → topics (before and after).
    topics: BTreeMap<String, BTreeSet<String>>,
}

impl Reach {
    fn new(base: &ContractVersion, head: &ContractVersion) -> Self {
        let mut contained_in: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut methods = Vec::new();
        let mut topics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for version in [base, head] {
            for message in version.pool.all_messages() {
                for field in message.fields() {
                    let target = match field.kind() {
                        prost_reflect::Kind::Message(inner) => inner.full_name().to_owned(),
                        prost_reflect::Kind::Enum(inner) => inner.full_name().to_owned(),
                        _ => continue,
                    };
                    // Map entries stand for their parent: follow them through.
                    let holder = if message.is_map_entry() {
                        message.parent_message().map_or_else(
                            || message.full_name().to_owned(),
                            |parent| parent.full_name().to_owned(),
                        )
                    } else {
                        message.full_name().to_owned()
                    };
                    contained_in.entry(target).or_default().insert(holder);
                }
            }
            for method in version.contracts.methods() {
                methods.push((
                    method.service.clone(),
                    method.grpc_path.clone(),
                    method.descriptor.input().full_name().to_owned(),
                    method.descriptor.output().full_name().to_owned(),
                ));
            }
            for event in version.contracts.events() {
                topics
                    .entry(event.payload_type.clone())
                    .or_default()
                    .insert(event.topic.clone());
            }
        }
        Self {
            contained_in,
            methods,
            topics,
        }
    }

    /// Every message that is `name` or carries it, however deeply.
    fn carriers_of(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::from([name.to_owned()]);
        let mut queue = VecDeque::from([name.to_owned()]);
        while let Some(current) = queue.pop_front() {
            for holder in self.contained_in.get(&current).into_iter().flatten() {
                if seen.insert(holder.clone()) {
                    queue.push_back(holder.clone());
                }
            }
        }
        seen
    }

    fn of(&self, carrier: &Carrier) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut services = BTreeSet::new();
        let mut topics = BTreeSet::new();
        match carrier {
            Carrier::Message(name) | Carrier::Enum(name) => {
                let carriers = self.carriers_of(name);
                for (service, _, input, output) in &self.methods {
                    if carriers.contains(input) || carriers.contains(output) {
                        services.insert(service.clone());
                    }
                }
                for (payload, payload_topics) in &self.topics {
                    if carriers.contains(payload) {
                        topics.extend(payload_topics.iter().cloned());
                    }
                }
            }
            Carrier::Method { service, .. } => {
                services.insert(service.clone());
            }
            Carrier::Event(payload) => {
                topics.extend(self.topics.get(payload).into_iter().flatten().cloned());
            }
        }
        (services, topics)
    }
}

/// The whole check between two revisions of `repo`.
pub fn affected(repo: &Path, base: &str, head: &str) -> anyhow::Result<Report> {
    let head_commit = source::resolve(repo, head)?;
    // From where the change branched off: later commits on the base branch are not part
    // of this change (they would look like removals).
    let base_commit = source::merge_base(repo, &source::resolve(repo, base)?, &head_commit)?;
    let paths = source::changed_paths(repo, &base_commit, &head_commit)?;
    let contracts_changed = paths.iter().any(|path| path.starts_with("proto/"));
    let manifests = source::manifests_at(repo, &head_commit)?;
    let (changes, mut units, violations) = if contracts_changed {
        let before = source::contracts_at(repo, &base_commit)?;
        let after = source::contracts_at(repo, &head_commit)?;
        let changes = diff::diff(&before, &after);
        let (units, violations) = analyse(&before, &after, &changes, &manifests);
        (changes, units, violations)
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    let changed_crates: BTreeSet<String> = paths
        .iter()
        .filter_map(|path| path.strip_prefix("erp-shared-libs/"))
        .filter_map(|rest| rest.split_once('/').map(|(krate, _)| krate.to_owned()))
        .collect();
    if !changed_crates.is_empty() {
        let dependents = shared_lib_dependents(repo, &head_commit, &changed_crates)?;
        for (unit, crates) in dependents {
            let Some(manifest) = manifests.iter().find(|manifest| manifest.name == unit) else {
                continue;
            };
            let at = match units.iter().position(|impact| impact.unit == unit) {
                Some(at) => at,
                None => {
                    units.push(UnitImpact {
                        unit: unit.clone(),
                        repository: manifest.repository.clone(),
                        classes: BTreeSet::new(),
                        shared_libs: BTreeSet::new(),
                        reasons: BTreeSet::new(),
                    });
                    units.len() - 1
                }
            };
            for krate in crates {
                units[at].reasons.insert(format!(
                    "depends on the shared library {krate}, which changed"
                ));
                units[at].shared_libs.insert(krate);
            }
        }
        units.sort_by(|a, b| a.unit.cmp(&b.unit));
    }
    Ok(Report {
        base: base_commit,
        head: head_commit,
        changed_packages: changes
            .iter()
            .map(|change| change.package.clone())
            .collect(),
        changes,
        units,
        violations,
    })
}

/// For each unit, the changed shared crates its crates depend on (directly or through
/// other workspace crates), from the `Cargo.toml` files at `head` read from git objects —
/// the same shape `cargo metadata` gives, without checking anything out. The shared-libs
/// unit itself is included when any of its crates changed.
pub fn shared_lib_dependents(
    repo: &Path,
    head: &str,
    changed: &BTreeSet<String>,
) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut packages = Vec::new();
    for path in source::files_at(repo, head)?
        .into_iter()
        .filter(|path| path.ends_with("/Cargo.toml"))
    {
        let text = source::file_at(repo, head, &path)?;
        let manifest: toml::Table = text
            .parse()
            .with_context(|| format!("{path} at {head} is not TOML"))?;
        let Some(name) = manifest
            .get("package")
            .and_then(|package| package.get("name"))
            .and_then(|name| name.as_str())
        else {
            continue;
        };
        let mut dependencies = Vec::new();
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for (key, value) in manifest
                .get(section)
                .and_then(|table| table.as_table())
                .into_iter()
                .flatten()
            {
                // `alias = { package = "real-name", ... }` depends on real-name.
                let real = value
                    .get("package")
                    .and_then(|package| package.as_str())
                    .unwrap_or(key);
                dependencies.push(serde_json::json!({ "name": real }));
            }
        }
        packages.push(serde_json::json!({
            "name": name,
            "manifest_path": format!("/repo/{path}"),
            "dependencies": dependencies,
        }));
    }
    let metadata = serde_json::json!({ "workspace_root": "/repo", "packages": packages });
    Ok(dependents_from_metadata(&metadata, changed))
}

/// [`shared_lib_dependents`] on parsed `cargo metadata` output.
pub fn dependents_from_metadata(
    metadata: &serde_json::Value,
    changed: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let root = metadata["workspace_root"].as_str().unwrap_or_default();
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    // Package → (unit folder, direct dependencies).
    let mut graph: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for package in &packages {
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let manifest = package["manifest_path"].as_str().unwrap_or_default();
        let relative = manifest
            .strip_prefix(root)
            .unwrap_or(manifest)
            .trim_start_matches('/');
        let unit = relative.split('/').next().unwrap_or_default().to_owned();
        let dependencies = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|dependency| dependency["name"].as_str().map(str::to_owned))
            .collect();
        graph.insert(name, (unit, dependencies));
    }
    // Which changed crates each workspace package reaches, to a fixpoint.
    let mut reaches: BTreeMap<String, BTreeSet<String>> = graph
        .keys()
        .map(|name| {
            let own: BTreeSet<String> = changed
                .iter()
                .filter(|krate| *krate == name)
                .cloned()
                .collect();
            (name.clone(), own)
        })
        .collect();
    loop {
        let mut grew = false;
        for (name, (_, dependencies)) in &graph {
            let mut found: BTreeSet<String> = dependencies
                .iter()
                .filter(|dependency| changed.contains(*dependency))
                .cloned()
                .collect();
            for dependency in dependencies {
                if let Some(inner) = reaches.get(dependency) {
                    found.extend(inner.iter().cloned());
                }
            }
            let entry = reaches.entry(name.clone()).or_default();
            let before = entry.len();
            entry.extend(found);
            grew |= entry.len() != before;
        }
        if !grew {
            break;
        }
    }
    let mut by_unit: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, (unit, _)) in &graph {
        if let Some(crates) = reaches.get(name).filter(|crates| !crates.is_empty()) {
            by_unit
                .entry(unit.clone())
                .or_default()
                .extend(crates.iter().cloned());
        }
    }
    by_unit
}

/// `-o github-matrix`: `{"include": [{unit, repository, classes}]}` for a job matrix.
pub fn github_matrix(report: &Report) -> serde_json::Value {
    let include: Vec<serde_json::Value> = report
        .units
        .iter()
        .map(|impact| {
            let classes = impact.class_names();
            serde_json::json!({
                "unit": impact.unit,
                "repository": impact.repository,
                "classes": classes.join(","),
            })
        })
        .collect();
    serde_json::json!({ "include": include })
}
