//! A Kubernetes API stand-in on loopback, for tests and benchmarks (no cluster exists on
//! the machines this project is built on). It serves what kube-rs sends — no discovery:
//! server-side apply (`PATCH application/apply-patch+yaml` with `fieldManager` and
//! `force`), GET, POST, PUT (with resourceVersion preconditions), DELETE, LIST with
//! `limit`, and WATCH (`watch=true`, `resourceVersion`, `allowWatchBookmarks`,
//! `timeoutSeconds`, newline-delimited JSON events, bookmarks, 410 Gone) — for any
//! namespaced kind, with monotonically increasing resourceVersions. A deployment
//! controller makes a new revision available after a configurable delay, unless its
//! image matches the failure pattern (then the rollout exceeds its progress deadline); a
//! job controller completes Jobs (or fails those whose image matches). Every request is
//! recorded so tests can assert their order.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// How the simulated cluster behaves.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// How long a new Deployment revision (or a Job) takes to finish.
    pub rollout_delay: Duration,
    /// Images containing this never become available (their rollout fails).
    pub failing_image: Option<String>,
    /// Jobs whose image contains this fail.
    pub failing_job_image: Option<String>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            rollout_delay: Duration::from_millis(100),
            failing_image: None,
            failing_job_image: None,
        }
    }
}

/// One request the simulator answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// When it arrived, from the simulator's start.
    pub at: Duration,
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path.
    pub path: String,
    /// The query string (as sent, `&…` included).
    pub query: String,
}

/// Where an object lives: API group/version, plural, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    api: String,
    plural: String,
    namespace: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Event {
    resource_version: u64,
    key: Key,
    kind: &'static str,
    object: Value,
}

#[derive(Debug, Default)]
struct Store {
    objects: BTreeMap<Key, Value>,
    /// The field manager that last applied each object.
    managers: BTreeMap<Key, String>,
    resource_version: u64,
    history: Vec<Event>,
    uid: u64,
}

struct Shared {
    store: Mutex<Store>,
    events: broadcast::Sender<Event>,
    options: SimulatorOptions,
    log: Mutex<Vec<RecordedRequest>>,
    started: Instant,
}

/// A running simulator.
pub struct KubeSimulator {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for KubeSimulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl KubeSimulator {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(options: SimulatorOptions) -> std::io::Result<Self> {
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            events,
            options,
            log: Mutex::new(Vec::new()),
            started: Instant::now(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .log
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }

    /// An object as stored now (`apps/v1`, `deployments`, namespace, name).
    pub fn object(&self, api: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = Key {
            api: api.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        self.shared.store.lock().ok()?.objects.get(&key).cloned()
    }

    /// Forgets watch history before now: watches from older resourceVersions get 410 Gone.
    pub fn compact(&self) {
        if let Ok(mut store) = self.shared.store.lock() {
            store.history.clear();
        }
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16(),
        })
        .to_string(),
    )
        .into_response()
}

fn ok_json(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// `/api/v1/namespaces/ns/plural[/name]` or `/apis/group/version/namespaces/ns/plural[/name]`.
fn parse_path(path: &str) -> Option<(String, String, String, Option<String>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (api, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ((*version).to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    match rest {
        ["namespaces", namespace, plural] => {
            Some((api, (*plural).to_owned(), (*namespace).to_owned(), None))
        }
        ["namespaces", namespace, plural, name] => Some((
            api,
            (*plural).to_owned(),
            (*namespace).to_owned(),
            Some((*name).to_owned()),
        )),
        _ => None,
    }
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_owned(), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[index + 1..index + 3], 16)
        {
            out.push(byte);
            index += 3;
        } else {
            out.push(if bytes[index] == b'+' {
                b' '
            } else {
                bytes[index]
            });
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    if let Ok(mut log) = shared.log.lock() {
        log.push(RecordedRequest {
            at: shared.started.elapsed(),
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
        });
    }
    let Some((api, plural, namespace, name)) = parse_path(&path) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the server could not find {path}"),
        );
    };
    let params = query_map(&query);
    let body = match axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024).await {
        Ok(body) => body,
        Err(error) => return status(StatusCode::BAD_REQUEST, "BadRequest", &error.to_string()),
    };
    let key = |name: String| Key {
        api: api.clone(),
        plural: plural.clone(),
        namespace: namespace.clone(),
        name,
    };
    match (method, name) {
        (Method::GET, None)
            if params
                .get("watch")
                .is_some_and(|value| value == "true" || value == "1") =>
        {
            watch(&shared, &api, &plural, &namespace, &params)
        }
        (Method::GET, None) => list(&shared, &api, &plural, &namespace, &params),
        (Method::GET, Some(name)) => match shared
            .store
            .lock()
            .ok()
            .and_then(|store| store.objects.get(&key(name.clone())).cloned())
        {
            Some(object) => ok_json(StatusCode::OK, &object),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{plural} \"{name}\" not found"),
            ),
        },
        (Method::PATCH, Some(name)) => apply(&shared, key(name), &params, &body),
        (Method::POST, None) => create(&shared, &api, &plural, &namespace, &body),
        (Method::PUT, Some(name)) => replace(&shared, key(name), &body),
        (Method::DELETE, Some(name)) => delete(&shared, key(name)),
        (method, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{method} is not supported here"),
        ),
    }
}

