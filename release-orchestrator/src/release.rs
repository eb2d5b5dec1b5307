//! A release config (`release-configs/v1.0.0.yml`) read into a typed release, every
//! problem collected with its line and key instead of stopping at the first.

use std::collections::BTreeMap;

use semver::{Version, VersionReq};

use crate::yaml::{self, Node, Value};

/// One thing wrong with a release config.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Problem {
    /// The line it is on (1-based; 0 when it concerns the whole file).
    pub line: usize,
    /// The key path, e.g. `services[2].version` or `deployment_order`.
    pub key: String,
    /// What is wrong, said so it can be fixed.
    pub message: String,
}

impl Problem {
    fn new(line: usize, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            line,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// What a unit is: services and the gateway are deployed; libraries are verified only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// A gRPC service.
    Service,
    /// The API gateway (HTTP health instead of gRPC health).
    Gateway,
    /// A library: built and verified, never started.
    Library,
}

/// A dependency of a service on another at a version requirement.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// The service depended on.
    pub name: String,
    /// The requirement (`"1.0.0"` means `^1.0.0`); `None` when it did not parse.
    pub requirement: Option<VersionReq>,
    /// Where it is written.
    pub line: usize,
    /// Its key path.
    pub key: String,
}

/// One service of the release.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// The unit name, e.g. `erp-hrm-service`.
    pub name: String,
    /// The pinned version; `None` when it did not parse.
    pub version: Option<Version>,
    /// The repository it comes from.
    pub repository: Option<String>,
    /// What it needs first.
    pub dependencies: Vec<Dependency>,
    /// Extra environment variables for the service (`ERP_*` overrides).
    pub env: BTreeMap<String, String>,
    /// How many replicas (Kubernetes; local runs one).
    pub replicas: Option<u32>,
    /// The Helm chart (Kubernetes).
    pub chart: Option<String>,
    /// Helm values files (Kubernetes).
    pub values: Vec<String>,
    /// `kind:` when written; otherwise the unit manifest decides.
    pub kind: Option<UnitKind>,
    /// Where the entry starts.
    pub line: usize,
    /// Its key path, `services[i]`.
    pub key: String,
}

/// One stage of the deployment order: services deployed together.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Service names and the line each is named on.
    pub services: Vec<(String, usize)>,
    /// Where the stage is written.
    pub line: usize,
    /// Its key path.
    pub key: String,
}

/// A release config as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Release {
    /// `release.version`.
    pub version: Option<Version>,
    /// `release.name`.
    pub name: Option<String>,
    /// `release.date`.
    pub date: Option<String>,
    /// `services`, in order.
    pub services: Vec<ServiceSpec>,
    /// `deployment_order`, when given.
    pub order: Option<Vec<Stage>>,
    /// Where `deployment_order` is.
    pub order_line: usize,
    /// `testing`: the suites that gate the release (on Kubernetes, as Jobs).
    pub testing: Vec<TestSuite>,
}

/// Smoke or integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// `smoke_tests`.
    Smoke,
    /// `integration_tests`.
    Integration,
}

/// One test suite of `testing` (the seed writes each key as its own list item; they are
/// read together).
#[derive(Debug, Clone, PartialEq)]
pub struct TestSuite {
    /// Smoke or integration.
    pub kind: TestKind,
    /// Where the suite comes from, e.g. `company/erp-smoke-tests` (its image is
    /// `<registry>/erp-smoke-tests:<release>` unless `image` says otherwise).
    pub repository: Option<String>,
    /// The environment the suite runs in; none: every environment that gates on its kind
    /// (environments decide which kinds of suite they run).
    pub environment: Option<String>,
    /// How long it may run.
    pub timeout: Option<std::time::Duration>,
    /// The image to run, when not derived from the repository.
    pub image: Option<String>,
    /// Where it is written.
    pub line: usize,
}

impl Release {
    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|service| service.name == name)
    }
}

