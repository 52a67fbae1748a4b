//! Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30 s, one step of skew). A code is accepted only for
//! a time step after the last accepted one, so a code cannot be replayed.

use base64::Engine;
use rand::RngCore;
use totp_rs::{Builder, Secret, Totp};

pub const ISSUER: &str = "Amtsweg";

pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::from(bytes.to_vec()).to_base32()
}

fn totp(secret_base32: &str, account: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .ok()
}

/// The step a code matches, if it is valid now (± one step) and newer than `last_step`.
pub fn accept(secret_base32: &str, code: &str, unix_time: u64, last_step: Option<i64>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = i64::try_from(totp(secret_base32, "")?.check(&code, unix_time)?).ok()?;
    match last_step {
        Some(last) if step <= last => None,
        _ => Some(step),
    }
}

/// `otpauth://` URI for authenticator apps.
pub fn otpauth_uri(secret_base32: &str, account: &str) -> Option<String> {
    totp(secret_base32, account)?.to_url().ok()
}

/// The URI as a QR code, SVG.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build(),
    )
}

/// The SVG as a data URL, for an `<img src>`.
pub fn svg_data_url(svg: &str) -> String {
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

/// The current code (used by tests and by nobody else).
pub fn code_at(secret_base32: &str, unix_time: u64) -> Option<String> {
    Some(totp(secret_base32, "")?.generate(unix_time).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_accepted_once_per_step() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&secret, now).unwrap();
        let step = accept(&secret, &code, now, None).unwrap();
        assert_eq!(accept(&secret, &code, now, Some(step)), None, "replay refused");
        assert_eq!(
            accept(&secret, &code, now + 30, None),
            Some(step),
            "one step of skew"
        );
        assert_eq!(accept(&secret, &code, now + 120, None), None, "too old");
        assert_eq!(accept(&secret, "12345", now, None), None);
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let uri = otpauth_uri(&new_secret(), "erika@example.de").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Amtsweg:erika%40example.de?"),
            "{uri}"
        );
        assert!(qr_svg(&uri).unwrap().contains("<svg"));
    }
}
