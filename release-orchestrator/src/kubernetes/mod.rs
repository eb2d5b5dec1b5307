//! The Kubernetes target: each stage's services rendered with Helm (the erp-service chart,
//! the unit's values, the environment's overrides, the pinned version as the image tag),
//! every object server-side applied with the field manager `release-orchestrator`, then
//! the Deployment watched (kube-runtime's watcher) until its new revision is available or
//! its progress deadline passes. A Lease per environment keeps deploys apart; the
//! release history lives in a ConfigMap; a failed release returns every service it
//! changed to its previous version, in reverse stage order, and deletes the services it
//! added.

pub mod simulator;

use std::{
    collections::BTreeMap,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt as _;
use k8s_openapi::api::{
    apps::v1::Deployment,
    coordination::v1::{Lease, LeaseSpec},
    core::v1::ConfigMap,
};
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use serde::{Deserialize, Serialize};

use crate::{
    environment::Environment, local::ReleaseSource, plan, release::UnitKind, report::Reporter,
    validate::kind_of, workspace::Workspace,
};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "release-orchestrator";
/// The ConfigMap holding an environment's release history.
pub const HISTORY_CONFIG_MAP: &str = "erp-release-history";
/// The Lease that serializes deploys to one environment.
pub const LOCK_LEASE: &str = "erp-release-lock";
/// How many releases the history ConfigMap keeps.
const HISTORY_KEPT: usize = 100;
/// How long a lock holder may go without renewing before another deploy takes over.
const LEASE_SECONDS: i32 = 30;

/// One release as the environment recorded it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReleaseRecord {
    /// The release version.
    pub release: String,
    /// Service → version deployed.
    pub versions: BTreeMap<String, String>,
    /// Service → SHA-256 of its rendered manifests.
    pub digests: BTreeMap<String, String>,
    /// `succeeded`, `failed`, `rolled_back`.
    pub result: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// How long it took.
    pub duration_ms: u64,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Service → its release-config settings (so a rollback renders it as it ran).
    #[serde(default)]
    pub settings: BTreeMap<String, UnitSettings>,
}

/// What a release config says about one unit beyond its version: replicas, `ERP_*`
/// settings, another chart, extra values files.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UnitSettings {
    /// Replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// `ERP_*` settings added to the unit's ConfigMap.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// A chart instead of `infra/charts/erp-service` (a path in the repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Values files applied after the unit's own (paths in the repository).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl UnitSettings {
    fn of(spec: &crate::release::ServiceSpec) -> Self {
        Self {
            replicas: spec.replicas,
            env: spec.env.clone(),
            chart: spec.chart.clone(),
            values: spec.values.clone(),
        }
    }
}

/// A service this deploy applied, and what ran before it (None: it is new).
#[derive(Debug, Clone)]
struct ChangedService {
    stage: usize,
    name: String,
    before: Option<String>,
}

/// A release deployed (or attempted) to a cluster.
pub struct KubeTarget<'a> {
    client: Client,
    namespace: String,
    workspace: &'a Workspace,
    environment: &'a Environment,
    reporter: &'a Reporter,
    /// Take over fields other managers own.
    pub force_conflicts: bool,
    identity: String,
    renderer: Renderer,
    gates: crate::environment::Gates,
}

