//! One trait for every payment platform; one module per platform turns our order into its request and its answers
//! into our observations.

use futures_util::future::BoxFuture;

use crate::model::{BookingLine, Observed};

/// What we ask a provider to collect.
#[derive(Debug, Clone)]
pub struct Order<'a> {
    /// Ours, unique, ≤ 30 characters; the provider's idempotency key.
    pub transaction_number: &'a str,
    /// Set when the cash office assigns Kassenzeichen locally; `None` lets the provider assign one.
    pub kassenzeichen: Option<&'a str>,
    pub amount_cents: i64,
    pub purpose: &'a str,
    pub description: &'a str,
    pub bookings: &'a [BookingLine],
    /// Day the debt falls due (`YYYY-MM-DD`).
    pub due_on: &'a str,
    pub urls: Urls,
}

/// Where the provider sends the payer and its notifications.
#[derive(Debug, Clone)]
pub struct Urls {
    pub notify: String,
    pub success: String,
    pub error: String,
    pub cancel: String,
}

/// The provider took the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub kassenzeichen: String,
    /// The provider's own id of the payment, where it has one besides the Kassenzeichen.
    pub provider_ref: Option<String>,
    /// Where the payer pays (the redirect target).
    pub paypage_url: String,
}

/// A payment as the provider knows it.
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a> {
    pub transaction_number: &'a str,
    pub kassenzeichen: Option<&'a str>,
    pub provider_ref: Option<&'a str>,
    pub amount_cents: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Not reachable, timed out or answered 5xx: worth asking again later.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request with its own code; asking again will not help.
    #[error("payment provider refused ({code}): {message}")]
    Refused { code: String, message: String },
    /// The provider answered something we cannot read.
    #[error("payment provider answered unexpectedly: {0}")]
    Protocol(String),
}

/// A notification that verified: which payment to look at. Its content is never taken as the outcome — the
/// service asks the provider for the status — so a notification can only make us look sooner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kassenzeichen: Option<String>,
    pub transaction_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("notification malformed: {0}")]
    Malformed(String),
    #[error("notification signature does not verify")]
    Forged,
    /// A notification the protocol says to ignore (ePayBL's `status == "notify"`).
    #[error("notification ignored: {0}")]
    Ignored(&'static str),
}

/// Whether ending an online attempt needs a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The provider closed the Paypage session.
    Closed,
    /// The platform's interface has no such call: the session ends by itself and the Kassenzeichen stays payable
    /// by transfer.
    NotOffered,
}

pub trait Provider: Send + Sync {
    /// `epaybl`, `xbezahldienste`.
    fn name(&self) -> &'static str;

    /// The longest Kassenzeichen the provider assigns (reserved in the 27 characters of a transfer's purpose).
    fn kassenzeichen_len(&self) -> usize;

    /// Creates the payment at the provider; answers its Kassenzeichen and the Paypage to send the payer to.
    /// Idempotent by the order's transaction number.
    fn create<'a>(&'a self, order: &'a Order<'a>) -> BoxFuture<'a, Result<Created, ProviderError>>;

    /// What the provider says about the payment now.
    fn status<'a>(&'a self, payment: Reference<'a>) -> BoxFuture<'a, Result<Observed, ProviderError>>;

    /// Ends the online attempt at the provider, where its interface offers that.
    fn cancel<'a>(&'a self, payment: Reference<'a>) -> BoxFuture<'a, Result<Cancelled, ProviderError>>;

    /// Parses and verifies a notification as it arrived (content type and body).
    fn notification(&self, content_type: &str, body: &[u8]) -> Result<Notice, NoticeError>;
}

/// The HTTP client of a connector: short timeouts, and mutual TLS with a client certificate and key (PEM) and an
/// extra CA to trust where configured.
pub(crate) fn client(
    certificate: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
    ca: Option<&std::path::Path>,
) -> Result<reqwest::Client, String> {
    let read =
        |path: &std::path::Path| std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()));
    let mut builder = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(15));
    match (certificate, key) {
        (Some(certificate), Some(key)) => {
            let mut pem = read(certificate)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|err| format!("client certificate and key: {err}"))?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => return Err("client_certificate and client_key go together".into()),
    }
    if let Some(ca) = ca {
        let certificate =
            reqwest::Certificate::from_pem(&read(ca)?).map_err(|err| format!("{}: {err}", ca.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|err| err.to_string())
}

/// Sends a request to a platform: unreachable, 5xx and 429 are "unavailable" (worth asking again later); any other
/// answer comes back with its status and JSON body (`null` when it has none).
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
) -> Result<(u16, serde_json::Value), ProviderError> {
    let response = request
        .send()
        .await
        .map_err(|err| ProviderError::Unavailable(err.to_string()))?;
    let status = response.status().as_u16();
    if status >= 500 || status == 429 {
        return Err(ProviderError::Unavailable(format!("HTTP {status}")));
    }
    Ok((status, response.json().await.unwrap_or(serde_json::Value::Null)))
}

/// Cents as ePayBL writes amounts: a decimal with two places and a point.
pub(crate) fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// Parses a decimal amount (`30.70`, `-0.5`, `12`) into cents; more than two places are refused.
pub(crate) fn cents_of(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once(['.', ',']).unwrap_or((digits, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let cents = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().ok()? * 10,
            _ => fraction.parse::<i64>().ok()?,
        })?;
    Some(if negative { -cents } else { cents })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_as_decimals() {
        for cents in [0, 5, 3070, 100_000, -50] {
            assert_eq!(cents_of(&decimal(cents)), Some(cents));
        }
        assert_eq!(cents_of("30.7"), Some(3070));
        assert_eq!(cents_of("12"), Some(1200));
        assert_eq!(cents_of("1.005"), None);
        assert_eq!(cents_of("abc"), None);
    }
}
