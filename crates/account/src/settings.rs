//! Settings of the account service (`[account]` in the configuration).

use std::collections::BTreeMap;

use amtsweg_kernel::TrustLevel;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// `iss` of every token.
    pub issuer: String,
    /// Base URL of the citizen portal; links in mails point there (`/verify-email?token=…`, `/reset-password?…`).
    pub portal_url: String,
    /// Lifetime of access tokens, at most 15.
    pub access_token_minutes: i64,
    pub refresh_token_days: i64,
    /// Lifetime of client-credential tokens, at most 15.
    pub client_token_minutes: i64,
    /// Which trust level each way of logging in reaches.
    pub acr: AcrMapping,
    /// Sensitive actions (disable 2FA, export, delete) need an authentication at most this old.
    pub recent_auth_minutes: i64,
    pub verification_hours: i64,
    pub reset_minutes: i64,
    /// Staff must use TOTP.
    pub staff_require_totp: bool,
    /// Citizen accounts without a login for this long are flagged for deletion.
    pub inactivity_days: i64,
    /// How long a login waits for a free hashing slot before it is answered 503.
    pub hash_queue_timeout_ms: u64,
    /// Authentication requests per minute and client address before 429.
    pub auth_requests_per_minute: u32,
    /// How long a replaced client secret stays valid.
    pub client_secret_overlap_hours: i64,
    pub bootstrap: BootstrapSettings,
    /// An external OpenID Connect provider for eID (BundID) logins.
    pub eid: Option<EidSettings>,
}

impl AccountSettings {
    /// How long a retired signing key keeps verifying: the longest token lifetime and a margin.
    pub fn retired_key_grace(&self) -> chrono::Duration {
        let lifetime = self
            .access_token_minutes
            .max(self.client_token_minutes)
            .clamp(1, 15);
        chrono::Duration::minutes(lifetime + 5)
    }
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            issuer: "urn:amtsweg".into(),
            portal_url: "http://127.0.0.1:8080".into(),
            access_token_minutes: 10,
            refresh_token_days: 30,
            client_token_minutes: 10,
            acr: AcrMapping::default(),
            recent_auth_minutes: 10,
            verification_hours: 24,
            reset_minutes: 30,
            staff_require_totp: true,
            inactivity_days: 730,
            hash_queue_timeout_ms: 2_000,
            auth_requests_per_minute: 60,
            client_secret_overlap_hours: 24,
            bootstrap: BootstrapSettings::default(),
            eid: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcrMapping {
    pub password: TrustLevel,
    pub password_totp: TrustLevel,
    pub eid: TrustLevel,
}

impl Default for AcrMapping {
    fn default() -> Self {
        Self {
            password: TrustLevel::Basic,
            password_totp: TrustLevel::Substantial,
            eid: TrustLevel::High,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapSettings {
    /// E-mail of the first system administrator, created on first start with an empty database.
    pub admin_email: String,
    /// Its password; when unset a one-time password is generated and logged once.
    pub admin_password: Option<SecretString>,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        Self {
            admin_email: "admin@amtsweg.invalid".into(),
            admin_password: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EidSettings {
    /// Issuer URL of the provider; its discovery document is read from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Where the provider sends the browser back (the portal, which hands `code` and `state` to the callback).
    pub redirect_uri: String,
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// The level asked for (`acr_values`); the answer's `acr` decides what is reached.
    #[serde(default = "default_request_acr")]
    pub request_acr: Option<String>,
    /// The provider's `acr` values and the trust level each means; unknown values count as `basic`.
    #[serde(default = "default_acr_values")]
    pub acr_values: BTreeMap<String, TrustLevel>,
}

fn default_scopes() -> String {
    "openid profile email address".into()
}

fn default_request_acr() -> Option<String> {
    Some("http://eidas.europa.eu/LoA/high".into())
}

fn default_acr_values() -> BTreeMap<String, TrustLevel> {
    BTreeMap::from([
        ("http://eidas.europa.eu/LoA/high".into(), TrustLevel::High),
        (
            "http://eidas.europa.eu/LoA/substantial".into(),
            TrustLevel::Substantial,
        ),
        ("http://eidas.europa.eu/LoA/low".into(), TrustLevel::Basic),
        ("STORK-QAA-Level-4".into(), TrustLevel::High),
        ("STORK-QAA-Level-3".into(), TrustLevel::Substantial),
    ])
}
