//! Roles and permissions. Built-in roles exist in every tenant and map to the permission
//! strings the contracts' access options name; tenants may add custom roles. A token's
//! permissions are computed from its user's roles when it is issued.

use std::collections::{BTreeMap, BTreeSet};

/// Permissions that no method requires but services check on data (HR sees everyone's
/// leave requests, for example), with what they allow.
pub const DATA_PERMISSIONS: &[(&str, &str)] = &[(
    "hrm.leave.approve_any",
    "approve or reject any employee's leave at the HR level",
)];

/// Permissions of the platform operator; never granted by a tenant role.
pub const OPERATOR_PERMISSIONS: &[&str] = &[
    "platform.tenant.write",
    "platform.key.rotate",
    "auth.tenant.read",
];

/// The prefix of platform permissions, which tenant roles cannot hold.
pub const PLATFORM_PREFIX: &str = "platform.";

/// A role every tenant has.
#[derive(Debug, Clone, Copy)]
pub struct BuiltInRole {
    /// Its name.
    pub name: &'static str,
    /// What it is for.
    pub description: &'static str,
    grants: Grants,
}

#[derive(Debug, Clone, Copy)]
enum Grants {
    /// Every tenant permission there is.
    Everything,
    /// Every permission with one of these prefixes, plus these exact ones.
    Listed {
        prefixes: &'static [&'static str],
        exact: &'static [&'static str],
    },
    /// Every permission ending in `.read`, plus these exact ones.
    ReadOnly { exact: &'static [&'static str] },
}

/// The built-in roles.
pub const BUILT_IN_ROLES: &[BuiltInRole] = &[
    BuiltInRole {
        name: "tenant_admin",
        description: "Administers the tenant: users, roles and every module",
        grants: Grants::Everything,
    },
    BuiltInRole {
        name: "hr_manager",
        description: "Runs HR: departments, employees and their logins, leave policy and approvals, attendance",
        grants: Grants::Listed {
            prefixes: &["hrm."],
            exact: &["auth.user.read", "auth.user.write", "auth.role.read"],
        },
    },
    BuiltInRole {
        name: "employee",
        description: "Works here: sees colleagues, requests leave, records attendance, approves their reports' leave",
        grants: Grants::Listed {
            prefixes: &[],
            exact: &[
                "hrm.department.read",
                "hrm.employee.read",
                "hrm.leave.read",
                "hrm.leave.request",
                "hrm.leave.approve",
                "hrm.attendance.read",
                "hrm.attendance.record",
            ],
        },
    },
    BuiltInRole {
        name: "sales_rep",
        description: "Sells: accounts, contacts, leads, own opportunities and activities",
        grants: Grants::Listed {
            prefixes: &[
                "crm.account.",
                "crm.contact.",
                "crm.lead.",
                "crm.activity.",
                "crm.pipeline.",
            ],
            exact: &["crm.opportunity.read", "crm.opportunity.write"],
        },
    },
    BuiltInRole {
        name: "sales_manager",
        description: "Leads sales: everything a sales rep does, plus closing opportunities",
        grants: Grants::Listed {
            prefixes: &["crm."],
            exact: &["auth.user.read"],
        },
    },
    BuiltInRole {
        name: "accountant",
        description: "Keeps the books: ledger, journal, invoices, payments, reports, period lock",
        grants: Grants::Listed {
            prefixes: &["finance."],
            exact: &[],
        },
    },
    BuiltInRole {
        name: "auditor",
        description: "Reads everything, changes nothing",
        grants: Grants::ReadOnly {
            exact: &["auth.tenant.read"],
        },
    },
];