/// Stores `object` under `key` with a new resourceVersion and announces it.
fn commit(
    shared: &Shared,
    store: &mut Store,
    key: Key,
    mut object: Value,
    kind: &'static str,
) -> Value {
    store.resource_version += 1;
    let version = store.resource_version;
    object["metadata"]["resourceVersion"] = json!(version.to_string());
    if kind == "DELETED" {
        store.objects.remove(&key);
        store.managers.remove(&key);
    } else {
        store.objects.insert(key.clone(), object.clone());
    }
    let event = Event {
        resource_version: version,
        key,
        kind,
        object: object.clone(),
    };
    store.history.push(event.clone());
    let _ = shared.events.send(event);
    object
}

fn new_metadata(store: &mut Store, object: &mut Value, key: &Key) {
    store.uid += 1;
    let metadata = &mut object["metadata"];
    metadata["name"] = json!(key.name);
    metadata["namespace"] = json!(key.namespace);
    metadata["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", store.uid));
    metadata["creationTimestamp"] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    metadata["generation"] = json!(1);
}

fn apply(
    shared: &Arc<Shared>,
    key: Key,
    params: &BTreeMap<String, String>,
    body: &Bytes,
) -> Response {
    let Some(manager) = params
        .get("fieldManager")
        .filter(|manager| !manager.is_empty())
    else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "fieldManager is required for apply patch",
        );
    };
    let force = params.get("force").is_some_and(|value| value == "true");
    let Ok(applied) = serde_yaml_ng::from_slice::<Value>(body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the apply patch is not YAML or JSON",
        );
    };
    let Ok(mut store) = shared.store.lock() else {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "store poisoned",
        );
    };
    let existing = store.objects.get(&key).cloned();
    let object = match existing {
        None => {
            let mut object = applied;
            new_metadata(&mut store, &mut object, &key);
            if key.plural == "deployments" {
                object["status"] = json!({"observedGeneration": 0, "replicas": 0});
            }
            object
        }
        Some(mut current) => {
            let owner = store.managers.get(&key).cloned().unwrap_or_default();
            let changed = ["spec", "data"]
                .iter()
                .any(|field| applied.get(*field).is_some() && applied[*field] != current[*field]);
            if owner != *manager && !force && changed {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    &format!("Apply failed with 1 conflict: conflict with \"{owner}\": .spec"),
                );
            }
            let spec_changed = applied.get("spec").is_some() && applied["spec"] != current["spec"];
            for field in ["spec", "data"] {
                if let Some(value) = applied.get(field) {
                    current[field] = value.clone();
                }
            }
            for field in ["labels", "annotations"] {
                if let Some(value) = applied["metadata"].get(field) {
                    current["metadata"][field] = value.clone();
                }
            }
            if spec_changed {
                let generation = current["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                current["metadata"]["generation"] = json!(generation);
            }
            current
        }
    };
    store.managers.insert(key.clone(), manager.clone());
    let kind = if store.objects.contains_key(&key) {
        "MODIFIED"
    } else {
        "ADDED"
    };
    let stored = commit(shared, &mut store, key.clone(), object, kind);
    drop(store);
    if key.plural == "deployments" {
        spawn_rollout(shared.clone(), key, &stored);
    }
    ok_json(StatusCode::OK, &stored)
}

