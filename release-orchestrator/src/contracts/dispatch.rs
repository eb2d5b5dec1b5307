//! `contracts dispatch`: one GitHub `repository_dispatch` (`contracts-changed`) to each
//! affected unit's repository, so exactly those CIs build against the new contracts.
//! Bounded retries with backoff on 429/5xx and connection errors; `--dry-run` prints the
//! requests instead of sending them.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode, body::Bytes};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};

use super::Report;

/// The `event_type` every unit's CI listens for.
pub const EVENT_TYPE: &str = "contracts-changed";

/// Where and how dispatches are sent.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    /// The GitHub API root, e.g. `https://api.github.com`.
    pub api_url: String,
    /// The token (a fine-grained token with `contents: write` on the unit repositories).
    pub token: Option<String>,
    /// Print instead of sending.
    pub dry_run: bool,
    /// Attempts per repository (at least 1).
    pub attempts: u32,
    /// The first retry's delay; doubled each time.
    pub backoff: Duration,
}

/// One request to send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Dispatch {
    /// `POST` URL.
    pub url: String,
    /// The JSON body.
    pub body: Value,
}

/// The dispatches a report calls for, one per affected unit.
pub fn dispatches(report: &Report, api_url: &str) -> Vec<Dispatch> {
    let api = api_url.trim_end_matches('/');
    report
        .units
        .iter()
        .map(|impact| {
            let classes = impact.class_names();
            Dispatch {
                url: format!("{api}/repos/{}/dispatches", impact.repository),
                body: json!({
                    "event_type": EVENT_TYPE,
                    "client_payload": {
                        "contracts_revision": report.head,
                        "base_revision": report.base,
                        "changed_packages": report.changed_packages,
                        "unit": impact.unit,
                        "classes": classes,
                        "shared_libs": impact.shared_libs,
                    },
                }),
            }
        })
        .collect()
}

/// Sends (or prints) every dispatch; fails naming the repositories that could not be
/// reached after all attempts.
pub async fn send(report: &Report, options: &DispatchOptions) -> anyhow::Result<Vec<Dispatch>> {
    let planned = dispatches(report, &options.api_url);
    if options.dry_run {
        for dispatch in &planned {
            println!(
                "POST {}\n{}",
                dispatch.url,
                serde_json::to_string_pretty(&dispatch.body)?
            );
        }
        return Ok(planned);
    }
    let token = options
        .token
        .as_deref()
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            anyhow!("no token: set the variable named by --token-env (GITHUB_TOKEN by default)")
        })?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut failures = Vec::new();
    for dispatch in &planned {
        let mut delay = options.backoff;
        let mut outcome = Err(anyhow!("not sent"));
        for attempt in 1..=options.attempts.max(1) {
            let request = Request::builder()
                .method(Method::POST)
                .uri(&dispatch.url)
                .header("authorization", format!("Bearer {token}"))
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28")
                .header("user-agent", "erp-release-orchestrator")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(dispatch.body.to_string())))
                .context("building the request")?;
            let answer =
                tokio::time::timeout(Duration::from_secs(15), client.request(request)).await;
            let retryable = match answer {
                Ok(Ok(response)) => {
                    let status = response.status();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map(|body| body.to_bytes())
                        .unwrap_or_default();
                    if status.is_success() {
                        outcome = Ok(());
                        break;
                    }
                    outcome = Err(anyhow!("{status}: {}", String::from_utf8_lossy(&body)));
                    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
                }
                Ok(Err(error)) => {
                    outcome = Err(anyhow!("{error}"));
                    true
                }
                Err(_) => {
                    outcome = Err(anyhow!("no answer within 15 s"));
                    true
                }
            };
            if !retryable || attempt == options.attempts.max(1) {
                break;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        match outcome {
            Ok(()) => println!("dispatched {EVENT_TYPE} to {}", dispatch.url),
            Err(error) => failures.push(format!("{}: {error}", dispatch.url)),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} dispatch(es) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(planned)
}