/// Reads a release config; returns what could be read and every problem found on the way.
pub fn parse(source: &str) -> (Release, Vec<Problem>) {
    let mut problems = Vec::new();
    let root = match yaml::parse(source) {
        Ok(root) => root,
        Err(error) => {
            problems.push(Problem::new(
                error.line,
                "",
                format!("not valid YAML: {}", error.message),
            ));
            return (Release::default(), problems);
        }
    };
    let mut release = Release::default();
    let Some(entries) = mapping(&root, "", &mut problems) else {
        return (release, problems);
    };
    let mut seen_services = false;
    for (key, value) in unique_keys(entries, "", &mut problems) {
        match key {
            "release" => read_release_info(value, &mut release, &mut problems),
            "services" => {
                seen_services = true;
                read_services(value, &mut release, &mut problems);
            }
            "deployment_order" => {
                release.order_line = value.line;
                if !value.is_null() {
                    release.order = Some(read_order(value, source, &mut problems));
                }
            }
            "testing" => release.testing = read_testing(value, &mut problems),
            other => problems.push(unknown_key(
                value.line,
                other,
                "release, services, deployment_order, testing",
            )),
        }
    }
    if release.version.is_none() && !problems.iter().any(|p| p.key.starts_with("release")) {
        problems.push(Problem::new(
            0,
            "release.version",
            "missing: the release needs a version",
        ));
    }
    if !seen_services {
        problems.push(Problem::new(
            0,
            "services",
            "missing: the release lists no services",
        ));
    }
    (release, problems)
}

fn unknown_key(line: usize, key: &str, known: &str) -> Problem {
    Problem::new(line, key, format!("unknown key (known here: {known})"))
}

/// The entries of a mapping with each key once (later duplicates are reported).
fn unique_keys<'a>(
    entries: &'a [(Node, Node)],
    prefix: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(&'a str, &'a Node)> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unique = Vec::new();
    for (key, value) in entries {
        let Some(name) = key.as_str() else {
            problems.push(Problem::new(key.line, prefix, "a key must be text"));
            continue;
        };
        if let Some(first) = seen.insert(name, key.line) {
            problems.push(Problem::new(
                key.line,
                join(prefix, name),
                format!("written twice (first on line {first})"),
            ));
            continue;
        }
        unique.push((name, value));
    }
    unique
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn mapping<'a>(
    node: &'a Node,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a [(Node, Node)]> {
    match &node.value {
        Value::Mapping(entries) => Some(entries),
        _ => {
            problems.push(Problem::new(
                node.line,
                key,
                format!("expected a mapping, found {}", node.kind()),
            ));
            None
        }
    }
}

fn text(node: &Node, key: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match node.as_str() {
        Some(text) if !node.is_null() => Some(text.to_owned()),
        _ => {
            problems.push(Problem::new(
                node.line,
                key,
                format!("expected text, found {}", node.kind()),
            ));
            None
        }
    }
}

fn version(node: &Node, key: &str, problems: &mut Vec<Problem>) -> Option<Version> {
    let raw = text(node, key, problems)?;
    match Version::parse(raw.trim().trim_start_matches('v')) {
        Ok(version) => Some(version),
        Err(error) => {
            problems.push(Problem::new(
                node.line,
                key,
                format!("`{raw}` is not a semantic version (MAJOR.MINOR.PATCH): {error}"),
            ));
            None
        }
    }
}

fn read_release_info(node: &Node, release: &mut Release, problems: &mut Vec<Problem>) {
    let Some(entries) = mapping(node, "release", problems) else {
        return;
    };
    for (key, value) in unique_keys(entries, "release", problems) {
        let path = join("release", key);
        match key {
            "version" => release.version = version(value, &path, problems),
            "name" => release.name = text(value, &path, problems),
            "date" => {
                release.date = text(value, &path, problems);
                if let Some(date) = &release.date
                    && !is_iso_date(date)
                {
                    problems.push(Problem::new(
                        value.line,
                        path,
                        format!("`{date}` is not a date (YYYY-MM-DD)"),
                    ));
                }
            }
            other => problems.push(unknown_key(
                value.line,
                &join("release", other),
                "version, name, date",
            )),
        }
    }
    if release.version.is_none() && !problems.iter().any(|p| p.key == "release.version") {
        problems.push(Problem::new(
            node.line,
            "release.version",
            "missing: the release needs a version",
        ));
    }
}

fn is_iso_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let numbers: Option<Vec<u32>> = parts.iter().map(|part| part.parse().ok()).collect();
    matches!(
        (parts.as_slice(), numbers.as_deref()),
        ([y, m, d], Some([_, month, day])) if y.len() == 4 && m.len() == 2 && d.len() == 2
            && (1..=12).contains(month) && (1..=31).contains(day)
    )
}

const SERVICE_KEYS: &str =
    "name, version, repository, dependencies, env, replicas, chart, values, kind";

