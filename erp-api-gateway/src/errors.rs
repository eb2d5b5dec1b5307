//! gRPC outcomes as HTTP: one table from status code to HTTP status, and the JSON error
//! body (`{"error": {code, status, message, reason, fieldViolations}}`) carrying the stable
//! reason and the field violations from the `google.rpc` details.

use erp_kit::error::{field_violations, reason};
use http::StatusCode;
use serde_json::{Value, json};
use tonic::{Code, Status};

use crate::transcode::FieldError;

/// The HTTP status and the canonical name of a gRPC code.
pub fn http_status(code: Code) -> (StatusCode, &'static str) {
    match code {
        Code::Ok => (StatusCode::OK, "OK"),
        Code::Cancelled => (
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "CANCELLED",
        ),
        Code::Unknown => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
        Code::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        Code::AlreadyExists => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
        Code::Aborted => (StatusCode::CONFLICT, "ABORTED"),
        Code::OutOfRange => (StatusCode::BAD_REQUEST, "OUT_OF_RANGE"),
        Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "UNIMPLEMENTED"),
        Code::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        Code::DataLoss => (StatusCode::INTERNAL_SERVER_ERROR, "DATA_LOSS"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
    }
}

/// The HTTP status and JSON body for a gRPC status from upstream (or the gateway).
pub fn from_status(status: &Status) -> (StatusCode, Value) {
    let (http, name) = http_status(status.code());
    let violations: Vec<Value> = field_violations(status)
        .into_iter()
        .map(|(field, description)| json!({"field": field, "description": description}))
        .collect();
    (
        http,
        body(
            http,
            name,
            status.message(),
            reason(status).as_deref(),
            violations,
        ),
    )
}

/// A request the transcoder refused: 400 with the field.
pub fn from_field_error(error: &FieldError) -> (StatusCode, Value) {
    let http = StatusCode::BAD_REQUEST;
    (
        http,
        body(
            http,
            "INVALID_ARGUMENT",
            &error.to_string(),
            Some("ERP:GATEWAY:INVALID_REQUEST"),
            vec![json!({"field": error.field, "description": error.description})],
        ),
    )
}

/// A gateway-level refusal without a gRPC status behind it (404 no route, 405 method,
/// 413 body, ...): `status` is the nearest gRPC code name, as in every error body, and
/// the stable reason is `ERP:GATEWAY:<name>`.
pub fn plain(http: StatusCode, name: &str, message: &str) -> Value {
    let code = match http.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 => "UNIMPLEMENTED",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        413 | 414 | 429 | 431 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    let reason = format!("ERP:GATEWAY:{name}");
    body(http, code, message, Some(&reason), Vec::new())
}

fn body(
    http: StatusCode,
    name: &str,
    message: &str,
    reason: Option<&str>,
    violations: Vec<Value>,
) -> Value {
    let mut error = json!({
        "code": http.as_u16(),
        "status": name,
        "message": message,
    });
    if let Some(reason) = reason {
        error["reason"] = json!(reason);
    }
    if !violations.is_empty() {
        error["fieldViolations"] = Value::Array(violations);
    }
    json!({ "error": error })
}

#[cfg(test)]
mod tests {
    use erp_kit::error::{ErrorDomain, ServiceError};

    use super::*;

    #[test]
    fn the_issue_table_holds() {
        let expected = [
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::FailedPrecondition, 400),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
        ];
        for (code, http) in expected {
            assert_eq!(http_status(code).0.as_u16(), http, "{code:?}");
        }
    }

    #[derive(Debug)]
    struct Probe;
    impl ErrorDomain for Probe {
        const PREFIX: &'static str = "ERP:PROBE";
    }

    #[test]
    fn reasons_and_field_violations_reach_the_body() {
        let status: Status = ServiceError::<Probe>::field("employee.email", "not an email").into();
        let (http, body) = from_status(&status);
        assert_eq!(http, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(
            body["error"]["fieldViolations"],
            json!([{"field": "employee.email", "description": "not an email"}])
        );
        assert_eq!(
            body["error"]["reason"], "ERP:PROBE:INVALID_REQUEST",
            "{body}"
        );
    }

    #[test]
    fn transcoder_refusals_are_400_with_the_field() {
        let (http, body) = from_field_error(&FieldError {
            field: "page.pageSize".into(),
            description: "invalid type".into(),
        });
        assert_eq!(http, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["error"]["fieldViolations"][0]["field"],
            "page.pageSize"
        );
        assert_eq!(body["error"]["reason"], "ERP:GATEWAY:INVALID_REQUEST");
    }
}
