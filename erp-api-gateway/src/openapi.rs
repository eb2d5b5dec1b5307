//! The OpenAPI 3.1 document of the HTTP/JSON routes, generated from the same contracts the
//! route table comes from: a path per `google.api.http` binding, its parameters (path
//! variables, then the remaining fields as query parameters when the body does not carry
//! them), the request and response schemas in the proto3 JSON mapping (lowerCamel names,
//! 64-bit integers as strings, enums by name, well-known types in their JSON form), the
//! access rule as the security requirement, and the gateway's error body. Descriptions come
//! from the proto comments.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use erp_proto::{Contracts, HttpBinding, MethodContract, Requirement};
use prost_reflect::{
    EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor, MethodDescriptor,
};
use serde_json::{Map, Value, json};

/// The component holding the gateway's error body.
const ERROR_SCHEMA: &str = "erp.gateway.Error";
/// The security scheme of every non-public route.
const BEARER: &str = "bearerAuth";
/// How deep nested message fields are offered as `a.b.c` query parameters.
const QUERY_DEPTH: usize = 3;

/// The whole document for `contracts`.
pub fn document(contracts: &Contracts, version: &str) -> Value {
    let mut builder = Builder::default();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut tags = BTreeMap::new();
    for method in contracts.methods() {
        let service = method.descriptor.parent_service();
        tags.entry(service.name().to_owned()).or_insert_with(|| {
            let mut tag = json!({ "name": service.name() });
            if let Some(text) = builder.comments.of(&service.parent_file(), service.path()) {
                tag["description"] = json!(text);
            }
            tag
        });
        for (index, binding) in method.http.iter().enumerate() {
            let operation = builder.operation(method, binding, index);
            paths
                .entry(openapi_path(&binding.path))
                .or_default()
                .insert(binding.method.as_str().to_ascii_lowercase(), operation);
        }
    }
    let mut schemas = std::mem::take(&mut builder.schemas);
    schemas.insert(ERROR_SCHEMA.to_owned(), error_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ERP mesh API",
            "version": version,
            "description": "Every route is a gRPC method of the ERP mesh transcoded by the API gateway. \
                Errors share one body; 64-bit integers are JSON strings; enums are names.",
        },
        "servers": [{ "url": "/" }],
        "tags": tags.into_values().collect::<Vec<_>>(),
        "security": [{ BEARER: [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from AuthService.Login (EdDSA, verified against the auth service's JWKS).",
                },
            },
        },
    })
}

/// The OpenAPI form of a path template: `{name=shelves/*}` becomes `{name}` (the pattern
/// is told in the parameter's description).
pub fn openapi_path(template: &str) -> String {
    let mut path = String::with_capacity(template.len());
    let mut inside = false;
    let mut skipping = false;
    for character in template.chars() {
        match character {
            '{' => {
                inside = true;
                path.push('{');
            }
            '}' => {
                inside = false;
                skipping = false;
                path.push('}');
            }
            '=' if inside => skipping = true,
            _ if skipping => {}
            other => path.push(other),
        }
    }
    path
}

/// The `{field=pattern}` variables of a template, with their patterns (`*` when bare).
fn template_variables(template: &str) -> Vec<(String, String)> {
    template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(inner, _)| {
            let (field, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
            (field.to_owned(), pattern.to_owned())
        })
        .collect()
}

#[derive(Default)]
struct Builder {
    schemas: Map<String, Value>,
    comments: Comments,
    operation_ids: BTreeSet<String>,
}

