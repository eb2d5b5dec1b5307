//! The local target: a release's services as processes on this machine. Stage 0 is the
//! embedded broker (unless `ERP_KAFKA__BOOTSTRAP` names one); then each stage's services
//! start together, each with its own SQLite database and log under the state folder, and
//! the stage passes when every one is healthy (gRPC health SERVING; the gateway's
//! `/readyz`). Smoke tests go through the gateway. A failure stops what this deploy
//! started, in reverse order, and brings back the release that ran before.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    environment::Environment,
    plan,
    release::{Release, UnitKind},
    report::Reporter,
    smoke,
    state::{self, EnvironmentState, HistoryEntry, RunningService, StateDir},
    validate::kind_of,
    workspace::Workspace,
};

/// How long a stopping service may drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How a local deploy runs.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Take binaries from here instead of building them.
    pub bin_dir: Option<PathBuf>,
    /// Leave the services running and return.
    pub detach: bool,
}

/// A release config ready to deploy: where it came from, its text and what it says.
#[derive(Debug, Clone)]
pub struct ReleaseSource {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// What it says (validated).
    pub release: Release,
}

impl ReleaseSource {
    /// SHA-256 of the text, hex.
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        sha2::Sha256::digest(self.text.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    fn version(&self) -> String {
        self.release
            .version
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    fn versions(&self) -> BTreeMap<String, String> {
        self.release
            .services
            .iter()
            .map(|service| {
                (
                    service.name.clone(),
                    service
                        .version
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// The local environment of one repository.
pub struct LocalTarget<'a> {
    /// The repository.
    pub workspace: &'a Workspace,
    /// The environment file.
    pub environment: &'a Environment,
    /// Progress output.
    pub reporter: &'a Reporter,
    /// Options.
    pub options: LocalOptions,
}

/// Processes started by one deploy, in start order.
#[derive(Default)]
struct Started {
    services: Vec<(RunningService, Option<Child>)>,
    broker: Option<String>,
}

impl Started {
    fn stop_all(&mut self, reporter: &Reporter) {
        while let Some((service, child)) = self.services.pop() {
            reporter.line(&format!("stopping {} (pid {})", service.name, service.pid));
            state::stop_process(service.pid, STOP_GRACE);
            if let Some(mut child) = child {
                let _ = child.wait();
            }
        }
    }
}

impl LocalTarget<'_> {
    fn state(&self) -> StateDir {
        StateDir::new(self.environment.state_dir.clone())
    }

    /// Deploys `source`; on failure stops what it started and redeploys what ran before.
    /// In the foreground (not detached) it then supervises until Ctrl-C.
    pub async fn deploy(&self, source: &ReleaseSource) -> anyhow::Result<()> {
        let state = self.state();
        let _lock = state.lock()?;
        let previous = state
            .load()?
            .filter(|previous| previous.services.iter().any(RunningService::is_running));
        let started_at = Instant::now();
        // Built first: a build failure leaves whatever runs untouched.
        let built = self
            .binaries(&source.release)
            .and_then(|bin_dir| self.keep_binaries(source, &bin_dir));
        let outcome = match built {
            Ok(bin_dir) => self.deploy_once(source, previous.as_ref(), &bin_dir).await,
            Err(error) => {
                if previous.is_some() {
                    self.reporter.line("the running release was left as it was");
                }
                let entry = self.history_entry("deploy", source, started_at, Some(&error));
                state.record(&entry)?;
                return Err(error);
            }
        };
        let entry = self.history_entry("deploy", source, started_at, outcome.as_ref().err());
        if let Err(error) = state.record(&entry) {
            // Whatever happens to the history, a failed release is still rolled back and a
            // started one still supervised.
            self.reporter
                .line(&format!("the release history was not written: {error:#}"));
        }
        match outcome {
            Ok(mut started) => {
                if self.options.detach {
                    self.reporter.line(
                        "detached: `release-orchestrator status` shows them, `down` stops them",
                    );
                    return Ok(());
                }
                let supervised = self.supervise(&mut started).await;
                state.clear()?;
                supervised
            }
            Err(error) => {
                let Some(previous) = previous else {
                    state.clear()?;
                    return Err(error);
                };
                self.reporter.line(&format!(
                    "rolling back to release {} (it ran before this deploy)",
                    previous.release
                ));
                let names: Vec<&str> = previous
                    .services
                    .iter()
                    .map(|service| service.name.as_str())
                    .collect();
                for restored in restore_databases(&state, &names, &source.version())? {
                    self.reporter.line(&format!(
                        "restored {}'s database as it was before this deploy (the failed release's copy is kept as {})",
                        restored.service,
                        restored.kept.display()
                    ));
                }
                // The previous release runs again on its own binaries, kept when it was
                // deployed (not on what was just built from newer code).
                let rollback = match previous.bin_dir.clone().filter(|dir| dir.is_dir()) {
                    Some(bin_dir) => self.redeploy(&previous, &bin_dir).await,
                    None => match self.binaries(&source.release) {
                        Ok(bin_dir) => {
                            self.reporter.line(
                                "the previous release's binaries were not kept; restarting it on the current build",
                            );
                            self.redeploy(&previous, &bin_dir).await
                        }
                        Err(error) => Err(error),
                    },
                };
                let rolled_back = rollback.is_ok();
                if let Err(rollback_error) = rollback {
                    self.reporter
                        .line(&format!("rollback failed: {rollback_error:#}"));
                }
                Err(error.context(if rolled_back {
                    format!(
                        "release {} failed; release {} runs again",
                        source.version(),
                        previous.release
                    )
                } else {
                    format!(
                        "release {} failed and release {} could not be restored",
                        source.version(),
                        previous.release
                    )
                }))
            }
        }
    }

    /// Keeps the binaries a release runs on under `releases/<version>-<digest>/bin`
    /// (hard links where the file system allows, copies otherwise), so rolling back to it
    /// later runs the same code. This set, the running release's and the two newest others
    /// are kept.
    fn keep_binaries(&self, source: &ReleaseSource, bin_dir: &Path) -> anyhow::Result<PathBuf> {
        let state = self.state();
        let kept = state
            .release_copy(&source.version(), &source.digest())
            .with_extension("")
            .join("bin");
        if kept == bin_dir {
            return Ok(kept);
        }
        std::fs::create_dir_all(&kept)?;
        let mut names = vec!["erp-dev-broker".to_owned()];
        names.extend(
            source
                .release
                .services
                .iter()
                .filter(|service| {
                    kind_of(&source.release, &service.name, Some(self.workspace))
                        != UnitKind::Library
                })
                .map(|service| service.name.clone()),
        );
        for name in names {
            let (from, to) = (bin_dir.join(&name), kept.join(&name));
            if !from.is_file() {
                bail!("{} is missing; build it or pass --bin-dir", from.display());
            }
            let _ = std::fs::remove_file(&to);
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to)
                    .with_context(|| format!("keeping {} for rollbacks", from.display()))?;
            }
        }
        // The release running now may be older than the two newest sets (after failed
        // attempts): it is what a rollback restarts, so it is never pruned.
        let running = state
            .load()
            .ok()
            .flatten()
            .and_then(|running| running.bin_dir);
        let mut keep = vec![kept.as_path()];
        keep.extend(running.as_deref());
        prune_kept_binaries(&state.root().join("releases"), &keep);
        Ok(kept)
    }

    /// Brings back a release that ran before, from its saved config.
    async fn redeploy(&self, previous: &EnvironmentState, bin_dir: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&previous.release_file)
            .with_context(|| format!("reading {}", previous.release_file.display()))?;
        let (release, problems) = crate::release::parse(&text);
        if !problems.is_empty() {
            let lines: Vec<String> = problems
                .iter()
                .map(|problem| {
                    format!(
                        "{}:{}: {}: {}",
                        previous.release_file.display(),
                        problem.line,
                        problem.key,
                        problem.message
                    )
                })
                .collect();
            bail!(
                "the saved config of {} no longer parses:\n{}",
                previous.release,
                lines.join("\n")
            );
        }
        let source = ReleaseSource {
            path: previous.release_file.clone(),
            text,
            release,
        };
        let started_at = Instant::now();
        let outcome = self.deploy_once(&source, None, bin_dir).await;
        let entry = self.history_entry("rollback", &source, started_at, outcome.as_ref().err());
        self.state().record(&entry)?;
        // The restored release keeps running detached: its processes outlive this run.
        outcome.map(|_| ())
    }

    /// One attempt: stop what runs, start every stage, smoke-test, save the state.
    fn history_entry(
        &self,
        action: &str,
        source: &ReleaseSource,
        started_at: Instant,
        error: Option<&anyhow::Error>,
    ) -> HistoryEntry {
        HistoryEntry {
            at: now(),
            action: action.to_owned(),
            release: source.version(),
            digest: source.digest(),
            versions: source.versions(),
            result: if error.is_none() {
                "succeeded".to_owned()
            } else {
                "failed".to_owned()
            },
            duration_ms: u64::try_from(started_at.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: error.map(|error| format!("{error:#}")),
        }
    }

    async fn deploy_once(
        &self,
        source: &ReleaseSource,
        previous: Option<&EnvironmentState>,
        bin_dir: &Path,
    ) -> anyhow::Result<Started> {
        let release = &source.release;
        let state = self.state();
        std::fs::create_dir_all(state.root())?;
        let copy = state.release_copy(&source.version(), &source.digest());
        std::fs::create_dir_all(copy.parent().unwrap_or(state.root()))?;
        if copy != source.path {
            std::fs::write(&copy, &source.text)?;
        }
        if let Some(previous) = previous {
            self.reporter.line(&format!(
                "stopping release {} (the local environment runs one release at a time)",
                previous.release
            ));
            for service in previous.services.iter().rev() {
                service.stop(STOP_GRACE);
            }
            // Their databases as they are now, quiet: a failed release may migrate them,
            // and the previous binaries would then refuse to start on them.
            let names: Vec<&str> = previous
                .services
                .iter()
                .map(|service| service.name.as_str())
                .collect();
            snapshot_databases(&state, &names)?;
        }
        let bootstrap_secret = uuid::Uuid::new_v4().simple().to_string();
        let mut started = Started::default();
        // Ctrl-C while stages start goes through the failure path: what started stops (the
        // children have their own process group, so the terminal's signal misses them).
        let result = tokio::select! {
            result = self.start_stages(source, bin_dir, &bootstrap_secret, &mut started) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (Ctrl-C) while starting the stages")),
        };
        if let Err(error) = result {
            self.reporter.line(&format!("deploy failed: {error:#}"));
            started.stop_all(self.reporter);
            return Err(error);
        }
        let gateway_url = started
            .services
            .iter()
            .find(|(service, _)| service.kind == UnitKind::Gateway)
            .map(|(service, _)| service.address.clone());
        let environment_state = EnvironmentState {
            release: source.version(),
            release_file: copy,
            digest: source.digest(),
            deployed_at: now(),
            broker: started.broker.clone(),
            services: started
                .services
                .iter()
                .map(|(service, _)| service.clone())
                .collect(),
            gateway_url: gateway_url.clone(),
            bootstrap_secret: bootstrap_secret.clone(),
            bin_dir: Some(bin_dir.to_owned()),
        };
        state.save(&environment_state)?;
        if let Some(gateway) = &gateway_url {
            let smoke = smoke::run(
                gateway,
                &bootstrap_secret,
                release,
                self.workspace,
                self.reporter,
            );
            let smoke_result = tokio::select! {
                result = smoke => result.context("smoke tests through the gateway"),
                _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (Ctrl-C) during the smoke tests")),
            };
            if let Err(error) = smoke_result {
                self.reporter.line(&format!("deploy failed: {error:#}"));
                started.stop_all(self.reporter);
                return Err(error);
            }
        }
        self.reporter.summary(&environment_state);
        Ok(started)
    }

    /// The folder holding the release's binaries: `--bin-dir`, or a release build of the
    /// units in this workspace.
    fn binaries(&self, release: &Release) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.options.bin_dir {
            return Ok(dir.clone());
        }
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                // Run by `cargo run --release`: build next to this binary.
                let exe = std::env::current_exe().ok()?;
                let profile_dir = exe.parent()?;
                (profile_dir.file_name()? == "release")
                    .then(|| profile_dir.parent().map(Path::to_owned))?
            })
            .unwrap_or_else(|| self.workspace.root.join("target"));
        let mut packages = vec!["erp-events".to_owned()];
        packages.extend(
            release
                .services
                .iter()
                .filter(|service| {
                    kind_of(release, &service.name, Some(self.workspace)) != UnitKind::Library
                })
                .map(|service| service.name.clone()),
        );
        self.reporter.line(&format!(
            "building {} (release profile; quick when nothing changed)",
            packages.join(", ")
        ));
        let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command
            .current_dir(&self.workspace.root)
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["build", "--release", "--bins"]);
        for package in &packages {
            command.args(["-p", package]);
        }
        let status = command.status().context("running cargo build")?;
        if !status.success() {
            bail!("cargo build failed ({status}); the release's binaries could not be built");
        }
        Ok(target_dir.join("release"))
    }

    async fn start_stages(
        &self,
        source: &ReleaseSource,
        bin_dir: &Path,
        bootstrap_secret: &str,
        started: &mut Started,
    ) -> anyhow::Result<()> {
        let release = &source.release;
        let state = self.state();
        let broker = match std::env::var("ERP_KAFKA__BOOTSTRAP") {
            Ok(bootstrap) if !bootstrap.is_empty() => {
                self.reporter
                    .line(&format!("stage 0: using the broker at {bootstrap}"));
                bootstrap
            }
            _ => self.start_broker(bin_dir, &state, started).await?,
        };
        started.broker = Some(broker.clone());

        let addresses = self.addresses(release)?;
        let stages = plan::stages(release);
        let total = stages.len();
        for (index, names) in stages.iter().enumerate() {
            self.reporter.stage(index + 1, total, names);
            let mut waiting = Vec::new();
            for name in names {
                let kind = kind_of(release, name, Some(self.workspace));
                let spec = release
                    .service(name)
                    .ok_or_else(|| anyhow!("{name} is not defined"))?;
                let version = spec
                    .version
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                if kind == UnitKind::Library {
                    self.reporter.finished(
                        name,
                        &version,
                        "verified (library: built, not deployed)",
                    );
                    continue;
                }
                let env = self.service_env(
                    release,
                    name,
                    kind,
                    &addresses,
                    &broker,
                    bootstrap_secret,
                    &state,
                )?;
                let dir = state.service_dir(name);
                std::fs::create_dir_all(&dir)?;
                let log = dir.join("service.log");
                // A process already on one of its ports would answer the health gate in
                // its place (and this one would die on "address in use").
                ensure_ports_free(name, ports_of(&addresses, name)?)?;
                let child = spawn(&bin_dir.join(name), &env, &log)?;
                let running = RunningService {
                    name: name.clone(),
                    version: version.clone(),
                    kind,
                    pid: child.id(),
                    address: ports_of(&addresses, name)?.url(kind),
                    log: log.clone(),
                    started: state::process_start(child.id()),
                };
                self.reporter
                    .service(name, &version, &format!("started (pid {})", running.pid));
                let served = self
                    .workspace
                    .units
                    .get(name)
                    .ok_or_else(|| not_in_repository(name))?
                    .manifest
                    .contracts
                    .as_ref()
                    .map(|contracts| {
                        // Service names only (`erp.hrm.v1.HrmService`), not whole packages.
                        contracts
                            .serves
                            .iter()
                            .filter(|name| {
                                name.rsplit('.')
                                    .next()
                                    .is_some_and(|last| last.starts_with(char::is_uppercase))
                            })
                            .cloned()
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                waiting.push((running.clone(), ports_of(&addresses, name)?.clone(), served));
                started.services.push((running, Some(child)));
            }
            let timeout = self.environment.health_timeout;
            let checks = waiting.iter().map(|(service, ports, served)| async move {
                let began = Instant::now();
                let result = wait_healthy(service, ports, served, timeout).await;
                (service, result, began.elapsed())
            });
            let mut failures = Vec::new();
            for (service, result, took) in futures::future::join_all(checks).await {
                match result {
                    Ok(()) => self.reporter.finished(
                        &service.name,
                        &service.version,
                        &format!("healthy in {:.1} s", took.as_secs_f64()),
                    ),
                    Err(cause) => {
                        self.reporter
                            .finished(&service.name, &service.version, "NOT healthy");
                        let lines = state::tail(&service.log, 15);
                        failures.push(format!(
                            "{} did not become healthy: {cause}\n--- last lines of {} ---\n{}",
                            service.name,
                            service.log.display(),
                            lines.join("\n")
                        ));
                    }
                }
            }
            if !failures.is_empty() {
                bail!("stage {} failed:\n{}", index + 1, failures.join("\n"));
            }
        }
        Ok(())
    }

    async fn start_broker(
        &self,
        bin_dir: &Path,
        state: &StateDir,
        started: &mut Started,
    ) -> anyhow::Result<String> {
        let dir = state.service_dir("erp-dev-broker");
        std::fs::create_dir_all(&dir)?;
        let bootstrap_file = dir.join("bootstrap");
        let _ = std::fs::remove_file(&bootstrap_file);
        let log = dir.join("service.log");
        let topics = self.workspace.root.join("infra/kafka/topics.yaml");
        let mut command = Command::new(bin_dir.join("erp-dev-broker"));
        command
            .arg("--bootstrap-file")
            .arg(&bootstrap_file)
            .arg("--topics")
            .arg(&topics);
        let child = spawn_command(command, &[], &log)?;
        let running = RunningService {
            name: "erp-dev-broker".to_owned(),
            // The broker ships with erp-events, part of the shared libraries.
            version: self
                .workspace
                .units
                .get("erp-shared-libs")
                .map_or_else(String::new, |unit| unit.manifest.version.to_string()),
            kind: UnitKind::Service,
            pid: child.id(),
            address: String::new(),
            log: log.clone(),
            started: state::process_start(child.id()),
        };
        started.services.push((running, Some(child)));
        let began = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&bootstrap_file)
                && let Some(servers) = text.trim().strip_prefix("bootstrap.servers=")
                && !servers.is_empty()
            {
                self.reporter.line(&format!(
                    "stage 0: embedded broker (erp-dev-broker) at {servers}"
                ));
                if let Some((service, _)) = started.services.last_mut() {
                    service.address = servers.to_owned();
                }
                return Ok(servers.to_owned());
            }
            if began.elapsed() > Duration::from_secs(20) {
                bail!(
                    "the embedded broker did not start within 20 s:\n{}",
                    state::tail(&log, 15).join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Each deployable service's ports: its manifest's, overridden by the environment.
    fn addresses(&self, release: &Release) -> anyhow::Result<BTreeMap<String, Ports>> {
        let mut addresses = BTreeMap::new();
        for service in &release.services {
            let Some(unit) = self.workspace.units.get(&service.name) else {
                continue;
            };
            let mut ports = unit.manifest.ports.clone();
            if let Some(overrides) = self.environment.ports.get(&service.name) {
                ports.extend(overrides.clone());
            }
            addresses.insert(service.name.clone(), Ports(ports));
        }
        Ok(addresses)
    }

    #[allow(clippy::too_many_arguments)]
    fn service_env(
        &self,
        release: &Release,
        name: &str,
        kind: UnitKind,
        addresses: &BTreeMap<String, Ports>,
        broker: &str,
        bootstrap_secret: &str,
        state: &StateDir,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let unit = self
            .workspace
            .units
            .get(name)
            .ok_or_else(|| not_in_repository(name))?;
        let ports = ports_of(addresses, name)?;
        let mut env = Vec::new();
        let mut set = |key: &str, value: String| env.push((key.to_owned(), value));
        // The service that serves a contract, within this release.
        let serving = |contract: &str| {
            release.services.iter().find_map(|service| {
                let unit = self.workspace.units.get(&service.name)?;
                unit.manifest
                    .contracts
                    .as_ref()?
                    .serves
                    .iter()
                    .any(|served| served == contract)
                    .then(|| service.name.clone())
            })
        };
        let auth = serving("erp.auth.v1.AuthService");
        match kind {
            UnitKind::Gateway => {
                set("ERP_GATEWAY__HOST", "127.0.0.1".to_owned());
                set("ERP_GATEWAY__HTTP_PORT", ports.get("http")?.to_string());
            }
            UnitKind::Service | UnitKind::Library => {
                set("ERP_SERVER__HOST", "127.0.0.1".to_owned());
                set("ERP_SERVER__GRPC_PORT", ports.get("grpc")?.to_string());
                set("ERP_SERVER__ADMIN_PORT", ports.get("admin")?.to_string());
                let database = state.service_dir(name).join("data.db");
                set(
                    "ERP_DATABASE__URL",
                    format!("sqlite://{}", database.display()),
                );
                set("ERP_EVENTS__KAFKA__BOOTSTRAP", broker.to_owned());
                set("ERP_EVENTS__KAFKA__SESSION_TIMEOUT", "4s".to_owned());
                set("ERP_EVENTS__KAFKA__FETCH_WAIT_MAX", "10ms".to_owned());
            }
        }
        if auth.as_deref() == Some(name) {
            set("ERP_AUTH__BOOTSTRAP_SECRET", bootstrap_secret.to_owned());
        } else if let Some(auth) = &auth {
            set(
                "ERP_AUTH__JWKS_URL",
                format!(
                    "http://127.0.0.1:{}",
                    ports_of(addresses, auth)?.get("grpc")?
                ),
            );
        }
        let uses = unit
            .manifest
            .contracts
            .as_ref()
            .map(|contracts| contracts.uses.clone())
            .unwrap_or_default();
        for contract in uses {
            let Some(upstream) = serving(&contract) else {
                continue;
            };
            let short = contract
                .split('.')
                .nth(1)
                .unwrap_or_default()
                .to_ascii_uppercase();
            set(
                &format!("ERP_UPSTREAMS__{short}"),
                format!(
                    "http://127.0.0.1:{}",
                    ports_of(addresses, &upstream)?.get("grpc")?
                ),
            );
        }
        if let Some(spec) = release.service(name) {
            for (key, value) in &spec.env {
                set(key, value.clone());
            }
        }
        Ok(env)
    }

    /// Waits for Ctrl-C (or a service exiting), then stops everything in reverse order.
    /// A service that exited on its own is an error (the command exits non-zero).
    async fn supervise(&self, started: &mut Started) -> anyhow::Result<()> {
        self.reporter
            .line("running in the foreground; Ctrl-C stops every service (use --detach to leave them running)");
        let watch = async {
            loop {
                for (service, child) in &mut started.services {
                    if let Some(child) = child
                        && let Ok(Some(status)) = child.try_wait()
                    {
                        return format!("{} exited ({status})", service.name);
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let exited = tokio::select! {
            _ = tokio::signal::ctrl_c() => None,
            reason = watch => Some(reason),
        };
        let reason = exited.as_deref().unwrap_or("Ctrl-C");
        self.reporter
            .line(&format!("{reason}: stopping in reverse order"));
        started.stop_all(self.reporter);
        match exited {
            Some(reason) => Err(anyhow::anyhow!(
                "{reason} while the release was running; every service was stopped"
            )),
            None => Ok(()),
        }
    }

    /// Stops what the state file lists, in reverse order, and forgets it.
    pub fn down(&self) -> anyhow::Result<bool> {
        let state = self.state();
        let _lock = state.lock()?;
        let Some(current) = state.load()? else {
            return Ok(false);
        };
        for service in current.services.iter().rev() {
            if service.stop(STOP_GRACE) {
                self.reporter
                    .line(&format!("stopped {} (pid {})", service.name, service.pid));
            }
        }
        state.clear()?;
        state.record(&HistoryEntry {
            at: now(),
            action: "down".to_owned(),
            release: current.release,
            digest: current.digest,
            versions: BTreeMap::new(),
            result: "succeeded".to_owned(),
            duration_ms: 0,
            error: None,
        })?;
        Ok(true)
    }
}

/// Removes all but the two newest kept binary sets besides those in `keep` (never pruned).
fn prune_kept_binaries(releases: &Path, keep: &[&Path]) {
    let Ok(entries) = std::fs::read_dir(releases) else {
        return;
    };
    let mut sets: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let bin = path.join("bin");
            bin.is_dir() && !keep.contains(&bin.as_path())
        })
        .filter_map(|path| Some((path.metadata().ok()?.modified().ok()?, path)))
        .collect();
    sets.sort();
    let excess = sets.len().saturating_sub(2);
    for (_, path) in sets.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// A release (a saved one, on rollback) may name a unit this repository no longer has.
fn not_in_repository(name: &str) -> anyhow::Error {
    anyhow!(
        "{name} is not a unit of this repository (it may have been removed since the release was saved)"
    )
}

fn ports_of<'a>(addresses: &'a BTreeMap<String, Ports>, name: &str) -> anyhow::Result<&'a Ports> {
    addresses.get(name).ok_or_else(|| not_in_repository(name))
}

/// A service's ports by role (`grpc`, `admin`, `http`).
#[derive(Debug, Clone)]
struct Ports(BTreeMap<String, u16>);

/// A service's SQLite database: the file and its journals.
const DATABASE_FILES: [&str; 4] = ["data.db", "data.db-journal", "data.db-wal", "data.db-shm"];
/// The suffix of a database file as it was before the deploy in progress.
const BEFORE_DEPLOY: &str = ".before-deploy";

/// Copies each of `services`' database files aside (`data.db.before-deploy`), replacing
/// the copies of an earlier deploy. Call it while the services are stopped.
fn snapshot_databases(state: &StateDir, services: &[&str]) -> anyhow::Result<()> {
    for service in services {
        let dir = state.service_dir(service);
        for file in DATABASE_FILES {
            let (live, copy) = (dir.join(file), dir.join(format!("{file}{BEFORE_DEPLOY}")));
            if live.exists() {
                std::fs::copy(&live, &copy)
                    .with_context(|| format!("keeping a copy of {}", live.display()))?;
            } else if copy.exists() {
                std::fs::remove_file(&copy)?;
            }
        }
    }
    Ok(())
}

/// A database put back as it was before a failed deploy.
struct RestoredDatabase {
    service: String,
    /// Where the failed release's database was moved.
    kept: PathBuf,
}

/// Puts back the databases [`snapshot_databases`] copied, keeping the failed release's
/// (`data.db.failed-<version>`) for inspection. Call it while the services are stopped.
fn restore_databases(
    state: &StateDir,
    services: &[&str],
    failed_version: &str,
) -> anyhow::Result<Vec<RestoredDatabase>> {
    let mut restored = Vec::new();
    for service in services {
        let dir = state.service_dir(service);
        if !dir
            .join(format!("{}{BEFORE_DEPLOY}", DATABASE_FILES[0]))
            .exists()
        {
            continue;
        }
        for file in DATABASE_FILES {
            let (live, copy) = (dir.join(file), dir.join(format!("{file}{BEFORE_DEPLOY}")));
            if live.exists() {
                std::fs::rename(&live, dir.join(format!("{file}.failed-{failed_version}")))?;
            }
            if copy.exists() {
                std::fs::rename(&copy, &live)
                    .with_context(|| format!("restoring {}", live.display()))?;
            }
        }
        restored.push(RestoredDatabase {
            service: (*service).to_owned(),
            kept: dir.join(format!("{}.failed-{failed_version}", DATABASE_FILES[0])),
        });
    }
    Ok(restored)
}

/// Refuses to start `name` while another process listens on one of its ports.
fn ensure_ports_free(name: &str, ports: &Ports) -> anyhow::Result<()> {
    for (role, port) in &ports.0 {
        if let Err(error) = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, *port)) {
            anyhow::bail!(
                "{name}'s {role} port {port} is taken ({error}): another process listens \
                 there (a service left from an earlier run? `release-orchestrator down`, or \
                 give the environment other ports)"
            );
        }
    }
    Ok(())
}

impl Ports {
    fn get(&self, role: &str) -> anyhow::Result<u16> {
        self.0
            .get(role)
            .copied()
            .ok_or_else(|| anyhow!("no `{role}` port in its service.yaml or the environment"))
    }

    fn url(&self, kind: UnitKind) -> String {
        let role = if kind == UnitKind::Gateway {
            "http"
        } else {
            "grpc"
        };
        self.0
            .get(role)
            .map(|port| format!("http://127.0.0.1:{port}"))
            .unwrap_or_default()
    }
}

fn spawn(binary: &Path, env: &[(String, String)], log: &Path) -> anyhow::Result<Child> {
    spawn_command(Command::new(binary), env, log)
}

/// Starts a child in its own process group (Ctrl-C reaches the orchestrator, which stops
/// services in order), its output appended to `log`, without the orchestrator's own
/// `ERP_*` variables (services refuse keys they do not know).
fn spawn_command(
    mut command: Command,
    env: &[(String, String)],
    log: &Path,
) -> anyhow::Result<Child> {
    let program = command.get_program().to_owned();
    if !Path::new(&program).is_file() {
        bail!(
            "{} is missing; build it or pass --bin-dir",
            Path::new(&program).display()
        );
    }
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ERP_") {
            command.env_remove(&key);
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        command.process_group(0);
    }
    command
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .spawn()
        .with_context(|| format!("starting {}", Path::new(&program).display()))
}

/// Polls until the service is healthy, its process exits, or `timeout` passes. A gRPC
/// service must report SERVING for each contract service it serves, so another process
/// that happens to hold the port (any gRPC server says SERVING for "") does not pass.
async fn wait_healthy(
    service: &RunningService,
    ports: &Ports,
    served: &[String],
    timeout: Duration,
) -> Result<(), String> {
    let began = Instant::now();
    let mut last = "no answer yet".to_owned();
    while began.elapsed() < timeout {
        if !state::is_alive(service.pid) {
            return Err("the process exited".to_owned());
        }
        let probe = match service.kind {
            UnitKind::Gateway => match ports.get("http") {
                Ok(port) => smoke::ready(port).await,
                Err(error) => return Err(error.to_string()),
            },
            UnitKind::Service | UnitKind::Library => grpc_serving(&service.address, served).await,
        };
        match probe {
            // Still ours: a process that failed to bind may exit just after the probe.
            Ok(()) if state::is_alive(service.pid) => return Ok(()),
            Ok(()) => return Err("the process exited".to_owned()),
            Err(error) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("not healthy within {timeout:?} (last: {last})"))
}

async fn grpc_serving(address: &str, served: &[String]) -> Result<(), String> {
    let channel = tonic::transport::Endpoint::from_shared(address.to_owned())
        .map_err(|error| error.to_string())?
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .map_err(|error| format!("connect: {error}"))?;
    let mut health = HealthClient::new(channel);
    let whole_server = [String::new()];
    let services = if served.is_empty() {
        &whole_server[..]
    } else {
        served
    };
    for service in services {
        let answer = tokio::time::timeout(
            Duration::from_secs(1),
            health.check(HealthCheckRequest {
                service: service.clone(),
            }),
        )
        .await
        .map_err(|_| "health check timed out".to_owned())?
        .map_err(|status| format!("health of {service:?}: {}", status.message()))?;
        match answer.into_inner().status() {
            ServingStatus::Serving => {}
            other => return Err(format!("health of {service:?}: {}", other.as_str_name())),
        }
    }
    Ok(())
}

/// Now, as RFC 3339 in UTC to the second.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_deploy_gets_the_databases_back_as_they_were_before_it() {
        let root = tempfile::tempdir().expect("temp dir");
        let state = StateDir::new(root.path().to_owned());
        let dir = state.service_dir("erp-hrm-service");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("data.db"), "schema 1, rows").expect("db");
        snapshot_databases(&state, &["erp-hrm-service", "erp-auth-service"]).expect("copied");

        // The failed release migrates and writes.
        std::fs::write(dir.join("data.db"), "schema 2, more rows").expect("db");
        std::fs::write(dir.join("data.db-journal"), "hot journal").expect("journal");
        let restored = restore_databases(&state, &["erp-hrm-service", "erp-auth-service"], "1.1.0")
            .expect("restored");

        assert_eq!(restored.len(), 1, "only services that had a database");
        assert_eq!(
            std::fs::read_to_string(dir.join("data.db")).expect("db"),
            "schema 1, rows"
        );
        assert!(
            !dir.join("data.db-journal").exists(),
            "no journal of the failed one"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("data.db.failed-1.1.0")).expect("kept"),
            "schema 2, more rows"
        );
        assert!(dir.join("data.db-journal.failed-1.1.0").exists());
    }

    #[test]
    fn a_port_another_process_listens_on_is_refused_before_starting() {
        let holder =
            std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).expect("a free port");
        let port = holder.local_addr().expect("address").port();
        let ports = Ports(BTreeMap::from([("grpc".to_owned(), port)]));
        let refused = ensure_ports_free("erp-hrm-service", &ports).expect_err("taken");
        assert!(
            refused
                .to_string()
                .contains(&format!("grpc port {port} is taken")),
            "{refused}"
        );
        drop(holder);
        ensure_ports_free("erp-hrm-service", &ports).expect("free again");
    }
}
