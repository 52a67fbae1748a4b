//! Signing keys, stored in the database so that every instance signs and verifies with the same set.

use amtsweg_kernel::Timestamp;
use std::collections::HashMap;

use amtsweg_db::{Database, DbConnection, DbError};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Duration;
use diesel::prelude::*;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;
use serde_json::{Value, json};

use crate::kek::{KekError, KeyEncryptionKey, is_wrapped};

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        public_key -> Text,
        private_key -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        purpose -> Text,
    }
}

/// The keys that sign tokens (published in the JWKS while they verify).
const TOKENS: &str = "token";
/// The keys that seal documents and events (published for good, retired ones included).
const SEALS: &str = "seal";

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410); the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("stored signing key {0} is unusable")]
    Corrupt(String),
    #[error(transparent)]
    Kek(#[from] KekError),
}

impl From<diesel::result::Error> for KeyError {
    fn from(err: diesel::result::Error) -> Self {
        KeyError::Db(DbError::from(err))
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
struct KeyRow {
    kid: String,
    public_key: String,
    private_key: String,
    created_at: Timestamp,
    retired_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
}

/// The keys in use: one signs, all listed verify.
pub struct KeySet {
    pub(crate) signing_kid: String,
    pub(crate) signing: EncodingKey,
    pub(crate) verifying: HashMap<String, DecodingKey>,
    /// Until when each key may verify (`None`: while it is active).
    pub(crate) expires: HashMap<String, Option<Timestamp>>,
    pub(crate) published: Vec<(String, Value)>,
}

impl KeySet {
    /// A retired key verifies only until its grace period ends.
    pub(crate) fn verifying_key(&self, kid: &str, now: Timestamp) -> Option<&DecodingKey> {
        match self.expires.get(kid) {
            Some(Some(until)) if *until <= now => None,
            _ => self.verifying.get(kid),
        }
    }
}

/// The set of signing keys, reloaded from the database when a token names a key this instance does not know.
pub struct KeyRing {
    db: Database,
    kek: std::sync::Arc<KeyEncryptionKey>,
    pub(crate) set: std::sync::RwLock<std::sync::Arc<KeySet>>,
    last_reload: std::sync::Mutex<Option<std::time::Instant>>,
}

fn insert_new(
    conn: &mut DbConnection,
    kek: &KeyEncryptionKey,
    purpose: &str,
    now: Timestamp,
) -> Result<String, KeyError> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let prefix = if purpose == SEALS { "s" } else { "k" };
    let kid = format!(
        "{prefix}{}-{}",
        now.format("%Y%m%d%H%M%S"),
        hex::encode(&public[..4])
    );
    let wrapped = kek.wrap(&kid, &seed)?;
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(&kid),
            signing_keys::algorithm.eq("EdDSA"),
            signing_keys::public_key.eq(URL_SAFE_NO_PAD.encode(public)),
            signing_keys::private_key.eq(&wrapped),
            signing_keys::created_at.eq(now),
            signing_keys::purpose.eq(purpose),
        ))
        .execute(conn)?;
    Ok(kid)
}

/// The seed of a stored key: unwrapped, or (from an older version) the plaintext; either way checked against the
/// stored public key.
fn seed_of(kek: &KeyEncryptionKey, kid: &str, stored: &str, public: &str) -> Result<[u8; 32], KeyError> {
    let seed: [u8; 32] = if is_wrapped(stored) {
        kek.unwrap(kid, stored)?
    } else {
        STANDARD
            .decode(stored)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| KeyError::Corrupt(kid.to_owned()))?
    };
    let derived = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    if URL_SAFE_NO_PAD.encode(derived) != public {
        return Err(KeyError::Corrupt(kid.to_owned()));
    }
    Ok(seed)
}

/// How many signing keys are stored, and how many of them still in plaintext (written by an older version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInventory {
    pub stored: usize,
    pub plaintext: usize,
}

pub fn inventory(conn: &mut DbConnection) -> Result<KeyInventory, KeyError> {
    let values: Vec<String> = signing_keys::table.select(signing_keys::private_key).load(conn)?;
    Ok(KeyInventory {
        stored: values.len(),
        plaintext: values.iter().filter(|v| !is_wrapped(v)).count(),
    })
}

