//! Progress and results: plain lines for people (on a terminal or in a log), or one JSON
//! event per line (`-o json`) for CI.

use serde_json::json;

use crate::state::EnvironmentState;

/// Where progress goes.
#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    json: bool,
}

impl Reporter {
    /// `json`: events as JSON lines instead of text.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether events are JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    fn emit(&self, event: serde_json::Value) {
        println!("{event}");
    }

    /// A free-form progress line.
    pub fn line(&self, text: &str) {
        if self.json {
            self.emit(json!({"event": "progress", "message": text}));
        } else {
            println!("{text}");
        }
    }

    /// A stage begins.
    pub fn stage(&self, number: usize, total: usize, services: &[String]) {
        if self.json {
            self.emit(
                json!({"event": "stage", "number": number, "of": total, "services": services}),
            );
        } else {
            println!("stage {number}/{total}: {}", services.join(", "));
        }
    }

    /// A service's state changed.
    pub fn service(&self, name: &str, version: &str, state: &str) {
        if self.json {
            self.emit(
                json!({"event": "service", "service": name, "version": version, "state": state}),
            );
        } else {
            println!("  {name} {version}: {state}");
        }
    }

    /// The environment after a successful deploy.
    pub fn summary(&self, state: &EnvironmentState) {
        if self.json {
            self.emit(json!({"event": "deployed", "state": state}));
            return;
        }
        println!();
        println!("release {} is running:", state.release);
        println!(
            "  {:<24} {:<9} {:<28} {:>8}",
            "SERVICE", "VERSION", "ADDRESS", "PID"
        );
        for service in &state.services {
            println!(
                "  {:<24} {:<9} {:<28} {:>8}",
                service.name, service.version, service.address, service.pid
            );
        }
        if let Some(gateway) = &state.gateway_url {
            println!();
            println!("gateway: {gateway}  (OpenAPI: {gateway}/openapi.json)");
            println!(
                "demo login: tenant `{}`, {} / {}",
                crate::smoke::DEMO_TENANT,
                crate::smoke::DEMO_EMAIL,
                crate::smoke::DEMO_PASSWORD
            );
        }
    }
}
