//! ePayment end to end against the ePayBL simulator over real HTTP: the resident parking permit is paid before
//! processing and reaches the queue only once the platform confirms the payment; the return redirect never pays;
//! aborted, failed, expired, mismatched, duplicated, held-back and forged notifications all end where the
//! platform's status says; a platform that is down is asked again by the reconciliation job.

use std::time::{Duration, Instant};

use amtsweg_test_support::{Backend, TestApp, backend_tests};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(app: &TestApp, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(&mut app.connect())
        .unwrap()
        .n
}

/// A submitted resident parking permit (3070 cents, paid before processing); answers (token, application id).
async fn submitted_permit(app: &TestApp, email: &str) -> (String, String) {
    let token = app.citizen(email).await.tokens.access_token;
    let created = app
        .post_as(
            "/api/v1/applications",
            &token,
            &json!({"procedure_id": "bewohnerparkausweis", "data": {
                "antragsteller": {"vorname": "Erika", "nachname": "Mustermann"},
                "anschrift": {"strasse": "Markt", "hausnummer": "1", "plz": "04109"},
                "parkgebiet": "A1",
                "kennzeichen": "L-AB 1234",
                "fahrzeug_halter": "selbst",
                "laufzeit_jahre": 1
            }}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = body(created).await["id"].as_str().unwrap().to_owned();
    let attached = app
        .attach_pdf(&token, &id, "fahrzeugschein", "zulassung.pdf", PDF)
        .await;
    assert_eq!(attached.status(), StatusCode::CREATED);
    let submitted = app
        .client
        .post(app.url(&format!("/api/v1/applications/{id}/submit")))
        .bearer_auth(&token)
        .header("idempotency-key", format!("submit-{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::CREATED);
    (token, id)
}

/// Starts paying online; answers the answer's JSON.
async fn start_payment(app: &TestApp, token: &str, id: &str, key: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/applications/{id}/payments")))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap()
}

async fn started(app: &TestApp, token: &str, id: &str, key: &str) -> Value {
    let response = start_payment(app, token, id, key).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    body(response).await
}

/// Chooses on the simulator's Paypage like a person would; answers where the Paypage sends the browser back.
async fn choose(app: &TestApp, paypage: &str, action: &str) -> String {
    let page = app.client.get(paypage).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("SIMULATOR"));
    let chosen = app
        .client
        .post(paypage)
        .form(&[("action", action)])
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
    chosen.headers()["location"].to_str().unwrap().to_owned()
}

/// The state the return page shows.
async fn returned(app: &TestApp, url: &str) -> String {
    let mut page = app.client.get(url).send().await.unwrap();
    // The old return address sends the browser on to the portal's page.
    if page.status() == StatusCode::SEE_OTHER {
        let next = page.headers()["location"].to_str().unwrap().to_owned();
        page = app.client.get(app.url(&next)).send().await.unwrap();
    }
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let marker = "data-payment-state=\"";
    let start = html.find(marker).expect("state on the page") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn switches(app: &TestApp, switches: Value) {
    let set = app
        .client
        .put(app.url("/sim/epaybl/control"))
        .json(&switches)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
}

async fn payment(app: &TestApp, token: &str, payment_id: &str) -> Value {
    let response = app.get_as(&format!("/api/v1/payments/{payment_id}"), token).await;
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

/// Waits until the payment reaches `state` (notifications and jobs arrive in the background).
async fn payment_reaches(app: &TestApp, token: &str, payment_id: &str, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let current = payment(app, token, payment_id).await;
        if current["state"] == state {
            return current;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "payment stays {}",
            current["state"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn case_state(app: &TestApp, token: &str, id: &str) -> String {
    let application = body(app.get_as(&format!("/api/v1/applications/{id}"), token).await).await;
    application["business_status"]["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn case_reaches(app: &TestApp, token: &str, id: &str, state: &str) {
    let started = Instant::now();
    while case_state(app, token, id).await != state {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the case did not reach {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reconcile(app: &TestApp) -> Value {
    let admin = app.admin().await.access_token;
    let run = app
        .post_as(
            "/api/v1/admin/schedules/payment-reconciliation/run",
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(run.status(), StatusCode::OK);
    let run = body(run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    run["result"].clone()
}

/// A fresh access token (after the clock moved past the last one).
async fn logged_in(app: &TestApp, email: &str) -> String {
    let login = app
        .login(email, amtsweg_test_support::STRONG_PASSWORD, None)
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    body(login).await["access_token"].as_str().unwrap().to_owned()
}

/// Waits for a mail to `address` whose text contains `text`.
async fn mail_containing(app: &TestApp, address: &str, text: &str) {
    let started = Instant::now();
    while !app.smtp().to(address).iter().any(|mail| mail.body.contains(text)) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no mail with {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reasons(payment: &Value) -> Vec<String> {
    payment["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            format!(
                "{}:{}",
                step["to"].as_str().unwrap(),
                step["reason"].as_str().unwrap()
            )
        })
        .collect()
}

async fn a_parking_permit_is_paid_online_and_only_then_queued(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let (token, id) = submitted_permit(&app, "zahlt@example.de").await;
    assert_eq!(case_state(&app, &token, &id).await, "zahlung_ausstehend");
    let listed = body(
        app.get_as(&format!("/api/v1/applications/{id}/payments"), &token)
            .await,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["state"], "initial");
    assert_eq!(listed[0]["amount_cents"], 3070);
    assert_eq!(listed[0]["bookings"][0]["buchungstext"], "BEWOHNERPARKAUSWEIS");
    assert_eq!(listed[0]["bookings"][0]["haushaltsstelle"], "1.2.2.1.01");
    mail_containing(&app, "zahlt@example.de", "Gebühr zu bezahlen").await;

    let first = started(&app, &token, &id, "pay-1").await;
    let paypage = first["redirect_url"].as_str().unwrap().to_owned();
    assert!(
        paypage.starts_with(&app.url("/sim/epaybl/paypage/SIM")),
        "{paypage}"
    );
    assert_eq!(first["payment"]["state"], "pending");
    let payment_id = first["payment"]["id"].as_str().unwrap().to_owned();
    let kassenzeichen = first["payment"]["kassenzeichen"].as_str().unwrap().to_owned();
    // A retry with the same key gets the same answer; a new key resumes the open Paypage.
    let replay = start_payment(&app, &token, &id, "pay-1").await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(body(replay).await["redirect_url"], paypage.as_str());
    assert_eq!(
        started(&app, &token, &id, "pay-2").await["redirect_url"],
        paypage.as_str()
    );

    let back = choose(&app, &paypage, "pay").await;
    assert!(back.starts_with(&app.url(&format!("/zahlung/{payment_id}"))));
    assert_eq!(returned(&app, &back).await, "paid");
    let paid = payment_reaches(&app, &token, &payment_id, "paid").await;
    assert_eq!(paid["paid_cents"], 3070);
    assert_eq!(paid["kassenzeichen"], kassenzeichen.as_str());
    assert_eq!(
        reasons(&paid),
        [
            "initial:requested",
            "pending:at_provider",
            "paid:confirmed_by_provider"
        ]
    );

    case_reaches(&app, &token, &id, "eingegangen").await;
    let application = body(app.get_as(&format!("/api/v1/applications/{id}"), &token).await).await;
    let labels: Vec<&str> = application["business_status"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["state"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["zahlung_ausstehend", "eingegangen"]);
    mail_containing(&app, "zahlt@example.de", "Ihre Zahlung ist eingegangen").await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM events WHERE event_type = 'de.amtsweg.payment.paid.v1'"
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'payment.paid'"
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'application.payment_settled'"
        ),
        1
    );
    let paid_again = start_payment(&app, &token, &id, "pay-3").await;
    assert_eq!(paid_again.status(), StatusCode::CONFLICT);
    assert_eq!(body(paid_again).await["code"], "payment_not_payable");
}

async fn the_return_redirect_alone_never_pays(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, id) = submitted_permit(&app, "zurueck@example.de").await;
    let first = started(&app, &token, &id, "pay-1").await;
    let payment_id = first["payment"]["id"].as_str().unwrap();
    let forged_return = app.url(&format!("/api/v1/payments/{payment_id}/return?outcome=success"));
    assert_eq!(returned(&app, &forged_return).await, "pending");
    assert_eq!(payment(&app, &token, payment_id).await["state"], "pending");
    assert_eq!(case_state(&app, &token, &id).await, "zahlung_ausstehend");
    let unknown = app
        .client
        .get(app.url("/api/v1/payments/nope/return"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

async fn an_aborted_or_failed_attempt_ends_and_a_new_one_pays(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, id) = submitted_permit(&app, "abbruch@example.de").await;
    let first = started(&app, &token, &id, "pay-1").await;
    let first_id = first["payment"]["id"].as_str().unwrap().to_owned();
    let back = choose(&app, first["redirect_url"].as_str().unwrap(), "abort").await;
    assert!(back.contains("outcome=cancel"));
    assert_eq!(returned(&app, &back).await, "cancelled");

    let second = started(&app, &token, &id, "pay-2").await;
    let second_id = second["payment"]["id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, first_id, "a new attempt for the same debt");
    assert_ne!(
        second["payment"]["transaction_number"],
        first["payment"]["transaction_number"]
    );
    assert_eq!(
        payment(&app, &token, &first_id).await["superseded_by"],
        second_id.as_str()
    );
    let back = choose(&app, second["redirect_url"].as_str().unwrap(), "fail").await;
    assert!(back.contains("outcome=error"));
    assert_eq!(returned(&app, &back).await, "failed");

    let third = started(&app, &token, &id, "pay-3").await;
    let third_id = third["payment"]["id"].as_str().unwrap().to_owned();
    choose(&app, third["redirect_url"].as_str().unwrap(), "pay").await;
    payment_reaches(&app, &token, &third_id, "paid").await;
    case_reaches(&app, &token, &id, "eingegangen").await;
    let all = body(
        app.get_as(&format!("/api/v1/applications/{id}/payments"), &token)
            .await,
    )
    .await;
    let states: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["paid", "failed", "cancelled"]);
}

async fn notifications_in_any_order_end_in_the_platforms_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, id) = submitted_permit(&app, "reihenfolge@example.de").await;
    // Every notification twice, all held back, then delivered newest first — after the return page settled it.
    switches(
        &app,
        json!({"duplicate_notifications": true, "hold_notifications": true}),
    )
    .await;
    let first = started(&app, &token, &id, "pay-1").await;
    let payment_id = first["payment"]["id"].as_str().unwrap().to_owned();
    let back = choose(&app, first["redirect_url"].as_str().unwrap(), "pay").await;
    assert_eq!(returned(&app, &back).await, "paid");
    let released = app
        .client
        .post(app.url("/sim/epaybl/control/release"))
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), StatusCode::NO_CONTENT);
    case_reaches(&app, &token, &id, "eingegangen").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paid = payment(&app, &token, &payment_id).await;
    assert_eq!(
        reasons(&paid).len(),
        3,
        "one settlement however many notifications"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM application_steps WHERE action = 'zahlung_eingegangen'"
        ),
        1
    );

    // A forged notification changes nothing and is refused.
    let forged = app
        .client
        .post(app.url("/api/v1/payments/notifications/epaybl"))
        .form(&[
            ("mandant", "SIMULATOR"),
            ("bewirtschafter", "00000000"),
            ("zvgid", "x"),
            ("kassenzeichen", paid["kassenzeichen"].as_str().unwrap()),
            ("tan", "x"),
            ("zvp", "x"),
            ("zahlverfahren", "x"),
            ("aktivierung", "1"),
            ("status", "storniert"),
            ("hash", "00"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(forged).await["code"], "notification_rejected");
    assert_eq!(reasons(&payment(&app, &token, &payment_id).await).len(), 3);
    let other = app
        .client
        .post(app.url("/api/v1/payments/notifications/paypal"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

async fn an_amount_that_does_not_add_up_goes_to_review_never_paid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, id) = submitted_permit(&app, "zuwenig@example.de").await;
    switches(&app, json!({"amount_delta_cents": -70})).await;
    let first = started(&app, &token, &id, "pay-1").await;
    let payment_id = first["payment"]["id"].as_str().unwrap().to_owned();
    let back = choose(&app, first["redirect_url"].as_str().unwrap(), "pay").await;
    assert_eq!(returned(&app, &back).await, "review");
    let review = payment(&app, &token, &payment_id).await;
    assert_eq!(reasons(&review).last().unwrap(), "review:amount_mismatch");
    assert_eq!(review["history"][2]["note"], "paid 3000 cents of 3070");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(case_state(&app, &token, &id).await, "zahlung_ausstehend");
    let again = start_payment(&app, &token, &id, "pay-2").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

async fn a_platform_that_is_down_is_asked_again_by_reconciliation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, id) = submitted_permit(&app, "ausfall@example.de").await;
    switches(&app, json!({"unavailable": true})).await;
    let refused = start_payment(&app, &token, &id, "pay-1").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "60");
    assert_eq!(body(refused).await["code"], "payment_provider_unavailable");

    switches(&app, json!({})).await;
    let first = started(&app, &token, &id, "pay-2").await;
    let payment_id = first["payment"]["id"].as_str().unwrap().to_owned();
    // Paid, but the notification is lost and the platform is down when the payer comes back.
    switches(&app, json!({"lose_notifications": 1, "unavailable": true})).await;
    let back = choose(&app, first["redirect_url"].as_str().unwrap(), "pay").await;
    assert_eq!(returned(&app, &back).await, "pending");
    switches(&app, json!({})).await;
    app.clock.advance(chrono::Duration::minutes(5));
    reconcile(&app).await;
    payment_reaches(&app, &token, &payment_id, "paid").await;
    case_reaches(&app, &token, &id, "eingegangen").await;
}

async fn a_paypage_session_that_runs_out_expires_and_a_late_payment_goes_to_review(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, id) = submitted_permit(&app, "spaet@example.de").await;
    let first = started(&app, &token, &id, "pay-1").await;
    let payment_id = first["payment"]["id"].as_str().unwrap().to_owned();
    app.clock.advance(chrono::Duration::minutes(91));
    reconcile(&app).await;
    let token = logged_in(&app, "spaet@example.de").await;
    let expired = payment(&app, &token, &payment_id).await;
    assert_eq!(reasons(&expired).last().unwrap(), "expired:paypage_session_ended");
    assert_eq!(
        case_state(&app, &token, &id).await,
        "zahlung_ausstehend",
        "the debt stays"
    );
    // The payer pays on the old Paypage after all: it does not add up, the cash office decides.
    choose(&app, first["redirect_url"].as_str().unwrap(), "pay").await;
    let review = payment_reaches(&app, &token, &payment_id, "review").await;
    assert_eq!(
        reasons(&review).last().unwrap(),
        "review:paid_after_attempt_ended"
    );
    assert_eq!(case_state(&app, &token, &id).await, "zahlung_ausstehend");
}

async fn strangers_never_see_a_payment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, id) = submitted_permit(&app, "eigen@example.de").await;
    let first = started(&app, &token, &id, "pay-1").await;
    let payment_id = first["payment"]["id"].as_str().unwrap();
    let stranger = app.citizen("fremd@example.de").await.tokens.access_token;
    let seen = app
        .get_as(&format!("/api/v1/payments/{payment_id}"), &stranger)
        .await;
    assert_eq!(seen.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(seen).await["code"], "payment_not_found");
    let listed = app
        .get_as(&format!("/api/v1/applications/{id}/payments"), &stranger)
        .await;
    assert_eq!(listed.status(), StatusCode::NOT_FOUND);
    let paid = start_payment(&app, &stranger, &id, "pay-x").await;
    assert_eq!(paid.status(), StatusCode::NOT_FOUND);
    let no_key = app
        .client
        .post(app.url(&format!("/api/v1/applications/{id}/payments")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), StatusCode::BAD_REQUEST);
}

/// A staff member with these roles, logged in; answers the token.
async fn staff(app: &TestApp, admin: &str, email: &str, roles: &[(&str, &str)]) -> String {
    app.staff_member(admin, email, roles).await
}

async fn the_cash_office_resolves_reviews_records_transfers_and_refunds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Morning in Berlin, so that everything below is settled on one day.
    app.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-12-01T07:00:00Z")
            .unwrap()
            .to_utc(),
    );
    let admin = app.admin().await.access_token;
    let cash = staff(&app, &admin, "kasse@stadt.example", &[("cash_office", "*")]).await;
    let elsewhere = staff(
        &app,
        &admin,
        "leitung@stadt.example",
        &[("supervisor", "steueramt")],
    )
    .await;
    let worker = staff(
        &app,
        &admin,
        "sb@stadt.example",
        &[("case_worker", "ordnungsamt")],
    )
    .await;

    // A payment that did not add up waits for the cash office.
    let (token, id) = submitted_permit(&app, "pruefung@example.de").await;
    switches(&app, json!({"amount_delta_cents": 100})).await;
    let first = started(&app, &token, &id, "pay-1").await;
    let review_id = first["payment"]["id"].as_str().unwrap().to_owned();
    let back = choose(&app, first["redirect_url"].as_str().unwrap(), "pay").await;
    assert_eq!(returned(&app, &back).await, "review");
    switches(&app, json!({})).await;

    let listed = body(app.get_as("/api/v1/staff/payments?state=review", &cash).await).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["id"], review_id.as_str());
    let none = body(app.get_as("/api/v1/staff/payments", &elsewhere).await).await;
    assert!(
        none["items"].as_array().unwrap().is_empty(),
        "another unit's supervisor sees none"
    );
    let hidden = app
        .get_as(&format!("/api/v1/staff/payments/{review_id}"), &elsewhere)
        .await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    let forbidden = app.get_as("/api/v1/staff/payments", &worker).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let bad = app.get_as("/api/v1/staff/payments?state=bezahlt", &cash).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let path = format!("/api/v1/staff/payments/{review_id}/resolution");
    let reasonless = app
        .post_as(&path, &cash, &json!({"outcome": "paid", "reason": " "}))
        .await;
    assert_eq!(reasonless.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resolved = app
        .post_as(
            &path,
            &cash,
            &json!({"outcome": "paid", "reason": "Überzahlung von 1,00 EUR wird erstattet"}),
        )
        .await;
    assert_eq!(resolved.status(), StatusCode::OK);
    let resolved = body(resolved).await;
    assert_eq!(resolved["state"], "paid");
    assert_eq!(resolved["paid_cents"], 3170);
    assert_eq!(reasons(&resolved).last().unwrap(), "paid:resolved_by_cash_office");
    case_reaches(&app, &token, &id, "eingegangen").await;
    let again = app
        .post_as(&path, &cash, &json!({"outcome": "paid", "reason": "nochmal"}))
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // Refunds: never more than paid less refunded; a stale expectation answers 412.
    let refunds = format!("/api/v1/staff/payments/{review_id}/refunds");
    let stale = app
        .post_as(
            &refunds,
            &cash,
            &json!({"amount_cents": 100, "reason": "Überzahlung", "expected_available_cents": 3070}),
        )
        .await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(body(stale).await["available_cents"], 3170);
    let refunded = app
        .post_as(
            &refunds,
            &cash,
            &json!({"amount_cents": 100, "reason": "Überzahlung", "expected_available_cents": 3170}),
        )
        .await;
    assert_eq!(refunded.status(), StatusCode::CREATED);
    assert_eq!(body(refunded).await["available_cents"], 3070);
    let too_much = app
        .post_as(&refunds, &cash, &json!({"amount_cents": 3071, "reason": "alles"}))
        .await;
    assert_eq!(too_much.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body(too_much).await["errors"][0]["code"],
        "refund_exceeds_available"
    );

    // A Paypage session that ran out, then a bank transfer with the Kassenzeichen.
    let (token, other_id) = submitted_permit(&app, "ueberweist@example.de").await;
    let first = started(&app, &token, &other_id, "pay-1").await;
    let transfer_id = first["payment"]["id"].as_str().unwrap().to_owned();
    app.clock.advance(chrono::Duration::minutes(91));
    reconcile(&app).await;
    // The clock moved past the earlier tokens.
    let admin = app.admin().await.access_token;
    let cash = staff(
        &app,
        &admin,
        "kasse2@stadt.example",
        &[("cash_office", "ordnungsamt")],
    )
    .await;
    let receipt = format!("/api/v1/staff/payments/{transfer_id}/offline-receipt");
    let wrong = app
        .post_as(
            &receipt,
            &cash,
            &json!({"amount_cents": 3000, "received_on": "2026-12-01", "reason": "Kontoauszug 17"}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(wrong).await["errors"][0]["code"], "amount_mismatch");
    let received = app
        .post_as(
            &receipt,
            &cash,
            &json!({"amount_cents": 3070, "received_on": "2026-12-01", "reason": "Kontoauszug 17"}),
        )
        .await;
    assert_eq!(received.status(), StatusCode::OK);
    let received = body(received).await;
    assert_eq!(
        reasons(&received),
        [
            "initial:requested",
            "pending:at_provider",
            "expired:paypage_session_ended",
            "paid:offline_receipt"
        ]
    );
    assert!(
        received["history"][3]["actor"]
            .as_str()
            .unwrap()
            .starts_with("staff:")
    );
    let token = logged_in(&app, "ueberweist@example.de").await;
    case_reaches(&app, &token, &other_id, "eingegangen").await;

    // The day's report: every booking line of what was settled, CSV in German conventions.
    let report = body(
        app.get_as("/api/v1/staff/payments/report?day=2026-12-01", &cash)
            .await,
    )
    .await;
    assert_eq!(
        report.as_array().unwrap().len(),
        2,
        "both settled today: {report}"
    );
    assert_eq!(report[1]["buchungstext"], "BEWOHNERPARKAUSWEIS");
    let yesterday = body(
        app.get_as("/api/v1/staff/payments/report?day=2026-11-30", &cash)
            .await,
    )
    .await;
    assert!(yesterday.as_array().unwrap().is_empty(), "{yesterday}");
    let csv = app
        .get_as("/api/v1/staff/payments/report?day=2026-12-01&format=csv", &cash)
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    let kassenzeichen = received["kassenzeichen"].as_str().unwrap();
    assert!(csv.contains("Kassenzeichen;Transaktionsnummer"), "{csv}");
    assert!(csv.contains(&format!("{kassenzeichen};")), "{csv}");
    assert!(
        csv.contains(";1.2.2.1.01;12210000;BEWOHNERPARKAUSWEIS;30,70;"),
        "{csv}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action IN ('payment.refund_recorded', 'payment.paid')"
        ),
        3
    );
}

async fn the_xbezahldienste_interface_settles_the_same_way(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|s| s.payment.simulator_protocol = amtsweg_payment::SimulatorProtocol::Xbezahldienste)
        .spawn()
        .await
        .unwrap();
    let (token, id) = submitted_permit(&app, "xbezahl@example.de").await;
    let first = started(&app, &token, &id, "pay-1").await;
    let payment_id = first["payment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        payment(&app, &token, &payment_id).await["provider"],
        "xbezahldienste"
    );
    // One redirect URL for every outcome: the return page asks the status.
    let back = choose(&app, first["redirect_url"].as_str().unwrap(), "pay").await;
    assert!(back.starts_with(&app.url(&format!("/zahlung/{payment_id}"))));
    assert_eq!(returned(&app, &back).await, "paid");
    case_reaches(&app, &token, &id, "eingegangen").await;

    let (token, id) = submitted_permit(&app, "xabbruch@example.de").await;
    let first = started(&app, &token, &id, "pay-1").await;
    let back = choose(&app, first["redirect_url"].as_str().unwrap(), "abort").await;
    assert_eq!(returned(&app, &back).await, "cancelled");
    // No notifications in this standard: a payment nobody returned from is settled by reconciliation.
    let second = started(&app, &token, &id, "pay-2").await;
    let second_id = second["payment"]["id"].as_str().unwrap().to_owned();
    let paid = app
        .client
        .post(second["redirect_url"].as_str().unwrap())
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    app.clock.advance(chrono::Duration::minutes(2));
    reconcile(&app).await;
    let token = logged_in(&app, "xabbruch@example.de").await;
    payment_reaches(&app, &token, &second_id, "paid").await;
    case_reaches(&app, &token, &id, "eingegangen").await;
}

async fn an_unpaid_application_is_discontinued_with_a_notice_and_its_payment_ended(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let (token, id) = submitted_permit(&app, "vergisst@example.de").await;
    let first = started(&app, &token, &id, "pay-1").await;
    let payment_id = first["payment"]["id"].as_str().unwrap().to_owned();
    // The workflow's payment period (14 days) runs out.
    app.clock.advance(chrono::Duration::days(16));
    let admin = app.admin().await.access_token;
    let run = app
        .post_as(
            "/api/v1/admin/schedules/application-timers/run",
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(body(run).await["status"], "succeeded");
    let token = logged_in(&app, "vergisst@example.de").await;
    assert_eq!(case_state(&app, &token, &id).await, "eingestellt");
    mail_containing(&app, "vergisst@example.de", "weil die Gebühr nicht bezahlt wurde").await;
    let ended = payment(&app, &token, &payment_id).await;
    assert_eq!(reasons(&ended).last().unwrap(), "cancelled:closed_by_owner");
    // Paid on the old Paypage all the same: the cash office sees it, the case stays closed.
    choose(&app, first["redirect_url"].as_str().unwrap(), "pay").await;
    let review = payment_reaches(&app, &token, &payment_id, "review").await;
    assert_eq!(
        reasons(&review).last().unwrap(),
        "review:paid_after_attempt_ended"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(case_state(&app, &token, &id).await, "eingestellt");
    let again = start_payment(&app, &token, &id, "pay-2").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

async fn the_cash_office_may_assign_kassenzeichen_itself(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|s| s.payment.kassenzeichen_format = Some("LE{year}{seq:08}".into()))
        .spawn()
        .await
        .unwrap();
    let (token, id) = submitted_permit(&app, "lokal@example.de").await;
    // Known from the request on, before the platform was called; the purpose leaves room for it.
    let listed = body(
        app.get_as(&format!("/api/v1/applications/{id}/payments"), &token)
            .await,
    )
    .await;
    let kassenzeichen = listed[0]["kassenzeichen"].as_str().unwrap().to_owned();
    assert!(
        kassenzeichen.starts_with("LE20") && kassenzeichen.len() == 14,
        "{kassenzeichen}"
    );
    assert!(kassenzeichen.len() + 1 + listed[0]["purpose"].as_str().unwrap().len() <= 27);
    let first = started(&app, &token, &id, "pay-1").await;
    assert_eq!(
        first["payment"]["kassenzeichen"],
        kassenzeichen.as_str(),
        "the platform took ours"
    );
    assert!(first["redirect_url"].as_str().unwrap().ends_with(&kassenzeichen));
    let back = choose(&app, first["redirect_url"].as_str().unwrap(), "pay").await;
    assert_eq!(returned(&app, &back).await, "paid");
    case_reaches(&app, &token, &id, "eingegangen").await;
    let (token, other) = submitted_permit(&app, "lokal2@example.de").await;
    let next = body(
        app.get_as(&format!("/api/v1/applications/{other}/payments"), &token)
            .await,
    )
    .await;
    assert_ne!(next[0]["kassenzeichen"], kassenzeichen.as_str());
}

async fn simultaneous_requests_start_one_attempt_and_refund_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, id) = submitted_permit(&app, "gleichzeitig@example.de").await;
    let first = started(&app, &token, &id, "pay-1").await;
    choose(&app, first["redirect_url"].as_str().unwrap(), "abort").await;
    // Four new attempts at once after the abort, each with its own key: one successor payment for all.
    let keys = ["pay-a", "pay-b", "pay-c", "pay-d"];
    let answers =
        futures_util::future::join_all(keys.iter().map(|key| start_payment(&app, &token, &id, key))).await;
    let mut successors = std::collections::HashSet::new();
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::CREATED);
        successors.insert(body(answer).await["payment"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(successors.len(), 1, "{successors:?}");
    let payment_id = successors.into_iter().next().unwrap();
    let all = body(
        app.get_as(&format!("/api/v1/applications/{id}/payments"), &token)
            .await,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 2);

    let paid = body(
        app.get_as(&format!("/api/v1/payments/{payment_id}"), &token)
            .await,
    )
    .await;
    let paypage = app.url(&format!(
        "/sim/epaybl/paypage/{}",
        paid["kassenzeichen"].as_str().unwrap()
    ));
    let back = choose(&app, &paypage, "pay").await;
    assert_eq!(returned(&app, &back).await, "paid");
    // Four refunds of 20 euros at once on 30.70 paid: one is recorded, the rest find less refundable.
    let admin = app.admin().await.access_token;
    let cash = staff(&app, &admin, "kasse3@stadt.example", &[("cash_office", "*")]).await;
    let path = format!("/api/v1/staff/payments/{payment_id}/refunds");
    let refund = json!({"amount_cents": 2000, "reason": "Doppelt beantragt"});
    let answers = futures_util::future::join_all((0..4).map(|_| app.post_as(&path, &cash, &refund))).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|a| a.status()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::CREATED).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [
            StatusCode::CREATED,
            StatusCode::PRECONDITION_FAILED,
            StatusCode::UNPROCESSABLE_ENTITY
        ]
        .contains(s)),
        "{statuses:?}"
    );
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) AS n FROM payment_refunds WHERE payment_id = '{payment_id}'")
        ),
        1
    );
}

backend_tests!(
    a_parking_permit_is_paid_online_and_only_then_queued,
    the_return_redirect_alone_never_pays,
    an_aborted_or_failed_attempt_ends_and_a_new_one_pays,
    notifications_in_any_order_end_in_the_platforms_state,
    an_amount_that_does_not_add_up_goes_to_review_never_paid,
    a_platform_that_is_down_is_asked_again_by_reconciliation,
    a_paypage_session_that_runs_out_expires_and_a_late_payment_goes_to_review,
    strangers_never_see_a_payment,
    the_cash_office_resolves_reviews_records_transfers_and_refunds,
    the_xbezahldienste_interface_settles_the_same_way,
    an_unpaid_application_is_discontinued_with_a_notice_and_its_payment_ended,
    the_cash_office_may_assign_kassenzeichen_itself,
    simultaneous_requests_start_one_attempt_and_refund_once,
);
