//! `contracts affected` on real git repositories in temporary folders: the repository's
//! contracts and unit manifests (plus CRM and finance manifests, whose services exist only
//! as contracts) committed as the base, then one edit per case committed on top, compiled
//! by protox from git objects at both revisions and mapped to units.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
};

use release_orchestrator::contracts::{
    Report, affected, dependents_from_metadata, diff::ChangeClass,
};

fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(repo)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        status.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

const CRM_MANIFEST: &str = "name: erp-crm-service\nversion: 1.0.0\nrepository: company/erp-crm-service\nkind: service\nports: {grpc: 50055, admin: 9055}\ncontracts:\n  serves: [erp.crm.v1.CrmService]\n  uses: [erp.auth.v1]\nevents:\n  publishes: [erp.crm.opportunity.v1]\n  consumes: []\ndepends_on: [erp-auth-service]\n";
const FINANCE_MANIFEST: &str = "name: erp-finance-service\nversion: 1.0.0\nrepository: company/erp-finance-service\nkind: service\nports: {grpc: 50057, admin: 9057}\ncontracts:\n  serves: [erp.finance.v1.FinanceService]\n  uses: [erp.auth.v1.AuthService]\nevents:\n  publishes: []\n  consumes: [erp.crm.opportunity.v1]\ndepends_on: [erp-auth-service]\n";

/// A repository holding the contracts and the manifests, committed once as the base.
struct ContractsRepository {
    dir: tempfile::TempDir,
}

impl ContractsRepository {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("repository");
        erp_testkit::files::copy_tree(&root.join("proto"), &dir.path().join("proto"));
        for unit in ["erp-auth-service", "erp-hrm-service", "erp-api-gateway"] {
            std::fs::create_dir_all(dir.path().join(unit)).expect("unit dir");
            std::fs::copy(
                root.join(unit).join("service.yaml"),
                dir.path().join(unit).join("service.yaml"),
            )
            .expect("manifest");
        }
        for (unit, manifest) in [
            ("erp-crm-service", CRM_MANIFEST),
            ("erp-finance-service", FINANCE_MANIFEST),
        ] {
            std::fs::create_dir_all(dir.path().join(unit)).expect("unit dir");
            std::fs::write(dir.path().join(unit).join("service.yaml"), manifest).expect("manifest");
        }
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "base"]);
        git(dir.path(), &["tag", "base"]);
        Self { dir }
    }

    /// Applies `edit` (file under proto/, text replaced) on a fresh branch from the base,
    /// commits it and runs the check.
    fn change(&self, name: &str, file: &str, from: &str, to: &str) -> Report {
        let repo = self.dir.path();
        git(repo, &["checkout", "-q", "-B", name, "base"]);
        let path = repo.join("proto").join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !from.is_empty() {
            assert!(text.contains(from), "{file} holds `{from}`");
        }
        let edited = if from.is_empty() {
            format!("{text}{to}")
        } else {
            text.replacen(from, to, 1)
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(&path, edited).expect("edited");
        git(repo, &["add", "-A"]);
        git(repo, &["commit", "-q", "-m", name]);
        affected(repo, "base", "HEAD").expect("the check runs")
    }
}

/// Unit → classes.
fn units(report: &Report) -> BTreeMap<String, BTreeSet<ChangeClass>> {
    report
        .units
        .iter()
        .map(|impact| (impact.unit.clone(), impact.classes.clone()))
        .collect()
}

fn expect(pairs: &[(&str, &[ChangeClass])]) -> BTreeMap<String, BTreeSet<ChangeClass>> {
    pairs
        .iter()
        .map(|(unit, classes)| ((*unit).to_owned(), classes.iter().copied().collect()))
        .collect()
}

use ChangeClass::{Access, Additive, Event, Rest, Wire};

const HRM_AND_GATEWAY: [&str; 2] = ["erp-api-gateway", "erp-hrm-service"];

fn hrm_and_gateway(classes: &[ChangeClass]) -> BTreeMap<String, BTreeSet<ChangeClass>> {
    expect(&HRM_AND_GATEWAY.map(|unit| (unit, classes)))
}

