//! Domain and store values to proto messages, and request fields to domain values.

use chrono::{DateTime, Utc};
use erp_kit::error::ValidationError;
use erp_proto::erp::{
    auth::v1 as proto,
    common::v1::{AuditInfo, Module as ProtoModule},
};
use tonic::Status;

use crate::{
    app::proto_module,
    domain::{
        role::RoleName,
        tenant::{Module, Plan, TenantStatus},
        user::{Email, UserStatus, parse_display_name},
    },
    store::{tenants::TenantRecord, users::UserRecord},
};

pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn user(record: &UserRecord) -> proto::User {
    let row = &record.row;
    proto::User {
        user_id: row.id.clone(),
        tenant_id: row.tenant_id.clone(),
        email: row.email.clone(),
        display_name: row.display_name.clone(),
        status: match UserStatus::from_name(&row.status) {
            UserStatus::Active => proto::UserStatus::Active,
            UserStatus::Disabled => proto::UserStatus::Disabled,
        } as i32,
        roles: record.roles.clone(),
        last_login_time: row.last_login_at.map(timestamp),
        employee_id: row.employee_id.clone().unwrap_or_default(),
        audit: Some(AuditInfo {
            create_time: Some(timestamp(row.created_at)),
            created_by: row.created_by.clone(),
            update_time: Some(timestamp(row.updated_at)),
            updated_by: row.updated_by.clone(),
        }),
        version: row.version,
    }
}

pub(crate) fn tenant(record: &TenantRecord) -> proto::Tenant {
    let row = &record.row;
    proto::Tenant {
        tenant_id: row.id.clone(),
        slug: row.slug.clone(),
        display_name: row.display_name.clone(),
        plan: Some(plan(&record.plan)),
        status: match TenantStatus::from_name(&row.status) {
            TenantStatus::Active => proto::TenantStatus::Active,
            TenantStatus::Suspended => proto::TenantStatus::Suspended,
        } as i32,
        audit: Some(AuditInfo {
            create_time: Some(timestamp(row.created_at)),
            update_time: Some(timestamp(row.updated_at)),
            ..AuditInfo::default()
        }),
    }
}

pub(crate) fn plan(plan: &Plan) -> proto::Plan {
    proto::Plan {
        name: plan.name.clone(),
        enabled_modules: plan
            .modules
            .iter()
            .map(|module| proto_module(*module) as i32)
            .collect(),
        max_users: plan
            .max_users
            .map_or(0, |limit| i32::try_from(limit).unwrap_or(i32::MAX)),
    }
}

/// The plan of a request, its violations under `field`.
pub(crate) fn parse_plan(
    errors: &mut ValidationError,
    field: &str,
    plan: Option<&proto::Plan>,
) -> Option<Plan> {
    let Some(plan) = plan else {
        errors.add(field, "is required");
        return None;
    };
    let modules: Vec<Option<Module>> = plan
        .enabled_modules
        .iter()
        .map(|value| match ProtoModule::try_from(*value) {
            Ok(ProtoModule::Hrm) => Some(Module::Hrm),
            Ok(ProtoModule::Crm) => Some(Module::Crm),
            Ok(ProtoModule::Finance) => Some(Module::Finance),
            _ => None,
        })
        .collect();
    match Plan::parse(&plan.name, &modules, plan.max_users) {
        Ok(plan) => Some(plan),
        Err(nested) => {
            errors.nest(field, nested);
            None
        }
    }
}

pub(crate) fn parse_email(errors: &mut ValidationError, field: &str, raw: &str) -> Option<Email> {
    errors.check(field, Email::parse(raw))
}

pub(crate) fn parse_name(
    errors: &mut ValidationError,
    field: &str,
    raw: &str,
    required: bool,
) -> Option<String> {
    let name = errors.check(field, parse_display_name(raw))?;
    if required && name.is_empty() {
        errors.add(field, "is required");
        return None;
    }
    Some(name)
}

pub(crate) fn parse_role(errors: &mut ValidationError, field: &str, raw: &str) -> Option<RoleName> {
    errors.check(field, RoleName::parse(raw))
}

pub(crate) fn require_id(errors: &mut ValidationError, field: &str, raw: &str) -> Option<String> {
    let id = raw.trim();
    if id.is_empty() {
        errors.add(field, "is required");
        return None;
    }
    if id.len() > 64 {
        errors.add(field, "must be at most 64 characters");
        return None;
    }
    Some(id.to_owned())
}

/// The `user_id` and `role` of AssignRole and RevokeRole, both checked at once.
pub(crate) fn user_and_role(user_id: &str, role: &str) -> Result<(String, RoleName), Status> {
    let mut errors = ValidationError::new();
    let id = require_id(&mut errors, "user_id", user_id);
    let role = parse_role(&mut errors, "role", role);
    match (id, role) {
        (Some(id), Some(role)) => Ok((id, role)),
        _ => Err(crate::error::Error::from(errors).into()),
    }
}
