//! JSON ↔ protobuf for the HTTP routes, in the canonical proto3 JSON mapping (lowerCamel
//! or proto names accepted, lowerCamel emitted, 64-bit integers as strings, enums by name,
//! well-known types in their JSON forms).
//!
//! A request message is assembled as the google.api.http rules say: the body fills the
//! whole message (`body: "*"`) or one field (`body: "field"`); path variables set their
//! (possibly nested) fields and win over the body; every other field may come from the
//! query string (`a.b=1`, repeated fields by repeating the key) unless the body takes the
//! whole message. Everything is then decoded in one pass, so unknown fields and wrong types
//! are refused with the field named, never guessed at.

use std::collections::BTreeMap;

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    SerializeOptions,
};
use serde_json::{Map, Value};

use crate::routes::percent_decode;

/// Why a request cannot become its message: the field (dotted, as the caller wrote it;
/// `body` for the body as a whole) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {description}")]
pub struct FieldError {
    /// The offending field.
    pub field: String,
    /// What is wrong, for the caller.
    pub description: String,
}

impl FieldError {
    fn new(field: &str, description: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            description: description.into(),
        }
    }
}

/// Where one HTTP request's fields come from.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The rule's `body`: `Some("*")`, `Some(field)` or `None` (no body).
    pub body_field: Option<&'a str>,
    /// The path variables captured by the route (field path → decoded value).
    pub variables: &'a BTreeMap<String, String>,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
}

/// Builds the request message of `input` from an HTTP request.
pub fn decode_request(
    input: &MessageDescriptor,
    parts: &RequestParts<'_>,
) -> Result<DynamicMessage, FieldError> {
    let mut root = body_object(input, parts)?;
    // The fields the path fills, by field numbers: the query may not touch them, however
    // it spells them (`user_id` or `userId`).
    let mut from_path: Vec<Vec<u32>> = Vec::with_capacity(parts.variables.len());
    for (path, value) in parts.variables {
        let target = resolve(input, path)?;
        from_path.push(target.numbers());
        if target.field.is_list() {
            return Err(FieldError::new(
                path,
                "a path variable cannot fill a repeated field",
            ));
        }
        let value = scalar_json(&target.field, path, value)?;
        set(&mut root, &target, value);
    }
    let mut singular_from_query: Vec<Vec<u32>> = Vec::new();
    for (key, value) in query_pairs(parts.query)? {
        if parts.body_field == Some("*") {
            return Err(FieldError::new(
                &key,
                "this route takes its fields from the JSON body, not the query string",
            ));
        }
        let target = resolve(input, &key)?;
        let numbers = target.numbers();
        if from_path
            .iter()
            .any(|given| given.starts_with(&numbers) || numbers.starts_with(given))
        {
            return Err(FieldError::new(&key, "already given in the path"));
        }
        if let Some(body) = parts.body_field
            && target.path.first().map(|field| field.name()) == Some(body)
        {
            return Err(FieldError::new(&key, "already given in the body"));
        }
        let value = scalar_json(&target.field, &key, &value)?;
        if target.field.is_list() {
            push(&mut root, &target, value);
        } else {
            if singular_from_query.contains(&numbers) {
                return Err(FieldError::new(
                    &key,
                    "given more than once; the field holds one value",
                ));
            }
            singular_from_query.push(numbers);
            set(&mut root, &target, value);
        }
    }
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    DynamicMessage::deserialize_with_options(input.clone(), Value::Object(root), &options)
        .map_err(|error| FieldError::new("body", error.to_string()))
}

/// The JSON text of a response message: the whole message, or the rule's `response_body`
/// field.
pub fn encode_response(
    message: &DynamicMessage,
    response_field: Option<&str>,
) -> Result<Vec<u8>, serde_json::Error> {
    let Some(field) = response_field.and_then(|name| message.descriptor().get_field_by_name(name))
    else {
        // Straight to text: no intermediate JSON tree for the common case.
        let mut text = Vec::with_capacity(512);
        message.serialize_with_options(
            &mut serde_json::Serializer::new(&mut text),
            &SerializeOptions::new(),
        )?;
        return Ok(text);
    };
    // Defaults included, so an empty list is `[]` rather than missing.
    let whole = message.serialize_with_options(
        serde_json::value::Serializer,
        &SerializeOptions::new().skip_default_fields(false),
    )?;
    let body = match whole {
        Value::Object(mut fields) => fields.remove(field.json_name()).unwrap_or(Value::Null),
        other => other,
    };
    serde_json::to_vec(&body)
}