#[test]
fn each_contract_edit_reaches_exactly_the_units_it_affects() {
    let repo = ContractsRepository::new();
    let employee = "erp/hrm/v1/employee.proto";

    let report = repo.change(
        "add-field",
        employee,
        "  string phone = 19;\n",
        "  string phone = 19;\n  // A nickname.\n  string nickname = 40;\n",
    );
    assert_eq!(units(&report), hrm_and_gateway(&[Additive]));
    assert!(report.violations.is_empty());
    assert_eq!(
        report.changed_packages,
        BTreeSet::from(["erp.hrm.v1".to_owned()])
    );

    let report = repo.change("remove-field", employee, "  string position = 8;\n", "");
    assert_eq!(units(&report), hrm_and_gateway(&[Wire]));
    assert_eq!(report.violations.len(), 1);
    assert_eq!(report.violations[0].symbol, "erp.hrm.v1.Employee.position");
    assert!(
        report.violations[0].rule.contains("erp.hrm.v2"),
        "{}",
        report.violations[0].rule
    );

    let report = repo.change(
        "renumber-field",
        employee,
        "string email = 6;",
        "string email = 41;",
    );
    assert_eq!(units(&report), hrm_and_gateway(&[Wire]));
    assert!(
        report
            .changes
            .iter()
            .any(|change| change.what.contains("renumbered 6 → 41"))
    );

    let report = repo.change(
        "retype-field",
        employee,
        "string position = 8;",
        "int64 position = 8;",
    );
    assert_eq!(units(&report), hrm_and_gateway(&[Wire]));

    let report = repo.change(
        "swap-fields",
        employee,
        "string first_name = 4;\n  // Family name.\n  string last_name = 5;",
        "string first_name = 5;\n  // Family name.\n  string last_name = 4;",
    );
    assert_eq!(
        units(&report),
        hrm_and_gateway(&[Wire]),
        "swapped numbers break the wire"
    );

    let report = repo.change(
        "rename-field",
        employee,
        "string position = 8;",
        "string job_title = 8;",
    );
    assert_eq!(
        units(&report),
        hrm_and_gateway(&[Rest]),
        "a JSON break only"
    );
    assert_eq!(
        report.violations.len(),
        1,
        "REST breaks are refused in v1 too"
    );

    let service = "erp/hrm/v1/hrm_service.proto";
    let report = repo.change(
        "http-path",
        service,
        "get: \"/v1/employees/{id}\"",
        "get: \"/v1/staff/{id}\"",
    );
    // The old route is gone (REST break), the new one is there (additive).
    assert_eq!(units(&report), hrm_and_gateway(&[Additive, Rest]));
    assert_eq!(
        report.violations[0].symbol,
        "/erp.hrm.v1.HrmService/GetEmployee"
    );

    let report = repo.change(
        "add-rpc",
        service,
        "  rpc GetEmployee(GetEmployeeRequest)",
        "  // Counts employees.\n  rpc CountEmployees(GetEmployeeRequest) returns (GetEmployeeResponse) {\n    option (google.api.http) = {get: \"/v1/employees:count\"};\n    option (erp.common.v1.access) = {\n      permission: \"hrm.employee.read\"\n      module: MODULE_HRM\n    };\n  }\n\n  rpc GetEmployee(GetEmployeeRequest)",
    );
    assert_eq!(units(&report), hrm_and_gateway(&[Additive]));
    assert!(report.violations.is_empty());

    let get_employee_access = "option (google.api.http) = {get: \"/v1/employees/{id}\"};\n    option (erp.common.v1.access) = {\n      permission: \"hrm.employee.read\"";
    let report = repo.change(
        "permission",
        service,
        get_employee_access,
        "option (google.api.http) = {get: \"/v1/employees/{id}\"};\n    option (erp.common.v1.access) = {\n      permission: \"hrm.employee.view\"",
    );
    assert_eq!(units(&report), hrm_and_gateway(&[Access]));
    assert!(
        report.violations.is_empty(),
        "access changes are reported, not refused"
    );

    let report = repo.change(
        "make-public",
        service,
        "option (google.api.http) = {get: \"/v1/employees/{id}\"};\n    option (erp.common.v1.access) = {\n      permission: \"hrm.employee.read\"\n      module: MODULE_HRM\n    };",
        "option (google.api.http) = {get: \"/v1/employees/{id}\"};\n    option (erp.common.v1.access) = {public: true};",
    );
    assert_eq!(units(&report), hrm_and_gateway(&[Access]));
    assert!(
        report.changes[0].what.contains("→ public"),
        "{}",
        report.changes[0].what
    );
}

