//! A simulator of ePayBL for development and tests — NOT a payment platform. It speaks the REST endpoints our
//! connector calls, shows a Paypage where a person (or a test) chooses pay, abort or fail, sends signed
//! notifications to the `notifyUrl`, and answers status queries. Switches make it slow, unavailable, duplicate,
//! hold back (then deliver in reverse order) or lose notifications, and pay a different amount than asked.
//!
//! It runs in-process under `/sim/epaybl` in the zero-config setup and as the `amtsweg-epaybl-sim` binary. Its
//! ledger lives in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use amtsweg_kernel::http::{Json, Path};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::epaybl::{UNKNOWN_KASSENZEICHEN, signed_notification};
use crate::provider::{cents_of, decimal};

/// What the simulator is told to do wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Switches {
    /// Every interface call waits this long before answering.
    pub delay_ms: u64,
    /// Interface calls answer 503.
    pub unavailable: bool,
    /// Every notification is sent twice.
    pub duplicate_notifications: bool,
    /// The next this many notifications are never sent.
    pub lose_notifications: u32,
    /// Notifications are held back until released, then sent newest first.
    pub hold_notifications: bool,
    /// A payment on the Paypage pays this much more (or less) than asked.
    pub amount_delta_cents: i64,
}

#[derive(Debug, Clone)]
pub struct SimSettings {
    pub mandant: String,
    pub bewirtschafter: String,
    pub secret: String,
    /// Where the simulator's routes are mounted, e.g. `/sim/epaybl` (empty for the binary).
    pub base_path: String,
    /// XBezahldienste' originator and endpoint the simulator accepts.
    pub originator_id: String,
    pub endpoint_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Active,
    Paid(i64),
    Aborted,
    Failed,
}

#[derive(Debug, Clone)]
struct Entry {
    kassenzeichen: String,
    amount_cents: i64,
    description: String,
    page: Page,
    notify_url: String,
    success_url: String,
    error_url: String,
    cancel_url: String,
}

#[derive(Default)]
struct Ledger {
    entries: HashMap<String, Entry>,
    by_transaction: HashMap<String, String>,
    issued: u64,
    switches: Switches,
    held: Vec<(String, Vec<(String, String)>)>,
}

struct Shared {
    settings: SimSettings,
    public_base: RwLock<String>,
    ledger: Mutex<Ledger>,
    http: reqwest::Client,
}

