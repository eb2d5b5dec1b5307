//! A typed view over the descriptor set: for every gRPC method of an `erp.*` service,
//! who may call it (the `erp.common.v1.access` option) and how it is exposed over HTTP
//! (the `google.api.http` option); for every event payload, its topic and type.

use std::{collections::BTreeMap, fmt, sync::OnceLock};

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, ExtensionDescriptor, MethodDescriptor};

use crate::{
    erp::{common::v1 as common, events::v1 as events},
    google::api::{HttpRule, http_rule::Pattern},
};

const ACCESS_EXTENSION: &str = "erp.common.v1.access";
const HTTP_EXTENSION: &str = "google.api.http";
const EVENT_EXTENSION: &str = "erp.events.v1.event";
const OUR_PACKAGE_PREFIX: &str = "erp.";

/// What is wrong with a descriptor set.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The bytes are not a valid descriptor set.
    #[error("the descriptor set does not decode: {0}")]
    Decode(#[from] prost_reflect::DescriptorError),
    /// An extension our contracts rely on is not declared.
    #[error("the descriptor set does not declare the extension `{0}`")]
    MissingExtension(&'static str),
    /// An option value does not decode into its message type.
    #[error("the `{option}` option of `{symbol}` does not decode: {source}")]
    OptionDecode {
        /// The option's extension name.
        option: &'static str,
        /// The method or message carrying it.
        symbol: String,
        /// Why.
        source: prost::DecodeError,
    },
    /// An access rule sets none or more than one of `public`, `authenticated`, `permission`.
    #[error(
        "the access rule of `{method}` must set exactly one of `public`, `authenticated` or `permission`"
    )]
    AmbiguousAccess {
        /// The gRPC path of the method.
        method: String,
    },
}

/// What a caller needs to call a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing: no token needed.
    Public,
    /// Any valid token of the tenant.
    Authenticated,
    /// A valid token carrying this permission.
    Permission(String),
}

/// The parsed `erp.common.v1.access` option of a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// Who may call.
    pub requirement: Requirement,
    /// The module the tenant's plan must enable; `Module::Unspecified` is core (always on).
    pub module: common::Module,
}

impl AccessRule {
    fn parse(method: &str, raw: common::AccessRule) -> Result<Self, ContractError> {
        let module = raw.module();
        let requirement = match (raw.public, raw.authenticated, raw.permission.is_empty()) {
            (true, false, true) => Requirement::Public,
            (false, true, true) => Requirement::Authenticated,
            (false, false, false) => Requirement::Permission(raw.permission),
            _ => {
                return Err(ContractError::AmbiguousAccess {
                    method: method.to_owned(),
                });
            }
        };
        Ok(Self {
            requirement,
            module,
        })
    }

    /// The permission required, if the rule names one.
    pub fn permission(&self) -> Option<&str> {
        match &self.requirement {
            Requirement::Permission(permission) => Some(permission),
            Requirement::Public | Requirement::Authenticated => None,
        }
    }
}

/// An HTTP verb of a binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HttpMethod {
    /// GET
    Get,
    /// PUT
    Put,
    /// POST
    Post,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
    /// A custom verb, e.g. HEAD.
    Custom(String),
}

