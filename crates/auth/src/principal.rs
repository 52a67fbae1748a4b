//! From a bearer token to a principal. Each extractor accepts only tokens of its own audience, checks that the
//! session behind the token is still open, and answers a precise 401 otherwise.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use amtsweg_kernel::{ApiError, SharedClock, Text, Timestamp, TrustLevel};
use chrono::Duration;
use serde_json::json;

use crate::keys::KeyRing;
use crate::token::{self, Audience, Claims, TokenError, TokenSpec};

/// Whether a login session is still open (not logged out, not revoked). Implemented by the account service.
/// Whom a valid token speaks for: a person's session, or an API client (which has no session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Session(String),
    Client(String),
}

/// Whether the holder of a valid token may still act: a session not ended, a client not disabled. Checked on every
/// request, so logout, reset and disabling take effect at once.
pub trait SessionGuard: Send + Sync + 'static {
    fn is_active(&self, holder: Holder) -> Pin<Box<dyn Future<Output = Result<bool, ApiError>> + Send>>;
}

/// Issues and verifies tokens; shared as app data.
pub struct Authenticator {
    keys: Arc<KeyRing>,
    issuer: String,
    clock: SharedClock,
}

impl Authenticator {
    pub fn new(keys: Arc<KeyRing>, issuer: impl Into<String>, clock: SharedClock) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            clock,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn issue(&self, spec: &TokenSpec) -> Result<(String, Timestamp), TokenError> {
        token::issue(&self.keys, &self.issuer, spec, self.clock.now())
    }

    pub async fn verify(&self, token: &str, audience: Audience) -> Result<Claims, TokenError> {
        token::verify(&self.keys, &self.issuer, audience, token, self.clock.now()).await
    }
}

/// `WWW-Authenticate` for a bearer-protected route, with an RFC 6750 / RFC 9470 error when there is one.
pub fn bearer_challenge(error: Option<(&str, &str)>, extra: &[(&str, String)]) -> HeaderValue {
    let mut value = String::from("Bearer realm=\"amtsweg\"");
    if let Some((code, description)) = error {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
    }
    for (key, val) in extra {
        value.push_str(&format!(", {key}=\"{val}\""));
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"amtsweg\""))
}

fn unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        Text::fixed("Anmeldung erforderlich.", "Authentication is required."),
    )
    .with_header(WWW_AUTHENTICATE, bearer_challenge(None, &[]))
}

fn invalid_token(error: &TokenError) -> ApiError {
    let (de, en) = match error {
        TokenError::Expired => (
            "Das Zugangstoken ist abgelaufen.",
            "The access token has expired.",
        ),
        TokenError::Audience => (
            "Das Zugangstoken gilt nicht für diesen Bereich.",
            "The access token is not valid here.",
        ),
        _ => ("Das Zugangstoken ist ungültig.", "The access token is invalid."),
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", Text::fixed(de, en)).with_header(
        WWW_AUTHENTICATE,
        bearer_challenge(Some(("invalid_token", en)), &[]),
    )
}

fn session_ended() -> ApiError {
    let en = "The session has ended; please log in again.";
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "session_ended",
        Text::fixed("Die Sitzung ist beendet; bitte melden Sie sich erneut an.", en),
    )
    .with_header(
        WWW_AUTHENTICATE,
        bearer_challenge(Some(("invalid_token", en)), &[]),
    )
}

/// The step-up to a login with the eID card, which the written form (§ 3a (2) VwVfG) requires.
pub fn eid_required() -> ApiError {
    step_up(Some(TrustLevel::High), None).with_detail(Text::fixed(
        "Dieser Antrag ersetzt die Schriftform (§ 3a Abs. 2 VwVfG): Bitte melden Sie sich mit dem Online-Ausweis an.",
        "This application replaces the written form (§ 3a (2) VwVfG): please log in with your eID card.",
    ))
}

/// 401 with RFC 9470 `insufficient_user_authentication`: the client may step up and try again.
fn step_up(required: Option<TrustLevel>, max_age: Option<i64>) -> ApiError {
    let mut extra = Vec::new();
    let mut error = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
        Text::fixed(
            "Eine stärkere Anmeldung ist erforderlich.",
            "A stronger authentication is required.",
        ),
    );
    if let Some(level) = required {
        extra.push(("acr_values", level.as_str().to_owned()));
        error = error
            .with_detail(Text::new(
                format!(
                    "Diese Aktion erfordert das Vertrauensniveau „{}“.",
                    level.label().de
                ),
                format!("This action requires the trust level “{}”.", level.label().en),
            ))
            .with_extension("acr_values", json!(level.as_str()));
    }
    if let Some(seconds) = max_age {
        extra.push(("max_age", seconds.to_string()));
        error = error
            .with_detail(Text::new(
                format!(
                    "Bitte melden Sie sich erneut an; die letzte Anmeldung muss jünger als {} Minuten sein.",
                    seconds / 60
                ),
                format!(
                    "Please log in again; the last authentication must be less than {} minutes old.",
                    seconds / 60
                ),
            ))
            .with_extension("max_age", json!(seconds));
    }
    let description = "A stronger or more recent authentication is required";
    error.with_header(
        WWW_AUTHENTICATE,
        bearer_challenge(Some(("insufficient_user_authentication", description)), &extra),
    )
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req.headers().get(AUTHORIZATION).ok_or_else(unauthenticated)?;
    let value = header
        .to_str()
        .map_err(|_| invalid_token(&TokenError::Malformed))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| invalid_token(&TokenError::Malformed))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(invalid_token(&TokenError::Malformed));
    }
    Ok(token.trim().to_owned())
}

