//! Contract-level checks over the bundled descriptor set: every method declares who may
//! call it and how it is exposed over HTTP, bindings do not collide and name real fields,
//! and the custom options survive into the descriptor bytes services read at runtime.

use std::collections::BTreeMap;

use erp_proto::{Contracts, HttpMethod, Requirement, erp::common::v1::Module};
use prost_reflect::{Kind, MessageDescriptor};

const SERVICES: [&str; 4] = [
    "erp.auth.v1.AuthService",
    "erp.hrm.v1.HrmService",
    "erp.crm.v1.CrmService",
    "erp.finance.v1.FinanceService",
];

fn contracts() -> &'static Contracts {
    Contracts::bundled()
}

#[test]
fn the_bundled_descriptor_set_decodes() {
    Contracts::decode(erp_proto::FILE_DESCRIPTOR_SET).expect("bundled descriptor set decodes");
}

#[test]
fn the_documented_set_is_the_same_contracts_with_their_comments() {
    let documented = Contracts::decode(erp_proto::DOCUMENTED_FILE_DESCRIPTOR_SET).expect("decodes");
    let lean = contracts();
    assert_eq!(documented.methods().count(), lean.methods().count());
    for (with, without) in documented.methods().zip(lean.methods()) {
        assert_eq!(with.grpc_path, without.grpc_path);
        assert_eq!(with.access, without.access, "{}", with.grpc_path);
        assert_eq!(with.http, without.http, "{}", with.grpc_path);
    }
    let has_comments = |pool: &prost_reflect::DescriptorPool| {
        pool.files()
            .any(|file| file.file_descriptor_proto().source_code_info.is_some())
    };
    assert!(has_comments(documented.pool()));
    assert!(!has_comments(lean.pool()), "services decode no comments");
    assert!(
        erp_proto::FILE_DESCRIPTOR_SET.len() < erp_proto::DOCUMENTED_FILE_DESCRIPTOR_SET.len() / 2,
        "{} vs {} bytes",
        erp_proto::FILE_DESCRIPTOR_SET.len(),
        erp_proto::DOCUMENTED_FILE_DESCRIPTOR_SET.len()
    );
}

#[test]
fn every_domain_service_exists_and_has_methods() {
    for service in SERVICES {
        assert!(
            contracts().service_methods(service).count() > 0,
            "{service} has no methods"
        );
    }
}

#[test]
fn every_method_declares_an_access_rule() {
    let missing: Vec<&str> = contracts()
        .methods()
        .filter(|method| method.access.is_none())
        .map(|method| method.grpc_path.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "methods without an access rule: {missing:?}"
    );
}

#[test]
fn every_method_declares_an_http_binding() {
    let missing: Vec<&str> = contracts()
        .methods()
        .filter(|method| method.http.is_empty())
        .map(|method| method.grpc_path.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "methods without an HTTP rule: {missing:?}"
    );
}

#[test]
fn no_two_http_bindings_collide() {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut collisions = Vec::new();
    for method in contracts().methods() {
        for binding in &method.http {
            if let Some(other) = seen.insert(binding.shape(), &method.grpc_path) {
                collisions.push(format!(
                    "{} and {} ({})",
                    other,
                    method.grpc_path,
                    binding.shape()
                ));
            }
        }
    }
    assert!(
        collisions.is_empty(),
        "colliding HTTP bindings: {collisions:#?}"
    );
}

#[test]
fn http_paths_are_versioned_rest_paths() {
    for method in contracts().methods() {
        for binding in &method.http {
            assert!(
                binding.path.starts_with("/v1/") || binding.path.starts_with("/.well-known/"),
                "{}: {} is not under /v1/",
                method.grpc_path,
                binding.path
            );
        }
    }
}

#[test]
fn http_path_variables_and_bodies_name_request_fields() {
    for method in contracts().methods() {
        let input = method.descriptor.input();
        for binding in &method.http {
            for variable in path_variables(&binding.path) {
                assert!(
                    field_path_exists(&input, &variable),
                    "{}: path variable {{{variable}}} is not a field of {}",
                    method.grpc_path,
                    input.full_name()
                );
            }
            match binding.body.as_deref() {
                None | Some("*") => {}
                Some(field) => assert!(
                    input.get_field_by_name(field).is_some(),
                    "{}: body field {field} is not a field of {}",
                    method.grpc_path,
                    input.full_name()
                ),
            }
        }
    }
}

#[test]
fn reads_have_no_body_and_writes_send_one() {
    for method in contracts().methods() {
        for binding in &method.http {
            match binding.method {
                HttpMethod::Get | HttpMethod::Delete => assert!(
                    binding.body.is_none(),
                    "{}: {} must not take a body",
                    method.grpc_path,
                    binding.method
                ),
                HttpMethod::Post | HttpMethod::Patch | HttpMethod::Put => assert!(
                    binding.body.is_some(),
                    "{}: {} should bind a body",
                    method.grpc_path,
                    binding.method
                ),
                HttpMethod::Custom(_) => {}
            }
        }
    }
}