/// The body as the start of the message's JSON object.
fn body_object(
    input: &MessageDescriptor,
    parts: &RequestParts<'_>,
) -> Result<Map<String, Value>, FieldError> {
    let blank = parts.body.iter().all(u8::is_ascii_whitespace);
    let Some(body_field) = parts.body_field else {
        if blank {
            return Ok(Map::new());
        }
        return Err(FieldError::new("body", "this route takes no body"));
    };
    if blank {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(parts.body)
        .map_err(|error| FieldError::new("body", format!("not valid JSON: {error}")))?;
    if body_field == "*" {
        return match value {
            Value::Object(fields) => Ok(fields),
            _ => Err(FieldError::new("body", "expected a JSON object")),
        };
    }
    let field = input.get_field_by_name(body_field).ok_or_else(|| {
        FieldError::new(body_field, "the route's body field is not in the message")
    })?;
    let mut fields = Map::new();
    fields.insert(field.json_name().to_owned(), value);
    Ok(fields)
}

/// A field reached by a dotted path: the message fields on the way, then the field.
struct Target {
    path: Vec<FieldDescriptor>,
    field: FieldDescriptor,
}

impl Target {
    /// The field numbers from the root message down to the field itself.
    fn numbers(&self) -> Vec<u32> {
        self.path
            .iter()
            .chain(std::iter::once(&self.field))
            .map(FieldDescriptor::number)
            .collect()
    }
}

fn resolve(input: &MessageDescriptor, dotted: &str) -> Result<Target, FieldError> {
    let mut message = input.clone();
    let mut path = Vec::new();
    let mut segments = dotted.split('.').peekable();
    while let Some(segment) = segments.next() {
        let field = message
            .get_field_by_name(segment)
            .or_else(|| message.get_field_by_json_name(segment))
            .ok_or_else(|| FieldError::new(dotted, "no such field"))?;
        if segments.peek().is_none() {
            return Ok(Target { path, field });
        }
        match field.kind() {
            Kind::Message(nested) if !field.is_list() && !field.is_map() => {
                message = nested;
                path.push(field);
            }
            _ => {
                return Err(FieldError::new(
                    dotted,
                    format!("`{}` has no fields to name", field.name()),
                ));
            }
        }
    }
    Err(FieldError::new(dotted, "empty field name"))
}

/// The JSON value for a field given as text (path or query), checked against the field's
/// type so the error names the field.
fn scalar_json(field: &FieldDescriptor, name: &str, text: &str) -> Result<Value, FieldError> {
    let value = match field.kind() {
        Kind::Bool => bool_json(name, text)?,
        Kind::Message(message) => match message.full_name() {
            "google.protobuf.BoolValue" => bool_json(name, text)?,
            "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.Int32Value"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.FloatValue"
            | "google.protobuf.DoubleValue" => Value::String(text.to_owned()),
            _ => {
                return Err(FieldError::new(
                    name,
                    format!(
                        "a message: give its fields one by one (`{name}.<field>=...`) or send JSON"
                    ),
                ));
            }
        },
        // An enum by name, or by number (as grpc-gateway and Envoy accept).
        Kind::Enum(_) => text
            .parse::<i32>()
            .map_or_else(|_| Value::String(text.to_owned()), Value::from),
        _ => Value::String(text.to_owned()),
    };
    // Decode the one field on its own, so a wrong type is reported against its name.
    let mut probe = Map::new();
    let element = if field.is_list() {
        Value::Array(vec![value.clone()])
    } else {
        value.clone()
    };
    probe.insert(field.json_name().to_owned(), element);
    DynamicMessage::deserialize(field.parent_message().clone(), Value::Object(probe))
        .map_err(|error| FieldError::new(name, error.to_string()))?;
    Ok(value)
}

fn bool_json(name: &str, text: &str) -> Result<Value, FieldError> {
    match text {
        "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        _ => Err(FieldError::new(name, "expected `true` or `false`")),
    }
}

/// The object holding `target`'s field, creating the messages on the way.
fn parent<'a>(root: &'a mut Map<String, Value>, target: &Target) -> &'a mut Map<String, Value> {
    let mut current = root;
    for field in &target.path {
        // The body may have used the proto name; continue under the JSON name.
        if let Some(old) = current.remove(field.name()) {
            current.entry(field.json_name().to_owned()).or_insert(old);
        }
        let slot = current
            .entry(field.json_name().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        current = match slot {
            Value::Object(fields) => fields,
            _ => unreachable!("made an object just above"),
        };
    }
    current
}