/// A running simulator's state; cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl Simulator {
    pub fn new(settings: SimSettings, public_base: &str) -> Simulator {
        Simulator {
            shared: Arc::new(Shared {
                settings,
                public_base: RwLock::new(public_base.trim_end_matches('/').to_owned()),
                ledger: Mutex::new(Ledger::default()),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default(),
            }),
        }
    }

    /// Sets where the Paypage is reached (once the port is known).
    pub fn set_public_base(&self, base: &str) {
        if let Ok(mut current) = self.shared.public_base.write() {
            *current = base.trim_end_matches('/').to_owned();
        }
    }

    /// The interface's base URL, for the connector's `base_url`.
    pub fn base_url(&self) -> String {
        format!("{}{}", self.public_base(), self.shared.settings.base_path)
    }

    fn public_base(&self) -> String {
        self.shared
            .public_base
            .read()
            .map(|b| b.clone())
            .unwrap_or_default()
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.shared
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn switches(&self) -> Switches {
        self.ledger().switches.clone()
    }

    pub fn set_switches(&self, switches: Switches) {
        self.ledger().switches = switches;
    }

    /// Sends the held notifications, newest first.
    pub fn release_held(&self) {
        let held: Vec<_> = std::mem::take(&mut self.ledger().held);
        for (url, fields) in held.into_iter().rev() {
            self.send(url, fields);
        }
    }

    /// Mounts the simulator's routes under its base path.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let base = self.shared.settings.base_path.clone();
        let api = "/epayment/fachverfahren/v1_0/mandanten/{mandant}/bewirtschafter/{bewirtschafter}";
        cfg.service(
            web::scope(&base)
                .app_data(web::Data::new(self.clone()))
                .route(&format!("{api}/buchungslisten"), web::post().to(create))
                .route(
                    &format!("{api}/kassenzeichen/{{kassenzeichen}}"),
                    web::get().to(status),
                )
                .route(
                    "/paymenttransaction/{originator}/{endpoint}",
                    web::post().to(x_create),
                )
                .route(
                    "/paymenttransaction/{originator}/{endpoint}/{transaction}",
                    web::get().to(x_status),
                )
                .route("/paypage/{kassenzeichen}", web::get().to(paypage))
                .route("/paypage/{kassenzeichen}", web::post().to(choose))
                .route("/control", web::get().to(read_switches))
                .route("/control", web::put().to(write_switches))
                .route("/control/release", web::post().to(release)),
        );
    }

    fn send(&self, url: String, fields: Vec<(String, String)>) {
        let http = self.shared.http.clone();
        tokio::spawn(async move {
            let sent = http.post(&url).form(&fields).send().await;
            if let Err(err) = sent {
                tracing::info!(error = %err, "simulator: notification not delivered");
            }
        });
    }

    /// Signs and sends (or holds, duplicates, loses) the notification about `entry` (ePayBL only:
    /// XBezahldienste has none).
    fn notify(&self, entry: &Entry, status: &str) {
        if entry.notify_url.is_empty() {
            return;
        }
        let settings = &self.shared.settings;
        let values = [
            settings.mandant.as_str(),
            settings.bewirtschafter.as_str(),
            "ZVG-SIM",
            entry.kassenzeichen.as_str(),
            "TAN-SIM",
            "SIMULATOR",
            "KREDITKARTE",
            "1",
            status,
        ];
        let fields = signed_notification(values, &settings.secret);
        let mut ledger = self.ledger();
        if ledger.switches.lose_notifications > 0 {
            ledger.switches.lose_notifications -= 1;
            return;
        }
        let copies = if ledger.switches.duplicate_notifications {
            2
        } else {
            1
        };
        if ledger.switches.hold_notifications {
            for _ in 0..copies {
                ledger.held.push((entry.notify_url.clone(), fields.clone()));
            }
            return;
        }
        drop(ledger);
        for _ in 0..copies {
            self.send(entry.notify_url.clone(), fields.clone());
        }
    }

    /// Waits as told; answers 503 when unavailable.
    async fn gate(&self) -> Option<HttpResponse> {
        let switches = self.switches();
        if switches.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(switches.delay_ms)).await;
        }
        switches
            .unavailable
            .then(|| HttpResponse::ServiceUnavailable().json(ergebnis("-9999", "Simulator: nicht verfügbar")))
    }
}

fn ergebnis(rc: &str, text: &str) -> Value {
    json!({"ergebnis": {"rc": rc, "ergebnistext": text}})
}

fn refuse(text: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(ergebnis("-0001", &text.into()))
}