#[test]
fn events_shared_types_and_comments() {
    let repo = ContractsRepository::new();

    // EmployeeUpdated travels only on erp.hrm.employee.v1: HRM publishes it, auth
    // consumes it; no RPC carries it, so the gateway is not concerned.
    let report = repo.change(
        "event-field",
        "erp/events/v1/hrm_events.proto",
        "  // Job title after the change.\n  string position = 7;\n",
        "",
    );
    assert_eq!(
        units(&report),
        expect(&[("erp-auth-service", &[Event]), ("erp-hrm-service", &[Wire])])
    );
    assert!(!report.violations.is_empty());

    // Money is carried by CRM and finance messages only.
    let report = repo.change(
        "money",
        "erp/common/v1/money.proto",
        "  string currency_code = 2;\n",
        "  string currency_code = 2;\n  // Decimal places of the currency.\n  int32 scale = 3;\n",
    );
    assert_eq!(
        units(&report),
        expect(&[
            ("erp-api-gateway", &[Additive]),
            ("erp-crm-service", &[Additive]),
            ("erp-finance-service", &[Additive]),
        ])
    );

    // PageRequest is in every list call of every service: everyone.
    let report = repo.change(
        "paging",
        "erp/common/v1/paging.proto",
        "  string page_token = 2;\n",
        "  string page_token = 2;\n  // Newest first.\n  bool descending = 3;\n",
    );
    assert_eq!(
        units(&report).keys().cloned().collect::<Vec<_>>(),
        [
            "erp-api-gateway",
            "erp-auth-service",
            "erp-crm-service",
            "erp-finance-service",
            "erp-hrm-service"
        ]
    );

    let report = repo.change(
        "comments",
        "erp/hrm/v1/employee.proto",
        "  // Given name.\n",
        "  // Given name, as the employee writes it.\n",
    );
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert!(report.units.is_empty());
}

#[test]
fn a_break_inside_v1_fails_and_the_same_change_in_a_new_v2_passes() {
    let repo = ContractsRepository::new();
    let report = repo.change(
        "break-v1",
        "erp/hrm/v1/employee.proto",
        "  string email = 6;\n",
        "",
    );
    assert_eq!(report.violations.len(), 1);
    assert_eq!(report.violations[0].symbol, "erp.hrm.v1.Employee.email");

    // The same shape without `email`, in a package that did not exist before.
    let v2 = "syntax = \"proto3\";\n\npackage erp.hrm.v2;\n\n// An employee, v2: no email (it moved to the directory service).\nmessage Employee {\n  string id = 1;\n  string tenant_id = 2;\n  string employee_id = 3;\n  string first_name = 4;\n  string last_name = 5;\n}\n";
    let report = repo.change("new-v2", "erp/hrm/v2/employee.proto", "", v2);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(
        report
            .changes
            .iter()
            .all(|change| change.class == ChangeClass::Additive)
    );
    assert!(report.changed_packages.contains("erp.hrm.v2"));

    // The command exits 1 on the v1 break, 0 on the v2 addition.
    let run = |head: &str| {
        Command::new(env!("CARGO_BIN_EXE_release-orchestrator"))
            .args([
                "contracts",
                "affected",
                "--base",
                "base",
                "--head",
                head,
                "--repo",
            ])
            .arg(repo.dir.path())
            .output()
            .expect("runs")
    };
    let refused = run("break-v1");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refused: erp.hrm.v1.Employee.email")
    );
    let matrix = run("new-v2");
    assert_eq!(matrix.status.code(), Some(0));
}

#[test]
fn shared_library_changes_reach_the_crates_that_depend_on_them() {
    let metadata = serde_json::json!({
        "workspace_root": "/repo",
        "packages": [
            {"name": "erp-kit", "manifest_path": "/repo/erp-shared-libs/erp-kit/Cargo.toml", "dependencies": [{"name": "erp-proto"}]},
            {"name": "erp-proto", "manifest_path": "/repo/erp-shared-libs/erp-proto/Cargo.toml", "dependencies": []},
            {"name": "erp-events", "manifest_path": "/repo/erp-shared-libs/erp-events/Cargo.toml", "dependencies": [{"name": "erp-kit"}]},
            {"name": "erp-auth-service", "manifest_path": "/repo/erp-auth-service/Cargo.toml", "dependencies": [{"name": "erp-events"}]},
            {"name": "erp-api-gateway", "manifest_path": "/repo/erp-api-gateway/Cargo.toml", "dependencies": [{"name": "serde"}]},
        ]
    });
    let changed = BTreeSet::from(["erp-proto".to_owned()]);
    let dependents = dependents_from_metadata(&metadata, &changed);
    assert_eq!(
        dependents.keys().cloned().collect::<Vec<_>>(),
        ["erp-auth-service", "erp-shared-libs"],
        "through erp-events and erp-kit; the gateway does not use it"
    );
}

