//! Seals: what Amtsweg says about a document (its SHA-256, who sealed it, when) signed with a dedicated
//! document-signing key set — not the token keys, whose retired public keys leave the JWKS. Every seal key ever
//! used stays published at `/.well-known/seal-keys.json`, so a seal can be checked years later, by anyone.
//!
//! A seal is a JWS (RFC 7515, compact, EdDSA over Ed25519) whose payload names the document's hash; the document
//! itself travels apart from it. [`Sealer::sign_detached`] signs arbitrary bytes with a detached payload
//! (RFC 7515 appendix F), for events and webhook bodies.
//!
//! This is not an eIDAS qualified seal: the [`Sealer`] trait is the seam where a qualified (PAdES) seal provider
//! replaces the [`LocalSealer`].

pub mod http;

use std::sync::{Arc, RwLock};

use amtsweg_auth::KeyEncryptionKey;
use amtsweg_auth::keys::{KeyError, PublicSealKey, SealKeys, rotate_seal_key, seal_keys};
use amtsweg_db::Database;
use amtsweg_kernel::{SharedClock, Timestamp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, Verifier};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

pub use http::{Seals, configure, configure_root};

/// The media type of a seal (`typ` of its header).
pub const SEAL_TYPE: &str = "amtsweg-seal+jwt";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Db(#[from] amtsweg_db::DbError),
    #[error("this sealer manages its keys elsewhere")]
    Unsupported,
}

/// What a seal states.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealClaims {
    /// Who sealed (the service's issuer).
    pub iss: String,
    /// The document's id.
    pub sub: String,
    /// Hex SHA-256 of the document.
    pub sha256: String,
    /// When it was sealed (Unix seconds).
    pub iat: i64,
}

/// The answer of a check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Verification {
    /// The seal is ours, unchanged, and names exactly this document.
    pub valid: bool,
    /// Why not, when not valid: `malformed`, `unknown_key`, `bad_signature` or `document_changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// The hash of the document checked.
    pub sha256: String,
}

impl Verification {
    fn invalid(reason: &'static str, sha256: &str) -> Verification {
        Verification {
            valid: false,
            reason: Some(reason),
            signer: None,
            sealed_at: None,
            key_id: None,
            document_id: None,
            sha256: sha256.to_owned(),
        }
    }
}

/// Seals documents and signs statements.
pub trait Sealer: Send + Sync {
    /// A seal over the document `document_id` with the hex SHA-256 `sha256`.
    fn seal(&self, document_id: &str, sha256: &str, now: Timestamp) -> Result<String, SealError>;
    /// A JWS with a detached payload (`header..signature`) over `payload`.
    fn sign_detached(&self, payload: &[u8]) -> Result<String, SealError>;
    /// Checks `seal` against a document with the hex SHA-256 `sha256`.
    fn verify(&self, sha256: &str, seal: &str) -> Verification;
    /// Every public key ever used, as a JWK Set.
    fn published(&self) -> Value;
    /// Reads the key set again (another instance may have rotated it).
    fn reload(&self) -> BoxFuture<'_, Result<(), SealError>>;
    /// Starts sealing with a new key (the old one stays published); audited as done by `actor` (a staff id).
    /// Answers the new key's id.
    fn rotate<'a>(&'a self, _actor: &'a str) -> BoxFuture<'a, Result<String, SealError>> {
        Box::pin(async { Err(SealError::Unsupported) })
    }
}

/// The local sealer: Ed25519 keys in the database, wrapped by the key-encryption key.
pub struct LocalSealer {
    db: Database,
    kek: Arc<KeyEncryptionKey>,
    clock: SharedClock,
    signer: String,
    keys: RwLock<Arc<SealKeys>>,
}

fn encode_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn jwk(key: &PublicSealKey) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": key.kid,
        "x": URL_SAFE_NO_PAD.encode(key.public_key),
        "created_at": key.created_at.rfc3339(),
        "retired_at": key.retired_at.map(|t| t.rfc3339()),
    })
}