fn create(
    shared: &Arc<Shared>,
    api: &str,
    plural: &str,
    namespace: &str,
    body: &Bytes,
) -> Response {
    let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body is not JSON",
        );
    };
    let Some(name) = object["metadata"]["name"].as_str().map(str::to_owned) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name is required",
        );
    };
    let key = Key {
        api: api.to_owned(),
        plural: plural.to_owned(),
        namespace: namespace.to_owned(),
        name: name.clone(),
    };
    let Ok(mut store) = shared.store.lock() else {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "store poisoned",
        );
    };
    if store.objects.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{plural} \"{name}\" already exists"),
        );
    }
    new_metadata(&mut store, &mut object, &key);
    let stored = commit(shared, &mut store, key.clone(), object, "ADDED");
    drop(store);
    if plural == "jobs" {
        spawn_job(shared.clone(), key, &stored);
    }
    ok_json(StatusCode::CREATED, &stored)
}

fn replace(shared: &Arc<Shared>, key: Key, body: &Bytes) -> Response {
    let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body is not JSON",
        );
    };
    let Ok(mut store) = shared.store.lock() else {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "store poisoned",
        );
    };
    let Some(current) = store.objects.get(&key).cloned() else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{} \"{}\" not found", key.plural, key.name),
        );
    };
    let sent = object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    if !sent.is_empty()
        && sent
            != current["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
    {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified",
                key.plural, key.name
            ),
        );
    }
    for field in ["uid", "creationTimestamp", "generation"] {
        object["metadata"][field] = current["metadata"][field].clone();
    }
    let stored = commit(shared, &mut store, key, object, "MODIFIED");
    ok_json(StatusCode::OK, &stored)
}

fn delete(shared: &Arc<Shared>, key: Key) -> Response {
    let Ok(mut store) = shared.store.lock() else {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "store poisoned",
        );
    };
    let Some(current) = store.objects.get(&key).cloned() else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{} \"{}\" not found", key.plural, key.name),
        );
    };
    let stored = commit(shared, &mut store, key, current, "DELETED");
    ok_json(StatusCode::OK, &stored)
}

fn list_kind(plural: &str, items: &[Value]) -> String {
    items
        .first()
        .and_then(|item| item["kind"].as_str())
        .map_or_else(|| format!("{plural}List"), |kind| format!("{kind}List"))
}

fn matches_selector(object: &Value, params: &BTreeMap<String, String>) -> bool {
    match params
        .get("fieldSelector")
        .and_then(|selector| selector.strip_prefix("metadata.name="))
    {
        Some(name) => object["metadata"]["name"] == name,
        None => true,
    }
}

fn list(
    shared: &Shared,
    api: &str,
    plural: &str,
    namespace: &str,
    params: &BTreeMap<String, String>,
) -> Response {
    let Ok(store) = shared.store.lock() else {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "store poisoned",
        );
    };
    let limit: usize = params
        .get("limit")
        .and_then(|limit| limit.parse().ok())
        .filter(|limit| *limit > 0)
        .unwrap_or(usize::MAX);
    let mut items: Vec<Value> = store
        .objects
        .iter()
        .filter(|(key, _)| key.api == api && key.plural == plural && key.namespace == namespace)
        .map(|(_, object)| object.clone())
        .filter(|object| matches_selector(object, params))
        .collect();
    let more = items.len() > limit;
    items.truncate(limit);
    let mut metadata = json!({"resourceVersion": store.resource_version.to_string()});
    if more {
        // Pages are not kept: a continue token would re-list from the start.
        metadata["remainingItemCount"] = json!(0);
    }
    ok_json(
        StatusCode::OK,
        &json!({"apiVersion": api, "kind": list_kind(plural, &items), "metadata": metadata, "items": items}),
    )
}

