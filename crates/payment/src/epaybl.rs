//! ePayBL's REST interface "fachverfahren v1_0" (Saxony's BaK ZV), over mutual TLS when a client certificate is
//! configured.
//!
//! - Create: `POST {base}/epayment/fachverfahren/v1_0/mandanten/{mandant}/bewirtschafter/{bewirtschafter}/buchungslisten`
//!   with the Buchungsliste; `ergebnis.rc` starting with `+` is success, the Paypage is
//!   `zahlvorgangsInfo.rechnungUrls.PAYPAGE`, the Kassenzeichen `kassenzeichennummer`.
//! - Status: `GET …/kassenzeichen/{kassenzeichen}` → `kassenzeichen.zusatzdaten.{paypagestatus, saldo}`:
//!   `AKTIV` is open; `INAKTIV` is complete — paid is the amount less the balance (`saldo`), nothing paid means
//!   the payer left the Paypage. `ABGEBROCHEN` and `FEHLER` are read as abort and failure where a platform reports
//!   them. `rc` `-0100` (or HTTP 404) means the Kassenzeichen is unknown.
//! - Notifications: form fields `mandant, bewirtschafter, zvgid, kassenzeichen, tan, zvp, zahlverfahren,
//!   aktivierung, status, hash` with `hash = sha256(the nine fields in that order + shared secret)` in hex,
//!   compared in constant time; `status == "notify"` is ignored.
//! - Amounts are decimals with two places, written as strings (`"30.70"`).
//!
//! The interface has no call that ends a Paypage session: the session ends by itself and the Kassenzeichen stays
//! payable by transfer.

use std::path::PathBuf;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::Observed;
use crate::provider::{
    Cancelled, Created, Notice, NoticeError, Order, Provider, ProviderError, Reference, cents_of, decimal,
};

/// The connection to an ePayBL installation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpayblSettings {
    /// e.g. `https://epay.sachsen.de`; the interface paths are appended.
    pub base_url: String,
    pub mandant: String,
    /// The Bewirtschafter number (8 characters).
    pub bewirtschafter: String,
    /// The secret shared for notification hashes.
    pub secret: SecretString,
    /// Dunning code (5 characters).
    #[serde(default = "default_mahnverfahren")]
    pub kennzeichen_mahnverfahren: String,
    /// Payment methods offered on the Paypage; empty offers the installation's default.
    #[serde(default)]
    pub zahlverfahrencodes: Vec<String>,
    /// The longest Kassenzeichen the installation assigns.
    #[serde(default = "default_kassenzeichen_len")]
    pub kassenzeichen_len: usize,
    /// Client certificate and key (PEM) for mutual TLS.
    #[serde(default)]
    pub client_certificate: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// A CA (PEM) to trust for the platform's server certificate besides the system's.
    #[serde(default)]
    pub ca_certificate: Option<PathBuf>,
}

fn default_mahnverfahren() -> String {
    "11000".into()
}

fn default_kassenzeichen_len() -> usize {
    12
}

pub struct Epaybl {
    settings: EpayblSettings,
    http: reqwest::Client,
}

impl Epaybl {
    pub fn new(settings: EpayblSettings) -> Result<Epaybl, String> {
        let http = crate::provider::client(
            settings.client_certificate.as_deref(),
            settings.client_key.as_deref(),
            settings.ca_certificate.as_deref(),
        )?;
        Ok(Epaybl { settings, http })
    }

    fn base(&self) -> String {
        format!(
            "{}/epayment/fachverfahren/v1_0/mandanten/{}/bewirtschafter/{}",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.mandant,
            self.settings.bewirtschafter
        )
    }

