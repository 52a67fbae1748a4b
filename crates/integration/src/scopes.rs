//! The scopes of this module and what a client's token grants with them.

use amtsweg_auth::ClientAuth;
use amtsweg_events::Procedures;
use amtsweg_kernel::{ApiError, Text};
use serde_json::json;

/// Read applications (and their events) of a procedure: `applications:read:{procedure}` or `…:*`.
pub const READ: &str = "applications:read";
/// Report back on applications of a procedure: acknowledge, status, decision.
pub const WRITE: &str = "applications:write";

/// The procedures a list of granted scopes covers for `scope`.
pub fn covered(scopes: &[String], scope: &str) -> Procedures {
    let mut ids = Vec::new();
    for granted in scopes {
        let Some(procedure) = granted
            .strip_prefix(scope)
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            continue;
        };
        if procedure == "*" {
            return Procedures::All;
        }
        if !procedure.is_empty() {
            ids.push(procedure.to_owned());
        }
    }
    ids.sort();
    ids.dedup();
    Procedures::Some(ids)
}

/// Whether `procedures` holds `procedure`.
pub fn includes(procedures: &Procedures, procedure: &str) -> bool {
    match procedures {
        Procedures::All => true,
        Procedures::Some(ids) => ids.iter().any(|id| id == procedure),
    }
}

/// The procedures the caller's token covers for `scope`; 403 naming the scope when it covers none.
pub fn require(auth: &ClientAuth, scope: &str) -> Result<Procedures, ApiError> {
    let procedures = covered(&auth.scopes, scope);
    if matches!(&procedures, Procedures::Some(ids) if ids.is_empty()) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "forbidden",
            Text::fixed("Zugriff verweigert.", "Access is denied."),
        )
        .with_detail(Text::fixed(
            "Dem Client fehlt ein Scope für Anträge eines Verfahrens.",
            "The client holds no scope for the applications of any procedure.",
        ))
        .with_extension("required_scope", json!(format!("{scope}:{{procedure}}"))));
    }
    Ok(procedures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_their_procedures_and_star_covers_all() {
        let scopes = vec![
            "applications:read:hundesteuer-anmeldung".to_owned(),
            "applications:write:kita-platz".to_owned(),
            "procedures:read".to_owned(),
        ];
        assert_eq!(
            covered(&scopes, READ),
            Procedures::Some(vec!["hundesteuer-anmeldung".into()])
        );
        assert_eq!(
            covered(&scopes, WRITE),
            Procedures::Some(vec!["kita-platz".into()])
        );
        assert_eq!(covered(&["applications:read:*".into()], READ), Procedures::All);
        assert_eq!(
            covered(&["applications:readx:a".into()], READ),
            Procedures::Some(vec![])
        );
    }
}
