//! Token signing keys are stored encrypted under a key-encryption key that lives outside the database: a dump of
//! the table alone cannot sign a token, start-up refuses to run without the right key, and the key file is private.

use std::os::unix::fs::PermissionsExt;

use amtsweg_test_support::{Backend, TestApp, backend_tests};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use diesel::prelude::*;
use diesel::sql_types::Text;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    kid: String,
    #[diesel(sql_type = Text)]
    public_key: String,
    #[diesel(sql_type = Text)]
    private_key: String,
}

fn rows(app: &TestApp) -> Vec<Row> {
    let mut conn = app.connect();
    diesel::sql_query("SELECT kid, public_key, private_key FROM signing_keys")
        .load(&mut conn)
        .expect("signing keys")
}

fn key_file(app: &TestApp) -> std::path::PathBuf {
    app.data_dir.join("secrets/signing-keys.kek")
}

/// Whatever an attacker makes of the stored value as a seed, the service does not accept what it signs.
async fn a_dump_of_the_table_cannot_sign_a_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("dump@example.de").await;
    let row = rows(&app).remove(0);
    assert!(row.private_key.starts_with("xc20p1:"), "{}", row.private_key);

    // The seed itself appears nowhere in the row; it takes the key file to get at it.
    let kek = amtsweg_auth::KeyEncryptionKey::read_file(&key_file(&app)).unwrap();
    let seed = kek.unwrap(&row.kid, &row.private_key).unwrap();
    for encoded in [
        STANDARD.encode(seed),
        URL_SAFE_NO_PAD.encode(seed),
        hex::encode(seed),
    ] {
        assert!(!row.private_key.contains(&encoded));
    }

    // Try the stored value as a seed every way it could be read: no token signed so is accepted.
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(citizen.tokens.access_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let blob = row.private_key.rsplit(':').next().unwrap();
    let candidates: Vec<Vec<u8>> = [
        STANDARD.decode(blob).unwrap(),
        row.private_key.as_bytes().to_vec(),
    ]
    .into_iter()
    .flat_map(|bytes| bytes.windows(32).map(<[u8]>::to_vec).collect::<Vec<_>>())
    .collect();
    assert!(!candidates.is_empty());
    let public = URL_SAFE_NO_PAD.decode(&row.public_key).unwrap();
    for candidate in candidates.iter().take(64) {
        let signing = ed25519_dalek::SigningKey::from_bytes(candidate.as_slice().try_into().unwrap());
        assert_ne!(
            signing.verifying_key().to_bytes().to_vec(),
            public,
            "a window of the row is the seed"
        );
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
        ];
        der.extend_from_slice(candidate);
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(row.kid.clone());
        let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).unwrap();
        let response = app.get_as("/api/v1/me", &forged).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}

async fn the_key_file_is_private(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let file = std::fs::metadata(key_file(&app)).unwrap();
    assert_eq!(file.permissions().mode() & 0o777, 0o600);
    let dir = std::fs::metadata(app.data_dir.join("secrets")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    // A backup of the database does not hold the key.
    if let Some(database) = &app.database.sqlite_path {
        let key = std::fs::read_to_string(key_file(&app)).unwrap();
        let bytes = std::fs::read(database).unwrap();
        assert!(
            !bytes
                .windows(key.trim().len())
                .any(|w| w == key.trim().as_bytes())
        );
    }
}

/// With encrypted keys stored, the service does not start without the key that encrypted them: not without a
/// key file, not with a key file others can read, not with another key.
async fn start_up_needs_the_right_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let file = key_file(&app);
    let saved = std::fs::read(&file).unwrap();

    std::fs::remove_file(&file).unwrap();
    let missing = app
        .restart_builder()
        .spawn()
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        missing.contains("no key-encryption key is configured"),
        "{missing}"
    );
    assert!(
        !file.exists(),
        "no new key is made up while encrypted keys are stored"
    );

    std::fs::write(&file, &saved).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let readable = format!(
        "{:#}",
        app.restart_builder().spawn().await.err().expect("refused")
    );
    assert!(readable.contains("chmod 600"), "{readable}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let other = STANDARD.encode([9u8; 32]);
    let wrong = app
        .restart_builder()
        .configure(move |settings| settings.keys.encryption_key = Some(SecretString::from(other)))
        .spawn()
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{wrong:#}").contains("was wrapped under key-encryption key"),
        "{wrong:#}"
    );

    let again = app
        .restart_builder()
        .spawn()
        .await
        .expect("starts with its key file");
    let jwks: Value = again.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
}

backend_tests!(
    a_dump_of_the_table_cannot_sign_a_token,
    the_key_file_is_private,
    start_up_needs_the_right_key,
);
