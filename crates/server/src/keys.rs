//! Where the key-encryption key of the token signing keys comes from: `keys.encryption_key` (base64), else the file
//! `keys.encryption_key_file`, else `{storage.data_dir}/secrets/signing-keys.kek` — generated there only while the
//! database holds no encrypted signing key, so that a lost or forgotten key is never silently replaced.

use std::path::PathBuf;

use amtsweg_audit::{Actor, Event, Outcome};
use amtsweg_auth::KeyEncryptionKey;
use amtsweg_auth::keys::{KeyError, inventory, rewrap};
use amtsweg_db::Database;
use anyhow::{Context, bail};
use secrecy::ExposeSecret;

use crate::settings::Settings;

/// The default key file, beside (not inside) the SQLite database.
pub fn default_key_file(settings: &Settings) -> PathBuf {
    settings.storage.data_dir.join("secrets").join("signing-keys.kek")
}

pub async fn key_encryption_key(settings: &Settings, db: &Database) -> anyhow::Result<KeyEncryptionKey> {
    if let Some(key) = &settings.keys.encryption_key {
        return KeyEncryptionKey::from_base64(key.expose_secret()).context("`keys.encryption_key`");
    }
    if let Some(path) = &settings.keys.encryption_key_file {
        return KeyEncryptionKey::read_file(path).context("`keys.encryption_key_file`");
    }
    let path = default_key_file(settings);
    if path.exists() {
        return Ok(KeyEncryptionKey::read_file(&path)?);
    }
    let stored = db.read(inventory).await?;
    if stored.stored > stored.plaintext {
        bail!(
            "the database holds {} encrypted token signing key(s), but no key-encryption key is configured and {} \
             does not exist: set keys.encryption_key or keys.encryption_key_file, or restore the key file",
            stored.stored - stored.plaintext,
            path.display()
        );
    }
    let kek = KeyEncryptionKey::create_file(&path)?;
    tracing::info!(
        file = %path.display(),
        key = kek.id(),
        "created the key-encryption key of the token signing keys; keep a copy apart from database backups"
    );
    Ok(kek)
}

/// `amtsweg keys rewrap`: every stored signing key is re-encrypted under the key in `new_file` (created if it does
/// not exist), in one transaction. Returns how many keys moved and the new key's id.
pub async fn rewrap_to(
    settings: &Settings,
    db: &Database,
    new_file: PathBuf,
) -> anyhow::Result<(usize, String)> {
    let current = key_encryption_key(settings, db).await?;
    let new = if new_file.exists() {
        KeyEncryptionKey::read_file(&new_file)?
    } else {
        KeyEncryptionKey::create_file(&new_file)?
    };
    let id = new.id().to_owned();
    let object = id.clone();
    let now = amtsweg_kernel::Clock::now(&amtsweg_kernel::SystemClock);
    let moved = db
        .write(move |conn| {
            let moved = rewrap(conn, &current, &new)?;
            amtsweg_audit::append(
                conn,
                &Event {
                    actor: &Actor::system(),
                    action: "keys.rewrapped",
                    object: Some(("key_encryption_key", &object)),
                    outcome: Outcome::Success,
                    at: now,
                },
            )?;
            Ok::<_, KeyError>(moved)
        })
        .await?;
    Ok((moved, id))
}