#[test]
fn the_descriptor_keeps_the_custom_options() {
    let get_employee = contracts()
        .method("/erp.hrm.v1.HrmService/GetEmployee")
        .expect("GetEmployee exists");
    let access = get_employee
        .access
        .as_ref()
        .expect("GetEmployee has an access rule");
    assert_eq!(
        access.requirement,
        Requirement::Permission("hrm.employee.read".into())
    );
    assert_eq!(access.module, Module::Hrm);
    assert_eq!(get_employee.http[0].method, HttpMethod::Get);
    assert_eq!(get_employee.http[0].path, "/v1/employees/{id}");

    let login = contracts()
        .method("/erp.auth.v1.AuthService/Login")
        .expect("Login exists");
    assert_eq!(
        login.access.as_ref().map(|a| &a.requirement),
        Some(&Requirement::Public)
    );

    let jwks = contracts()
        .method("/erp.auth.v1.AuthService/GetJwks")
        .expect("GetJwks exists");
    assert_eq!(jwks.http.len(), 2, "additional_bindings are read");
}

#[test]
fn module_methods_are_gated_by_their_module() {
    let expectations = [
        ("erp.hrm.v1.", Module::Hrm),
        ("erp.crm.v1.", Module::Crm),
        ("erp.finance.v1.", Module::Finance),
    ];
    for method in contracts().methods() {
        let Some(access) = &method.access else {
            continue;
        };
        for (prefix, module) in expectations {
            if method.service.starts_with(prefix) {
                assert_eq!(
                    access.module, module,
                    "{} is not gated by {module:?}",
                    method.grpc_path
                );
            }
        }
    }
}

#[test]
fn permissions_follow_the_module_resource_action_scheme() {
    for permission in contracts().permissions() {
        let parts: Vec<&str> = permission.split('.').collect();
        assert_eq!(
            parts.len(),
            3,
            "{permission} is not <module>.<resource>.<action>"
        );
        assert!(
            parts
                .iter()
                .all(|part| !part.is_empty()
                    && part.chars().all(|c| c.is_ascii_lowercase() || c == '_')),
            "{permission} has characters outside [a-z_]"
        );
    }
}

#[test]
fn every_enum_starts_with_an_unspecified_zero() {
    for enum_descriptor in contracts().pool().all_enums() {
        if !enum_descriptor.full_name().starts_with("erp.") {
            continue;
        }
        let zero = enum_descriptor
            .get_value(0)
            .expect("proto3 enums have a zero value");
        assert!(
            zero.name().ends_with("_UNSPECIFIED"),
            "{}: zero value is {}",
            enum_descriptor.full_name(),
            zero.name()
        );
    }
}

#[test]
fn every_event_payload_declares_topic_and_type() {
    let declared: Vec<&str> = contracts()
        .events()
        .iter()
        .map(|e| e.payload_type.as_str())
        .collect();
    for payload in [
        "TenantCreated",
        "UserCreated",
        "UserDisabled",
        "EmployeeHired",
        "EmployeeUpdated",
        "EmployeeTerminated",
        "EmployeeDeleted",
        "LeaveRequestApproved",
        "LeadConverted",
        "OpportunityWon",
        "OpportunityLost",
        "InvoiceIssued",
        "InvoicePaid",
        "PaymentRecorded",
    ] {
        let full_name = format!("erp.events.v1.{payload}");
        assert!(
            declared.contains(&full_name.as_str()),
            "{full_name} has no event option"
        );
    }
    for event in contracts().events() {
        assert!(
            event.topic.starts_with("erp.") && event.topic.ends_with(".v1"),
            "{}: topic {} is not erp.<domain>.<aggregate>.v1",
            event.payload_type,
            event.topic
        );
        assert!(
            event.event_type.contains('.'),
            "{}: event type {}",
            event.payload_type,
            event.event_type
        );
    }
}

#[test]
fn the_hrm_contract_covers_the_seed_sketch() {
    for rpc in [
        "GetEmployee",
        "CreateEmployee",
        "UpdateEmployee",
        "DeleteEmployee",
        "GetEmployeesByDepartment",
    ] {
        assert!(
            contracts()
                .method(&format!("/erp.hrm.v1.HrmService/{rpc}"))
                .is_some(),
            "HrmService lacks the seed's {rpc}"
        );
    }
    let employee = contracts()
        .pool()
        .get_message_by_name("erp.hrm.v1.Employee")
        .expect("Employee exists");
    for (number, name) in [
        (1, "id"),
        (2, "tenant_id"),
        (3, "employee_id"),
        (4, "first_name"),
        (5, "last_name"),
        (6, "email"),
        (7, "department_id"),
        (8, "position"),
        (9, "status"),
        (10, "created_at"),
        (11, "updated_at"),
    ] {
        let field = employee
            .get_field(number)
            .expect("seed field number exists");
        assert_eq!(field.name(), name, "Employee field {number}");
    }
}

#[test]
fn money_is_never_a_float() {
    for message in contracts().pool().all_messages() {
        if !message.full_name().starts_with("erp.") {
            continue;
        }
        for field in message.fields() {
            assert!(
                !matches!(field.kind(), Kind::Double | Kind::Float),
                "{}.{} is a floating-point field",
                message.full_name(),
                field.name()
            );
        }
    }
}

fn path_variables(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(variable, _)| variable.split('=').next().unwrap_or(variable).to_owned())
        .collect()
}

fn field_path_exists(message: &MessageDescriptor, path: &str) -> bool {
    let mut current = message.clone();
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let Some(field) = current.get_field_by_name(segment) else {
            return false;
        };
        if segments.peek().is_some() {
            match field.kind() {
                Kind::Message(next) => current = next,
                _ => return false,
            }
        }
    }
    true
}
