//! Access tokens: what they claim, how they are issued, and everything that is checked before one is believed.

use amtsweg_kernel::Timestamp;
use chrono::Duration;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::KeyRing;

/// Which kind of caller a token is for. A token for one audience is worthless on the routes of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Citizen,
    Staff,
    Client,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Citizen => "amtsweg:citizen",
            Audience::Staff => "amtsweg:staff",
            Audience::Client => "amtsweg:client",
        }
    }
}

pub const TOKEN_TYPE: &str = "at+jwt";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    /// `access`; anything else is not an access token.
    pub token_use: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// What a new token says.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub audience: Audience,
    pub subject: String,
    pub session_id: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub auth_time: Option<Timestamp>,
    pub scope: Option<String>,
    pub roles: Vec<String>,
    pub lifetime: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not allowed")]
    Algorithm,
    #[error("the token is not an access token")]
    NotAnAccessToken,
    #[error("the token names an unknown key")]
    UnknownKey,
    #[error("the token's signature or claims are invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another audience")]
    Audience,
    #[error("signing failed: {0}")]
    Signing(String),
}

pub(crate) fn issue(
    keys: &KeyRing,
    issuer: &str,
    spec: &TokenSpec,
    now: Timestamp,
) -> Result<(String, Timestamp), TokenError> {
    let set = keys.current();
    let expires = now + spec.lifetime;
    let claims = Claims {
        iss: issuer.to_owned(),
        sub: spec.subject.clone(),
        aud: spec.audience.as_str().to_owned(),
        exp: expires.unix_seconds(),
        nbf: now.unix_seconds(),
        iat: now.unix_seconds(),
        jti: amtsweg_kernel::id::new_id(),
        token_use: "access".into(),
        sid: spec.session_id.clone(),
        acr: spec.acr.clone(),
        amr: spec.amr.clone(),
        auth_time: spec.auth_time.map(|t| t.unix_seconds()),
        scope: spec.scope.clone(),
        roles: spec.roles.clone(),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(TOKEN_TYPE.into());
    header.kid = Some(set.signing_kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &set.signing)
        .map_err(|err| TokenError::Signing(err.to_string()))?;
    Ok((token, expires))
}

/// Checks algorithm (EdDSA only), type, key id, signature, issuer, audience, expiry and not-before against our
/// clock, and that it is an access token.
pub(crate) async fn verify(
    keys: &KeyRing,
    issuer: &str,
    audience: Audience,
    token: &str,
    now: Timestamp,
) -> Result<Claims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::Algorithm);
    }
    if header.typ.as_deref() != Some(TOKEN_TYPE) {
        return Err(TokenError::NotAnAccessToken);
    }
    let kid = header.kid.ok_or(TokenError::UnknownKey)?;
    let mut set = keys.current();
    if !set.verifying.contains_key(&kid) && keys.reload_if_due(now).await {
        set = keys.current();
    }
    let key = set.verifying_key(&kid, now).ok_or(TokenError::UnknownKey)?;

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.algorithms = vec![Algorithm::EdDSA];
    validation.set_issuer(&[issuer]);
    // Audience, expiry and not-before are checked below with the service's clock (tests move it).
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "nbf"]);
    let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map_err(|_| TokenError::Invalid)?
        .claims;
    if claims.token_use != "access" {
        return Err(TokenError::NotAnAccessToken);
    }
    if claims.aud != audience.as_str() {
        return Err(TokenError::Audience);
    }
    let now = now.unix_seconds();
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}
