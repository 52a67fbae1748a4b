//! The two signature schemes of webhook deliveries.
//!
//! - Standard Webhooks (default): `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature` =
//!   `v1,` + base64 HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the base64 part of the `whsec_` secret.
//! - FIT-Connect style: `callback-timestamp` (Unix seconds) and `callback-authentication` = hex HMAC-SHA512 over
//!   `{timestamp}.{body}`, keyed with the secret as it is shown (the whole `whsec_…` string, as FIT-Connect
//!   receivers use their callback secret).
//!
//! Receivers reject timestamps more than five minutes off.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Sha256, Sha512};

/// How a subscription's deliveries are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    StandardWebhooks,
    FitConnect,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard_webhooks",
            Scheme::FitConnect => "fit_connect",
        }
    }

    pub fn parse(text: &str) -> Option<Scheme> {
        match text {
            "standard_webhooks" => Some(Scheme::StandardWebhooks),
            "fit_connect" => Some(Scheme::FitConnect),
            _ => None,
        }
    }
}

/// A new secret: 32 random bytes, as `whsec_` + base64. Answers (shown secret, raw bytes).
pub fn new_secret() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    (format!("whsec_{}", STANDARD.encode(bytes)), bytes)
}

/// The shown form of a secret's bytes.
pub fn shown(bytes: &[u8; 32]) -> String {
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The signature headers of one delivery.
pub fn headers(
    scheme: Scheme,
    secret: &[u8; 32],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, hmac::digest::InvalidLength> {
    Ok(match scheme {
        Scheme::StandardWebhooks => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)?;
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            let signature = STANDARD.encode(mac.finalize().into_bytes());
            vec![
                ("webhook-id", id.to_owned()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", format!("v1,{signature}")),
            ]
        }
        Scheme::FitConnect => {
            let key = shown(secret);
            let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key.as_bytes())?;
            mac.update(format!("{timestamp}.").as_bytes());
            mac.update(body);
            vec![
                ("callback-timestamp", timestamp.to_string()),
                (
                    "callback-authentication",
                    hex::encode(mac.finalize().into_bytes()),
                ),
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemes_sign_what_their_receivers_check() {
        let secret = [7u8; 32];
        let signed = headers(Scheme::StandardWebhooks, &secret, "msg_1", 1_614_265_330, b"{}").unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).unwrap();
        mac.update(b"msg_1.1614265330.{}");
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(signed[2], ("webhook-signature", expected));

        let signed = headers(Scheme::FitConnect, &secret, "msg_1", 1_614_265_330, b"{}").unwrap();
        let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(shown(&secret).as_bytes()).unwrap();
        mac.update(b"1614265330.{}");
        assert_eq!(signed[1].1, hex::encode(mac.finalize().into_bytes()));
        assert_eq!(Scheme::parse("fit_connect"), Some(Scheme::FitConnect));
    }
}
