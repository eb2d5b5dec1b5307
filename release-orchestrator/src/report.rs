//! Progress and results: a spinner per service on a terminal, plain lines otherwise (CI
//! logs, pipes), or one JSON event per line (`-o json`).

use std::{collections::HashMap, io::IsTerminal as _, sync::Mutex, time::Duration};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;

use crate::state::EnvironmentState;

/// Where progress goes.
pub struct Reporter {
    json: bool,
    quiet: bool,
    spinners: Option<Spinners>,
}

struct Spinners {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Reporter {
    /// `json`: events as JSON lines; otherwise spinners when stdout is a terminal.
    pub fn new(json: bool) -> Self {
        let spinners = (!json && std::io::stdout().is_terminal()).then(|| Spinners {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        });
        Self {
            json,
            quiet: false,
            spinners,
        }
    }

    /// Says nothing (benchmarks).
    pub fn quiet() -> Self {
        Self {
            json: false,
            quiet: true,
            spinners: None,
        }
    }

    fn emit(&self, event: serde_json::Value) {
        if !self.quiet {
            println!("{event}");
        }
    }

    fn print(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.spinners {
            Some(spinners) => {
                if spinners.multi.println(text).is_err() {
                    println!("{text}");
                }
            }
            None => println!("{text}"),
        }
    }

    /// A free-form progress line.
    pub fn line(&self, text: &str) {
        if self.json {
            self.emit(json!({"event": "progress", "message": text}));
        } else {
            self.print(text);
        }
    }

    /// A stage begins.
    pub fn stage(&self, number: usize, total: usize, services: &[String]) {
        if self.json {
            self.emit(
                json!({"event": "stage", "number": number, "of": total, "services": services}),
            );
        } else {
            self.print(&format!("stage {number}/{total}: {}", services.join(", ")));
        }
    }

    /// A service is working towards a state (a spinner on a terminal).
    pub fn service(&self, name: &str, version: &str, state: &str) {
        self.service_state(name, version, state, false);
    }

    /// A service reached its final state for this deploy.
    pub fn finished(&self, name: &str, version: &str, state: &str) {
        self.service_state(name, version, state, true);
    }

    fn service_state(&self, name: &str, version: &str, state: &str, done: bool) {
        if self.json {
            self.emit(json!({"event": "service", "service": name, "version": version, "state": state, "done": done}));
            return;
        }
        let Some(spinners) = &self.spinners else {
            if !self.quiet {
                println!("  {name} {version}: {state}");
            }
            return;
        };
        let Ok(mut bars) = spinners.bars.lock() else {
            return;
        };
        let bar = bars.entry(name.to_owned()).or_insert_with(|| {
            let bar = spinners.multi.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("  {spinner} {prefix:<26} {msg}") {
                bar.set_style(style);
            }
            bar.set_prefix(format!("{name} {version}"));
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        if done {
            bar.finish_with_message(state.to_owned());
            bars.remove(name);
        } else {
            bar.set_message(state.to_owned());
        }
    }

    /// The environment after a successful deploy.
    pub fn summary(&self, state: &EnvironmentState) {
        if self.json {
            // The bootstrap secret stays in the owner-only state file, never in logs.
            let mut shown = state.clone();
            shown.bootstrap_secret = String::new();
            self.emit(json!({"event": "deployed", "state": shown}));
            return;
        }
        let mut text = format!("\nrelease {} is running:\n", state.release);
        text.push_str(&format!(
            "  {:<24} {:<9} {:<28} {:>8}  HEALTH\n",
            "SERVICE", "VERSION", "ADDRESS", "PID"
        ));
        for service in &state.services {
            let health = match service.kind {
                crate::release::UnitKind::Gateway => "ready (/readyz)",
                _ if service.name == "erp-dev-broker" => "bootstrap ok",
                _ => "SERVING",
            };
            text.push_str(&format!(
                "  {:<24} {:<9} {:<28} {:>8}  {health}\n",
                service.name, service.version, service.address, service.pid
            ));
        }
        if let Some(gateway) = &state.gateway_url {
            text.push_str(&format!(
                "\ngateway: {gateway}  (OpenAPI: {gateway}/openapi.json)\ndemo login: tenant `{}`, {} / {}",
                crate::smoke::DEMO_TENANT,
                crate::smoke::DEMO_EMAIL,
                crate::smoke::DEMO_PASSWORD
            ));
        }
        self.print(&text);
    }
}
