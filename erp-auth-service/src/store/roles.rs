//! Custom roles of a tenant.

use std::collections::{BTreeMap, BTreeSet};

use erp_db::scoped;
use erp_kit::auth::TenantId;
use sea_orm::{ActiveModelTrait, ConnectionTrait, QueryOrder, Set};

use super::{entities::custom_role, split_list};
use crate::error::{Error, Result};

/// A tenant's custom role.
#[derive(Debug, Clone)]
pub struct CustomRole {
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Granted permissions.
    pub permissions: BTreeSet<String>,
}

fn from_row(row: custom_role::Model) -> CustomRole {
    CustomRole {
        name: row.name,
        description: row.description,
        permissions: split_list(&row.permissions).into_iter().collect(),
    }
}

/// The tenant's custom roles, by name.
pub async fn list(db: &impl ConnectionTrait, tenant: &TenantId) -> Result<Vec<CustomRole>> {
    Ok(scoped::<custom_role::Entity>(tenant)
        .find()
        .order_by_asc(custom_role::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

/// The tenant's custom roles as name → permissions.
pub async fn permission_map(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    Ok(list(db, tenant)
        .await?
        .into_iter()
        .map(|role| (role.name, role.permissions))
        .collect())
}

/// Inserts a custom role.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &TenantId,
    role: &CustomRole,
) -> Result<CustomRole> {
    let row = scoped::<custom_role::Entity>(tenant)
        .stamp(custom_role::ActiveModel {
            name: Set(role.name.clone()),
            description: Set(role.description.clone()),
            permissions: Set(role
                .permissions
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(",")),
            created_at: Set(erp_db::time::now()),
            ..Default::default()
        })
        .insert(db)
        .await
        .map_err(|error| {
            if super::is_unique_violation(&error) {
                Error::AlreadyExists {
                    reason: "ERP:AUTH:ROLE_EXISTS",
                    message: format!("the role {} exists", role.name),
                }
            } else {
                Error::from(error)
            }
        })?;
    Ok(from_row(row))
}