    /// The Buchungsliste of an order.
    pub fn buchungsliste(&self, order: &Order<'_>) -> Value {
        let due = chrono::NaiveDate::parse_from_str(order.due_on, "%Y-%m-%d")
            .map(|day| day.format("%d.%m.%Y 23:59:59").to_string())
            .unwrap_or_default();
        json!({
            "kassenzeichennummer": order.kassenzeichen,
            "faelligkeitsdatum": due,
            "waehrungskennzeichen": "EUR",
            "kennzeichenMahnverfahren": self.settings.kennzeichen_mahnverfahren,
            "transaktionsnummer": order.transaction_number,
            "zahlverfahrencodes": self.settings.zahlverfahrencodes,
            "buchungen": order.bookings.iter().map(|line| json!({
                "bruttobetrag": decimal(line.amount_cents),
                "nettobetrag": decimal(line.amount_cents),
                "steuerbetrag": decimal(0),
                "buchungstext": line.booking.buchungstext,
                "kontierung": {
                    "haushaltstelle": line.booking.haushaltsstelle,
                    "objektnummer": line.booking.objektnummer,
                },
            })).collect::<Vec<_>>(),
            "beschreibung": order.description,
            "verwendungszweck": order.purpose,
            // No personal data leaves for the platform: the payer types what the Paypage asks for.
            "kunde": {
                "name": "Amtsweg",
                "vorname": null,
                "typ": "TEMPORAER",
                "kundennummer": order.transaction_number,
                "firmenkunde": false,
            },
            "fachverfahrendaten": {
                "notifyUrl": order.urls.notify,
                "successUrl": order.urls.success,
                "errorUrl": order.urls.error,
                "cancelUrl": order.urls.cancel,
            },
            "zahltyp": "PAYPAGE",
            "betrag": decimal(order.amount_cents),
        })
    }
}