impl<'a> KubeTarget<'a> {
    /// Connects to the environment's cluster (its `api_url`, or its kubeconfig context).
    pub async fn connect(
        workspace: &'a Workspace,
        environment: &'a Environment,
        reporter: &'a Reporter,
    ) -> anyhow::Result<Self> {
        let settings = environment.kubernetes.as_ref().ok_or_else(|| {
            anyhow!(
                "environment {} has no `kubernetes` settings",
                environment.name
            )
        })?;
        let config = match &settings.api_url {
            Some(url) => {
                let mut config =
                    kube::Config::new(url.parse().with_context(|| format!("api_url {url}"))?);
                config.default_namespace = settings.namespace.clone();
                config
            }
            None => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
                context: Some(settings.context.clone()),
                ..Default::default()
            })
            .await
            .with_context(|| format!("kubeconfig context {}", settings.context))?,
        };
        let client = Client::try_from(config).context("creating the Kubernetes client")?;
        let identity = format!("{} pid {}", operator(), std::process::id());
        Ok(Self {
            client,
            namespace: settings.namespace.clone(),
            workspace,
            environment,
            reporter,
            force_conflicts: false,
            identity,
            gates: settings.gates.clone(),
            renderer: Renderer {
                root: workspace.root.clone(),
                namespace: settings.namespace.clone(),
                image_registry: settings.image_registry.clone(),
                overrides: settings.values.clone(),
            },
        })
    }

    /// The release history recorded in the cluster, oldest first.
    pub async fn history(&self) -> anyhow::Result<Vec<ReleaseRecord>> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let Some(map) = api.get_opt(HISTORY_CONFIG_MAP).await? else {
            return Ok(Vec::new());
        };
        let text = map
            .data
            .as_ref()
            .and_then(|data| data.get("history.json"))
            .cloned()
            .unwrap_or_else(|| "[]".to_owned());
        serde_json::from_str(&text).context("the history ConfigMap holds unreadable JSON")
    }

    async fn record(&self, record: ReleaseRecord) -> anyhow::Result<()> {
        // An unreadable history is never replaced by a shorter one: the error says so and
        // the ConfigMap keeps what it holds.
        let mut history = self
            .history()
            .await
            .context("reading the release history to add this release (it was left as it was)")?;
        history.push(record);
        // A ConfigMap holds at most 1 MiB: keep the newest records.
        let excess = history.len().saturating_sub(HISTORY_KEPT);
        history.drain(..excess);
        let text = serde_json::to_string_pretty(&history)?;
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let map = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": HISTORY_CONFIG_MAP, "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER}},
            "data": {"history.json": text},
        });
        api.patch(
            HISTORY_CONFIG_MAP,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&map),
        )
        .await
        .context("writing the release history")?;
        Ok(())
    }

    /// The versions the last successful release left running.
    pub async fn running_versions(&self) -> anyhow::Result<BTreeMap<String, String>> {
        Ok(self
            .running_release()
            .await?
            .map(|record| record.versions)
            .unwrap_or_default())
    }

    /// The last successful release.
    async fn running_release(&self) -> anyhow::Result<Option<ReleaseRecord>> {
        Ok(self
            .history()
            .await?
            .into_iter()
            .rev()
            .find(|record| record.result == "succeeded"))
    }

    /// Takes the environment's Lease, or says who holds it.
    async fn lock(&self) -> anyhow::Result<()> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let now = k8s_openapi::jiff::Timestamp::now();
        let spec = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                now,
            )),
            renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                now,
            )),
            ..Default::default()
        };
        match api.get_opt(LOCK_LEASE).await? {
            None => {
                let lease = Lease {
                    metadata: kube::api::ObjectMeta {
                        name: Some(LOCK_LEASE.to_owned()),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                api.create(&PostParams::default(), &lease)
                    .await
                    .map_err(|error| anyhow!("another deploy took the lock first: {error}"))?;
            }
            Some(mut lease) => {
                let held = lease.spec.clone().unwrap_or_default();
                let renewed = held.renew_time.as_ref().map(|time| time.0);
                let duration = i64::from(held.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
                let expired =
                    renewed.is_none_or(|renewed| now.as_second() - renewed.as_second() > duration);
                let holder = held.holder_identity.clone().unwrap_or_default();
                // A deploy from this machine whose process is gone crashed: resume it.
                let crashed_here = holder
                    .strip_prefix(&format!("{} pid ", operator()))
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| !crate::state::is_alive(pid));
                if crashed_here {
                    self.reporter.line(&format!(
                        "resuming: the deploy by {holder} stopped without releasing the lock"
                    ));
                } else if !expired && !holder.is_empty() && holder != self.identity {
                    bail!(
                        "{} is being deployed by {holder} (since {}); try again when it finishes",
                        self.environment.name,
                        held.acquire_time
                            .map(|time| time.0.to_string())
                            .unwrap_or_default()
                    );
                }
                lease.spec = Some(spec);
                api.replace(LOCK_LEASE, &PostParams::default(), &lease)
                    .await
                    .map_err(|error| anyhow!("another deploy took the lock first: {error}"))?;
            }
        }
        Ok(())
    }

    async fn renew(&self) -> anyhow::Result<()> {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut lease = api.get(LOCK_LEASE).await?;
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            bail!(
                "the deploy lock was taken over by {}",
                spec.holder_identity.unwrap_or_default()
            );
        }
        spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        lease.spec = Some(spec);
        api.replace(LOCK_LEASE, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }

    async fn unlock(&self) {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        if let Ok(mut lease) = api.get(LOCK_LEASE).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.identity.as_str())
        {
            spec.holder_identity = None;
            let _ = api
                .replace(LOCK_LEASE, &PostParams::default(), &lease)
                .await;
        }
    }

    /// [`Renderer::render`] on a blocking thread (helm is a process), so renders overlap.
    async fn render_async(
        &self,
        unit: &str,
        version: &str,
        release: &str,
        settings: UnitSettings,
    ) -> anyhow::Result<(Vec<DynamicObject>, String)> {
        let renderer = self.renderer.clone();
        let (unit, version, release) = (unit.to_owned(), version.to_owned(), release.to_owned());
        tokio::task::spawn_blocking(move || renderer.render(&unit, &version, &release, &settings))
            .await
            .map_err(|error| anyhow!("rendering stopped: {error}"))?
    }

    fn api_for(&self, object: &DynamicObject) -> anyhow::Result<(Api<DynamicObject>, String)> {
        let types = object
            .types
            .as_ref()
            .ok_or_else(|| anyhow!("a rendered object has no apiVersion/kind"))?;
        let gvk = GroupVersionKind::try_from(types)?;
        let resource = ApiResource::from_gvk(&gvk);
        let name = object
            .metadata
            .name
            .clone()
            .ok_or_else(|| anyhow!("a rendered {} has no name", types.kind))?;
        Ok((
            Api::namespaced_with(self.client.clone(), &self.namespace, &resource),
            name,
        ))
    }

    /// Applies a unit's objects, then waits for its Deployment's new revision.
    async fn roll_out(&self, unit: &str, objects: &[DynamicObject]) -> anyhow::Result<()> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = self.force_conflicts;
        for object in objects {
            let (api, name) = self.api_for(object)?;
            api.patch(&name, &params, &Patch::Apply(object)).await.map_err(|error| match &error {
                kube::Error::Api(status) if status.code == 409 => anyhow!(
                    "{unit}: {name}: {} (another field manager owns it; --force-conflicts takes it over)",
                    status.message
                ),
                _ => anyhow!("{unit}: applying {name}: {error}"),
            })?;
        }
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let timeout = self.environment.health_timeout;
        let watch = async {
            let mut stream = Box::pin(kube::runtime::watcher::watch_object(deployments, unit));
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Some(deployment)) => match rollout_state(&deployment) {
                        Rollout::Available => return Ok(()),
                        Rollout::Failed(message) => bail!("{unit}: rollout failed: {message}"),
                        Rollout::InProgress => {}
                    },
                    Ok(None) => {}
                    Err(error) => tracing_free_warn(&format!("{unit}: watch: {error}")),
                }
            }
            bail!("{unit}: the watch ended before the rollout finished")
        };
        tokio::time::timeout(timeout, watch)
            .await
            .map_err(|_| anyhow!("{unit}: not available within {timeout:?}"))?
    }

    async fn remove(&self, unit: &str, objects: &[DynamicObject]) -> anyhow::Result<()> {
        for object in objects.iter().rev() {
            let (api, name) = self.api_for(object)?;
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => bail!("{unit}: deleting {name}: {error}"),
            }
        }
        Ok(())
    }

    /// Deploys `source` stage by stage; on failure returns every changed service to its
    /// previous version (reverse stage order) and removes the services it added.
    pub async fn deploy(&self, source: &ReleaseSource) -> anyhow::Result<()> {
        self.lock().await?;
        // Renewed well within its duration for as long as the deploy runs (a long rollout
        // must not let the lease expire under it). A failed renewal is retried; only when
        // the lease is really lost (taken over, or not renewed for its whole duration) is
        // it noted, and the deploy then fails at its next stage through the normal
        // rollback path.
        let lost: std::sync::Mutex<Option<anyhow::Error>> = std::sync::Mutex::new(None);
        let renewing = async {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if renewed.elapsed()
                    < Duration::from_secs(u64::from(LEASE_SECONDS.unsigned_abs() / 3))
                {
                    continue;
                }
                match self.renew().await {
                    Ok(()) => renewed = Instant::now(),
                    Err(error) => {
                        let taken = error.to_string().contains("taken over");
                        if taken
                            || renewed.elapsed()
                                >= Duration::from_secs(u64::from(LEASE_SECONDS.unsigned_abs()))
                        {
                            if let Ok(mut slot) = lost.lock() {
                                slot.get_or_insert(error);
                            }
                            return;
                        }
                    }
                }
            }
        };
        let deploying = self.deploy_locked(source, &lost);
        tokio::pin!(deploying);
        let finished = async {
            tokio::select! {
                result = &mut deploying => result,
                () = renewing => deploying.await,
            }
        };
        let result = tokio::select! {
            result = finished => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow!(
                "interrupted (Ctrl-C): the release may be partly applied; run the same deploy again to resume it, or `rollback --to` the previous release"
            )),
        };
        self.unlock().await;
        result
    }

    async fn deploy_locked(
        &self,
        source: &ReleaseSource,
        lost: &std::sync::Mutex<Option<anyhow::Error>>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let release = &source.release;
        let version_of = |name: &str| {
            release
                .service(name)
                .and_then(|service| service.version.as_ref())
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        let release_version = release
            .version
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let running = self.running_release().await?;
        let previous = running
            .as_ref()
            .map(|record| record.versions.clone())
            .unwrap_or_default();
        let previous_settings = running.map(|record| record.settings).unwrap_or_default();
        let settings: BTreeMap<String, UnitSettings> = release
            .services
            .iter()
            .map(|spec| (spec.name.clone(), UnitSettings::of(spec)))
            .collect();
        let stages = plan::stages(release);
        // Every unit is rendered before anything is applied: a chart or values problem in
        // the last stage must not leave the first ones half-changed.
        let renders = stages
            .iter()
            .flatten()
            .filter(|name| kind_of(release, name, Some(self.workspace)) != UnitKind::Library)
            .map(|name| {
                let version = version_of(name);
                let release_version = release_version.clone();
                let unit_settings = settings.get(name.as_str()).cloned().unwrap_or_default();
                async move {
                    let rendered = self
                        .render_async(name, &version, &release_version, unit_settings)
                        .await;
                    (name.clone(), rendered)
                }
            });
        let mut rendered: BTreeMap<String, (Vec<DynamicObject>, String)> = BTreeMap::new();
        for (name, result) in futures::future::join_all(renders).await {
            rendered.insert(name, result?);
        }
        let mut versions = BTreeMap::new();
        let mut digests = BTreeMap::new();
        let mut changed: Vec<ChangedService> = Vec::new();
        let mut failure = None;
        for (index, names) in stages.iter().enumerate() {
            self.reporter.stage(index + 1, stages.len(), names);
            if let Some(error) = lost.lock().ok().and_then(|mut slot| slot.take()) {
                failure = Some(error.context("the deploy lost its lock"));
                break;
            }
            let mut rollouts = Vec::new();
            for name in names {
                let version = version_of(name);
                if kind_of(release, name, Some(self.workspace)) == UnitKind::Library {
                    self.reporter
                        .finished(name, &version, "verified (library, not deployed)");
                    continue;
                }
                versions.insert(name.clone(), version.clone());
                let Some((objects, digest)) = rendered.remove(name) else {
                    continue;
                };
                digests.insert(name.clone(), digest);
                // Changed: another version, or the same one with other replicas, settings,
                // chart or values files; a rollback puts either back.
                if previous.get(name) != Some(&version)
                    || previous_settings.get(name.as_str()) != settings.get(name.as_str())
                {
                    changed.push(ChangedService {
                        stage: index,
                        name: name.clone(),
                        before: previous.get(name).cloned(),
                    });
                }
                self.reporter
                    .service(name, &version, "applying, waiting for the rollout");
                rollouts.push(async move {
                    let result = self.roll_out(name, &objects).await;
                    (name, version, result)
                });
            }
            for (name, version, result) in futures::future::join_all(rollouts).await {
                match result {
                    Ok(()) => self.reporter.finished(name, &version, "available"),
                    Err(error) => {
                        self.reporter.finished(name, &version, "FAILED");
                        failure.get_or_insert(error);
                    }
                }
            }
            if failure.is_some() {
                break;
            }
        }
        if failure.is_none()
            && let Err(error) = self.run_gates(release, &release_version).await
        {
            failure = Some(error);
        }
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let Some(error) = failure else {
            self.record(ReleaseRecord {
                release: release_version.clone(),
                versions,
                digests,
                result: "succeeded".to_owned(),
                started_at,
                duration_ms,
                error: None,
                settings,
            })
            .await?;
            self.reporter.line(&format!(
                "release {release_version} is available in {}",
                self.environment.name
            ));
            return Ok(());
        };
        self.reporter.line(&format!(
            "release {release_version} failed: {error:#}; rolling back what it changed"
        ));
        let rollback = self
            .roll_back(&changed, &release_version, &previous_settings)
            .await;
        let result = if rollback.is_ok() {
            "rolled_back"
        } else {
            "failed"
        };
        self.record(ReleaseRecord {
            release: release_version.clone(),
            versions,
            digests,
            result: result.to_owned(),
            started_at,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: Some(format!("{error:#}")),
            settings,
        })
        .await
        .unwrap_or_else(|record_error| {
            // The deploy's own failure is what the caller must see.
            tracing_free_warn(&format!(
                "the history could not be written: {record_error:#}"
            ));
        });
        match rollback {
            Ok(()) => Err(error.context(format!(
                "release {release_version} failed; every service it changed is back on its previous version"
            ))),
            Err(rollback_error) => Err(error.context(format!(
                "release {release_version} failed and the rollback failed too: {rollback_error:#}"
            ))),
        }
    }

    /// The release's `testing` suites this environment gates on, each as a Job after the
    /// last stage; the first failure fails the release.
    async fn run_gates(
        &self,
        release: &crate::release::Release,
        version: &str,
    ) -> anyhow::Result<()> {
        use crate::release::TestKind;
        use k8s_openapi::api::batch::v1::Job;
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &self.namespace);
        // The environment gates on a kind of suite; a suite that names an environment
        // (the seed's smoke tests say `production`) runs only there.
        let environment = self.environment.name.as_str();
        let suites = release.testing.iter().filter(|suite| {
            let gated = match suite.kind {
                TestKind::Smoke => self.gates.smoke,
                TestKind::Integration => self.gates.integration,
            };
            gated
                && suite
                    .environment
                    .as_deref()
                    .is_none_or(|meant| meant == environment)
        });
        for (index, suite) in suites.enumerate() {
            let kind = match suite.kind {
                TestKind::Smoke => "smoke",
                TestKind::Integration => "integration",
            };
            let image = match (&suite.image, &suite.repository) {
                (Some(image), _) => image.clone(),
                (None, Some(repository)) => format!(
                    "{}/{}:{version}",
                    self.renderer.image_registry,
                    repository.rsplit('/').next().unwrap_or(repository)
                ),
                (None, None) => bail!(
                    "the {kind} tests (line {}) name neither a repository nor an image",
                    suite.line
                ),
            };
            let stamp = chrono::Utc::now().timestamp() % 100_000;
            let name: String = format!("erp-{kind}-{version}-{index}-{stamp}")
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .take(63)
                .collect();
            // Kubernetes takes whole seconds, at least one.
            let timeout = suite
                .timeout
                .unwrap_or(Duration::from_secs(600))
                .max(Duration::from_secs(1));
            let job: Job = serde_json::from_value(serde_json::json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "labels": {
                    "app.kubernetes.io/managed-by": FIELD_MANAGER,
                    "erp.io/release": version,
                    "erp.io/test-kind": kind,
                }},
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": timeout.as_secs(),
                    "ttlSecondsAfterFinished": 86_400,
                    "template": {"spec": {
                        "restartPolicy": "Never",
                        "containers": [{
                            "name": "tests", "image": image,
                            "env": [
                                {"name": "ERP_GATEWAY_URL", "value": "http://erp-api-gateway:8080"},
                                {"name": "ERP_RELEASE", "value": version},
                            ],
                        }],
                    }},
                },
            }))?;
            self.reporter
                .service(&name, version, &format!("{kind} tests running ({image})"));
            jobs.create(&PostParams::default(), &job)
                .await
                .with_context(|| format!("creating the {kind} test Job"))?;
            let watch = async {
                let mut stream =
                    Box::pin(kube::runtime::watcher::watch_object(jobs.clone(), &name));
                while let Some(event) = stream.next().await {
                    if let Ok(Some(job)) = event
                        && let Some(status) = &job.status
                    {
                        if status.succeeded.unwrap_or(0) > 0 {
                            return Ok(());
                        }
                        if status.failed.unwrap_or(0) > 0 {
                            bail!("the {kind} tests failed (Job {name}, image {image})");
                        }
                    }
                }
                bail!("the watch of Job {name} ended before it finished")
            };
            match tokio::time::timeout(timeout, watch).await {
                Ok(Ok(())) => {
                    self.reporter
                        .finished(&name, version, &format!("{kind} tests passed"))
                }
                Ok(Err(error)) => {
                    self.reporter
                        .finished(&name, version, &format!("{kind} tests FAILED"));
                    return Err(error);
                }
                Err(_) => bail!("the {kind} tests did not finish within {timeout:?} (Job {name})"),
            }
        }
        Ok(())
    }

    /// Returns `changed` services to what ran before, last stage first; removes new ones.
    async fn roll_back(
        &self,
        changed: &[ChangedService],
        release: &str,
        previous_settings: &BTreeMap<String, UnitSettings>,
    ) -> anyhow::Result<()> {
        let mut by_stage: BTreeMap<usize, Vec<&ChangedService>> = BTreeMap::new();
        for entry in changed {
            by_stage.entry(entry.stage).or_default().push(entry);
        }
        for (_, entries) in by_stage.into_iter().rev() {
            let mut steps = Vec::new();
            for ChangedService { name, before, .. } in entries {
                steps.push(async move {
                    match before {
                        Some(version) => {
                            let unit_settings = previous_settings
                                .get(name.as_str())
                                .cloned()
                                .unwrap_or_default();
                            let (objects, _) = self
                                .render_async(name, version, release, unit_settings)
                                .await?;
                            self.roll_out(name, &objects).await?;
                            self.reporter.finished(name, version, "rolled back");
                        }
                        None => {
                            let (objects, _) = self
                                .render_async(name, "0.0.0", release, UnitSettings::default())
                                .await?;
                            self.remove(name, &objects).await?;
                            self.reporter.finished(
                                name,
                                "-",
                                "removed (new in the failed release)",
                            );
                        }
                    }
                    anyhow::Ok(())
                });
            }
            for result in futures::future::join_all(steps).await {
                result?;
            }
        }
        Ok(())
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

/// Renders units with `helm template` (owned, so renders can run on blocking threads).
#[derive(Debug, Clone)]
pub struct Renderer {
    /// The repository (chart and values).
    pub root: std::path::PathBuf,
    /// The namespace rendered into.
    pub namespace: String,
    /// `<registry>/<unit>` is the image.
    pub image_registry: String,
    /// The environment's values per unit.
    pub overrides: BTreeMap<String, serde_yaml_ng::Value>,
}

impl Renderer {
    /// Renders one unit at `version` with `helm template`.
    /// Values, last wins: the chart's, `infra/values/<unit>.yaml`, the release's values
    /// files, the release's replicas and `env`, then the environment's overrides.
    pub fn render(
        &self,
        unit: &str,
        version: &str,
        release: &str,
        settings: &UnitSettings,
    ) -> anyhow::Result<(Vec<DynamicObject>, String)> {
        let root = &self.root;
        let from_release = tempfile::NamedTempFile::new()?;
        let mut overlay = serde_json::Map::new();
        if let Some(replicas) = settings.replicas {
            overlay.insert("replicas".to_owned(), serde_json::json!(replicas));
        }
        if !settings.env.is_empty() {
            overlay.insert("config".to_owned(), serde_json::json!(settings.env));
        }
        std::fs::write(from_release.path(), serde_yaml_ng::to_string(&overlay)?)?;
        let from_environment = tempfile::NamedTempFile::new()?;
        let values = self
            .overrides
            .get(unit)
            .cloned()
            .unwrap_or(serde_yaml_ng::Value::Null);
        std::fs::write(from_environment.path(), serde_yaml_ng::to_string(&values)?)?;
        let chart = settings
            .chart
            .clone()
            .unwrap_or_else(|| "infra/charts/erp-service".to_owned());
        let mut command = Command::new(helm_binary());
        command
            .current_dir(root)
            .args(["template", unit, &chart, "--namespace", &self.namespace])
            .arg("-f")
            .arg(format!("infra/values/{unit}.yaml"));
        for file in &settings.values {
            command.arg("-f").arg(file);
        }
        let output = command
            .arg("-f")
            .arg(from_release.path())
            .arg("-f")
            .arg(from_environment.path())
            .arg("--set")
            .arg(format!(
                "image.tag={version},release={release},image.repository={}/{unit}",
                self.image_registry
            ))
            .output()
            .context("running helm (install it with scripts/install-tools, or put helm on PATH)")?;
        if !output.status.success() {
            bail!(
                "helm template {unit}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut objects = Vec::new();
        for document in text.split("\n---") {
            let parsed: Option<DynamicObject> =
                serde_yaml_ng::from_str(document).map_err(|error| {
                    anyhow!("helm template {unit} rendered an unreadable object: {error}")
                })?;
            objects.extend(parsed);
        }
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok((objects, digest))
    }
}

/// Who deploys: `user@host`.
fn operator() -> String {
    format!(
        "{}@{}",
        std::env::var("USER").unwrap_or_else(|_| "someone".to_owned()),
        std::fs::read_to_string("/etc/hostname")
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "host".to_owned())
    )
}

/// Where a Deployment's rollout stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Rollout {
    /// The newest generation is fully available.
    Available,
    /// Still rolling out.
    InProgress,
    /// It will not finish: the condition's message.
    Failed(String),
}

/// Reads a Deployment's status against its spec.
pub fn rollout_state(deployment: &Deployment) -> Rollout {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let wanted = deployment.spec.replicas.unwrap_or(1);
    let Some(status) = &deployment.status else {
        return Rollout::InProgress;
    };
    // A status about an older generation says nothing about the one just applied.
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::InProgress;
    }
    for condition in status.conditions.iter().flatten() {
        if condition.type_.as_deref() == Some("Progressing")
            && condition.reason.as_deref() == Some("ProgressDeadlineExceeded")
        {
            return Rollout::Failed(
                condition
                    .message
                    .clone()
                    .unwrap_or_else(|| "progress deadline exceeded".to_owned()),
            );
        }
    }
    // As `kubectl rollout status`: every replica is of the new revision (no old pods
    // left, which would otherwise count as available) and all of them are available.
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated >= wanted && total == updated && available >= updated {
        Rollout::Available
    } else {
        Rollout::InProgress
    }
}