fn watch(
    shared: &Arc<Shared>,
    api: &str,
    plural: &str,
    namespace: &str,
    params: &BTreeMap<String, String>,
) -> Response {
    let since: u64 = params
        .get("resourceVersion")
        .and_then(|version| version.parse().ok())
        .unwrap_or(0);
    let timeout = Duration::from_secs(
        params
            .get("timeoutSeconds")
            .and_then(|seconds| seconds.parse().ok())
            .unwrap_or(300),
    );
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|value| value == "true");
    let mut receiver = shared.events.subscribe();
    let (backlog, oldest, current) = match shared.store.lock() {
        Ok(store) => (
            store
                .history
                .iter()
                .filter(|event| event.resource_version > since)
                .cloned()
                .collect::<Vec<_>>(),
            store
                .history
                .first()
                .map_or(store.resource_version + 1, |event| event.resource_version),
            store.resource_version,
        ),
        Err(_) => {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "store poisoned",
            );
        }
    };
    let (sender, stream_receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let filter = {
        let (api, plural, namespace, params) = (
            api.to_owned(),
            plural.to_owned(),
            namespace.to_owned(),
            params.clone(),
        );
        move |event: &Event| {
            event.key.api == api
                && event.key.plural == plural
                && event.key.namespace == namespace
                && matches_selector(&event.object, &params)
        }
    };
    let line = |value: Value| Ok(Bytes::from(format!("{value}\n")));
    let gone = since > 0 && since + 1 < oldest && since < current;
    let api_version = api.to_owned();
    tokio::spawn(async move {
        if gone {
            let error = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": format!("too old resource version: {since}"), "reason": "Expired", "code": 410}});
            let _ = sender.send(line(error)).await;
            return;
        }
        let mut last = since;
        for event in backlog.iter().filter(|event| filter(event)) {
            last = event.resource_version;
            if sender
                .send(line(json!({"type": event.kind, "object": event.object})))
                .await
                .is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                _ = ticker.tick(), if bookmarks => {
                    let bookmark = json!({"type": "BOOKMARK", "object": {"apiVersion": api_version, "kind": "Bookmark",
                        "metadata": {"resourceVersion": last.max(current).to_string()}}});
                    if sender.send(line(bookmark)).await.is_err() { return; }
                }
                received = receiver.recv() => match received {
                    Ok(event) if event.resource_version > last && filter(&event) => {
                        last = event.resource_version;
                        if sender.send(line(json!({"type": event.kind, "object": event.object}))).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(stream_receiver);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

fn image_of(object: &Value) -> String {
    object["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The deployment controller: the applied generation becomes available after the delay
/// (or fails its progress deadline when the image matches the failure pattern).
fn spawn_rollout(shared: Arc<Shared>, key: Key, object: &Value) {
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let fails = shared
        .options
        .failing_image
        .as_deref()
        .is_some_and(|pattern| image_of(object).contains(pattern));
    let delay = shared.options.rollout_delay;
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let Ok(mut store) = shared.store.lock() else {
            return;
        };
        let Some(mut current) = store.objects.get(&key).cloned() else {
            return;
        };
        if current["metadata"]["generation"].as_i64() != Some(generation) {
            return; // a newer revision was applied meanwhile; its own rollout reports
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        current["status"] = if fails {
            json!({
                "observedGeneration": generation, "replicas": replicas, "updatedReplicas": 0,
                "availableReplicas": 0, "readyReplicas": 0, "unavailableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "lastUpdateTime": now, "lastTransitionTime": now,
                     "message": "Deployment does not have minimum availability."},
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "lastUpdateTime": now, "lastTransitionTime": now,
                     "message": format!("ReplicaSet \"{}-{generation}\" has timed out progressing: image {} cannot be pulled", key.name, image_of(&current))},
                ],
            })
        } else {
            json!({
                "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                "availableReplicas": replicas, "readyReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastUpdateTime": now, "lastTransitionTime": now},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastUpdateTime": now, "lastTransitionTime": now,
                     "message": format!("ReplicaSet \"{}-{generation}\" has successfully progressed.", key.name)},
                ],
            })
        };
        commit(&shared, &mut store, key, current, "MODIFIED");
    });
}

/// The job controller: a Job succeeds after the delay, or fails when its image matches.
fn spawn_job(shared: Arc<Shared>, key: Key, object: &Value) {
    let fails = shared
        .options
        .failing_job_image
        .as_deref()
        .is_some_and(|pattern| image_of(object).contains(pattern));
    let delay = shared.options.rollout_delay;
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let Ok(mut store) = shared.store.lock() else {
            return;
        };
        let Some(mut current) = store.objects.get(&key).cloned() else {
            return;
        };
        let (kind, count) = if fails {
            ("Failed", "failed")
        } else {
            ("Complete", "succeeded")
        };
        current["status"] = json!({
            count: 1,
            "conditions": [{"type": kind, "status": "True", "reason": if fails { "BackoffLimitExceeded" } else { "Completed" }}],
        });
        commit(&shared, &mut store, key, current, "MODIFIED");
    });
}