/// `ergebnis.rc` and `ergebnis.ergebnistext`; success is a leading `+`.
fn ergebnis(body: &Value) -> (String, String, bool) {
    let rc = body["ergebnis"]["rc"].as_str().unwrap_or_default().to_owned();
    let text = body["ergebnis"]["ergebnistext"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let ok = rc.starts_with('+');
    (rc, text, ok)
}

pub const UNKNOWN_KASSENZEICHEN: &str = "-0100";

impl Provider for Epaybl {
    fn name(&self) -> &'static str {
        "epaybl"
    }

    fn kassenzeichen_len(&self) -> usize {
        self.settings.kassenzeichen_len
    }

    fn create<'a>(&'a self, order: &'a Order<'a>) -> BoxFuture<'a, Result<Created, ProviderError>> {
        async move {
            let url = format!("{}/buchungslisten", self.base());
            let (_, body) =
                crate::provider::send(self.http.post(url).json(&self.buchungsliste(order))).await?;
            let (rc, text, ok) = ergebnis(&body);
            if !ok {
                return Err(ProviderError::Refused {
                    code: rc,
                    message: text,
                });
            }
            let kassenzeichen = body["kassenzeichennummer"]
                .as_str()
                .or(order.kassenzeichen)
                .ok_or_else(|| ProviderError::Protocol("no kassenzeichennummer".into()))?
                .to_owned();
            let paypage_url = body["zahlvorgangsInfo"]["rechnungUrls"]["PAYPAGE"]
                .as_str()
                .ok_or_else(|| ProviderError::Protocol("no zahlvorgangsInfo.rechnungUrls.PAYPAGE".into()))?
                .to_owned();
            Ok(Created {
                kassenzeichen,
                provider_ref: None,
                paypage_url,
            })
        }
        .boxed()
    }

    fn status<'a>(&'a self, payment: Reference<'a>) -> BoxFuture<'a, Result<Observed, ProviderError>> {
        async move {
            let Some(kassenzeichen) = payment.kassenzeichen else {
                return Ok(Observed::Unknown);
            };
            let url = format!("{}/kassenzeichen/{kassenzeichen}", self.base());
            let (status, body) = crate::provider::send(self.http.get(url)).await?;
            let (rc, text, ok) = ergebnis(&body);
            if status == 404 || rc == UNKNOWN_KASSENZEICHEN {
                return Ok(Observed::Unknown);
            }
            if !ok {
                return Err(ProviderError::Refused {
                    code: rc,
                    message: text,
                });
            }
            let extra = &body["kassenzeichen"]["zusatzdaten"];
            let page = extra["paypagestatus"].as_str().unwrap_or_default();
            Ok(match page {
                "AKTIV" => Observed::Open,
                "ABGEBROCHEN" => Observed::Cancelled,
                "FEHLER" => Observed::Failed,
                "INAKTIV" => {
                    let saldo = extra["saldo"]
                        .as_str()
                        .and_then(cents_of)
                        .ok_or_else(|| ProviderError::Protocol("INAKTIV without a readable saldo".into()))?;
                    let paid = payment.amount_cents - saldo;
                    if paid == 0 {
                        Observed::Cancelled
                    } else {
                        Observed::Paid { amount_cents: paid }
                    }
                }
                other => return Err(ProviderError::Protocol(format!("paypagestatus {other:?}"))),
            })
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, _payment: Reference<'a>) -> BoxFuture<'a, Result<Cancelled, ProviderError>> {
        async move { Ok(Cancelled::NotOffered) }.boxed()
    }

    fn notification(&self, content_type: &str, body: &[u8]) -> Result<Notice, NoticeError> {
        let fields: Vec<(String, String)> = if content_type.starts_with("application/json") {
            let value: serde_json::Map<String, Value> =
                serde_json::from_slice(body).map_err(|err| NoticeError::Malformed(err.to_string()))?;
            value
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect()
        } else {
            serde_urlencoded::from_bytes(body).map_err(|err| NoticeError::Malformed(err.to_string()))?
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let hash = field("hash").ok_or_else(|| NoticeError::Malformed("no hash".into()))?;
        let expected = notification_hash(
            &NOTIFICATION_FIELDS.map(|name| field(name).unwrap_or_default()),
            self.settings.secret.expose_secret(),
        );
        if !bool::from(expected.as_bytes().ct_eq(hash.to_ascii_lowercase().as_bytes())) {
            return Err(NoticeError::Forged);
        }
        if field("mandant") != Some(self.settings.mandant.as_str())
            || field("bewirtschafter") != Some(self.settings.bewirtschafter.as_str())
        {
            return Err(NoticeError::Malformed(
                "for another mandant or bewirtschafter".into(),
            ));
        }
        if field("status") == Some("notify") {
            return Err(NoticeError::Ignored("status notify"));
        }
        let kassenzeichen = field("kassenzeichen")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| NoticeError::Malformed("no kassenzeichen".into()))?;
        Ok(Notice {
            kassenzeichen: Some(kassenzeichen.to_owned()),
            transaction_number: None,
        })
    }
}

/// The nine fields the hash covers, in order.
pub const NOTIFICATION_FIELDS: [&str; 9] = [
    "mandant",
    "bewirtschafter",
    "zvgid",
    "kassenzeichen",
    "tan",
    "zvp",
    "zahlverfahren",
    "aktivierung",
    "status",
];

/// A notification as ePayBL sends it: the nine fields in order and their `hash`, as form fields.
pub fn signed_notification(values: [&str; 9], secret: &str) -> Vec<(String, String)> {
    let hash = notification_hash(&values, secret);
    NOTIFICATION_FIELDS
        .iter()
        .zip(values)
        .map(|(name, value)| ((*name).to_owned(), value.to_owned()))
        .chain(std::iter::once(("hash".to_owned(), hash)))
        .collect()
}

/// `sha256(the nine field values concatenated + secret)` in lower-case hex.
pub fn notification_hash(values: &[&str; 9], secret: &str) -> String {
    let mut hasher = Sha256::new();
    for value in values {
        hasher.update(value.as_bytes());
    }
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector() -> Epaybl {
        Epaybl::new(EpayblSettings {
            base_url: "http://127.0.0.1:9".into(),
            mandant: "LEIPZIG".into(),
            bewirtschafter: "00000001".into(),
            secret: SecretString::from("geheim"),
            kennzeichen_mahnverfahren: default_mahnverfahren(),
            zahlverfahrencodes: Vec::new(),
            kassenzeichen_len: 12,
            client_certificate: None,
            client_key: None,
            ca_certificate: None,
        })
        .expect("connector")
    }

    fn signed(status: &str, secret: &str) -> String {
        let values = [
            "LEIPZIG",
            "00000001",
            "zvg1",
            "SIM000000001",
            "tan",
            "zvp",
            "KREDITKARTE",
            "1",
            status,
        ];
        serde_urlencoded::to_string(signed_notification(values, secret)).expect("form")
    }

    #[test]
    fn a_signed_notification_names_its_kassenzeichen() {
        let notice = connector()
            .notification(
                "application/x-www-form-urlencoded",
                signed("bezahlt", "geheim").as_bytes(),
            )
            .expect("verifies");
        assert_eq!(notice.kassenzeichen.as_deref(), Some("SIM000000001"));
    }

    #[test]
    fn forged_and_notify_notifications_change_nothing() {
        let epaybl = connector();
        let forged = signed("bezahlt", "erraten");
        assert_eq!(
            epaybl.notification("application/x-www-form-urlencoded", forged.as_bytes()),
            Err(NoticeError::Forged)
        );
        let tampered = signed("bezahlt", "geheim").replace("SIM000000001", "SIM000000002");
        assert_eq!(
            epaybl.notification("application/x-www-form-urlencoded", tampered.as_bytes()),
            Err(NoticeError::Forged)
        );
        let notify = signed("notify", "geheim");
        assert_eq!(
            epaybl.notification("application/x-www-form-urlencoded", notify.as_bytes()),
            Err(NoticeError::Ignored("status notify"))
        );
    }
}