/// The header in which the portal, calling this process's API over loopback for a browser, names the browser's
/// address: `<secret> <address>`. Only this process knows the secret, so nobody else can claim an address.
pub const FORWARDED_FOR: &str = "amtsweg-forwarded-for";

/// This process's secret for [`FORWARDED_FOR`] (random, never stored or sent anywhere else).
pub fn forwarding_secret() -> &'static str {
    static SECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SECRET.get_or_init(|| {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        hex::encode(bytes)
    })
}

/// The caller's network address: as the socket saw it, the browser's that the portal of this process forwarded, or
/// the client's that a trusted reverse proxy (`web::Data<TrustedProxies>`) named in `X-Forwarded-For`.
pub fn peer_address(req: &HttpRequest) -> Option<String> {
    let peer = req.peer_addr()?;
    // Only this process's own calls: from loopback, or from the address it listens on (a service bound to one
    // interface reaches itself there).
    let from_itself = peer.ip().is_loopback() || peer.ip() == req.app_config().local_addr().ip();
    if from_itself
        && let Some(forwarded) = req.headers().get(FORWARDED_FOR).and_then(|v| v.to_str().ok())
        && let Some((secret, address)) = forwarded.split_once(' ')
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            secret.as_bytes(),
            forwarding_secret().as_bytes(),
        ))
        && address.parse::<std::net::IpAddr>().is_ok()
    {
        return Some(address.to_owned());
    }
    if let Some(proxies) = req.app_data::<web::Data<crate::TrustedProxies>>()
        && proxies.contains(peer.ip())
        && let Some(client) = proxies.client(
            req.headers()
                .get_all("x-forwarded-for")
                .filter_map(|value| value.to_str().ok()),
        )
    {
        return Some(client.to_string());
    }
    Some(peer.ip().to_string())
}

async fn verified(req: &HttpRequest, audience: Audience) -> Result<Claims, ApiError> {
    let auth = req
        .app_data::<web::Data<Authenticator>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("no Authenticator registered"))?;
    let token = bearer(req)?;
    let claims = auth
        .verify(&token, audience)
        .await
        .map_err(|err| invalid_token(&err))?;
    let holder = match (audience, &claims.sid) {
        (Audience::Client, None) => Holder::Client(claims.sub.clone()),
        (Audience::Citizen | Audience::Staff, Some(session)) => Holder::Session(session.clone()),
        _ => return Err(invalid_token(&TokenError::Invalid)),
    };
    let guard = req
        .app_data::<web::Data<dyn SessionGuard>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("no SessionGuard registered"))?;
    if !guard.is_active(holder).await? {
        return Err(session_ended());
    }
    Ok(claims)
}

fn level_of(claims: &Claims) -> TrustLevel {
    TrustLevel::from_acr(claims.acr.as_deref().unwrap_or_default())
}

fn when(seconds: Option<i64>) -> Timestamp {
    seconds
        .and_then(Timestamp::from_unix_seconds)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A logged-in person (citizen or a person acting for an organisation).
#[derive(Debug, Clone)]
pub struct CitizenAuth {
    pub account_id: String,
    pub session_id: String,
    pub level: TrustLevel,
    pub amr: Vec<String>,
    pub auth_time: Timestamp,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// A member of staff.
#[derive(Debug, Clone)]
pub struct StaffAuth {
    pub account_id: String,
    pub session_id: String,
    pub level: TrustLevel,
    pub auth_time: Timestamp,
    pub roles: Vec<Role>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// A specialised procedure (Fachverfahren) calling with client credentials.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub address: Option<String>,
}

/// A staff role, scoped to an organisational unit (`*` for all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub unit: String,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        let (name, unit) = text.split_once(':')?;
        Some(Role {
            name: name.to_owned(),
            unit: unit.to_owned(),
        })
    }

    pub fn to_claim(&self) -> String {
        format!("{}:{}", self.name, self.unit)
    }
}

fn require_level(level: TrustLevel, required: TrustLevel) -> Result<(), ApiError> {
    if level >= required {
        Ok(())
    } else {
        Err(step_up(Some(required), None))
    }
}

fn require_recent(auth_time: Timestamp, now: Timestamp, max_age: Duration) -> Result<(), ApiError> {
    if now - auth_time <= max_age {
        Ok(())
    } else {
        Err(step_up(None, Some(max_age.num_seconds())))
    }
}

fn forbidden(de: &'static str, en: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        Text::fixed("Zugriff verweigert.", "Access is denied."),
    )
    .with_detail(Text::fixed(de, en))
}