/// A watch hiccup: the watcher retries by itself; say so on stderr.
fn tracing_free_warn(message: &str) {
    eprintln!("warning: {message}");
}

/// `helm` from PATH, else the one `scripts/install-tools` put in the tools cache.
pub fn helm_binary() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("helm"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        std::env::var_os("ERP_TOOLS_DIR")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/erp-tools"))
            })
            .unwrap_or_default()
            .join("helm-layer-2.2.2/bin/helm")
    })
}

/// Whether `root` has the chart (for a clear error before connecting).
pub fn chart_exists(root: &Path) -> bool {
    root.join("infra/charts/erp-service/Chart.yaml").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "generation": generation},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("a deployment")
    }

    #[test]
    fn a_rollout_is_done_only_when_every_replica_is_new_and_available() {
        let surging = deployment(
            2,
            serde_json::json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(
            rollout_state(&surging),
            Rollout::InProgress,
            "an old pod is still there"
        );
        let done = deployment(
            2,
            serde_json::json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(rollout_state(&done), Rollout::Available);
        let stale = deployment(
            3,
            serde_json::json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert_eq!(
            rollout_state(&stale),
            Rollout::InProgress,
            "the status is about generation 2"
        );
        let failed = deployment(
            3,
            serde_json::json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 0, "availableReplicas": 2,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "no"}]}),
        );
        assert_eq!(rollout_state(&failed), Rollout::Failed("no".to_owned()));
    }
}