/// Wraps every stored key under `to`, unwrapping with `from` (plaintext keys of an older version need none).
/// Runs in the caller's transaction: all keys move, or none.
pub fn rewrap(
    conn: &mut DbConnection,
    from: &KeyEncryptionKey,
    to: &KeyEncryptionKey,
) -> Result<usize, KeyError> {
    let rows: Vec<(String, String, String)> = signing_keys::table
        .select((
            signing_keys::kid,
            signing_keys::private_key,
            signing_keys::public_key,
        ))
        .load(conn)?;
    for (kid, stored, public) in &rows {
        let seed = seed_of(from, kid, stored, public)?;
        diesel::update(signing_keys::table.find(kid))
            .set(signing_keys::private_key.eq(to.wrap(kid, &seed)?))
            .execute(conn)?;
    }
    Ok(rows.len())
}

fn load_set(conn: &mut DbConnection, kek: &KeyEncryptionKey, now: Timestamp) -> Result<KeySet, KeyError> {
    let rows: Vec<KeyRow> = signing_keys::table
        .filter(signing_keys::purpose.eq(TOKENS))
        .filter(
            signing_keys::expires_at
                .is_null()
                .or(signing_keys::expires_at.gt(now)),
        )
        .order(signing_keys::created_at.desc())
        .select(KeyRow::as_select())
        .load(conn)?;
    let active = rows
        .iter()
        .find(|row| row.retired_at.is_none())
        .ok_or_else(|| KeyError::Corrupt("none active".into()))?;
    let seed = seed_of(kek, &active.kid, &active.private_key, &active.public_key)?;
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    let mut verifying = HashMap::new();
    let mut expires = HashMap::new();
    let mut published = Vec::new();
    for row in &rows {
        let key = DecodingKey::from_ed_components(&row.public_key)
            .map_err(|_| KeyError::Corrupt(row.kid.clone()))?;
        verifying.insert(row.kid.clone(), key);
        expires.insert(row.kid.clone(), row.expires_at);
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": row.kid, "x": row.public_key});
        published.push((row.kid.clone(), jwk));
    }
    Ok(KeySet {
        signing_kid: active.kid.clone(),
        signing: EncodingKey::from_ed_der(&der),
        verifying,
        expires,
        published,
    })
}

impl KeyRing {
    /// Loads the keys, creating the first one on an empty database. Keys an older version stored in plaintext are
    /// wrapped under `kek` on the way.
    pub async fn start(db: Database, kek: KeyEncryptionKey, now: Timestamp) -> Result<KeyRing, KeyError> {
        let kek = std::sync::Arc::new(kek);
        let key = kek.clone();
        let set = db
            .write(move |conn| {
                if inventory(conn)?.plaintext > 0 {
                    let count = rewrap(conn, &key, &key)?;
                    tracing::warn!(
                        count,
                        "wrapped signing keys stored in plaintext by an older version; rotate them \
                         (amtsweg keys rotate), since earlier backups hold them in the clear"
                    );
                }
                let active: i64 = signing_keys::table
                    .filter(signing_keys::purpose.eq(TOKENS))
                    .filter(signing_keys::retired_at.is_null())
                    .count()
                    .get_result(conn)?;
                if active == 0 {
                    let kid = insert_new(conn, &key, TOKENS, now)?;
                    tracing::info!(kid = %kid, "created the first token signing key");
                }
                load_set(conn, &key, now)
            })
            .await?;
        Ok(KeyRing {
            db,
            kek,
            set: std::sync::RwLock::new(std::sync::Arc::new(set)),
            last_reload: std::sync::Mutex::new(None),
        })
    }

    /// The key-encryption key, for the other key sets kept in the same table (the seal keys).
    pub fn kek(&self) -> std::sync::Arc<KeyEncryptionKey> {
        self.kek.clone()
    }

