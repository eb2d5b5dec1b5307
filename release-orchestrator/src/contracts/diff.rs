//! Two compiled versions of the contracts compared symbol by symbol: messages (fields by
//! number: name, type, cardinality, JSON name), enums (values), services and methods
//! (types, streaming, `google.api.http` bindings, access options) and event payloads
//! (topic, type). Comments and formatting are not part of a descriptor's meaning, so
//! they never show up.

use std::collections::{BTreeMap, BTreeSet};

use erp_proto::{Contracts, HttpBinding, MethodContract, Requirement};
use prost_reflect::{DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};

/// How a change affects the contract's users, mildest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeClass {
    /// New things only: old clients and servers keep working.
    Additive,
    /// Who may call changed (permission, public or not, module).
    Access,
    /// JSON/REST clients break (JSON name, enum value name, HTTP binding), the wire does not.
    Rest,
    /// A consumer of an event would misread it (field removed, renumbered, retyped).
    Event,
    /// Protobuf clients or servers break (removed or renumbered fields, changed types).
    Wire,
}

impl ChangeClass {
    /// Whether the contract policy forbids this inside an existing `vN` package.
    pub fn is_breaking(self) -> bool {
        matches!(self, Self::Rest | Self::Event | Self::Wire)
    }

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Additive => "additive",
            Self::Access => "access",
            Self::Rest => "rest",
            Self::Event => "event",
            Self::Wire => "wire",
        }
    }
}

/// What a changed symbol is, for mapping it to the units it reaches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Carrier {
    /// A message (or one of its fields): reaches whatever carries the message.
    Message(String),
    /// An enum (or one of its values).
    Enum(String),
    /// A method of a service: `/erp.hrm.v1.HrmService/GetEmployee`.
    Method {
        /// The service.
        service: String,
        /// The gRPC path.
        path: String,
    },
    /// An event payload's routing (topic or event type).
    Event(String),
}

/// One changed symbol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SymbolChange {
    /// The symbol, e.g. `erp.hrm.v1.Employee.email` or `/erp.hrm.v1.HrmService/GetEmployee`.
    pub symbol: String,
    /// Its package, e.g. `erp.hrm.v1`.
    pub package: String,
    /// How it affects users.
    pub class: ChangeClass,
    /// What changed, in words.
    pub what: String,
    /// What carries it to units.
    #[serde(skip)]
    pub carrier: Carrier,
}

/// One version of the contracts: the descriptor pool and the typed view.
pub struct ContractVersion {
    /// The compiled descriptors.
    pub pool: DescriptorPool,
    /// Methods, bindings, access rules and events.
    pub contracts: Contracts,
}

impl ContractVersion {
    /// Every `erp.*` package.
    pub fn packages(&self) -> BTreeSet<String> {
        self.pool
            .files()
            .map(|file| file.package_name().to_owned())
            .filter(|package| package.starts_with("erp."))
            .collect()
    }
}

fn ours(name: &str) -> bool {
    name.starts_with("erp.")
}

/// Every change from `base` to `head`, sorted.
pub fn diff(base: &ContractVersion, head: &ContractVersion) -> Vec<SymbolChange> {
    let mut changes = Vec::new();
    diff_messages(base, head, &mut changes);
    diff_enums(base, head, &mut changes);
    diff_methods(base, head, &mut changes);
    diff_events(base, head, &mut changes);
    changes.sort();
    changes
}

fn messages(pool: &DescriptorPool) -> BTreeMap<String, MessageDescriptor> {
    pool.all_messages()
        .filter(|message| ours(message.full_name()) && !message.is_map_entry())
        .map(|message| (message.full_name().to_owned(), message))
        .collect()
}

/// The type of a field as the wire sees it: `string`, `int64`, `erp.common.v1.Date`.
fn type_name(field: &FieldDescriptor) -> String {
    let single = match field.kind() {
        Kind::Message(message) => message.full_name().to_owned(),
        Kind::Enum(enumeration) => enumeration.full_name().to_owned(),
        other => format!("{other:?}").to_ascii_lowercase(),
    };
    if field.is_map() {
        format!("map {single}")
    } else if field.is_list() {
        format!("repeated {single}")
    } else {
        single
    }
}

