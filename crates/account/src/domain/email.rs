//! E-mail addresses as login names: case variants of one address are one account.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    /// As the person typed it (trimmed), for mails.
    display: String,
    /// Lower-cased, the key that identifies the account.
    key: String,
}

impl EmailAddress {
    /// A plausible address: one `@`, a non-empty local part, a domain with a dot, no spaces, at most 254 chars.
    pub fn parse(input: &str) -> Option<EmailAddress> {
        let trimmed = input.trim();
        if trimmed.len() > 254 || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (local, domain) = trimmed.rsplit_once('@')?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return None;
        }
        Some(EmailAddress {
            display: trimmed.to_owned(),
            key: trimmed.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

#[cfg(test)]
mod tests {
    use super::EmailAddress;

    #[test]
    fn case_variants_share_one_key() {
        let a = EmailAddress::parse(" Erika.Mustermann@Example.DE ").unwrap();
        let b = EmailAddress::parse("erika.mustermann@example.de").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "Erika.Mustermann@Example.DE");
    }

    #[test]
    fn implausible_addresses_are_refused() {
        for bad in [
            "",
            "erika",
            "erika@",
            "@example.de",
            "erika@example",
            "er ika@example.de",
            "a@b@c.de",
            "erika@.de",
        ] {
            assert!(EmailAddress::parse(bad).is_none(), "{bad}");
        }
    }
}