    pub(crate) fn current(&self) -> std::sync::Arc<KeySet> {
        self.set.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads from the database, at most every 10 seconds (an unknown key id must not become a database flood).
    pub(crate) async fn reload_if_due(&self, now: Timestamp) -> bool {
        {
            let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(10)) {
                return false;
            }
            *last = Some(std::time::Instant::now());
        }
        let kek = self.kek.clone();
        match self.db.read(move |conn| load_set(conn, &kek, now)).await {
            Ok(set) => {
                *self.set.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(set);
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "reloading signing keys failed");
                false
            }
        }
    }

    /// Starts signing with a new key. The old one keeps verifying for `grace` (at least the token lifetime), then
    /// leaves the published set.
    pub async fn rotate(&self, now: Timestamp, grace: Duration) -> Result<String, KeyError> {
        let kek = self.kek.clone();
        let (kid, set) = self
            .db
            .write(move |conn| {
                diesel::update(
                    signing_keys::table
                        .filter(signing_keys::purpose.eq(TOKENS))
                        .filter(signing_keys::retired_at.is_null()),
                )
                .set((
                    signing_keys::retired_at.eq(now),
                    signing_keys::expires_at.eq(now + grace),
                ))
                .execute(conn)?;
                let kid = insert_new(conn, &kek, TOKENS, now)?;
                Ok::<_, KeyError>((kid, load_set(conn, &kek, now)?))
            })
            .await?;
        *self.set.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(set);
        Ok(kid)
    }

    /// The keys that may still verify tokens at `now`.
    pub fn jwks(&self, now: Timestamp) -> Value {
        let set = self.current();
        let keys: Vec<&Value> = set
            .published
            .iter()
            .filter(|(kid, _)| set.verifying_key(kid, now).is_some())
            .map(|(_, jwk)| jwk)
            .collect();
        json!({"keys": keys})
    }
}

/// One key of the seal key set, as published.
#[derive(Debug, Clone)]
pub struct PublicSealKey {
    pub kid: String,
    /// The raw Ed25519 public key.
    pub public_key: [u8; 32],
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

/// The document-signing (seal) key set: the active key with its private half, and every key ever used.
pub struct SealKeys {
    pub active_kid: String,
    pub active: ed25519_dalek::SigningKey,
    pub all: Vec<PublicSealKey>,
}

/// Loads the seal key set, creating the first key on an empty database. Runs in the caller's transaction.
pub fn seal_keys(
    conn: &mut DbConnection,
    kek: &KeyEncryptionKey,
    now: Timestamp,
) -> Result<SealKeys, KeyError> {
    let load = |conn: &mut DbConnection| -> Result<Vec<KeyRow>, KeyError> {
        Ok(signing_keys::table
            .filter(signing_keys::purpose.eq(SEALS))
            .order(signing_keys::created_at.desc())
            .select(KeyRow::as_select())
            .load(conn)?)
    };
    let mut rows = load(conn)?;
    if !rows.iter().any(|row| row.retired_at.is_none()) {
        let kid = insert_new(conn, kek, SEALS, now)?;
        tracing::info!(kid = %kid, "created the first document seal key");
        rows = load(conn)?;
    }
    let active = rows
        .iter()
        .find(|row| row.retired_at.is_none())
        .ok_or_else(|| KeyError::Corrupt("no active seal key".into()))?;
    let seed = seed_of(kek, &active.kid, &active.private_key, &active.public_key)?;
    let all = rows
        .iter()
        .map(|row| {
            let public_key = URL_SAFE_NO_PAD
                .decode(&row.public_key)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| KeyError::Corrupt(row.kid.clone()))?;
            Ok(PublicSealKey {
                kid: row.kid.clone(),
                public_key,
                created_at: row.created_at,
                retired_at: row.retired_at,
            })
        })
        .collect::<Result<Vec<_>, KeyError>>()?;
    Ok(SealKeys {
        active_kid: active.kid.clone(),
        active: ed25519_dalek::SigningKey::from_bytes(&seed),
        all,
    })
}

/// Retires the active seal key (it stays published and keeps verifying) and starts sealing with a new one.
pub fn rotate_seal_key(
    conn: &mut DbConnection,
    kek: &KeyEncryptionKey,
    now: Timestamp,
) -> Result<String, KeyError> {
    diesel::update(
        signing_keys::table
            .filter(signing_keys::purpose.eq(SEALS))
            .filter(signing_keys::retired_at.is_null()),
    )
    .set(signing_keys::retired_at.eq(now))
    .execute(conn)?;
    insert_new(conn, kek, SEALS, now)
}