impl BuiltInRole {
    /// The built-in role of that name.
    pub fn find(name: &str) -> Option<&'static BuiltInRole> {
        BUILT_IN_ROLES.iter().find(|role| role.name == name)
    }

    /// Its permissions among `known` (the contracts' permissions plus data permissions).
    pub fn permissions(&self, known: &BTreeSet<String>) -> BTreeSet<String> {
        known
            .iter()
            .filter(|permission| !permission.starts_with(PLATFORM_PREFIX))
            .filter(|permission| match self.grants {
                Grants::Everything => true,
                Grants::Listed { prefixes, exact } => {
                    prefixes.iter().any(|prefix| permission.starts_with(prefix))
                        || exact.contains(&permission.as_str())
                }
                Grants::ReadOnly { exact } => {
                    permission.ends_with(".read") || exact.contains(&permission.as_str())
                }
            })
            .cloned()
            .collect()
    }
}

/// A role name: 2–64 of `[a-z0-9_]`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleName(String);

impl RoleName {
    /// Parses a role name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if !(2..=64).contains(&name.len()) {
            return Err("must be 2 to 64 characters".to_owned());
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase())
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(
                "must be lower case letters, digits and _, starting with a letter".to_owned(),
            );
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The permissions granted by `roles`, built-in or custom (`custom`: name → permissions).
pub fn effective_permissions(
    roles: &[String],
    custom: &BTreeMap<String, BTreeSet<String>>,
    known: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut permissions = BTreeSet::new();
    for role in roles {
        if let Some(built_in) = BuiltInRole::find(role) {
            permissions.extend(built_in.permissions(known));
        } else if let Some(granted) = custom.get(role) {
            permissions.extend(granted.iter().filter(|p| known.contains(*p)).cloned());
        }
    }
    permissions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        let mut known: BTreeSet<String> = erp_proto::Contracts::bundled()
            .permissions()
            .into_iter()
            .map(str::to_owned)
            .collect();
        known.extend(DATA_PERMISSIONS.iter().map(|(name, _)| (*name).to_owned()));
        known
    }

    #[test]
    fn every_tenant_permission_of_the_contracts_is_granted_by_a_built_in_role() {
        let known = known();
        let granted: BTreeSet<String> = BUILT_IN_ROLES
            .iter()
            .flat_map(|role| role.permissions(&known))
            .collect();
        let missing: Vec<&String> = known
            .iter()
            .filter(|permission| !permission.starts_with(PLATFORM_PREFIX))
            .filter(|permission| !granted.contains(*permission))
            .collect();
        assert!(missing.is_empty(), "no built-in role grants {missing:?}");
    }

    #[test]
    fn tenant_admin_holds_every_tenant_permission_and_no_platform_one() {
        let known = known();
        let admin = BuiltInRole::find("tenant_admin")
            .expect("exists")
            .permissions(&known);
        let tenant: BTreeSet<String> = known
            .into_iter()
            .filter(|p| !p.starts_with(PLATFORM_PREFIX))
            .collect();
        assert_eq!(admin, tenant);
    }

    #[test]
    fn every_operator_permission_is_known_to_the_contracts() {
        let known = known();
        for permission in OPERATOR_PERMISSIONS {
            assert!(known.contains(*permission), "{permission}");
        }
    }

    #[test]
    fn the_auditor_only_reads() {
        let auditor = BuiltInRole::find("auditor")
            .expect("exists")
            .permissions(&known());
        assert!(auditor.iter().all(|p| p.ends_with(".read")), "{auditor:?}");
        assert!(auditor.contains("hrm.employee.read") && auditor.contains("finance.report.read"));
    }

    #[test]
    fn custom_roles_grant_only_known_permissions() {
        let known = known();
        let custom = BTreeMap::from([(
            "payroll_clerk".to_owned(),
            BTreeSet::from([
                "hrm.employee.read".to_owned(),
                "made.up.permission".to_owned(),
            ]),
        )]);
        let permissions = effective_permissions(&["payroll_clerk".to_owned()], &custom, &known);
        assert_eq!(
            permissions,
            BTreeSet::from(["hrm.employee.read".to_owned()])
        );
    }
}