fn set(root: &mut Map<String, Value>, target: &Target, value: Value) {
    let fields = parent(root, target);
    // One spelling per field, or the decoder would see it twice.
    fields.remove(target.field.name());
    fields.insert(target.field.json_name().to_owned(), value);
}

fn push(root: &mut Map<String, Value>, target: &Target, value: Value) {
    let fields = parent(root, target);
    let existing = fields
        .remove(target.field.name())
        .or_else(|| fields.remove(target.field.json_name()));
    let mut items = match existing {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    items.push(value);
    fields.insert(target.field.json_name().to_owned(), Value::Array(items));
}

/// `a=1&b.c=x+y&a=2` as decoded pairs, in order.
fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, FieldError> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |raw: &str| percent_decode(&raw.replace('+', " "), false);
            let key = decode(key).ok_or_else(|| FieldError::new(pair, "bad percent-encoding"))?;
            let value =
                decode(value).ok_or_else(|| FieldError::new(&key, "bad percent-encoding"))?;
            Ok((key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use erp_proto::Contracts;
    use prost_reflect::Value as ProtoValue;

    use super::*;

    fn input(grpc_path: &str) -> MessageDescriptor {
        Contracts::bundled()
            .method(grpc_path)
            .unwrap_or_else(|| panic!("{grpc_path} is a contract method"))
            .descriptor
            .input()
    }

    fn decode(
        grpc_path: &str,
        body_field: Option<&str>,
        variables: &[(&str, &str)],
        query: Option<&str>,
        body: &str,
    ) -> Result<DynamicMessage, FieldError> {
        let variables: BTreeMap<String, String> = variables
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        decode_request(
            &input(grpc_path),
            &RequestParts {
                body_field,
                variables: &variables,
                query,
                body: body.as_bytes(),
            },
        )
    }

    fn json(message: &DynamicMessage) -> Value {
        serde_json::from_slice(&encode_response(message, None).expect("serializes"))
            .expect("valid JSON")
    }

    const LIST_EMPLOYEES: &str = "/erp.hrm.v1.HrmService/ListEmployees";
    const UPDATE_EMPLOYEE: &str = "/erp.hrm.v1.HrmService/UpdateEmployee";
    const SUMMARY: &str = "/erp.hrm.v1.HrmService/GetAttendanceSummary";
    const CREATE_ROLE: &str = "/erp.auth.v1.AuthService/CreateRole";
    const BY_DEPARTMENT: &str = "/erp.hrm.v1.HrmService/GetEmployeesByDepartment";

    #[test]
    fn query_parameters_fill_nested_fields_and_enums_by_name() {
        let message = decode(
            LIST_EMPLOYEES,
            None,
            &[],
            Some("page.pageSize=10&status=EMPLOYEE_STATUS_ACTIVE&department_id=d%201"),
            "",
        )
        .expect("decodes");
        assert_eq!(
            json(&message),
            serde_json::json!({
                "page": {"pageSize": 10},
                "status": "EMPLOYEE_STATUS_ACTIVE",
                "departmentId": "d 1"
            })
        );
    }

    #[test]
    fn enums_in_the_query_may_be_given_by_number() {
        let message = decode(LIST_EMPLOYEES, None, &[], Some("status=1"), "").expect("decodes");
        assert_eq!(
            json(&message),
            serde_json::json!({"status": "EMPLOYEE_STATUS_ACTIVE"})
        );
    }

    #[test]
    fn a_singular_field_given_twice_in_the_query_is_refused() {
        let error = decode(
            LIST_EMPLOYEES,
            None,
            &[],
            Some("page.pageSize=10&page.page_size=99"),
            "",
        )
        .expect_err("two values for one field");
        assert_eq!(error.field, "page.page_size");
    }

    #[test]
    fn a_path_variable_leaves_the_other_fields_to_the_query() {
        let message = decode(
            BY_DEPARTMENT,
            None,
            &[("department_id", "d1")],
            Some("page.pageSize=5"),
            "",
        )
        .expect("decodes");
        assert_eq!(
            json(&message),
            serde_json::json!({"departmentId": "d1", "page": {"pageSize": 5}})
        );
        let refill = decode(
            BY_DEPARTMENT,
            None,
            &[("department_id", "d1")],
            Some("departmentId=d2"),
            "",
        )
        .expect_err("the path gave it");
        assert_eq!(refill.field, "departmentId");
    }

    #[test]
    fn repeated_fields_take_every_occurrence_in_order() {
        let message = decode(
            CREATE_ROLE,
            None,
            &[],
            Some("name=clerk&permissions=hrm.employee.read&permissions=hrm.leave.read"),
            "",
        )
        .expect("decodes");
        let permissions = message.get_field_by_name("permissions").expect("field");
        let ProtoValue::List(items) = permissions.as_ref() else {
            panic!("a list: {permissions:?}");
        };
        assert_eq!(
            items,
            &[
                ProtoValue::String("hrm.employee.read".into()),
                ProtoValue::String("hrm.leave.read".into())
            ]
        );
    }

    #[test]
    fn path_variables_win_over_the_body_and_names_may_be_proto_or_camel() {
        let message = decode(
            UPDATE_EMPLOYEE,
            Some("*"),
            &[("id", "from-path")],
            None,
            r#"{"id": "from-body", "expected_version": "3", "employee": {"firstName": "Ada"}}"#,
        )
        .expect("decodes");
        let value = json(&message);
        assert_eq!(value["id"], "from-path");
        assert_eq!(value["expectedVersion"], "3", "int64 travels as a string");
        assert_eq!(value["employee"]["firstName"], "Ada");
    }

    #[test]
    fn the_query_cannot_refill_a_path_variable_under_either_spelling() {
        for key in ["leave_request_id", "leaveRequestId"] {
            let error = decode(
                "/erp.hrm.v1.HrmService/GetLeaveRequest",
                None,
                &[("leave_request_id", "from-path")],
                Some(&format!("{key}=from-query")),
                "",
            )
            .expect_err("the path's field is taken");
            assert!(
                error.to_string().contains("already given in the path"),
                "{key}: {error}"
            );
        }
    }

    #[test]
    fn nested_messages_come_field_by_field_from_the_query() {
        let message = decode(
            SUMMARY,
            None,
            &[],
            Some("period.startDate.year=2026&period.startDate.month=11&period.start_date.day=1"),
            "",
        )
        .expect("decodes");
        assert_eq!(
            json(&message)["period"]["startDate"],
            serde_json::json!({"year": 2026, "month": 11, "day": 1})
        );
        let whole = decode(SUMMARY, None, &[], Some("period.startDate=2026-11-01"), "")
            .expect_err("a message is not a string");
        assert_eq!(whole.field, "period.startDate");
    }

    #[test]
    fn bad_input_names_the_field() {
        // (method, the rule's body, query, body, the field blamed)
        let cases = [
            (LIST_EMPLOYEES, None, Some("nope=1"), "", "nope"),
            (
                LIST_EMPLOYEES,
                None,
                Some("page.pageSize=ten"),
                "",
                "page.pageSize",
            ),
            (LIST_EMPLOYEES, None, Some("status=SLEEPING"), "", "status"),
            (LIST_EMPLOYEES, None, None, "{}", "body"),
            (UPDATE_EMPLOYEE, Some("*"), None, "{not json", "body"),
            (
                UPDATE_EMPLOYEE,
                Some("*"),
                None,
                r#"{"surprise": 1}"#,
                "body",
            ),
            (UPDATE_EMPLOYEE, Some("*"), None, "[1]", "body"),
            (UPDATE_EMPLOYEE, Some("*"), Some("id=x"), "{}", "id"),
        ];
        for (method, body_field, query, body, field) in cases {
            let error = decode(method, body_field, &[], query, body)
                .expect_err(&format!("{query:?} {body:?} is refused"));
            assert_eq!(error.field, field, "{error}");
        }
    }

    #[test]
    fn a_response_field_can_be_the_whole_body() {
        let message =
            decode(LIST_EMPLOYEES, None, &[], Some("departmentId=x"), "").expect("decodes");
        assert_eq!(
            encode_response(&message, Some("department_id")).expect("json"),
            br#""x""#
        );
        assert_eq!(
            encode_response(&message, Some("manager_id")).expect("json"),
            br#""""#,
            "defaults are written out when one field is the body"
        );
    }
}