impl CitizenAuth {
    pub fn require_level(&self, required: TrustLevel) -> Result<(), ApiError> {
        require_level(self.level, required)
    }

    /// The electronic substitute of the written form (§ 3a (2) VwVfG): a session opened with the eID card at
    /// `high`. Anything else answers the RFC 9470 step-up to `high`.
    pub fn require_eid(&self) -> Result<(), ApiError> {
        if self.level >= TrustLevel::High && self.amr.iter().any(|method| method == "eid") {
            Ok(())
        } else {
            Err(eid_required())
        }
    }

    /// Sensitive actions need an authentication within `max_age`.
    pub fn require_recent_authentication(&self, now: Timestamp, max_age: Duration) -> Result<(), ApiError> {
        require_recent(self.auth_time, now, max_age)
    }
}

impl StaffAuth {
    pub fn require_recent_authentication(&self, now: Timestamp, max_age: Duration) -> Result<(), ApiError> {
        require_recent(self.auth_time, now, max_age)
    }

    /// Where the caller holds `role`: in no unit, in all, or in some — what a queue of that role may show them.
    pub fn units_for(&self, role: &str) -> crate::Units {
        let mut units = Vec::new();
        for held in self.roles.iter().filter(|held| held.name == role) {
            if held.unit == "*" {
                return crate::Units::All;
            }
            units.push(held.unit.clone());
        }
        if units.is_empty() {
            crate::Units::None
        } else {
            crate::Units::Some(units)
        }
    }

    pub fn has_role(&self, name: &str, unit: &str) -> bool {
        self.units_for(name).contains(unit)
    }

    pub fn is_system_admin(&self) -> bool {
        self.has_role("system_admin", "*")
    }

    pub fn require_system_admin(&self) -> Result<(), ApiError> {
        if self.is_system_admin() {
            Ok(())
        } else {
            Err(forbidden(
                "Nur für Systemadministration.",
                "Only for system administrators.",
            ))
        }
    }
}

impl ClientAuth {
    pub fn require_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(forbidden(
                "Dem Client fehlt der nötige Scope.",
                "The client lacks the required scope.",
            )
            .with_extension("required_scope", json!(scope)))
        }
    }
}

fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect())
}

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for CitizenAuth {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let claims = verified(&req, Audience::Citizen).await?;
            Ok(CitizenAuth {
                level: level_of(&claims),
                auth_time: when(claims.auth_time),
                account_id: claims.sub,
                session_id: claims.sid.unwrap_or_default(),
                amr: claims.amr,
                address: peer_address(&req),
                user_agent: user_agent(&req),
            })
        })
    }
}

impl FromRequest for StaffAuth {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let claims = verified(&req, Audience::Staff).await?;
            Ok(StaffAuth {
                level: level_of(&claims),
                auth_time: when(claims.auth_time),
                roles: claims.roles.iter().filter_map(|r| Role::parse(r)).collect(),
                account_id: claims.sub,
                session_id: claims.sid.unwrap_or_default(),
                address: peer_address(&req),
                user_agent: user_agent(&req),
            })
        })
    }
}

impl FromRequest for ClientAuth {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let claims = verified(&req, Audience::Client).await?;
            Ok(ClientAuth {
                client_id: claims.sub,
                scopes: claims
                    .scope
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                address: peer_address(&req),
            })
        })
    }
}

/// A member of staff or an API client — for routes both may call (e.g. inbound mail from the scan office or
/// from another authority's system). The token's audience decides which.
#[derive(Debug, Clone)]
pub enum StaffOrClient {
    Staff(StaffAuth),
    Client(ClientAuth),
}

impl FromRequest for StaffOrClient {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (staff, client) = (
            StaffAuth::from_request(req, payload),
            ClientAuth::from_request(req, payload),
        );
        Box::pin(async move {
            match staff.await {
                Ok(staff) => Ok(StaffOrClient::Staff(staff)),
                Err(staff_error) => client.await.map(StaffOrClient::Client).map_err(|_| staff_error),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(roles: &[&str]) -> StaffAuth {
        StaffAuth {
            account_id: "s".into(),
            session_id: "x".into(),
            level: TrustLevel::Substantial,
            auth_time: Timestamp::now(),
            roles: roles.iter().filter_map(|r| Role::parse(r)).collect(),
            address: None,
            user_agent: None,
        }
    }

    #[test]
    fn units_for_a_role_are_none_some_or_all() {
        let worker = staff(&[
            "case_worker:ordnungsamt",
            "case_worker:standesamt",
            "supervisor:*",
        ]);
        assert_eq!(
            worker.units_for("case_worker"),
            crate::Units::Some(vec!["ordnungsamt".into(), "standesamt".into()])
        );
        assert_eq!(worker.units_for("supervisor"), crate::Units::All);
        assert_eq!(worker.units_for("system_admin"), crate::Units::None);
        assert!(worker.has_role("case_worker", "standesamt"));
        assert!(!worker.has_role("case_worker", "bauamt"));
        assert!(worker.has_role("supervisor", "bauamt"));
    }
}
