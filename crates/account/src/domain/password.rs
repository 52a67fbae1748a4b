//! Password policy after NIST 800-63B: length 8–128, no composition rules, refuse what a strength estimator
//! (zxcvbn, with the person's own name and address as context) finds guessable.

use zxcvbn::Score;

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    TooWeak { suggestion: Option<String> },
}

impl PasswordProblem {
    /// The stable error code clients translate.
    pub fn code(&self) -> &'static str {
        match self {
            PasswordProblem::TooShort => "too_short",
            PasswordProblem::TooLong => "too_long",
            PasswordProblem::TooWeak { .. } => "too_weak",
        }
    }
}

/// Checks a new password; `context` are words about the person (e-mail, name) that make a password guessable.
pub fn check(password: &str, context: &[&str]) -> Result<(), PasswordProblem> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PasswordProblem::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PasswordProblem::TooLong);
    }
    let estimate = zxcvbn::zxcvbn(password, context);
    if estimate.score() < Score::Three {
        let suggestion = estimate.feedback().and_then(|f| {
            f.warning()
                .map(|w| w.to_string())
                .or_else(|| f.suggestions().first().map(|s| s.to_string()))
        });
        return Err(PasswordProblem::TooWeak { suggestion });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_limits() {
        assert_eq!(check("kurz", &[]), Err(PasswordProblem::TooShort));
        assert_eq!(check(&"x".repeat(129), &[]), Err(PasswordProblem::TooLong));
    }

    #[test]
    fn common_and_personal_passwords_are_refused() {
        assert!(matches!(
            check("password1", &[]),
            Err(PasswordProblem::TooWeak { .. })
        ));
        assert!(matches!(
            check("12345678", &[]),
            Err(PasswordProblem::TooWeak { .. })
        ));
        assert!(matches!(
            check("erikamustermann", &["erika", "mustermann"]),
            Err(PasswordProblem::TooWeak { .. })
        ));
    }

    #[test]
    fn long_passphrases_pass_without_composition_rules() {
        assert_eq!(check("kaffeetasse wolkenkratzer lindenau", &[]), Ok(()));
    }
}
