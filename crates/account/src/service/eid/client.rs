//! The OpenID Connect protocol with the eID provider: discovery, the authorisation URL with PKCE (S256), state
//! and nonce, the code exchange, and the verification of the ID token against the provider's JWKS (issuer,
//! audience, expiry, nonce, an allow-listed asymmetric algorithm). It knows nothing of accounts.

use std::time::{Duration as StdDuration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use crate::error::AccountError;
use crate::settings::EidSettings;

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Discovery {
    pub(super) issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct IdAddress {
    pub(super) street_address: Option<String>,
    pub(super) postal_code: Option<String>,
    pub(super) locality: Option<String>,
    pub(super) country: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct IdClaims {
    pub(super) sub: String,
    pub(super) nonce: Option<String>,
    pub(super) acr: Option<String>,
    pub(super) email: Option<String>,
    pub(super) email_verified: Option<bool>,
    pub(super) given_name: Option<String>,
    pub(super) family_name: Option<String>,
    pub(super) birthdate: Option<String>,
    pub(super) address: Option<IdAddress>,
    /// The provider's signed ID token these claims were verified from: the assertion kept as evidence.
    #[serde(skip)]
    pub(super) id_token: String,
}

/// The eID provider's client: one per service, caching discovery and keys.
pub struct EidClient {
    pub(super) settings: EidSettings,
    http: reqwest::Client,
    discovery: RwLock<Option<Discovery>>,
    keys: RwLock<Option<(Instant, JwkSet)>>,
}

pub(super) fn provider(err: impl std::fmt::Display) -> AccountError {
    AccountError::Eid(err.to_string())
}

impl EidClient {
    pub fn new(settings: EidSettings) -> Result<EidClient, AccountError> {
        let http = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(provider)?;
        Ok(EidClient {
            settings,
            http,
            discovery: RwLock::new(None),
            keys: RwLock::new(None),
        })
    }

    /// GETs a JSON document from the provider; any failure is the provider's.
    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, AccountError> {
        self.http
            .get(url)
            .send()
            .await
            .map_err(provider)?
            .error_for_status()
            .map_err(provider)?
            .json()
            .await
            .map_err(provider)
    }

    pub(super) async fn discovery(&self) -> Result<Discovery, AccountError> {
        if let Some(found) = self.discovery.read().await.clone() {
            return Ok(found);
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let found: Discovery = self.get_json(&url).await?;
        if found.issuer.trim_end_matches('/') != self.settings.issuer.trim_end_matches('/') {
            return Err(provider(format!("discovery names issuer {}", found.issuer)));
        }
        *self.discovery.write().await = Some(found.clone());
        Ok(found)
    }

    /// The provider's keys, cached for ten minutes and refetched when a token names an unknown key.
    async fn key(&self, kid: Option<&str>, jwks_uri: &str) -> Result<DecodingKey, AccountError> {
        for refresh in [false, true] {
            let cached = self.keys.read().await.clone();
            let set = match cached {
                Some((at, set)) if !refresh && at.elapsed() < StdDuration::from_secs(600) => set,
                _ => {
                    let set: JwkSet = self.get_json(jwks_uri).await?;
                    *self.keys.write().await = Some((Instant::now(), set.clone()));
                    set
                }
            };
            let jwk = match kid {
                Some(kid) => set.find(kid),
                None => set.keys.first(),
            };
            if let Some(jwk) = jwk {
                return DecodingKey::from_jwk(jwk).map_err(provider);
            }
        }
        Err(provider("the ID token names a key the provider does not publish"))
    }
}

/// Only asymmetric signatures: a provider's shared secret must never be able to sign an identity.
const ALLOWED: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl EidClient {
    /// Where to send the browser: the code flow with PKCE, our state and nonce, and the trust level asked for.
    pub(super) fn authorization_url(
        &self,
        discovery: &Discovery,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, AccountError> {
        let mut url = reqwest::Url::parse(&discovery.authorization_endpoint).map_err(provider)?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("scope", &self.settings.scopes)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce_challenge(verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(acr) = &self.settings.request_acr {
            url.query_pairs_mut().append_pair("acr_values", acr);
        }
        Ok(url.to_string())
    }

    /// Exchanges the code for tokens and answers the claims of the verified ID token.
    pub(super) async fn verified_claims(
        &self,
        code: &str,
        redirect: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<IdClaims, AccountError> {
        let discovery = self.discovery().await?;
        let response = self
            .http
            .post(&discovery.token_endpoint)
            .basic_auth(
                &self.settings.client_id,
                Some(self.settings.client_secret.expose_secret()),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(provider)?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(provider(format!(
                "token endpoint answered {status}: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
        let tokens: TokenResponse = response.json().await.map_err(provider)?;
        let header = jsonwebtoken::decode_header(&tokens.id_token).map_err(provider)?;
        if !ALLOWED.contains(&header.alg) {
            return Err(provider(format!(
                "ID token algorithm {:?} is not allowed",
                header.alg
            )));
        }
        let key = self.key(header.kid.as_deref(), &discovery.jwks_uri).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[discovery.issuer.as_str()]);
        validation.set_audience(&[self.settings.client_id.as_str()]);
        validation.set_required_spec_claims(&["iss", "aud", "exp", "sub"]);
        let claims = jsonwebtoken::decode::<IdClaims>(&tokens.id_token, &key, &validation)
            .map_err(provider)?
            .claims;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(provider("the ID token's nonce does not match"));
        }
        Ok(IdClaims {
            id_token: tokens.id_token,
            ..claims
        })
    }
}
