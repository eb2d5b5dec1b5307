//! Users: login emails, display names and their lifecycle.

pub use erp_kit::values::Email;

/// A name shown in the UI: at most 120 characters after trimming, no control characters.
pub fn parse_display_name(raw: &str) -> Result<String, String> {
    erp_kit::values::parse_text(raw, 120, false)
}

/// Whether a user can log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Can log in.
    Active,
    /// Cannot log in; sessions revoked.
    Disabled,
}

impl UserStatus {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    /// From storage.
    pub fn from_name(name: &str) -> Self {
        if name == "disabled" {
            Self::Disabled
        } else {
            Self::Active
        }
    }
}
