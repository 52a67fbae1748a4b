//! XBezahldienste, FITKO's REST standard for payment services that ePayBL moves towards.
//!
//! - Create: `POST {base}/paymenttransaction/{originatorId}/{endPointId}` with `requestId` (our transaction number,
//!   ≤ 36), `currency`, `grossAmount` (checked by the service against 1–99 `items` with booking data), `purpose`
//!   (≤ 27), `description` (≤ 250) and `redirectUrl`. The answer's `paymentInformation` carries `transactionId`
//!   (the id for status queries), `transactionReference` (the Kassenzeichen, where assigned) and
//!   `transactionRedirectUrl` (the Paypage).
//! - Status: `GET {base}/paymenttransaction/{originatorId}/{endPointId}/{transactionId}` → `paymentInformation.status`
//!   `INITIAL | PAYED | CANCELED | FAILED`.
//! - Errors are RFC 9457 problems with codes. Mapped on purpose: `PAYMENT_EXISTS` (the same `requestId` again — a
//!   retry after an answer we lost) is read back by the `requestId` (which services may use as `transactionId`)
//!   instead of failing; `CALCULATION_ERROR`, `BOOKING_DATA_MISSING`, `VALIDATION_ERROR` and
//!   `NO_VALID_ORIGINATOR_OR_ENDPOINT` are refusals asking again will not change.
//! - The standard has no notifications: the payer's return (which only triggers a status query) and the
//!   reconciliation job's queries settle payments. Amounts are JSON numbers of euros (at most two places).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::Observed;
use crate::provider::{Cancelled, Created, Notice, NoticeError, Order, Provider, ProviderError, Reference};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XbezahldiensteSettings {
    pub base_url: String,
    pub originator_id: String,
    pub endpoint_id: String,
    /// The longest Kassenzeichen (`transactionReference`) the service assigns.
    #[serde(default = "default_kassenzeichen_len")]
    pub kassenzeichen_len: usize,
    /// Client certificate and key (PEM) for mutual TLS, where the service asks for one.
    #[serde(default)]
    pub client_certificate: Option<std::path::PathBuf>,
    #[serde(default)]
    pub client_key: Option<std::path::PathBuf>,
    /// A CA (PEM) to trust for the service's certificate besides the system's.
    #[serde(default)]
    pub ca_certificate: Option<std::path::PathBuf>,
}

fn default_kassenzeichen_len() -> usize {
    12
}

pub struct Xbezahldienste {
    settings: XbezahldiensteSettings,
    http: reqwest::Client,
}

/// The problem codes of the standard, read exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    PaymentExists,
    CalculationError,
    BookingDataMissing,
    ValidationError,
    NoValidOriginatorOrEndpoint,
}

impl Problem {
    fn parse(code: &str) -> Option<Problem> {
        Some(match code {
            "PAYMENT_EXISTS" => Problem::PaymentExists,
            "CALCULATION_ERROR" => Problem::CalculationError,
            "BOOKING_DATA_MISSING" => Problem::BookingDataMissing,
            "VALIDATION_ERROR" => Problem::ValidationError,
            "NO_VALID_ORIGINATOR_OR_ENDPOINT" => Problem::NoValidOriginatorOrEndpoint,
            _ => return None,
        })
    }
}

/// The payment's amount as the standard writes it: a number with two places.
pub(crate) fn amount(cents: i64) -> Value {
    serde_json::from_str(&crate::provider::decimal(cents)).unwrap_or(Value::Null)
}

/// A JSON number (or numeric string) of euros in cents.
pub(crate) fn cents(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => crate::provider::cents_of(&n.to_string()),
        Value::String(s) => crate::provider::cents_of(s),
        _ => None,
    }
}

impl Xbezahldienste {
    pub fn new(settings: XbezahldiensteSettings) -> Result<Xbezahldienste, String> {
        let http = crate::provider::client(
            settings.client_certificate.as_deref(),
            settings.client_key.as_deref(),
            settings.ca_certificate.as_deref(),
        )?;
        Ok(Xbezahldienste { settings, http })
    }

    fn base(&self) -> String {
        format!(
            "{}/paymenttransaction/{}/{}",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.originator_id,
            self.settings.endpoint_id
        )
    }

    /// The payment request of an order.
    pub fn payment_request(&self, order: &Order<'_>) -> Value {
        json!({
            "requestId": order.transaction_number,
            "currency": "EUR",
            "grossAmount": amount(order.amount_cents),
            "purpose": order.purpose,
            "description": order.description,
            "redirectUrl": order.urls.success,
            "items": order.bookings.iter().enumerate().map(|(i, line)| json!({
                "id": i + 1,
                "reference": order.transaction_number,
                "description": line.booking.buchungstext,
                "grossAmount": amount(line.amount_cents),
                "quantity": 1,
                "bookingData": {
                    "haushaltsstelle": line.booking.haushaltsstelle,
                    "objektnummer": line.booking.objektnummer,
                    "buchungstext": line.booking.buchungstext,
                },
            })).collect::<Vec<_>>(),
        })
    }