/// A stand-in for the GitHub API on loopback: records every request; the first request
/// to each repository answers 502 so the retry is exercised.
async fn recording_api() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String, serde_json::Value)>>>,
) {
    use axum::{
        Router,
        extract::{Path as UrlPath, State},
        http::{HeaderMap, StatusCode},
        routing::post,
    };
    type Log = std::sync::Arc<std::sync::Mutex<Vec<(String, String, serde_json::Value)>>>;
    async fn dispatch(
        State(log): State<Log>,
        UrlPath((owner, name)): UrlPath<(String, String)>,
        headers: HeaderMap,
        body: String,
    ) -> StatusCode {
        let repository = format!("{owner}/{name}");
        let token = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut log = log.lock().expect("log");
        let first = !log.iter().any(|(seen, _, _)| *seen == repository);
        log.push((
            repository,
            token,
            serde_json::from_str(&body).unwrap_or_default(),
        ));
        if first {
            StatusCode::BAD_GATEWAY
        } else {
            StatusCode::NO_CONTENT
        }
    }
    let log: Log = Default::default();
    let app = Router::new()
        .route("/repos/{owner}/{name}/dispatches", post(dispatch))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, log)
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatch_triggers_exactly_the_affected_repositories() {
    let repo = ContractsRepository::new();
    repo.change(
        "add-rpc-field",
        "erp/hrm/v1/employee.proto",
        "  string phone = 19;\n",
        "  string phone = 19;\n  // Desk location.\n  string desk = 41;\n",
    );
    let (api, log) = recording_api().await;
    let dir = repo.dir.path().to_owned();
    let run = move |dry_run: bool| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_release-orchestrator"));
            command
                .args(["contracts", "dispatch", "--base", "base", "--api-url"])
                .arg(format!("http://{api}"))
                .arg("--repo")
                .arg(&dir)
                .env("GITHUB_TOKEN", "test-token");
            if dry_run {
                command.arg("--dry-run");
            }
            command.output().expect("runs")
        })
    };
    let dry = run(true).await.expect("joined");
    assert!(dry.status.success());
    let printed = String::from_utf8_lossy(&dry.stdout);
    assert!(
        printed.contains("/repos/company/erp-hrm-service/dispatches"),
        "{printed}"
    );
    assert!(
        log.lock().expect("log").is_empty(),
        "a dry run sends nothing"
    );

    let sent = run(false).await.expect("joined");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let log = log.lock().expect("log").clone();
    let repositories: BTreeSet<&str> = log
        .iter()
        .map(|(repository, _, _)| repository.as_str())
        .collect();
    assert_eq!(
        repositories,
        BTreeSet::from(["company/erp-api-gateway", "company/erp-hrm-service"])
    );
    assert_eq!(log.len(), 4, "each repository retried once after its 502");
    for (_, token, body) in &log {
        assert_eq!(token, "Bearer test-token");
        assert_eq!(body["event_type"], "contracts-changed");
        assert_eq!(
            body["client_payload"]["changed_packages"],
            serde_json::json!(["erp.hrm.v1"])
        );
        assert_eq!(
            body["client_payload"]["classes"],
            serde_json::json!(["additive"])
        );
    }
}

#[test]
fn a_shared_library_commit_reaches_the_units_whose_cargo_files_depend_on_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, text).expect("written");
    };
    let ours = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository");
    for unit in ["erp-shared-libs", "erp-auth-service", "erp-hrm-service"] {
        write(
            &format!("{unit}/service.yaml"),
            &std::fs::read_to_string(ours.join(unit).join("service.yaml")).expect("manifest"),
        );
    }
    write(
        "erp-shared-libs/erp-kit/Cargo.toml",
        "[package]\nname = \"erp-kit\"\nversion = \"1.0.0\"\n",
    );
    write("erp-shared-libs/erp-kit/src/lib.rs", "//! kit\n");
    write(
        "erp-shared-libs/erp-db/Cargo.toml",
        "[package]\nname = \"erp-db\"\nversion = \"1.0.0\"\n\n[dependencies]\nkit = { package = \"erp-kit\", path = \"../erp-kit\" }\n",
    );
    write(
        "erp-hrm-service/Cargo.toml",
        "[package]\nname = \"erp-hrm-service\"\nversion = \"1.0.0\"\n\n[dependencies]\nerp-db = { path = \"../erp-shared-libs/erp-db\" }\n",
    );
    write(
        "erp-auth-service/Cargo.toml",
        "[package]\nname = \"erp-auth-service\"\nversion = \"1.0.0\"\n\n[dependencies]\nserde = \"1\"\n",
    );
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    write("erp-shared-libs/erp-kit/src/lib.rs", "//! kit, changed\n");
    git(root, &["commit", "-q", "-am", "change the kit"]);

    let report = affected(root, "HEAD~1", "HEAD").expect("the check runs");
    let reached: BTreeMap<String, BTreeSet<String>> = report
        .units
        .iter()
        .map(|impact| (impact.unit.clone(), impact.shared_libs.clone()))
        .collect();
    let kit = BTreeSet::from(["erp-kit".to_owned()]);
    assert_eq!(
        reached,
        BTreeMap::from([
            ("erp-hrm-service".to_owned(), kit.clone()),
            ("erp-shared-libs".to_owned(), kit),
        ]),
        "HRM through erp-db (renamed dependency), the libs themselves; auth not at all"
    );
}