fn diff_messages(base: &ContractVersion, head: &ContractVersion, changes: &mut Vec<SymbolChange>) {
    let before = messages(&base.pool);
    let after = messages(&head.pool);
    for (name, old) in &before {
        let package = old.package_name().to_owned();
        let carrier = Carrier::Message(name.clone());
        let mut push = |symbol: String, class: ChangeClass, what: String| {
            changes.push(SymbolChange {
                symbol,
                package: package.clone(),
                class,
                what,
                carrier: carrier.clone(),
            });
        };
        let Some(new) = after.get(name) else {
            push(
                name.clone(),
                ChangeClass::Wire,
                "message removed".to_owned(),
            );
            continue;
        };
        for field in old.fields() {
            let symbol = format!("{name}.{}", field.name());
            match new.get_field(field.number()) {
                None => match new.get_field_by_name(field.name()) {
                    Some(moved) => push(
                        symbol,
                        ChangeClass::Wire,
                        format!("field renumbered {} → {}", field.number(), moved.number()),
                    ),
                    None => push(
                        symbol,
                        ChangeClass::Wire,
                        format!("field {} removed", field.number()),
                    ),
                },
                Some(now) => {
                    let (was_type, now_type) = (type_name(&field), type_name(&now));
                    if was_type != now_type {
                        push(
                            symbol.clone(),
                            ChangeClass::Wire,
                            format!("field {} type {was_type} → {now_type}", field.number()),
                        );
                    } else if field.name() != now.name()
                        && (new.get_field_by_name(field.name()).is_some()
                            || old.get_field_by_name(now.name()).is_some())
                    {
                        // The number now carries another field that exists on the other
                        // side too: fields swapped or a number was reused.
                        push(
                            symbol.clone(),
                            ChangeClass::Wire,
                            format!(
                                "field {} now carries {} (was {}): numbers swapped or reused",
                                field.number(),
                                now.name(),
                                field.name()
                            ),
                        );
                    } else if field.json_name() != now.json_name() || field.name() != now.name() {
                        push(
                            symbol.clone(),
                            ChangeClass::Rest,
                            format!(
                                "field {} renamed {} → {} (JSON name {} → {})",
                                field.number(),
                                field.name(),
                                now.name(),
                                field.json_name(),
                                now.json_name()
                            ),
                        );
                    }
                }
            }
        }
        for field in new.fields() {
            if old.get_field(field.number()).is_none()
                && old.get_field_by_name(field.name()).is_none()
            {
                push(
                    format!("{name}.{}", field.name()),
                    ChangeClass::Additive,
                    format!("field {} added", field.number()),
                );
            }
        }
    }
    for (name, new) in &after {
        if !before.contains_key(name) {
            changes.push(SymbolChange {
                symbol: name.clone(),
                package: new.package_name().to_owned(),
                class: ChangeClass::Additive,
                what: "message added".to_owned(),
                carrier: Carrier::Message(name.clone()),
            });
        }
    }
}

fn enums(pool: &DescriptorPool) -> BTreeMap<String, EnumDescriptor> {
    pool.all_enums()
        .filter(|enumeration| ours(enumeration.full_name()))
        .map(|enumeration| (enumeration.full_name().to_owned(), enumeration))
        .collect()
}

fn diff_enums(base: &ContractVersion, head: &ContractVersion, changes: &mut Vec<SymbolChange>) {
    let before = enums(&base.pool);
    let after = enums(&head.pool);
    let mut push = |symbol: String, package: &str, enumeration: &str, class, what: String| {
        changes.push(SymbolChange {
            symbol,
            package: package.to_owned(),
            class,
            what,
            carrier: Carrier::Enum(enumeration.to_owned()),
        });
    };
    for (name, old) in &before {
        let package = old.package_name();
        let Some(new) = after.get(name) else {
            push(
                name.clone(),
                package,
                name,
                ChangeClass::Wire,
                "enum removed".to_owned(),
            );
            continue;
        };
        for value in old.values() {
            let symbol = format!("{name}.{}", value.name());
            match new.get_value(value.number()) {
                None => push(
                    symbol,
                    package,
                    name,
                    ChangeClass::Wire,
                    format!("value {} removed", value.number()),
                ),
                Some(now) if now.name() != value.name() => push(
                    symbol,
                    package,
                    name,
                    ChangeClass::Rest,
                    format!(
                        "value {} renamed to {} (JSON uses names)",
                        value.number(),
                        now.name()
                    ),
                ),
                Some(_) => {}
            }
        }
        for value in new.values() {
            if old.get_value(value.number()).is_none() {
                push(
                    format!("{name}.{}", value.name()),
                    package,
                    name,
                    ChangeClass::Additive,
                    format!("value {} added", value.number()),
                );
            }
        }
    }
    for (name, new) in &after {
        if !before.contains_key(name) {
            push(
                name.clone(),
                new.package_name(),
                name,
                ChangeClass::Additive,
                "enum added".to_owned(),
            );
        }
    }
}

