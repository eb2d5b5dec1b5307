//! Release configs in, problems out: the seed's own file, our v1.0.0, and one case per kind
//! of problem, each checked for its line and key.

use std::path::Path;

use release_orchestrator::{
    plan::{Change, plan, stages},
    release::{Problem, parse},
    validate::validate,
    workspace::Workspace,
};

fn problems_of(source: &str) -> Vec<Problem> {
    let (release, mut problems) = parse(source);
    problems.extend(validate(&release, None));
    problems.sort();
    problems
}

fn repository() -> Workspace {
    let root = Workspace::find_root(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("root");
    Workspace::discover(&root).expect("units")
}

/// Asserts a problem on `line` whose key contains `key` and message contains `words`.
#[track_caller]
fn assert_problem(problems: &[Problem], line: usize, key: &str, words: &str) {
    assert!(
        problems
            .iter()
            .any(|p| p.line == line && p.key.contains(key) && p.message.contains(words)),
        "no problem on line {line} at `{key}` saying `{words}`; got:\n{}",
        problems
            .iter()
            .map(|p| format!("  {}: {}: {}", p.line, p.key, p.message))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

const BASE: &str = r#"release:
  version: "2.0.0"
  name: "Test"
  date: "2026-01-31"
services:
  - name: a
    version: "1.0.0"
  - name: b
    version: "1.2.0"
    dependencies:
      - a: "1.0.0"
deployment_order:
  - a
  - b
"#;

#[test]
fn a_well_formed_release_has_no_problems() {
    assert_eq!(problems_of(BASE), Vec::<Problem>::new());
}

#[test]
fn the_seed_release_parses_then_fails_with_precise_messages() {
    let source = include_str!("fixtures/seed-v1.0.0.yml");
    let (release, parse_problems) = parse(source);
    assert_eq!(parse_problems, Vec::<Problem>::new(), "it parses");
    let order = release.order.as_ref().expect("the literal order is read");
    assert_eq!(order.len(), 6);
    assert_eq!(
        order[2]
            .services
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        ["erp-hrm-service", "erp-crm-service", "erp-finance-service"]
    );
    assert_eq!(order[0].line, 33, "each stage knows its own line");
    assert_eq!(order[5].line, 38);
    let problems = validate(&release, None);
    for (line, name) in [
        (35, "erp-finance-service"),
        (36, "erp-notification-service"),
        (36, "erp-file-service"),
        (37, "erp-api-gateway"),
        (38, "erp-frontend"),
    ] {
        assert_problem(
            &problems,
            line,
            "deployment_order",
            &format!("{name}, which `services` does not define"),
        );
    }
    assert_eq!(problems.len(), 5, "{problems:#?}");
}

#[test]
fn our_release_is_valid_against_this_repository() {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("release-configs/v1.0.0.yml"),
    )
    .expect("our release config");
    let (release, mut problems) = parse(&source);
    problems.extend(validate(&release, Some(&repository())));
    assert_eq!(problems, Vec::<Problem>::new());
    let planned = plan(&release, "local", &Default::default(), Some(&repository()));
    assert_eq!(planned.stages.len(), 4);
    assert_eq!(planned.stages[0].services[0].change, Change::Library);
    assert_eq!(planned.stages[1].services[0].change, Change::New);
}

#[test]
fn every_kind_of_problem_is_reported_with_its_line_and_key() {
    // (source, line, key, words)
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "release: {version: \"1.0.0\"}\nservices: []\nflavour: x\n",
            3,
            "flavour",
            "unknown key",
        ),
        (
            "release: {version: \"1.0\"}\nservices: []\n",
            1,
            "release.version",
            "not a semantic version",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"x.y\"\n",
            4,
            "services[0].version",
            "not a semantic version",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\n    colour: red\n",
            5,
            "services[0].colour",
            "unknown key",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\n  - name: a\n    version: \"1.0.0\"\n",
            5,
            "services[1].name",
            "defined twice (first on line 3)",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\ndeployment_order:\n  - a\n  - ghost\n",
            7,
            "deployment_order[1]",
            "ghost, which `services` does not define",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\ndeployment_order:\n  - a\n  - []\n",
            7,
            "deployment_order[1]",
            "a stage names no service",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\n  - name: b\n    version: \"1.0.0\"\ndeployment_order:\n  - a\n",
            5,
            "services[1].name",
            "no stage of deployment_order",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\n    dependencies:\n      - b: \"1.0.0\"\n  - name: b\n    version: \"1.0.0\"\n    dependencies:\n      - a: \"1.0.0\"\n",
            3,
            "services[0].dependencies",
            "dependency cycle: a → b → a",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\n  - name: b\n    version: \"1.0.0\"\n    dependencies:\n      - a: \"1.0.0\"\ndeployment_order:\n  - [a, b]\n",
            8,
            "services[1].dependencies[0]",
            "deployed in the same stage",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\n  - name: b\n    version: \"1.0.0\"\n    dependencies:\n      - a: \"1.0.0\"\ndeployment_order:\n  - b\n  - a\n",
            8,
            "services[1].dependencies[0]",
            "later, in stage 2",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"2.1.0\"\n  - name: b\n    version: \"1.0.0\"\n    dependencies:\n      - a: \"1.4\"\n",
            8,
            "services[1].dependencies[0]",
            "needs a ^1.4, but the release pins 2.1.0",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\n    dependencies:\n      - z: \"1.0.0\"\n",
            6,
            "services[0].dependencies[0]",
            "z, which `services` does not define",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\n    dependencies:\n      - a: \"not a range\"\n",
            6,
            "services[0].dependencies[0].a",
            "not a version requirement",
        ),
        (
            "release: {version: \"1.0.0\", date: \"21/11/2026\"}\nservices: []\n",
            1,
            "release.date",
            "not a date",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: a\n    version: \"1.0.0\"\n    env: {DATABASE: x}\n",
            5,
            "services[0].env.DATABASE",
            "ERP_*",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices: [\n",
            3,
            "",
            "not valid YAML",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices: []\ntesting:\n  smoke_tests:\n    - repository: x\n    - timeout: soon\n",
            6,
            "testing.smoke_tests.timeout",
            "not a duration",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices:\n  - name: Bad_Name\n    version: \"1.0.0\"\n",
            3,
            "services[0].name",
            "not a unit name",
        ),
        (
            "release: {version: \"1.0.0\"}\nservices: []\ntesting:\n  smoke_tests:\n    - flavour: x\n",
            5,
            "testing.smoke_tests.flavour",
            "unknown key",
        ),
    ];
    for (source, line, key, words) in cases {
        assert_problem(&problems_of(source), *line, key, words);
    }
}

#[test]
fn all_problems_come_at_once() {
    let source = "release: {version: \"one\"}\nservices:\n  - name: a\n    version: \"1.0\"\n    extra: 1\ndeployment_order:\n  - a\n  - ghost\n";
    let problems = problems_of(source);
    assert_problem(&problems, 1, "release.version", "semantic version");
    assert_problem(&problems, 4, "services[0].version", "semantic version");
    assert_problem(&problems, 5, "services[0].extra", "unknown key");
    assert_problem(&problems, 8, "deployment_order[1]", "ghost");
}

#[test]
fn the_local_environment_needs_the_unit_at_the_pinned_version() {
    let source = "release: {version: \"1.0.0\"}\nservices:\n  - name: erp-auth-service\n    version: \"9.9.9\"\n  - name: erp-payroll\n    version: \"1.0.0\"\n";
    let (release, _) = parse(source);
    let problems = validate(&release, Some(&repository()));
    assert_problem(
        &problems,
        3,
        "services[0].version",
        "pinned at 9.9.9, but erp-auth-service/Cargo.toml says 1.0.0",
    );
    assert_problem(&problems, 5, "services[1].name", "no unit erp-payroll");
}

#[test]
fn without_an_order_stages_follow_the_dependencies() {
    let source = "release: {version: \"1.0.0\"}\nservices:\n  - {name: gw, version: \"1.0.0\", dependencies: [{hrm: \"1\"}, {auth: \"1\"}]}\n  - {name: hrm, version: \"1.0.0\", dependencies: [{auth: \"1\"}]}\n  - {name: crm, version: \"1.0.0\", dependencies: [{auth: \"1\"}]}\n  - {name: auth, version: \"1.0.0\"}\n";
    let (release, problems) = parse(source);
    assert_eq!(problems, Vec::<Problem>::new());
    assert_eq!(
        stages(&release),
        vec![
            vec!["auth".to_owned()],
            vec!["crm".to_owned(), "hrm".to_owned()],
            vec!["gw".to_owned()]
        ]
    );
    let running = [
        ("auth".to_owned(), semver::Version::new(0, 9, 0)),
        ("hrm".to_owned(), semver::Version::new(1, 0, 0)),
        ("gw".to_owned(), semver::Version::new(2, 0, 0)),
    ]
    .into_iter()
    .collect();
    let planned = plan(&release, "local", &running, None);
    let change = |name: &str| {
        planned
            .stages
            .iter()
            .flat_map(|stage| &stage.services)
            .find(|service| service.name == name)
            .expect("planned")
            .change
            .clone()
    };
    assert_eq!(
        change("auth"),
        Change::Upgrade {
            from: "0.9.0".into()
        }
    );
    assert_eq!(change("hrm"), Change::Unchanged);
    assert_eq!(change("crm"), Change::New);
    assert_eq!(
        change("gw"),
        Change::Downgrade {
            from: "2.0.0".into()
        }
    );
    assert!(planned.has_changes());
}