impl LocalSealer {
    /// Loads the seal keys, creating the first on an empty database.
    pub async fn start(
        db: Database,
        kek: Arc<KeyEncryptionKey>,
        clock: SharedClock,
        signer: impl Into<String>,
    ) -> Result<LocalSealer, SealError> {
        let keys = Self::load(&db, &kek, clock.now()).await?;
        Ok(LocalSealer {
            db,
            kek,
            clock,
            signer: signer.into(),
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    async fn load(db: &Database, kek: &Arc<KeyEncryptionKey>, now: Timestamp) -> Result<SealKeys, SealError> {
        let kek = kek.clone();
        Ok(db.write(move |conn| seal_keys(conn, &kek, now)).await?)
    }

    fn current(&self) -> Arc<SealKeys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Starts sealing with a new key; the old one stays published and keeps verifying.
    pub async fn rotate(&self) -> Result<String, SealError> {
        let (kek, now) = (self.kek.clone(), self.clock.now());
        let kid = self
            .db
            .write(move |conn| rotate_seal_key(conn, &kek, now))
            .await?;
        self.reload().await?;
        Ok(kid)
    }

    fn sign(&self, header: &Value, payload: &str) -> (String, String) {
        let keys = self.current();
        let mut header = header.clone();
        header["kid"] = json!(keys.active_kid);
        let header = encode_json(&header);
        let signature = keys.active.sign(format!("{header}.{payload}").as_bytes());
        (header, URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// Splits a compact JWS, checks its signature with a published key and answers (header, claims).
fn check(keys: &SealKeys, seal: &str) -> Result<(Value, SealClaims), &'static str> {
    let mut parts = seal.trim().split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed");
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "malformed");
    let header_json: Value = serde_json::from_slice(&decode(header)?).map_err(|_| "malformed")?;
    if header_json["alg"] != "EdDSA" {
        return Err("malformed");
    }
    let kid = header_json["kid"].as_str().ok_or("malformed")?;
    let key = keys.all.iter().find(|k| k.kid == kid).ok_or("unknown_key")?;
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&key.public_key).map_err(|_| "unknown_key")?;
    let signature = ed25519_dalek::Signature::from_slice(&decode(signature)?).map_err(|_| "malformed")?;
    verifying
        .verify(format!("{header}.{payload}").as_bytes(), &signature)
        .map_err(|_| "bad_signature")?;
    let claims: SealClaims = serde_json::from_slice(&decode(payload)?).map_err(|_| "malformed")?;
    Ok((header_json, claims))
}

impl Sealer for LocalSealer {
    fn seal(&self, document_id: &str, sha256: &str, now: Timestamp) -> Result<String, SealError> {
        let claims = SealClaims {
            iss: self.signer.clone(),
            sub: document_id.to_owned(),
            sha256: sha256.to_ascii_lowercase(),
            iat: now.unix_seconds(),
        };
        let payload = encode_json(&json!(claims));
        let (header, signature) = self.sign(&json!({"alg": "EdDSA", "typ": SEAL_TYPE}), &payload);
        Ok(format!("{header}.{payload}.{signature}"))
    }

    fn sign_detached(&self, payload: &[u8]) -> Result<String, SealError> {
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let (header, signature) = self.sign(&json!({"alg": "EdDSA"}), &payload);
        Ok(format!("{header}..{signature}"))
    }

    fn verify(&self, sha256: &str, seal: &str) -> Verification {
        let sha256 = sha256.to_ascii_lowercase();
        match check(&self.current(), seal) {
            Err(reason) => Verification::invalid(reason, &sha256),
            Ok((header, claims)) => {
                let matches = claims.sha256 == sha256;
                Verification {
                    valid: matches,
                    reason: (!matches).then_some("document_changed"),
                    signer: Some(claims.iss),
                    sealed_at: Timestamp::from_unix_seconds(claims.iat),
                    key_id: header["kid"].as_str().map(str::to_owned),
                    document_id: Some(claims.sub),
                    sha256,
                }
            }
        }
    }

    fn published(&self) -> Value {
        let keys = self.current();
        json!({"keys": keys.all.iter().map(jwk).collect::<Vec<_>>()})
    }

    fn reload(&self) -> BoxFuture<'_, Result<(), SealError>> {
        Box::pin(async move {
            let keys = Self::load(&self.db, &self.kek, self.clock.now()).await?;
            *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
            Ok(())
        })
    }

    fn rotate<'a>(&'a self, actor: &'a str) -> BoxFuture<'a, Result<String, SealError>> {
        let (kek, now, actor) = (self.kek.clone(), self.clock.now(), actor.to_owned());
        Box::pin(async move {
            let kid = self
                .db
                .write(move |conn| {
                    let kid = rotate_seal_key(conn, &kek, now)?;
                    amtsweg_audit::append(
                        conn,
                        &amtsweg_audit::Event {
                            actor: &amtsweg_audit::Actor::new(amtsweg_audit::ActorKind::Staff, &actor, None),
                            action: "seal_keys.rotated",
                            object: Some(("seal_key", &kid)),
                            outcome: amtsweg_audit::Outcome::Success,
                            at: now,
                        },
                    )?;
                    Ok::<_, KeyError>(kid)
                })
                .await?;
            self.reload().await?;
            Ok(kid)
        })
    }
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