impl Builder {
    fn operation(&mut self, method: &MethodContract, binding: &HttpBinding, index: usize) -> Value {
        let descriptor = &method.descriptor;
        let service = descriptor.parent_service();
        let mut operation_id = format!("{}_{}", service.name(), descriptor.name());
        if index > 0 {
            operation_id = format!("{operation_id}_{index}");
        }
        while !self.operation_ids.insert(operation_id.clone()) {
            operation_id.push('_');
        }
        let input = descriptor.input();
        let variables = template_variables(&binding.path);
        let mut parameters = Vec::new();
        for (field_path, pattern) in &variables {
            let field = resolve(&input, field_path);
            let mut parameter = json!({
                "name": field_path,
                "in": "path",
                "required": true,
                "schema": field.as_ref().map_or_else(|| json!({"type": "string"}), |field| self.single_schema(field)),
            });
            if pattern != "*" {
                parameter["description"] = json!(format!("matches `{pattern}`"));
            }
            parameters.push(parameter);
        }
        let bound: BTreeSet<&str> = variables.iter().map(|(field, _)| field.as_str()).collect();
        match binding.body.as_deref() {
            Some("*") => {}
            body => self.query_parameters(&input, "", &bound, body, 0, &mut parameters),
        }
        let mut operation = json!({
            "operationId": operation_id,
            "tags": [service.name()],
            "summary": format!("{}.{}", service.name(), descriptor.name()),
            "description": self.method_description(method),
            "x-grpc-method": method.grpc_path,
            "responses": {
                "200": {
                    "description": "The answer.",
                    "content": { "application/json": { "schema": self.response_schema(descriptor, binding) } },
                },
                "default": {
                    "description": "An error: the gRPC status mapped to HTTP, with its reason and field violations.",
                    "content": { "application/json": { "schema": reference(ERROR_SCHEMA) } },
                },
            },
        });
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = binding.body.as_deref() {
            let schema = if body == "*" {
                self.message_reference(&input)
            } else {
                resolve(&input, body).map_or_else(|| json!({}), |field| self.field_schema(&field))
            };
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": schema } },
            });
        }
        if matches!(
            method.access.as_ref().map(|rule| &rule.requirement),
            Some(Requirement::Public)
        ) {
            operation["security"] = json!([]);
        }
        operation
    }

    fn method_description(&mut self, method: &MethodContract) -> String {
        let descriptor = &method.descriptor;
        let mut text = self
            .comments
            .of(&descriptor.parent_file(), descriptor.path())
            .unwrap_or_default();
        let access = match method.access.as_ref() {
            None => None,
            Some(rule) => {
                let who = match &rule.requirement {
                    Requirement::Public => "Public: no token needed.".to_owned(),
                    Requirement::Authenticated => "Any valid token.".to_owned(),
                    Requirement::Permission(permission) => {
                        format!("Requires the permission `{permission}`.")
                    }
                };
                let module = rule.module.as_str_name();
                Some(if module.ends_with("UNSPECIFIED") {
                    who
                } else {
                    format!("{who} The tenant's plan must enable `{module}`.")
                })
            }
        };
        if let Some(access) = access {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&access);
        }
        text
    }

    fn response_schema(&mut self, descriptor: &MethodDescriptor, binding: &HttpBinding) -> Value {
        let output = descriptor.output();
        match binding.response_body.as_deref() {
            None | Some("*") => self.message_reference(&output),
            Some(field) => {
                resolve(&output, field).map_or_else(|| json!({}), |field| self.field_schema(&field))
            }
        }
    }

    /// The fields not bound to the path or body, as query parameters (`page.pageSize`).
    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        prefix: &str,
        bound: &BTreeSet<&str>,
        body: Option<&str>,
        depth: usize,
        parameters: &mut Vec<Value>,
    ) {
        for field in message.fields() {
            let proto_path = format!("{prefix}{}", field.name());
            if bound.contains(proto_path.as_str()) || body == Some(proto_path.as_str()) {
                continue;
            }
            let json_path = json_path(prefix, &field);
            match field.kind() {
                Kind::Message(nested)
                    if !field.is_list()
                        && !field.is_map()
                        && well_known(&nested).is_none()
                        && depth < QUERY_DEPTH =>
                {
                    self.query_parameters(
                        &nested,
                        &format!("{proto_path}."),
                        bound,
                        body,
                        depth + 1,
                        parameters,
                    );
                }
                Kind::Message(nested)
                    if field.is_map() || (field.is_list() && well_known(&nested).is_none()) => {}
                Kind::Message(nested) if well_known(&nested).is_none() => {}
                _ if field.is_map() => {}
                _ => {
                    let mut parameter = json!({
                        "name": json_path,
                        "in": "query",
                        "schema": self.field_schema(&field),
                    });
                    if field.is_list() {
                        parameter["style"] = json!("form");
                        parameter["explode"] = json!(true);
                    }
                    if let Some(text) = self.comments.of(&field.parent_file(), field.path()) {
                        parameter["description"] = json!(text);
                    }
                    parameters.push(parameter);
                }
            }
        }
    }

    /// A field's schema: repeated as an array, maps as objects.
    fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map()
            && let Kind::Message(entry) = field.kind()
        {
            let value = entry.map_entry_value_field();
            return json!({ "type": "object", "additionalProperties": self.single_schema(&value) });
        }
        let single = self.single_schema(field);
        if field.is_list() {
            json!({ "type": "array", "items": single })
        } else {
            single
        }
    }

    /// The schema of one value of a field's kind.
    fn single_schema(&mut self, field: &FieldDescriptor) -> Value {
        match field.kind() {
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"})
            }
            Kind::Uint64 | Kind::Fixed64 => {
                json!({"type": "string", "format": "uint64", "pattern": "^[0-9]+$"})
            }
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "format": "byte"}),
            Kind::Enum(enumeration) => self.enum_reference(&enumeration),
            Kind::Message(message) => self.message_reference(&message),
        }
    }

    fn enum_reference(&mut self, enumeration: &EnumDescriptor) -> Value {
        let name = enumeration.full_name().to_owned();
        if !self.schemas.contains_key(&name) {
            let mut schema = json!({
                "type": "string",
                "enum": enumeration.values().map(|value| value.name().to_owned()).collect::<Vec<_>>(),
            });
            if let Some(text) = self
                .comments
                .of(&enumeration.parent_file(), enumeration.path())
            {
                schema["description"] = json!(text);
            }
            self.schemas.insert(name.clone(), schema);
        }
        reference(&name)
    }

    fn message_reference(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.schemas.contains_key(&name) {
            // Reserve the name first: messages may refer to themselves.
            self.schemas.insert(name.clone(), json!({}));
            let mut properties = Map::new();
            for field in message.fields() {
                let mut schema = self.field_schema(&field);
                if let Some(text) = self.comments.of(&field.parent_file(), field.path()) {
                    schema = with_description(schema, text);
                }
                properties.insert(field.json_name().to_owned(), schema);
            }
            let mut schema = json!({ "type": "object", "properties": properties });
            if let Some(text) = self.comments.of(&message.parent_file(), message.path()) {
                schema["description"] = json!(text);
            }
            self.schemas.insert(name.clone(), schema);
        }
        reference(&name)
    }
}