fn binding_text(binding: &HttpBinding) -> String {
    let mut text = format!("{} {}", binding.method, binding.path);
    if let Some(body) = &binding.body {
        text.push_str(&format!(" body={body}"));
    }
    if let Some(body) = &binding.response_body {
        text.push_str(&format!(" response_body={body}"));
    }
    text
}

fn access_text(method: &MethodContract) -> String {
    match &method.access {
        None => "no access rule".to_owned(),
        Some(rule) => {
            let who = match &rule.requirement {
                Requirement::Public => "public".to_owned(),
                Requirement::Authenticated => "any valid token".to_owned(),
                Requirement::Permission(permission) => format!("permission {permission}"),
            };
            format!("{who}, module {}", rule.module.as_str_name())
        }
    }
}

fn diff_methods(base: &ContractVersion, head: &ContractVersion, changes: &mut Vec<SymbolChange>) {
    let before: BTreeMap<&str, &MethodContract> = base
        .contracts
        .methods()
        .map(|method| (method.grpc_path.as_str(), method))
        .collect();
    let after: BTreeMap<&str, &MethodContract> = head
        .contracts
        .methods()
        .map(|method| (method.grpc_path.as_str(), method))
        .collect();
    for (path, old) in &before {
        let mut push = |class, what: String| {
            changes.push(SymbolChange {
                symbol: (*path).to_owned(),
                package: old.package.clone(),
                class,
                what,
                carrier: Carrier::Method {
                    service: old.service.clone(),
                    path: (*path).to_owned(),
                },
            });
        };
        let Some(new) = after.get(path) else {
            push(ChangeClass::Wire, "method removed".to_owned());
            continue;
        };
        let (was, now) = (&old.descriptor, &new.descriptor);
        if was.input().full_name() != now.input().full_name() {
            push(
                ChangeClass::Wire,
                format!(
                    "request {} → {}",
                    was.input().full_name(),
                    now.input().full_name()
                ),
            );
        }
        if was.output().full_name() != now.output().full_name() {
            push(
                ChangeClass::Wire,
                format!(
                    "response {} → {}",
                    was.output().full_name(),
                    now.output().full_name()
                ),
            );
        }
        if was.is_client_streaming() != now.is_client_streaming()
            || was.is_server_streaming() != now.is_server_streaming()
        {
            push(ChangeClass::Wire, "streaming changed".to_owned());
        }
        let old_bindings: BTreeSet<String> = old.http.iter().map(binding_text).collect();
        let new_bindings: BTreeSet<String> = new.http.iter().map(binding_text).collect();
        for gone in old_bindings.difference(&new_bindings) {
            push(
                ChangeClass::Rest,
                format!("HTTP binding `{gone}` removed or changed"),
            );
        }
        for added in new_bindings.difference(&old_bindings) {
            push(
                ChangeClass::Additive,
                format!("HTTP binding `{added}` added"),
            );
        }
        let (old_access, new_access) = (access_text(old), access_text(new));
        if old_access != new_access {
            push(
                ChangeClass::Access,
                format!("access {old_access} → {new_access}"),
            );
        }
    }
    for (path, new) in &after {
        if !before.contains_key(path) {
            changes.push(SymbolChange {
                symbol: (*path).to_owned(),
                package: new.package.clone(),
                class: ChangeClass::Additive,
                what: "method added".to_owned(),
                carrier: Carrier::Method {
                    service: new.service.clone(),
                    path: (*path).to_owned(),
                },
            });
        }
    }
}

fn diff_events(base: &ContractVersion, head: &ContractVersion, changes: &mut Vec<SymbolChange>) {
    for old in base.contracts.events() {
        let Some(new) = head
            .contracts
            .events()
            .iter()
            .find(|event| event.payload_type == old.payload_type)
        else {
            // The payload message's own removal is reported with the messages.
            continue;
        };
        if (&old.topic, &old.event_type) != (&new.topic, &new.event_type) {
            changes.push(SymbolChange {
                symbol: old.payload_type.clone(),
                package: old
                    .payload_type
                    .rsplit_once('.')
                    .map_or_else(String::new, |(package, _)| package.to_owned()),
                class: ChangeClass::Wire,
                what: format!(
                    "event routing {} {} → {} {}",
                    old.topic, old.event_type, new.topic, new.event_type
                ),
                carrier: Carrier::Event(old.payload_type.clone()),
            });
        }
    }
}