fn read_services(node: &Node, release: &mut Release, problems: &mut Vec<Problem>) {
    let Value::Sequence(items) = &node.value else {
        problems.push(Problem::new(
            node.line,
            "services",
            format!("expected a list of services, found {}", node.kind()),
        ));
        return;
    };
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("services[{index}]");
        let Some(entries) = mapping(item, &prefix, problems) else {
            continue;
        };
        let mut service = ServiceSpec {
            name: String::new(),
            version: None,
            repository: None,
            dependencies: Vec::new(),
            env: BTreeMap::new(),
            replicas: None,
            chart: None,
            values: Vec::new(),
            kind: None,
            line: item.line,
            key: prefix.clone(),
        };
        let mut has_version = false;
        for (key, value) in unique_keys(entries, &prefix, problems) {
            let path = join(&prefix, key);
            match key {
                "name" => service.name = text(value, &path, problems).unwrap_or_default(),
                "version" => {
                    has_version = true;
                    service.version = version(value, &path, problems);
                }
                "repository" => service.repository = text(value, &path, problems),
                "dependencies" => service.dependencies = read_dependencies(value, &path, problems),
                "env" => service.env = read_env(value, &path, problems),
                "replicas" => {
                    service.replicas = text(value, &path, problems).and_then(|raw| {
                        raw.parse().ok().or_else(|| {
                            problems.push(Problem::new(
                                value.line,
                                &path,
                                format!("`{raw}` is not a whole number of replicas"),
                            ));
                            None
                        })
                    });
                }
                "chart" => service.chart = text(value, &path, problems),
                "values" => service.values = read_text_list(value, &path, problems),
                "kind" => {
                    service.kind =
                        text(value, &path, problems).and_then(|raw| match raw.as_str() {
                            "service" => Some(UnitKind::Service),
                            "gateway" => Some(UnitKind::Gateway),
                            "library" => Some(UnitKind::Library),
                            other => {
                                problems.push(Problem::new(
                                    value.line,
                                    &path,
                                    format!("`{other}` is not a kind (service, gateway, library)"),
                                ));
                                None
                            }
                        });
                }
                other => {
                    problems.push(unknown_key(value.line, &join(&prefix, other), SERVICE_KEYS))
                }
            }
        }
        if service.name.is_empty() {
            problems.push(Problem::new(
                item.line,
                join(&prefix, "name"),
                "missing: every service needs a name",
            ));
            continue;
        }
        if !is_dns_label(&service.name) {
            problems.push(Problem::new(
                item.line,
                join(&prefix, "name"),
                format!(
                    "`{}` is not a unit name: lower-case letters, digits and `-`, at most 63, starting and ending with a letter or digit",
                    service.name
                ),
            ));
            continue;
        }
        if !has_version {
            problems.push(Problem::new(
                item.line,
                join(&prefix, "version"),
                format!("missing: {} needs a version", service.name),
            ));
        }
        if let Some(first) = first_line.get(&service.name) {
            problems.push(Problem::new(
                item.line,
                join(&prefix, "name"),
                format!("{} is defined twice (first on line {first})", service.name),
            ));
            continue;
        }
        first_line.insert(service.name.clone(), item.line);
        release.services.push(service);
    }
}

/// `- erp-shared-libs: "1.0.0"` items, or one mapping `{erp-shared-libs: "1.0.0"}`.
fn read_dependencies(node: &Node, prefix: &str, problems: &mut Vec<Problem>) -> Vec<Dependency> {
    let pairs: Vec<(&Node, &Node)> = match &node.value {
        Value::Sequence(items) => items
            .iter()
            .filter_map(|item| match &item.value {
                Value::Mapping(entries) if entries.len() == 1 => {
                    Some((&entries[0].0, &entries[0].1))
                }
                _ => {
                    problems.push(Problem::new(
                        item.line,
                        prefix,
                        "each dependency is `- <service>: \"<version requirement>\"`",
                    ));
                    None
                }
            })
            .collect(),
        Value::Mapping(entries) => entries.iter().map(|(key, value)| (key, value)).collect(),
        _ if node.is_null() => Vec::new(),
        _ => {
            problems.push(Problem::new(
                node.line,
                prefix,
                format!(
                    "expected a list of `<service>: <version>`, found {}",
                    node.kind()
                ),
            ));
            Vec::new()
        }
    };
    pairs
        .into_iter()
        .enumerate()
        .filter_map(|(index, (name, requirement))| {
            let key = format!("{prefix}[{index}]");
            let name = text(name, &key, problems)?;
            let requirement =
                text(requirement, &format!("{key}.{name}"), problems).and_then(|raw| {
                    VersionReq::parse(raw.trim())
                        .map_err(|error| {
                            problems.push(Problem::new(
                                requirement.line,
                                format!("{key}.{name}"),
                                format!("`{raw}` is not a version requirement: {error}"),
                            ));
                        })
                        .ok()
                });
            Some(Dependency {
                name,
                requirement,
                line: node_line(requirement_line(node, index)),
                key,
            })
        })
        .collect()
}

