//! The key-encryption key: the token signing keys are stored encrypted with it (XChaCha20-Poly1305, the key id
//! bound in as associated data), so that a dump or a backup of the database alone cannot mint tokens. The key
//! itself comes from the configuration or from a file outside the database, readable by its owner only.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};

/// The prefix of a wrapped key in the `private_key` column; anything else is a plaintext seed of an older version.
const PREFIX: &str = "xc20p1";

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("the key-encryption key must be 32 bytes, base64-encoded")]
    Malformed,
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error(
        "signing key {kid} was wrapped under key-encryption key {stored}, but the configured one is {configured}"
    )]
    WrongKey {
        kid: String,
        stored: String,
        configured: String,
    },
    #[error(
        "signing key {0} cannot be unwrapped: the stored value is damaged or the key-encryption key is wrong"
    )]
    Damaged(String),
}

/// A 256-bit key-encryption key.
pub struct KeyEncryptionKey {
    key: SecretBox<[u8; 32]>,
    id: String,
}

impl KeyEncryptionKey {
    fn from_bytes(bytes: [u8; 32]) -> KeyEncryptionKey {
        let digest = Sha256::new()
            .chain_update(b"amtsweg key-encryption key id\0")
            .chain_update(bytes)
            .finalize();
        KeyEncryptionKey {
            id: hex::encode(&digest[..4]),
            key: SecretBox::new(Box::new(bytes)),
        }
    }

    /// A fresh random key.
    pub fn generate() -> KeyEncryptionKey {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&key);
        KeyEncryptionKey::from_bytes(bytes)
    }

    /// A key given as base64 text (configuration, a key file).
    pub fn from_base64(text: &str) -> Result<KeyEncryptionKey, KekError> {
        let decoded = STANDARD.decode(text.trim()).map_err(|_| KekError::Malformed)?;
        let bytes: [u8; 32] = decoded.try_into().map_err(|_| KekError::Malformed)?;
        Ok(KeyEncryptionKey::from_bytes(bytes))
    }

    /// Reads a key file, refusing one that anybody but its owner can read or write.
    pub fn read_file(path: &Path) -> Result<KeyEncryptionKey, KekError> {
        let failed = |reason: String| KekError::File {
            path: path.display().to_string(),
            reason,
        };
        let metadata = std::fs::metadata(path).map_err(|err| failed(err.to_string()))?;
        let mode = permissions(&metadata);
        if mode & 0o077 != 0 {
            return Err(failed(format!(
                "others can access it (mode {mode:o}); allow only its owner: chmod 600"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|err| failed(err.to_string()))?;
        KeyEncryptionKey::from_base64(&text).map_err(|err| failed(err.to_string()))
    }

    /// Writes a new random key to `path` (which must not exist), readable by its owner only.
    pub fn create_file(path: &Path) -> Result<KeyEncryptionKey, KekError> {
        let failed = |reason: String| KekError::File {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(|err| failed(err.to_string()))?;
        }
        let kek = KeyEncryptionKey::generate();
        let mut file = create_private_file(path).map_err(|err| failed(err.to_string()))?;
        writeln!(file, "{}", STANDARD.encode(kek.key.expose_secret()))
            .and_then(|()| file.sync_all())
            .map_err(|err| failed(err.to_string()))?;
        Ok(kek)
    }

    /// A short fingerprint that names the key in messages without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.expose_secret().into())
    }

    /// Encrypts a signing key's seed for storage; the key id is bound in, so rows cannot be swapped.
    pub fn wrap(&self, kid: &str, seed: &[u8; 32]) -> Result<String, KekError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: seed,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| KekError::Damaged(kid.to_owned()))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}:{}:{}", self.id, STANDARD.encode(blob)))
    }

    /// Decrypts a stored seed.
    pub fn unwrap(&self, kid: &str, stored: &str) -> Result<[u8; 32], KekError> {
        let damaged = || KekError::Damaged(kid.to_owned());
        let mut parts = stored.splitn(3, ':');
        let (Some(PREFIX), Some(key_id), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(damaged());
        };
        if key_id != self.id {
            return Err(KekError::WrongKey {
                kid: kid.to_owned(),
                stored: key_id.to_owned(),
                configured: self.id.clone(),
            });
        }
        let blob = STANDARD.decode(blob).map_err(|_| damaged())?;
        if blob.len() < 24 {
            return Err(damaged());
        }
        let (nonce, sealed) = blob.split_at(24);
        let seed = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| damaged())?;
        seed.try_into().map_err(|_| damaged())
    }
}

/// Whether a stored `private_key` value is wrapped (rather than a plaintext seed of an older version).
pub fn is_wrapped(stored: &str) -> bool {
    stored.starts_with(&format!("{PREFIX}:"))
}

#[cfg(unix)]
fn permissions(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn permissions(_: &std::fs::Metadata) -> u32 {
    0o600
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_unwraps_bound_to_the_key_id() {
        let kek = KeyEncryptionKey::generate();
        let seed = [7u8; 32];
        let stored = kek.wrap("k1", &seed).unwrap();
        assert!(is_wrapped(&stored));
        assert!(!stored.contains(&STANDARD.encode(seed)));
        assert_eq!(kek.unwrap("k1", &stored).unwrap(), seed);
        assert!(
            matches!(kek.unwrap("k2", &stored), Err(KekError::Damaged(_))),
            "rows cannot be swapped"
        );
        let other = KeyEncryptionKey::generate();
        assert!(matches!(
            other.unwrap("k1", &stored),
            Err(KekError::WrongKey { .. })
        ));
    }

    #[test]
    fn key_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/kek");
        let created = KeyEncryptionKey::create_file(&path).unwrap();
        assert_eq!(KeyEncryptionKey::read_file(&path).unwrap().id(), created.id());
        assert!(KeyEncryptionKey::create_file(&path).is_err(), "never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let refused = KeyEncryptionKey::read_file(&path).err().unwrap().to_string();
            assert!(refused.contains("chmod 600"), "{refused}");
        }
    }
}