/// A `$ref` with a description beside it (allowed since OpenAPI 3.1), or the description
/// added to an inline schema.
fn with_description(mut schema: Value, text: String) -> Value {
    if let Some(object) = schema.as_object_mut() {
        object.insert("description".to_owned(), json!(text));
    }
    schema
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The JSON form of the well-known types, inline.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "description": "seconds with an `s` suffix, e.g. `1.5s`"})
        }
        "google.protobuf.FieldMask" => {
            json!({"type": "string", "description": "comma-separated lowerCamel field paths"})
        }
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "required": ["@type"],
            "additionalProperties": true,
        }),
        "google.protobuf.BoolValue" => json!({"type": ["boolean", "null"]}),
        "google.protobuf.StringValue" => json!({"type": ["string", "null"]}),
        "google.protobuf.BytesValue" => json!({"type": ["string", "null"], "format": "byte"}),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            json!({"type": ["integer", "null"]})
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({"type": ["string", "null"], "pattern": "^-?[0-9]+$"})
        }
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => {
            json!({"type": ["number", "null"]})
        }
        _ => return None,
    })
}

/// The field at a dotted proto path (`employee.id`).
fn resolve(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current.get_field_by_name(part)?;
        if parts.peek().is_none() {
            return Some(field);
        }
        current = match field.kind() {
            Kind::Message(nested) => nested,
            _ => return None,
        };
    }
    None
}

/// The lowerCamel dotted name of a nested field: `page.pageSize`.
fn json_path(proto_prefix: &str, field: &FieldDescriptor) -> String {
    let mut path: Vec<String> = proto_prefix
        .split('.')
        .filter(|part| !part.is_empty())
        .map(lower_camel)
        .collect();
    path.push(field.json_name().to_owned());
    path.join(".")
}

fn lower_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for character in name.chars() {
        if character == '_' {
            upper = true;
        } else if upper {
            out.extend(character.to_uppercase());
            upper = false;
        } else {
            out.push(character);
        }
    }
    out
}

/// The leading comments of the contracts, by file and source path.
#[derive(Default)]
struct Comments {
    by_file: HashMap<String, HashMap<Vec<i32>, String>>,
}