    async fn read(&self, transaction_id: &str) -> Result<(u16, Value), ProviderError> {
        crate::provider::send(self.http.get(format!("{}/{transaction_id}", self.base()))).await
    }

    fn created(body: &Value) -> Result<Created, ProviderError> {
        let info = &body["paymentInformation"];
        let transaction_id = info["transactionId"]
            .as_str()
            .ok_or_else(|| ProviderError::Protocol("no paymentInformation.transactionId".into()))?;
        let paypage_url = info["transactionRedirectUrl"]
            .as_str()
            .ok_or_else(|| ProviderError::Protocol("no paymentInformation.transactionRedirectUrl".into()))?;
        Ok(Created {
            kassenzeichen: info["transactionReference"]
                .as_str()
                .unwrap_or(transaction_id)
                .to_owned(),
            provider_ref: Some(transaction_id.to_owned()),
            paypage_url: paypage_url.to_owned(),
        })
    }
}

fn refused(body: &Value) -> ProviderError {
    let code = body["code"]
        .as_str()
        .or_else(|| body["type"].as_str())
        .unwrap_or("unknown")
        .to_owned();
    let message = body["detail"]
        .as_str()
        .or_else(|| body["title"].as_str())
        .unwrap_or_default()
        .to_owned();
    ProviderError::Refused { code, message }
}

impl Provider for Xbezahldienste {
    fn name(&self) -> &'static str {
        "xbezahldienste"
    }

    fn kassenzeichen_len(&self) -> usize {
        self.settings.kassenzeichen_len
    }

    fn create<'a>(&'a self, order: &'a Order<'a>) -> BoxFuture<'a, Result<Created, ProviderError>> {
        async move {
            let (status, body) =
                crate::provider::send(self.http.post(self.base()).json(&self.payment_request(order))).await?;
            if (200..300).contains(&status) {
                return Self::created(&body);
            }
            let code = body["code"].as_str().and_then(Problem::parse);
            match code {
                Some(Problem::PaymentExists) => {
                    // Ours already: read it back by the requestId.
                    let (status, existing) = self.read(order.transaction_number).await?;
                    if status == 200 && existing["paymentInformation"]["status"] == "INITIAL" {
                        Self::created(&existing)
                    } else {
                        Err(refused(&body))
                    }
                }
                Some(
                    Problem::CalculationError
                    | Problem::BookingDataMissing
                    | Problem::ValidationError
                    | Problem::NoValidOriginatorOrEndpoint,
                )
                | None => Err(refused(&body)),
            }
        }
        .boxed()
    }

    fn status<'a>(&'a self, payment: Reference<'a>) -> BoxFuture<'a, Result<Observed, ProviderError>> {
        async move {
            let Some(id) = payment.provider_ref.or(payment.kassenzeichen) else {
                return Ok(Observed::Unknown);
            };
            let (status, body) = self.read(id).await?;
            if status == 404 {
                return Ok(Observed::Unknown);
            }
            if !(200..300).contains(&status) {
                return Err(refused(&body));
            }
            let info = &body["paymentInformation"];
            Ok(match info["status"].as_str().unwrap_or_default() {
                "INITIAL" => Observed::Open,
                "PAYED" => {
                    // The amount the service confirms: the request's gross amount as it stands there.
                    let paid = cents(&body["paymentRequest"]["grossAmount"])
                        .or_else(|| cents(&info["grossAmount"]))
                        .ok_or_else(|| ProviderError::Protocol("PAYED without an amount".into()))?;
                    Observed::Paid { amount_cents: paid }
                }
                "CANCELED" => Observed::Cancelled,
                "FAILED" => Observed::Failed,
                other => return Err(ProviderError::Protocol(format!("status {other:?}"))),
            })
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, _payment: Reference<'a>) -> BoxFuture<'a, Result<Cancelled, ProviderError>> {
        async move { Ok(Cancelled::NotOffered) }.boxed()
    }

    fn notification(&self, _content_type: &str, _body: &[u8]) -> Result<Notice, NoticeError> {
        Err(NoticeError::Malformed(
            "XBezahldienste sends no notifications".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_numbers_with_two_places() {
        assert_eq!(amount(3070).to_string(), "30.7");
        assert_eq!(cents(&json!(30.7)), Some(3070));
        assert_eq!(cents(&json!("30.70")), Some(3070));
    }

    #[test]
    fn every_problem_code_of_the_standard_is_read() {
        for code in [
            "PAYMENT_EXISTS",
            "CALCULATION_ERROR",
            "BOOKING_DATA_MISSING",
            "VALIDATION_ERROR",
            "NO_VALID_ORIGINATOR_OR_ENDPOINT",
        ] {
            assert!(Problem::parse(code).is_some(), "{code}");
        }
        assert_eq!(Problem::parse("SOMETHING_ELSE"), None);
    }
}
