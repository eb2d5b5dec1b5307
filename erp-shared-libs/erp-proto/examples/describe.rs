//! Prints every contract of the mesh: each service's methods with their HTTP bindings and
//! access rules, and every event with its topic. `cargo run -p erp-proto --example describe`

use erp_proto::{Contracts, Requirement};

fn main() {
    let contracts = Contracts::bundled();
    let mut current_service = "";
    for method in contracts.methods() {
        if method.service != current_service {
            current_service = &method.service;
            println!("\n{current_service}");
        }
        let access = match method.access.as_ref().map(|rule| &rule.requirement) {
            Some(Requirement::Public) => "public".to_owned(),
            Some(Requirement::Authenticated) => "any signed-in user".to_owned(),
            Some(Requirement::Permission(permission)) => permission.clone(),
            None => "NO ACCESS RULE".to_owned(),
        };
        let http = method
            .http
            .first()
            .map(|binding| format!("{} {}", binding.method, binding.path))
            .unwrap_or_else(|| "no HTTP binding".to_owned());
        println!("  {:<34} {:<58} {}", method.method, http, access);
    }
    println!("\nevents");
    for event in contracts.events() {
        println!(
            "  {:<28} {:<26} {}",
            event.event_type, event.topic, event.payload_type
        );
    }
    println!(
        "\n{} methods, {} permissions, {} events",
        contracts.methods().count(),
        contracts.permissions().len(),
        contracts.events().len()
    );
}
