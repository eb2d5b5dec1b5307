//! Smoke tests through the gateway after a deploy: the operator token from the local
//! bootstrap secret, a demo tenant (created once), its admin's login, then one read per
//! service of the release — the first parameterless GET route its contract serves.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode, body::Bytes};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};

use crate::{release::Release, report::Reporter, workspace::Workspace};

/// The demo tenant the local environment creates for people to try the mesh.
pub const DEMO_TENANT: &str = "demo";
/// Its admin.
pub const DEMO_EMAIL: &str = "admin@demo.example.com";
/// Its admin's password (local environment only).
pub const DEMO_PASSWORD: &str = "Demo-password-2026";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = Request::builder().method(method.clone()).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::new(Bytes::from(
        body.map(|body| body.to_string()).unwrap_or_default(),
    )))?;
    // One deadline for the whole answer, body included: a gateway that sends headers
    // and then stalls must not hold the deploy.
    let answer = async {
        let response = client
            .request(request)
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("{method} {url}: reading the body"))?
            .to_bytes();
        anyhow::Ok((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .map_err(|_| anyhow!("{method} {url}: no whole answer within 10 s"))??;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, value))
}

/// Whether the gateway on `port` answers `/readyz` with 200.
pub async fn ready(port: u16) -> Result<(), String> {
    match call(
        &client(),
        Method::GET,
        &format!("http://127.0.0.1:{port}/readyz"),
        None,
        None,
    )
    .await
    {
        Ok((StatusCode::OK, _)) => Ok(()),
        Ok((status, body)) => Err(format!("/readyz {status}: {body}")),
        Err(error) => Err(error.to_string()),
    }
}

/// The smoke tests; each step is reported, the first failure ends them.
pub async fn run(
    gateway: &str,
    bootstrap_secret: &str,
    release: &Release,
    workspace: &Workspace,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let client = client();
    let (status, operator) = call(
        &client,
        Method::POST,
        &format!("{gateway}/v1/operator:token"),
        None,
        Some(json!({"bootstrapSecret": bootstrap_secret})),
    )
    .await?;
    if status != StatusCode::OK {
        bail!("operator token: {status} {operator}");
    }
    let operator = operator["accessToken"].as_str().unwrap_or_default();
    let (status, tenant) = call(
        &client,
        Method::POST,
        &format!("{gateway}/v1/tenants"),
        Some(operator),
        Some(json!({
            "slug": DEMO_TENANT,
            "displayName": "Demo",
            "plan": {"name": "demo", "enabledModules": ["MODULE_HRM", "MODULE_CRM", "MODULE_FINANCE"]},
            "adminEmail": DEMO_EMAIL,
            "adminPassword": DEMO_PASSWORD,
        })),
    )
    .await?;
    if status != StatusCode::OK && status != StatusCode::CONFLICT {
        bail!("creating the demo tenant: {status} {tenant}");
    }
    let (status, login) = call(
        &client,
        Method::POST,
        &format!("{gateway}/v1/sessions:login"),
        None,
        Some(json!({"tenantSlug": DEMO_TENANT, "email": DEMO_EMAIL, "password": DEMO_PASSWORD})),
    )
    .await?;
    if status != StatusCode::OK {
        bail!("login through the gateway: {status} {login}");
    }
    reporter.line("smoke: login through the gateway ok");
    let token = login["tokens"]["accessToken"]
        .as_str()
        .ok_or_else(|| anyhow!("the login answer has no access token: {login}"))?;
    for (service, path) in read_routes(release, workspace) {
        let (status, body) = call(
            &client,
            Method::GET,
            &format!("{gateway}{path}"),
            Some(token),
            None,
        )
        .await?;
        if status != StatusCode::OK {
            bail!("{service}: GET {path} answered {status} {body}");
        }
        reporter.line(&format!("smoke: {service} GET {path} ok"));
    }
    Ok(())
}

/// For each deployed service, the first `List…` method of the contracts it serves that
/// is a permission-guarded GET without path variables (a list needs no arguments).
fn read_routes(release: &Release, workspace: &Workspace) -> Vec<(String, String)> {
    let contracts = erp_proto::Contracts::bundled();
    release
        .services
        .iter()
        .filter_map(|service| {
            let unit = workspace.units.get(&service.name)?;
            let served = &unit.manifest.contracts.as_ref()?.serves;
            served.iter().find_map(|contract| {
                contracts
                    .service_methods(contract)
                    .filter(|method| {
                        method.method.starts_with("List")
                            && method
                                .access
                                .as_ref()
                                .is_some_and(|rule| rule.permission().is_some())
                    })
                    .find_map(|method| {
                        method
                            .http
                            .iter()
                            .find(|binding| {
                                binding.method == erp_proto::HttpMethod::Get
                                    && !binding.path.contains('{')
                            })
                            .map(|binding| (service.name.clone(), binding.path.clone()))
                    })
            })
        })
        .collect()
}
