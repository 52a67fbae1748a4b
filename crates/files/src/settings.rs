//! Where files are kept.

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesSettings {
    /// `s3://bucket/prefix` for an S3-compatible store shared by several instances; unset: `{data_dir}/files`.
    pub url: Option<String>,
    pub s3: S3Settings,
    /// The largest upload accepted.
    pub max_upload_bytes: u64,
    /// How long an upload that nothing uses yet is kept.
    pub unattached_hours: i64,
    /// The most bytes all stored files may take together (each content counted once); a new file beyond it is
    /// refused with 507 `storage_full`. Unset: no limit but the disk's.
    pub quota_bytes: Option<u64>,
}

impl Default for FilesSettings {
    fn default() -> Self {
        Self {
            url: None,
            s3: S3Settings::default(),
            max_upload_bytes: 50 * 1024 * 1024,
            unattached_hours: 24,
            quota_bytes: None,
        }
    }
}

/// Credentials and endpoint of the S3 store; unset values come from the usual `AWS_*` environment variables.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// For stores other than AWS (MinIO, Ceph, …), e.g. `https://s3.stadt.example`.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    /// Allow `http://` endpoints (a store on the same host; tests).
    pub allow_http: bool,
}
