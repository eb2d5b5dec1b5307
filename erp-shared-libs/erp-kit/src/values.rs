//! Value types every service parses the same way: email addresses, bounded free text,
//! record ids. Domain code uses them; failures are plain messages for field violations.

/// An email address: trimmed, lower-cased, at most 254 characters, one `@`, a local part of
/// at most 64 characters and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    /// Parses an email address.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if email.len() > 254 {
            return Err("must be at most 254 characters".to_owned());
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an email address like name@example.com".to_owned());
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !local_ok || !domain_ok {
            return Err("must be an email address like name@example.com".to_owned());
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text of at most `max` characters after trimming, without control characters;
/// empty is refused when `required`.
pub fn parse_text(raw: &str, max: usize, required: bool) -> Result<String, String> {
    let text = raw.trim();
    if required && text.is_empty() {
        return Err("is required".to_owned());
    }
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(text.to_owned())
}

/// A required record id (UUID or similar): trimmed, 1–64 characters.
pub fn parse_id(raw: &str) -> Result<String, String> {
    let id = raw.trim();
    if id.is_empty() {
        return Err("is required".to_owned());
    }
    if id.len() > 64 {
        return Err("must be at most 64 characters".to_owned());
    }
    if id.chars().any(char::is_control) {
        // A NUL would otherwise reach PostgreSQL, which refuses it as an encoding error.
        return Err("must not contain control characters".to_owned());
    }
    Ok(id.to_owned())
}

/// An optional record id: empty is `None`.
pub fn parse_optional_id(raw: &str) -> Result<Option<String>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse_id(raw).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_required_when_asked() {
        assert_eq!(parse_text("  Ada  ", 10, true), Ok("Ada".to_owned()));
        assert!(parse_text("   ", 10, true).is_err());
        assert_eq!(parse_text("", 10, false), Ok(String::new()));
        assert!(parse_text("abcdefghijk", 10, false).is_err());
        assert!(parse_text("a\u{7}b", 10, false).is_err());
    }

    #[test]
    fn ids_are_trimmed_bounded_and_printable() {
        assert_eq!(parse_id(" 0190-ab "), Ok("0190-ab".to_owned()));
        assert!(parse_id("  ").is_err());
        assert!(parse_id(&"a".repeat(65)).is_err());
        assert!(parse_id("01\u{0}90").is_err());
        assert_eq!(parse_optional_id(""), Ok(None));
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Ada.Lovelace@Example.COM ").map(|e| e.0),
            Ok("ada.lovelace@example.com".to_owned())
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a..b@example.com",
            "ada @example.com",
            "ada@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
    }
}