impl Comments {
    fn of(&mut self, file: &FileDescriptor, path: &[i32]) -> Option<String> {
        let locations = self
            .by_file
            .entry(file.name().to_owned())
            .or_insert_with(|| {
                file.file_descriptor_proto()
                    .source_code_info
                    .iter()
                    .flat_map(|info| info.location.iter())
                    .filter_map(|location| {
                        let text = location.leading_comments.as_deref()?.trim();
                        (!text.is_empty()).then(|| (location.path.clone(), tidy(text)))
                    })
                    .collect()
            });
        locations.get(path).cloned()
    }
}

/// A comment's lines without their leading space, joined.
fn tidy(text: &str) -> String {
    text.lines().map(str::trim).collect::<Vec<_>>().join("\n")
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Every error: the gRPC status mapped to an HTTP status.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "status", "message"],
                "properties": {
                    "code": { "type": "integer", "description": "The HTTP status." },
                    "status": { "type": "string", "description": "The gRPC code name, e.g. `INVALID_ARGUMENT`." },
                    "message": { "type": "string" },
                    "reason": { "type": "string", "description": "The stable reason, e.g. `ERP:HRM:EMPLOYEE_NOT_FOUND`." },
                    "fieldViolations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "description"],
                            "properties": {
                                "field": { "type": "string" },
                                "description": { "type": "string" },
                            },
                        },
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> Value {
        document(Contracts::bundled_documented(), "test")
    }

    #[test]
    fn every_binding_is_a_path_and_operation() {
        let doc = bundled();
        let mut count = 0;
        for method in Contracts::bundled().methods() {
            for binding in &method.http {
                let verb = binding.method.as_str().to_ascii_lowercase();
                let operation = &doc["paths"][openapi_path(&binding.path)][&verb];
                assert_eq!(
                    operation["x-grpc-method"], method.grpc_path,
                    "{verb} {}",
                    binding.path
                );
                count += 1;
            }
        }
        assert!(count > 100, "{count} bindings");
    }

    #[test]
    fn descriptions_come_from_the_proto_comments() {
        let doc = bundled();
        let employee = &doc["components"]["schemas"]["erp.hrm.v1.Employee"];
        assert!(
            employee["properties"]["email"]["description"]
                .as_str()
                .is_some_and(|text| text.contains("Work email")),
            "{employee}"
        );
    }

    #[test]
    fn messages_follow_the_proto3_json_mapping() {
        let doc = bundled();
        let schemas = &doc["components"]["schemas"];
        let employee = &schemas["erp.hrm.v1.Employee"]["properties"];
        assert_eq!(employee["employeeId"]["type"], "string", "{employee}");
        assert_eq!(employee["createdAt"]["format"], "date-time");
        assert_eq!(
            employee["status"]["$ref"],
            "#/components/schemas/erp.hrm.v1.EmployeeStatus"
        );
        assert!(
            schemas["erp.hrm.v1.EmployeeStatus"]["enum"]
                .as_array()
                .expect("names")
                .contains(&json!("EMPLOYEE_STATUS_ACTIVE"))
        );
        assert_eq!(employee["version"]["type"], "string", "int64 as a string");
    }

    #[test]
    fn get_routes_take_the_other_fields_from_the_query_and_public_ones_need_no_token() {
        let doc = bundled();
        let list = &doc["paths"]["/v1/employees"]["get"];
        let names: Vec<&str> = list["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        assert!(names.contains(&"page.pageSize"), "{names:?}");
        assert!(list.get("security").is_none(), "needs the global bearer");
        let login = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .find_map(|item| {
                item.as_object()?.values().find(|operation| {
                    operation["x-grpc-method"] == "/erp.auth.v1.AuthService/Login"
                })
            })
            .expect("login is routed");
        assert_eq!(login["security"], json!([]));
    }

    #[test]
    fn patterns_are_dropped_from_the_path_and_kept_as_descriptions() {
        assert_eq!(
            openapi_path("/v1/{name=shelves/*/books/*}:publish"),
            "/v1/{name}:publish"
        );
        assert_eq!(
            template_variables("/v1/{a.b}/x/{c=y/**}"),
            vec![
                ("a.b".to_owned(), "*".to_owned()),
                ("c".to_owned(), "y/**".to_owned())
            ]
        );
    }
}