fn requirement_line(node: &Node, index: usize) -> Option<usize> {
    match &node.value {
        Value::Sequence(items) => items.get(index).map(|item| item.line),
        Value::Mapping(entries) => entries.get(index).map(|(key, _)| key.line),
        Value::Scalar { .. } => None,
    }
}

fn node_line(line: Option<usize>) -> usize {
    line.unwrap_or(0)
}

fn read_env(node: &Node, prefix: &str, problems: &mut Vec<Problem>) -> BTreeMap<String, String> {
    let Some(entries) = mapping(node, prefix, problems) else {
        return BTreeMap::new();
    };
    unique_keys(entries, prefix, problems)
        .into_iter()
        .filter_map(|(key, value)| {
            let path = join(prefix, key);
            if !key.starts_with("ERP_") && !key.starts_with("RUST_") {
                problems.push(Problem::new(
                    value.line,
                    &path,
                    "service settings are ERP_* (or RUST_*) variables",
                ));
                return None;
            }
            Some((key.to_owned(), text(value, &path, problems)?))
        })
        .collect()
}

fn read_text_list(node: &Node, prefix: &str, problems: &mut Vec<Problem>) -> Vec<String> {
    match &node.value {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| text(item, &format!("{prefix}[{index}]"), problems))
            .collect(),
        Value::Scalar { .. } if !node.is_null() => {
            node.as_str().map(str::to_owned).into_iter().collect()
        }
        _ => Vec::new(),
    }
}

fn read_testing(node: &Node, problems: &mut Vec<Problem>) -> Vec<TestSuite> {
    let Some(entries) = mapping(node, "testing", problems) else {
        return Vec::new();
    };
    let mut suites = Vec::new();
    for (key, value) in unique_keys(entries, "testing", problems) {
        let kind = match key {
            "smoke_tests" => TestKind::Smoke,
            "integration_tests" => TestKind::Integration,
            other => {
                problems.push(unknown_key(
                    value.line,
                    &join("testing", other),
                    "integration_tests, smoke_tests",
                ));
                continue;
            }
        };
        let prefix = join("testing", key);
        // `- repository: x` / `- timeout: y` items, or one mapping.
        let pairs: Vec<(&Node, &Node)> = match &value.value {
            Value::Sequence(items) => items
                .iter()
                .filter_map(|item| match &item.value {
                    Value::Mapping(entries) => Some(entries.iter().map(|(k, v)| (k, v))),
                    _ => {
                        problems.push(Problem::new(
                            item.line,
                            &prefix,
                            format!("expected `key: value` items, found {}", item.kind()),
                        ));
                        None
                    }
                })
                .flatten()
                .collect(),
            Value::Mapping(entries) => entries.iter().map(|(k, v)| (k, v)).collect(),
            _ if value.is_null() => continue,
            _ => {
                problems.push(Problem::new(
                    value.line,
                    &prefix,
                    format!("expected a list or mapping, found {}", value.kind()),
                ));
                continue;
            }
        };
        let mut suite = TestSuite {
            kind,
            repository: None,
            environment: None,
            timeout: None,
            image: None,
            line: value.line,
        };
        for (name, setting) in pairs {
            let Some(name) = name.as_str() else { continue };
            let path = join(&prefix, name);
            match name {
                "repository" => suite.repository = text(setting, &path, problems),
                "environment" => suite.environment = text(setting, &path, problems),
                "image" => suite.image = text(setting, &path, problems),
                "timeout" => {
                    suite.timeout = text(setting, &path, problems).and_then(|raw| {
                        humantime_duration(&raw).or_else(|| {
                            problems.push(Problem::new(
                                setting.line,
                                &path,
                                format!("`{raw}` is not a duration (e.g. 10m, 90s)"),
                            ));
                            None
                        })
                    });
                }
                other => problems.push(unknown_key(
                    setting.line,
                    &join(&prefix, other),
                    "repository, environment, timeout, image",
                )),
            }
        }
        suites.push(suite);
    }
    suites
}

