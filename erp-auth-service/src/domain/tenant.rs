//! Tenants and their plans.

use std::collections::BTreeSet;

use erp_kit::error::ValidationError;

/// A tenant's URL-safe short name: 3–63 of `[a-z0-9-]`, not starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Parses a slug (trimmed, lower-cased).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let slug = raw.trim().to_ascii_lowercase();
        if !(3..=63).contains(&slug.len()) {
            return Err("must be 3 to 63 characters".to_owned());
        }
        if !slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err("may contain only a-z, 0-9 and -".to_owned());
        }
        if slug.starts_with('-') || slug.ends_with('-') {
            return Err("must not start or end with -".to_owned());
        }
        Ok(Self(slug))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product module a plan can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Module {
    /// Human resources.
    Hrm,
    /// Customer relationships.
    Crm,
    /// Finance.
    Finance,
}

impl Module {
    /// The claim value (`mods` in tokens) and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hrm => "hrm",
            Self::Crm => "crm",
            Self::Finance => "finance",
        }
    }

    /// The module of a storage name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "hrm" => Some(Self::Hrm),
            "crm" => Some(Self::Crm),
            "finance" => Some(Self::Finance),
            _ => None,
        }
    }
}

/// What a tenant has bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The plan's name.
    pub name: String,
    /// Enabled modules.
    pub modules: BTreeSet<Module>,
    /// Active users allowed; `None` is unlimited.
    pub max_users: Option<u32>,
}

impl Plan {
    /// Parses a plan; `modules` are already mapped from the wire (unknown ones are `None`).
    pub fn parse(
        name: &str,
        modules: &[Option<Module>],
        max_users: i32,
    ) -> Result<Self, ValidationError> {
        let mut errors = ValidationError::new();
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            errors.add("name", "must be 1 to 64 characters");
        }
        if modules.iter().any(Option::is_none) {
            errors.add(
                "enabled_modules",
                "must list only MODULE_HRM, MODULE_CRM, MODULE_FINANCE",
            );
        }
        if max_users < 0 {
            errors.add("max_users", "must not be negative (0 means unlimited)");
        }
        errors.into_result()?;
        Ok(Self {
            name: name.to_owned(),
            modules: modules.iter().flatten().copied().collect(),
            max_users: u32::try_from(max_users).ok().filter(|limit| *limit > 0),
        })
    }

    /// Whether one more active user fits.
    pub fn admits_another_user(&self, active_users: u64) -> bool {
        self.max_users
            .is_none_or(|limit| active_users < u64::from(limit))
    }
}

/// Whether a tenant can log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    /// Users can log in.
    Active,
    /// Nobody can log in.
    Suspended,
}

impl TenantStatus {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    /// From storage.
    pub fn from_name(name: &str) -> Self {
        if name == "suspended" {
            Self::Suspended
        } else {
            Self::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_normalised_and_checked() {
        assert_eq!(
            TenantSlug::parse(" ACME ").map(|s| s.0),
            Ok("acme".to_owned())
        );
        assert!(TenantSlug::parse("ab").is_err());
        assert!(TenantSlug::parse("acme corp").is_err());
        assert!(TenantSlug::parse("-acme").is_err());
    }

    #[test]
    fn a_plan_limit_of_zero_is_unlimited() {
        let plan = Plan::parse("free", &[Some(Module::Hrm)], 0).expect("valid");
        assert!(plan.admits_another_user(1_000_000));
        let plan = Plan::parse("team", &[], 2).expect("valid");
        assert!(plan.admits_another_user(1));
        assert!(!plan.admits_another_user(2));
    }

    #[test]
    fn unknown_modules_and_negative_limits_are_refused_together() {
        let error = Plan::parse("x", &[None], -1).expect_err("invalid");
        let fields: Vec<_> = error.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["enabled_modules", "max_users"]);
    }
}