impl HttpMethod {
    /// The verb as sent on the wire, upper case.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Post => "POST",
            Self::Delete => "DELETE",
            Self::Patch => "PATCH",
            Self::Custom(kind) => kind,
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One HTTP binding of a method (the main rule or one of its `additional_bindings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBinding {
    /// The verb.
    pub method: HttpMethod,
    /// The path template, e.g. `/v1/employees/{id}`.
    pub path: String,
    /// The request field bound to the body: `None`, `Some("*")` or `Some(field)`.
    pub body: Option<String>,
    /// The response field returned as body; `None` means the whole response.
    pub response_body: Option<String>,
}

impl HttpBinding {
    fn from_rule(rule: &HttpRule) -> Option<Self> {
        let (method, path) = match rule.pattern.as_ref()? {
            Pattern::Get(path) => (HttpMethod::Get, path),
            Pattern::Put(path) => (HttpMethod::Put, path),
            Pattern::Post(path) => (HttpMethod::Post, path),
            Pattern::Delete(path) => (HttpMethod::Delete, path),
            Pattern::Patch(path) => (HttpMethod::Patch, path),
            Pattern::Custom(custom) => (HttpMethod::Custom(custom.kind.clone()), &custom.path),
        };
        let non_empty = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        Some(Self {
            method,
            path: path.clone(),
            body: non_empty(&rule.body),
            response_body: non_empty(&rule.response_body),
        })
    }

    /// The verb and the path with every variable replaced by its wildcard (`*` or `**`):
    /// two bindings with the same shape would match the same requests.
    pub fn shape(&self) -> String {
        let mut shape = String::with_capacity(self.path.len() + 8);
        shape.push_str(self.method.as_str());
        shape.push(' ');
        let mut rest = self.path.as_str();
        while let Some(open) = rest.find('{') {
            shape.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let variable = &rest[open + 1..open + close];
            shape.push_str(match variable.split_once('=') {
                Some((_, pattern)) if pattern.contains("**") => "**",
                Some((_, pattern)) => pattern,
                None => "*",
            });
            rest = &rest[open + close + 1..];
        }
        shape.push_str(rest);
        shape
    }
}

/// Everything the contracts say about one gRPC method of an `erp.*` service.
#[derive(Debug, Clone)]
pub struct MethodContract {
    /// The gRPC path, `/erp.hrm.v1.HrmService/GetEmployee`.
    pub grpc_path: String,
    /// The proto package, `erp.hrm.v1`.
    pub package: String,
    /// The fully qualified service name, `erp.hrm.v1.HrmService`.
    pub service: String,
    /// The method name, `GetEmployee`.
    pub method: String,
    /// The access rule; `None` when the method declares none (a contract defect).
    pub access: Option<AccessRule>,
    /// The HTTP bindings, main rule first; empty when the method declares none.
    pub http: Vec<HttpBinding>,
    /// The reflection descriptor, for dynamic encoding (the gateway's transcoder).
    pub descriptor: MethodDescriptor,
}

/// An event payload message and where it is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContract {
    /// The payload's full type name, `erp.events.v1.EmployeeHired`.
    pub payload_type: String,
    /// The topic, `erp.hrm.employee.v1`.
    pub topic: String,
    /// The event type, `employee.hired`.
    pub event_type: String,
    /// The aggregate type, `employee`.
    pub aggregate_type: String,
}

/// The typed view over a descriptor set.
#[derive(Debug, Clone)]
pub struct Contracts {
    pool: DescriptorPool,
    methods: BTreeMap<String, MethodContract>,
    events: Vec<EventContract>,
}

impl Contracts {
    /// The contracts this crate was built from.
    pub fn bundled() -> &'static Contracts {
        static BUNDLED: OnceLock<Contracts> = OnceLock::new();
        BUNDLED.get_or_init(|| {
            // The bytes come from this crate's build script and are decoded by its tests,
            // so failure here means a broken build, not bad input.
            Contracts::decode(crate::FILE_DESCRIPTOR_SET)
                .expect("the bundled descriptor set is valid (checked by erp-proto's tests)")
        })
    }

    /// The same contracts with every proto comment (source info) kept, for generated
    /// documentation; services use [`Contracts::bundled`], which is lighter.
    pub fn bundled_documented() -> &'static Contracts {
        static DOCUMENTED: OnceLock<Contracts> = OnceLock::new();
        DOCUMENTED.get_or_init(|| {
            Contracts::decode(crate::DOCUMENTED_FILE_DESCRIPTOR_SET)
                .expect("the documented descriptor set is valid (checked by erp-proto's tests)")
        })
    }

    /// Reads the contracts from an encoded `FileDescriptorSet`.
    pub fn decode(bytes: &[u8]) -> Result<Self, ContractError> {
        let pool = DescriptorPool::decode(bytes)?;
        let access_extension = extension(&pool, ACCESS_EXTENSION)?;
        let http_extension = extension(&pool, HTTP_EXTENSION)?;
        // Descriptor sets of other contracts (test services) may declare no events.
        let event_extension = pool.get_extension_by_name(EVENT_EXTENSION);

        let mut methods = BTreeMap::new();
        for service in pool
            .services()
            .filter(|service| service.full_name().starts_with(OUR_PACKAGE_PREFIX))
        {
            for method in service.methods() {
                let grpc_path = format!("/{}/{}", service.full_name(), method.name());
                let options = method.options();
                let access = option_value::<common::AccessRule>(
                    &options,
                    &access_extension,
                    ACCESS_EXTENSION,
                    &grpc_path,
                )?
                .map(|raw| AccessRule::parse(&grpc_path, raw))
                .transpose()?;
                let http = option_value::<HttpRule>(
                    &options,
                    &http_extension,
                    HTTP_EXTENSION,
                    &grpc_path,
                )?
                .map(|rule| {
                    std::iter::once(&rule)
                        .chain(rule.additional_bindings.iter())
                        .filter_map(HttpBinding::from_rule)
                        .collect()
                })
                .unwrap_or_default();
                methods.insert(
                    grpc_path.clone(),
                    MethodContract {
                        grpc_path,
                        package: service.package_name().to_owned(),
                        service: service.full_name().to_owned(),
                        method: method.name().to_owned(),
                        access,
                        http,
                        descriptor: method,
                    },
                );
            }
        }

        let mut events = Vec::new();
        for message in pool.all_messages() {
            let Some(event_extension) = &event_extension else {
                break;
            };
            let info = option_value::<events::EventInfo>(
                &message.options(),
                event_extension,
                EVENT_EXTENSION,
                message.full_name(),
            )?;
            if let Some(info) = info {
                events.push(EventContract {
                    payload_type: message.full_name().to_owned(),
                    topic: info.topic,
                    event_type: info.event_type,
                    aggregate_type: info.aggregate_type,
                });
            }
        }
        events.sort_by(|a, b| a.payload_type.cmp(&b.payload_type));

        Ok(Self {
            pool,
            methods,
            events,
        })
    }

    /// The reflection pool, for dynamic messages (JSON transcoding, reflection service).
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// Every method of every `erp.*` service, ordered by gRPC path.
    pub fn methods(&self) -> impl Iterator<Item = &MethodContract> {
        self.methods.values()
    }

    /// One method by gRPC path (`/erp.hrm.v1.HrmService/GetEmployee`).
    pub fn method(&self, grpc_path: &str) -> Option<&MethodContract> {
        self.methods.get(grpc_path)
    }

    /// The methods of one service (`erp.hrm.v1.HrmService`).
    pub fn service_methods<'a>(
        &'a self,
        service: &'a str,
    ) -> impl Iterator<Item = &'a MethodContract> + 'a {
        self.methods()
            .filter(move |method| method.service == service)
    }

    /// Every event payload, ordered by type name.
    pub fn events(&self) -> &[EventContract] {
        &self.events
    }

    /// The event payload with this event type (`employee.hired`).
    pub fn event_by_type(&self, event_type: &str) -> Option<&EventContract> {
        self.events
            .iter()
            .find(|event| event.event_type == event_type)
    }

    /// Every permission any method requires, sorted and deduplicated.
    pub fn permissions(&self) -> Vec<&str> {
        let mut permissions: Vec<&str> = self
            .methods()
            .filter_map(|method| method.access.as_ref()?.permission())
            .collect();
        permissions.sort_unstable();
        permissions.dedup();
        permissions
    }
}

fn extension(
    pool: &DescriptorPool,
    name: &'static str,
) -> Result<ExtensionDescriptor, ContractError> {
    pool.get_extension_by_name(name)
        .ok_or(ContractError::MissingExtension(name))
}

fn option_value<T: Message + Default>(
    options: &DynamicMessage,
    extension: &ExtensionDescriptor,
    option: &'static str,
    symbol: &str,
) -> Result<Option<T>, ContractError> {
    if !options.has_extension(extension) {
        return Ok(None);
    }
    let value = options.get_extension(extension);
    let Some(message) = value.as_message() else {
        return Ok(None);
    };
    message
        .transcode_to::<T>()
        .map(Some)
        .map_err(|source| ContractError::OptionDecode {
            option,
            symbol: symbol.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(method: HttpMethod, path: &str) -> HttpBinding {
        HttpBinding {
            method,
            path: path.to_owned(),
            body: None,
            response_body: None,
        }
    }

    #[test]
    fn shape_replaces_variables_with_their_wildcards() {
        assert_eq!(
            binding(HttpMethod::Get, "/v1/employees/{id}").shape(),
            "GET /v1/employees/*"
        );
        assert_eq!(
            binding(
                HttpMethod::Post,
                "/v1/leave-requests/{leave_request_id}:approve"
            )
            .shape(),
            "POST /v1/leave-requests/*:approve"
        );
        assert_eq!(
            binding(HttpMethod::Get, "/v1/{name=shelves/*/books/*}").shape(),
            "GET /v1/shelves/*/books/*"
        );
        assert_eq!(
            binding(HttpMethod::Get, "/v1/files/{path=**}").shape(),
            "GET /v1/files/**"
        );
    }

    #[test]
    fn an_access_rule_with_two_requirements_is_ambiguous() {
        let raw = common::AccessRule {
            permission: "hrm.employee.read".to_owned(),
            public: true,
            ..Default::default()
        };
        assert!(matches!(
            AccessRule::parse("/x.Y/Z", raw),
            Err(ContractError::AmbiguousAccess { .. })
        ));
    }

    #[test]
    fn an_access_rule_with_no_requirement_is_ambiguous() {
        let raw = common::AccessRule::default();
        assert!(matches!(
            AccessRule::parse("/x.Y/Z", raw),
            Err(ContractError::AmbiguousAccess { .. })
        ));
    }
}