/// `10m`, `90s`, `1h`, `500ms`.
fn humantime_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    Some(match unit {
        "ms" => std::time::Duration::from_millis(number),
        "s" => std::time::Duration::from_secs(number),
        "m" => std::time::Duration::from_secs(number.checked_mul(60)?),
        "h" => std::time::Duration::from_secs(number.checked_mul(3600)?),
        _ => return None,
    })
}

/// `deployment_order` as a list (a name or a list of names per stage) or in the literal
/// form YAML reads as one string: `1. a 2. b 3. [c, d]`.
fn read_order(node: &Node, source: &str, problems: &mut Vec<Problem>) -> Vec<Stage> {
    match &node.value {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let key = format!("deployment_order[{index}]");
                let services = match &item.value {
                    Value::Scalar { text, .. } => parse_stage_text(strip_number(text))
                        .into_iter()
                        .map(|name| (name, item.line))
                        .collect(),
                    Value::Sequence(names) if names.is_empty() => {
                        problems.push(Problem::new(item.line, &key, "a stage names no service"));
                        return None;
                    }
                    Value::Sequence(names) => names
                        .iter()
                        .filter_map(|name| Some((text(name, &key, problems)?, name.line)))
                        .collect(),
                    Value::Mapping(_) => {
                        problems.push(Problem::new(
                            item.line,
                            &key,
                            "a stage is a service name or a list of names",
                        ));
                        return None;
                    }
                };
                Some(Stage {
                    services,
                    line: item.line,
                    key,
                })
            })
            .collect(),
        Value::Scalar { text, .. } => literal_order(text, node.line, source, problems),
        Value::Mapping(_) => {
            problems.push(Problem::new(
                node.line,
                "deployment_order",
                "expected a list of stages (or `1. a 2. [b, c]`), found a mapping",
            ));
            Vec::new()
        }
    }
}

fn strip_number(text: &str) -> &str {
    let trimmed = text.trim();
    match trimmed.split_once(". ") {
        Some((number, rest))
            if !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()) =>
        {
            rest
        }
        _ => trimmed,
    }
}

/// A DNS-1123 label: what Kubernetes object names, helm release names and our folder
/// names all accept.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `[a, b]` or `a` → names.
fn parse_stage_text(text: &str) -> Vec<String> {
    let text = text.trim();
    let inner = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    inner
        .split(',')
        .map(|name| {
            name.trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .to_owned()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The seed's `1. a 2. b 3. [c, d]` string: stages split at each `N.`, numbers checked to
/// count up from 1, each stage's line found in the source from the node's line on.
fn literal_order(text: &str, line: usize, source: &str, problems: &mut Vec<Problem>) -> Vec<Stage> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut stages: Vec<(u32, Vec<&str>)> = Vec::new();
    let mut depth = 0usize;
    for token in tokens {
        let number = token
            .strip_suffix('.')
            .filter(|digits| {
                depth == 0 && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
            })
            .and_then(|digits| digits.parse().ok());
        match number {
            Some(number) => stages.push((number, Vec::new())),
            None => {
                depth += token.matches('[').count();
                depth = depth.saturating_sub(token.matches(']').count());
                match stages.last_mut() {
                    Some((_, words)) => words.push(token),
                    None => {
                        problems.push(Problem::new(
                            line,
                            "deployment_order",
                            format!("expected `1. <service>` at `{token}`: number each stage"),
                        ));
                        return Vec::new();
                    }
                }
            }
        }
    }
    let lines: Vec<&str> = source.lines().collect();
    let mut search_from = line.saturating_sub(1);
    stages
        .into_iter()
        .enumerate()
        .map(|(index, (number, words))| {
            let key = format!("deployment_order[{index}]");
            let marker = format!("{number}.");
            let stage_line = lines
                .iter()
                .enumerate()
                .skip(search_from)
                .find(|(_, text)| text.split_whitespace().any(|word| word == marker))
                .map_or(line, |(at, _)| {
                    search_from = at;
                    at + 1
                });
            let expected = u32::try_from(index + 1).unwrap_or(u32::MAX);
            if number != expected {
                problems.push(Problem::new(
                    stage_line,
                    &key,
                    format!("stage numbered {number}, expected {expected}"),
                ));
            }
            let joined = words.join(" ");
            let services = parse_stage_text(&joined);
            if services.is_empty() {
                problems.push(Problem::new(
                    stage_line,
                    &key,
                    format!("stage {number} names no service"),
                ));
            }
            Stage {
                services: services
                    .into_iter()
                    .map(|name| (name, stage_line))
                    .collect(),
                line: stage_line,
                key,
            }
        })
        .collect()
}