async fn create(sim: web::Data<Simulator>, path: Path<(String, String)>, body: Json<Value>) -> HttpResponse {
    if let Some(answer) = sim.gate().await {
        return answer;
    }
    let (mandant, bewirtschafter) = path.into_inner();
    let settings = &sim.shared.settings;
    if mandant != settings.mandant || bewirtschafter != settings.bewirtschafter {
        return refuse("Mandant oder Bewirtschafter unbekannt");
    }
    let order = body.into_inner();
    let text = |pointer: &str| {
        order
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let transaction = text("/transaktionsnummer");
    if transaction.is_empty() || transaction.len() > 30 {
        return refuse("transaktionsnummer fehlt oder ist länger als 30 Zeichen");
    }
    let Some(amount_cents) = cents_of(&text("/betrag")).filter(|c| *c > 0) else {
        return refuse("betrag ist kein Betrag");
    };
    let bookings = order["buchungen"].as_array().cloned().unwrap_or_default();
    let mut sum = 0i64;
    for booking in &bookings {
        let field = |name: &str| booking[name].as_str().unwrap_or_default().to_owned();
        let line = amtsweg_catalogue::domain::Booking {
            haushaltsstelle: booking["kontierung"]["haushaltstelle"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            objektnummer: booking["kontierung"]["objektnummer"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            buchungstext: field("buchungstext"),
        };
        if let Some((name, reason)) = line.violations().into_iter().next() {
            return refuse(format!("{name}: {reason}"));
        }
        sum += cents_of(&field("bruttobetrag")).unwrap_or(-1);
    }
    if bookings.is_empty() || sum != amount_cents {
        return refuse("Die Summe der Buchungen ist nicht der Betrag");
    }
    let mut ledger = sim.ledger();
    let kassenzeichen = match ledger.by_transaction.get(&transaction) {
        Some(existing) => existing.clone(),
        None => {
            ledger.issued += 1;
            let kassenzeichen = match order["kassenzeichennummer"].as_str() {
                Some(local) => local.to_owned(),
                None => format!("SIM{:09}", ledger.issued),
            };
            let entry = Entry {
                kassenzeichen: kassenzeichen.clone(),
                amount_cents,
                description: text("/beschreibung"),
                page: Page::Active,
                notify_url: text("/fachverfahrendaten/notifyUrl"),
                success_url: text("/fachverfahrendaten/successUrl"),
                error_url: text("/fachverfahrendaten/errorUrl"),
                cancel_url: text("/fachverfahrendaten/cancelUrl"),
            };
            ledger.entries.insert(kassenzeichen.clone(), entry);
            ledger.by_transaction.insert(transaction, kassenzeichen.clone());
            kassenzeichen
        }
    };
    drop(ledger);
    let paypage = format!("{}/paypage/{kassenzeichen}", sim.base_url());
    let mut answer = ergebnis("+0000", "OK");
    answer["kassenzeichennummer"] = json!(kassenzeichen);
    answer["zahlvorgangsInfo"] = json!({"rechnungUrls": {"PAYPAGE": paypage}});
    HttpResponse::Ok().json(answer)
}

async fn status(sim: web::Data<Simulator>, path: Path<(String, String, String)>) -> HttpResponse {
    if let Some(answer) = sim.gate().await {
        return answer;
    }
    let (_, _, kassenzeichen) = path.into_inner();
    let Some(entry) = sim.ledger().entries.get(&kassenzeichen).cloned() else {
        return HttpResponse::Ok().json(ergebnis(UNKNOWN_KASSENZEICHEN, "Kassenzeichen unbekannt"));
    };
    let (page, saldo) = match entry.page {
        Page::Active => ("AKTIV", entry.amount_cents),
        Page::Paid(paid) => ("INAKTIV", entry.amount_cents - paid),
        Page::Aborted => ("ABGEBROCHEN", entry.amount_cents),
        Page::Failed => ("FEHLER", entry.amount_cents),
    };
    let mut answer = ergebnis("+0000", "OK");
    answer["kassenzeichen"] = json!({
        "kassenzeichennummer": entry.kassenzeichen,
        "betrag": decimal(entry.amount_cents),
        "zusatzdaten": {
            "paypagestatus": page,
            "bezahlverfahren": matches!(entry.page, Page::Paid(_)).then_some("KREDITKARTE"),
            "saldo": decimal(saldo),
        },
    });
    HttpResponse::Ok().json(answer)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn paypage(sim: web::Data<Simulator>, kassenzeichen: Path<String>) -> HttpResponse {
    let Some(entry) = sim.ledger().entries.get(kassenzeichen.as_str()).cloned() else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Kassenzeichen unbekannt");
    };
    let action = format!("{}/paypage/{}", sim.base_url(), escape(&entry.kassenzeichen));
    let body = if entry.page == Page::Active {
        format!(
            r#"<form method="post" action="{action}">
<button name="action" value="pay">Bezahlen / Pay</button>
<button name="action" value="abort">Abbrechen / Abort</button>
<button name="action" value="fail">Fehlschlag simulieren / Simulate failure</button>
</form>"#
        )
    } else {
        "<p>Dieser Zahlvorgang ist abgeschlossen. / This payment is complete.</p>".to_owned()
    };
    let html = format!(
        r#"<!doctype html>
<html lang="de"><head><meta charset="utf-8"><title>ePayBL-Simulator – Paypage</title></head>
<body><main>
<p><strong>SIMULATOR – keine echte Zahlung / SIMULATOR – no real payment</strong></p>
<h1>Paypage</h1>
<dl><dt>Kassenzeichen</dt><dd>{kz}</dd><dt>Betrag / Amount</dt><dd>{amount} EUR</dd><dt>Zweck / Purpose</dt><dd>{description}</dd></dl>
{body}
</main></body></html>"#,
        kz = escape(&entry.kassenzeichen),
        amount = decimal(entry.amount_cents),
        description = escape(&entry.description),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

#[derive(Deserialize)]
struct Choice {
    action: String,
}

async fn choose(sim: web::Data<Simulator>, kassenzeichen: Path<String>, body: web::Bytes) -> HttpResponse {
    let Ok(choice) = serde_urlencoded::from_bytes::<Choice>(&body) else {
        return HttpResponse::BadRequest().body("action: pay, abort or fail");
    };
    let mut ledger = sim.ledger();
    let delta = ledger.switches.amount_delta_cents;
    let Some(entry) = ledger.entries.get_mut(kassenzeichen.as_str()) else {
        return HttpResponse::NotFound().body("Kassenzeichen unbekannt");
    };
    if entry.page != Page::Active {
        return HttpResponse::Conflict().body("Dieser Zahlvorgang ist abgeschlossen.");
    }
    let (page, status, target) = match choice.action.as_str() {
        "pay" => (
            Page::Paid(entry.amount_cents + delta),
            "bezahlt",
            entry.success_url.clone(),
        ),
        "abort" => (Page::Aborted, "abgebrochen", entry.cancel_url.clone()),
        "fail" => (Page::Failed, "fehlgeschlagen", entry.error_url.clone()),
        _ => return HttpResponse::BadRequest().body("action: pay, abort or fail"),
    };
    entry.page = page;
    let entry = entry.clone();
    drop(ledger);
    sim.notify(&entry, status);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .finish()
}

async fn read_switches(sim: web::Data<Simulator>) -> HttpResponse {
    HttpResponse::Ok().json(sim.switches())
}

async fn write_switches(sim: web::Data<Simulator>, switches: Json<Switches>) -> HttpResponse {
    sim.set_switches(switches.into_inner());
    HttpResponse::Ok().json(sim.switches())
}

async fn release(sim: web::Data<Simulator>) -> HttpResponse {
    sim.release_held();
    HttpResponse::NoContent().finish()
}

fn problem(status: actix_web::http::StatusCode, code: &str, detail: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(json!({"type": format!("urn:xbezahldienste:{code}"), "title": code, "code": code, "detail": detail}))
}

/// XBezahldienste' payment information of an entry.
fn x_transaction(sim: &Simulator, transaction: &str, entry: &Entry) -> Value {
    let (status, paid) = match entry.page {
        Page::Active => ("INITIAL", entry.amount_cents),
        Page::Paid(paid) => ("PAYED", paid),
        Page::Aborted => ("CANCELED", entry.amount_cents),
        Page::Failed => ("FAILED", entry.amount_cents),
    };
    let base = format!(
        "{}/paymenttransaction/{}/{}",
        sim.base_url(),
        sim.shared.settings.originator_id,
        sim.shared.settings.endpoint_id
    );
    json!({
        "paymentInformation": {
            "transactionId": transaction,
            "transactionReference": entry.kassenzeichen,
            "transactionUrl": format!("{base}/{transaction}"),
            "transactionRedirectUrl": (entry.page == Page::Active)
                .then(|| format!("{}/paypage/{}", sim.base_url(), entry.kassenzeichen)),
            "paymentMethod": matches!(entry.page, Page::Paid(_)).then_some("CREDIT_CARD"),
            "status": status,
        },
        "paymentRequest": {
            "requestId": transaction,
            "currency": "EUR",
            "grossAmount": crate::xbezahldienste::amount(paid),
            "description": entry.description,
        },
    })
}

async fn x_create(
    sim: web::Data<Simulator>,
    path: Path<(String, String)>,
    body: Json<Value>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    if let Some(answer) = sim.gate().await {
        return answer;
    }
    let (originator, endpoint) = path.into_inner();
    let settings = &sim.shared.settings;
    if originator != settings.originator_id || endpoint != settings.endpoint_id {
        return problem(
            StatusCode::BAD_REQUEST,
            "NO_VALID_ORIGINATOR_OR_ENDPOINT",
            "unknown originator or endpoint",
        );
    }
    let request = body.into_inner();
    let text = |name: &str| request[name].as_str().unwrap_or_default().to_owned();
    let transaction = text("requestId");
    let (purpose, description) = (text("purpose"), text("description"));
    if transaction.is_empty()
        || transaction.len() > 36
        || purpose.chars().count() > 27
        || description.chars().count() > 250
        || text("redirectUrl").is_empty()
    {
        return problem(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "requestId, purpose, description or redirectUrl",
        );
    }
    let items = request["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() || items.len() > 99 {
        return problem(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "1 to 99 items");
    }
    if items.iter().any(|item| !item["bookingData"].is_object()) {
        return problem(
            StatusCode::BAD_REQUEST,
            "BOOKING_DATA_MISSING",
            "every item needs bookingData",
        );
    }
    let Some(gross) = crate::xbezahldienste::cents(&request["grossAmount"]).filter(|c| *c > 0) else {
        return problem(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "grossAmount");
    };
    let sum: Option<i64> = items
        .iter()
        .map(|item| crate::xbezahldienste::cents(&item["grossAmount"]))
        .sum();
    if sum != Some(gross) {
        return problem(
            StatusCode::BAD_REQUEST,
            "CALCULATION_ERROR",
            "the items do not add up to grossAmount",
        );
    }
    let mut ledger = sim.ledger();
    if ledger.by_transaction.contains_key(&transaction) {
        return problem(
            StatusCode::CONFLICT,
            "PAYMENT_EXISTS",
            "a payment with this requestId exists",
        );
    }
    ledger.issued += 1;
    let redirect = text("redirectUrl");
    let entry = Entry {
        kassenzeichen: format!("SIM{:09}", ledger.issued),
        amount_cents: gross,
        description,
        page: Page::Active,
        notify_url: String::new(),
        success_url: redirect.clone(),
        error_url: redirect.clone(),
        cancel_url: redirect,
    };
    ledger.entries.insert(entry.kassenzeichen.clone(), entry.clone());
    ledger
        .by_transaction
        .insert(transaction.clone(), entry.kassenzeichen.clone());
    drop(ledger);
    HttpResponse::Created().json(x_transaction(&sim, &transaction, &entry))
}

async fn x_status(sim: web::Data<Simulator>, path: Path<(String, String, String)>) -> HttpResponse {
    use actix_web::http::StatusCode;
    if let Some(answer) = sim.gate().await {
        return answer;
    }
    let (_, _, transaction) = path.into_inner();
    let ledger = sim.ledger();
    let entry = ledger
        .by_transaction
        .get(&transaction)
        .and_then(|kassenzeichen| ledger.entries.get(kassenzeichen))
        .cloned();
    drop(ledger);
    match entry {
        Some(entry) => HttpResponse::Ok().json(x_transaction(&sim, &transaction, &entry)),
        None => problem(StatusCode::NOT_FOUND, "NOT_FOUND", "no such payment transaction"),
    }
}
