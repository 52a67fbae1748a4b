//! The Virtuelle Poststelle: decisions reach the Postfach with evidence and close their case when they count as
//! notified; without consent they go to paper through print batches; unretrieved provisions end at day 10;
//! sealed documents verify; messages stay within their Postfach and their unit.

use std::io::Read;
use std::time::Duration;

use amtsweg_kernel::clock::Clock;
use amtsweg_test_support::{Backend, TestApp, backend_tests};
use amtsweg_workflow::deadline::berlin_date;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The service's calendar day (Europe/Berlin) on its clock: near midnight it is not the UTC day.
fn today(app: &TestApp) -> chrono::NaiveDate {
    berlin_date(chrono::DateTime::<chrono::Utc>::from(app.clock.now()).naive_utc())
}

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// A catalogue whose dog tax follows `rule` instead of § 122a AO.
fn procedures_with_dog_rule(rule: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = amtsweg_test_support::workspace_root().join("procedures");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "hundesteuer-anmeldung.yaml" {
            text = text.replace("rule: ao_122a", &format!("rule: {rule}"));
        }
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    dir
}

async fn submit_dog(app: &TestApp, token: &str, chip: u32) -> String {
    app.submit_dog(token, chip).await
}

async fn staff_post(
    app: &TestApp,
    token: &str,
    path: &str,
    etag: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).bearer_auth(token).json(body);
    if let Some(etag) = etag {
        request = request.header("if-match", etag);
    }
    request.send().await.unwrap()
}

async fn etag_of(app: &TestApp, token: &str, id: &str) -> String {
    let case = app.get_as(&format!("/api/v1/staff/cases/{id}"), token).await;
    assert_eq!(case.status(), StatusCode::OK);
    case.headers()["etag"].to_str().unwrap().to_owned()
}

/// Claims the case, starts it and decides it (approved).
async fn decide_dog(app: &TestApp, worker: &str, id: &str) {
    let claimed = staff_post(
        app,
        worker,
        "/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next",
        None,
        &json!({}),
    )
    .await;
    assert_eq!(claimed.status(), StatusCode::OK);
    let etag = etag_of(app, worker, id).await;
    let path = format!("/api/v1/staff/cases/{id}/transitions");
    let started = staff_post(
        app,
        worker,
        &path,
        Some(&etag),
        &json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    assert_eq!(started.status(), StatusCode::OK);
    let etag = etag_of(app, worker, id).await;
    let decided = staff_post(
        app,
        worker,
        &format!("/api/v1/staff/cases/{id}/decision"),
        Some(&etag),
        &json!({"result": "approved", "reasons": "Die Hundesteuer wird nach der Satzung festgesetzt."}),
    )
    .await;
    assert_eq!(decided.status(), StatusCode::OK);
}

async fn consent(app: &TestApp, token: &str) {
    let given = app
        .client
        .put(app.url("/api/v1/me/electronic-delivery"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(given.status(), StatusCode::OK);
    let given = body(given).await;
    assert_eq!(given["consented"], true);
    assert!(
        given["history"][0]["granted_via"]
            .as_str()
            .unwrap()
            .contains("basic")
    );
}

/// The deliveries of a case, as staff see them.
async fn deliveries(app: &TestApp, worker: &str, id: &str) -> Value {
    let found = app
        .get_as(&format!("/api/v1/staff/applications/{id}/deliveries"), worker)
        .await;
    assert_eq!(found.status(), StatusCode::OK);
    body(found).await
}

/// Polls until `check` holds for the case's first delivery (background jobs record mail outcomes).
async fn delivery_until(app: &TestApp, worker: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = deliveries(app, worker, id).await;
        if check(&found[0]) {
            return found[0].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "never reached: {found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run_schedule(app: &TestApp, name: &str) -> Value {
    let admin = app.admin().await.access_token;
    let run = app
        .post_as(&format!("/api/v1/admin/schedules/{name}/run"), &admin, &json!({}))
        .await;
    assert_eq!(run.status(), StatusCode::OK);
    let run = body(run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    run["result"].clone()
}

/// Waits for a mail to `address` whose subject contains `subject`.
async fn mail_with(app: &TestApp, address: &str, subject: &str) -> amtsweg_test_support::Mail {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(mail) = app
            .smtp()
            .to(address)
            .into_iter()
            .find(|m| m.subject.contains(subject))
        {
            return mail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail `{subject}` to {address}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A case worker of the tax office, logged in now (tokens from before the clock moved have expired).
async fn tax_worker(app: &TestApp, email: &str) -> String {
    let admin = app.admin().await.access_token;
    app.staff_member(&admin, email, &[("case_worker", "steueramt")])
        .await
}

async fn logged_in(app: &TestApp, email: &str) -> String {
    let login = app
        .login(email, amtsweg_test_support::STRONG_PASSWORD, None)
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    body(login).await["access_token"].as_str().unwrap().to_owned()
}

async fn case_of(app: &TestApp, token: &str, id: &str) -> Value {
    body(app.get_as(&format!("/api/v1/applications/{id}"), token).await).await
}

#[derive(diesel::QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// What the background work left undone, for a failure message.
fn pending_work(app: &TestApp) -> Vec<String> {
    let sql = "SELECT kind || ' ' || status || ' ' || CAST(run_at AS TEXT) || ' ' || COALESCE(last_error, '') AS line \
               FROM jobs WHERE status <> 'succeeded' OR kind LIKE '%delivery%' \
               UNION ALL SELECT 'delivery ' || state || ' ' || COALESCE(deemed_notified_on, '-') AS line FROM deliveries";
    diesel::RunQueryDsl::load::<Line>(diesel::sql_query(sql), &mut app.connect())
        .map(|lines| lines.into_iter().map(|l| l.line).collect())
        .unwrap_or_else(|err| vec![err.to_string()])
}

async fn until_case_state(app: &TestApp, email: &str, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let token = logged_in(app, email).await;
    loop {
        let case = case_of(app, &token, id).await;
        if case["business_status"]["state"] == state {
            return case;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached {state}: {case}\n{:#?}",
            pending_work(app)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const BOUNDARY: &str = "amtsweg-seal-boundary";

/// `multipart/form-data` with the field `seal` and, if given, the field `document`.
async fn post_seal_form(app: &TestApp, seal: &str, document: Option<&[u8]>) -> reqwest::Response {
    let mut form = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"seal\"\r\n\r\n{seal}\r\n")
        .into_bytes();
    if let Some(document) = document {
        form.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"doc.pdf\"\r\n\
                 Content-Type: application/pdf\r\n\r\n"
            )
            .as_bytes(),
        );
        form.extend_from_slice(document);
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    app.client
        .post(app.url("/api/v1/seals/verify"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form)
        .send()
        .await
        .unwrap()
}

async fn verify_seal(app: &TestApp, seal: &str, document: &[u8]) -> Value {
    let checked = post_seal_form(app, seal, Some(document)).await;
    assert_eq!(checked.status(), StatusCode::OK);
    body(checked).await
}

async fn a_decision_reaches_the_postfach_with_evidence_and_closes_the_case(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let admin = app.admin().await.access_token;
    let worker = app
        .staff_member(&admin, "steuer@stadt.example", &[("case_worker", "steueramt")])
        .await;
    let email = "erika@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    consent(&app, &citizen).await;
    let id = submit_dog(&app, &citizen, 1).await;
    decide_dog(&app, &worker, &id).await;

    // In the Postfach: a decision message about the case. Listing it is no retrieval.
    let listed = body(app.get_as("/api/v1/mailbox/messages", &citizen).await).await;
    let message = &listed["items"][0];
    assert_eq!(message["kind"], "decision");
    assert_eq!(message["application_id"], id.as_str());
    assert_eq!(message["read"], false);
    let message_id = message["id"].as_str().unwrap().to_owned();

    // The notification leaves through the relay without the decision's content; its hand-over is the evidence.
    let notice = mail_with(&app, email, "Neues Dokument").await;
    assert!(
        !notice.body.contains("Satzung") && !notice.body.contains("Genehmigt"),
        "{}",
        notice.body
    );
    let evidence = delivery_until(&app, &worker, &id, |d| d["notified_at"].is_string()).await;
    assert_eq!(evidence["channel"], "postfach");
    assert_eq!(evidence["statute"], "§ 122a Abs. 4 AO");
    assert_eq!(evidence["notification_address"], email);
    assert_eq!(evidence["notifications"][0]["status"], "delivered");
    assert!(evidence["provided_at"].is_string());
    assert!(evidence["first_retrieved_at"].is_null());
    assert!(evidence["consent_id"].is_string());
    // § 122a AO: notified on the fourth day after the notification was sent.
    let deemed = evidence["deemed_notified_on"].as_str().unwrap().to_owned();

    // Opening the message shows where the delivery stands; opening the document is the retrieval.
    let opened = body(
        app.get_as(&format!("/api/v1/mailbox/messages/{message_id}"), &citizen)
            .await,
    )
    .await;
    assert_eq!(opened["delivery"]["state"], "provided");
    assert_eq!(opened["delivery"]["notification"]["status"], "delivered");
    let attachment = opened["attachments"][0]["id"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/mailbox/messages/{message_id}/attachments/{attachment}");
    let document = app.get_as(&base, &citizen).await;
    assert_eq!(document.status(), StatusCode::OK);
    let document = document.bytes().await.unwrap().to_vec();
    assert!(document.starts_with(b"%PDF"));
    let evidence = deliveries(&app, &worker, &id).await[0].clone();
    assert!(evidence["first_retrieved_at"].is_string(), "{evidence}");
    assert_eq!(
        evidence["deemed_notified_on"],
        deemed.as_str(),
        "retrieval does not move the AO day"
    );

    // The document is sealed: the seal verifies, a changed byte does not; an independent JOSE library agrees.
    let seal = app.get_as(&format!("{base}/seal"), &citizen).await;
    assert_eq!(seal.status(), StatusCode::OK);
    let seal = seal.text().await.unwrap();
    let checked = verify_seal(&app, &seal, &document).await;
    assert_eq!(checked["valid"], true, "{checked}");
    assert!(checked["sealed_at"].is_string());
    assert!(checked["signer"].is_string());
    let mut changed = document.clone();
    let last = changed.len() - 10;
    changed[last] ^= 0x01;
    let refused = verify_seal(&app, &seal, &changed).await;
    assert_eq!(refused["valid"], false);
    assert_eq!(refused["reason"], "document_changed");
    let keys = body(app.get("/.well-known/seal-keys.json").await).await;
    let kid = checked["key_id"].as_str().unwrap();
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the sealing key is published");
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(&seal, &key, &validation)
        .unwrap()
        .claims;
    use sha2::Digest;
    assert_eq!(claims["sha256"], hex::encode(sha2::Sha256::digest(&document)));
    let token_keys = body(app.get("/.well-known/jwks.json").await).await;
    assert!(
        !token_keys.to_string().contains(kid),
        "seal keys are not token keys"
    );

    // The case waits for the notification day; the daily job records it and closes the case.
    let waiting = case_of(&app, &citizen, &id).await;
    assert_eq!(waiting["business_status"]["waiting_for"], "delivery");
    let labels: Vec<String> = waiting["business_status"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "Bescheid im Postfach bereitgestellt",
        "Benachrichtigung per E-Mail versandt",
        "Bescheid abgerufen",
    ] {
        assert!(labels.iter().any(|l| l == expected), "{labels:?}");
    }
    let applied = run_schedule(&app, "delivery-rules").await;
    assert_eq!(applied["notified"], 0, "not before the fourth day");
    // (The daily schedule runs by itself once the clock enters a new day; a manual run may find it done.)
    app.clock.advance(chrono::Duration::days(5));
    run_schedule(&app, "delivery-rules").await;
    let closed = until_case_state(&app, email, &id, "festgesetzt").await;
    assert_eq!(closed["business_status"]["terminal"], true);
    let last = closed["business_status"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .nth(1)
        .unwrap()
        .clone();
    assert_eq!(last["label"], "Bescheid bekannt gegeben", "{closed}");
    let worker = tax_worker(&app, "steuer-spaeter@stadt.example").await;
    let evidence = deliveries(&app, &worker, &id).await[0].clone();
    assert_eq!(evidence["state"], "notified");
    assert!(evidence["deemed_recorded_at"].is_string());
    let again = run_schedule(&app, "delivery-rules").await;
    assert_eq!(again["notified"], 0, "once");

    // The evidence prints as a PDF.
    let pdf = app
        .get_as(
            &format!(
                "/api/v1/staff/deliveries/{}/evidence.pdf",
                evidence["id"].as_str().unwrap()
            ),
            &worker,
        )
        .await;
    assert_eq!(pdf.status(), StatusCode::OK);
    let read = amtsweg_test_support::inspect_pdf(&pdf.bytes().await.unwrap());
    let text = read["text"].as_str().unwrap().replace('\n', " ");
    assert!(
        text.contains("Zustellnachweis") && text.contains(&deemed),
        "{text}"
    );
}

async fn without_consent_the_decision_goes_to_paper_through_print_batches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let worker = app
        .staff_member(&admin, "steuer2@stadt.example", &[("case_worker", "steueramt")])
        .await;
    let printer = app
        .staff_member(&admin, "druck@stadt.example", &[("print_office", "*")])
        .await;
    let email = "papier@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    let id = submit_dog(&app, &citizen, 2).await;
    decide_dog(&app, &worker, &id).await;

    let evidence = deliveries(&app, &worker, &id).await[0].clone();
    assert_eq!(evidence["channel"], "paper");
    assert_eq!(evidence["state"], "printing");
    assert_eq!(evidence["fallback_reason"], "no_consent");
    let listed = body(app.get_as("/api/v1/mailbox/messages", &citizen).await).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        0,
        "nothing in the Postfach"
    );

    // Only the print office makes batches.
    let refused = app
        .post_as("/api/v1/staff/print-batches", &worker, &json!({}))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let batch = app
        .post_as("/api/v1/staff/print-batches", &printer, &json!({}))
        .await;
    assert_eq!(batch.status(), StatusCode::CREATED);
    let batch = body(batch).await;
    assert_eq!(batch["letters"].as_array().unwrap().len(), 1);
    let nothing = app
        .post_as("/api/v1/staff/print-batches", &printer, &json!({}))
        .await;
    assert_eq!(nothing.status(), StatusCode::CONFLICT);
    let batch_id = batch["id"].as_str().unwrap();
    let archive = app
        .get_as(
            &format!("/api/v1/staff/print-batches/{batch_id}/archive"),
            &printer,
        )
        .await;
    assert_eq!(archive.status(), StatusCode::OK);
    let bytes = archive.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let letter = batch["letters"][0]["file"].as_str().unwrap();
    let mut pdf = Vec::new();
    zip.by_name(letter).unwrap().read_to_end(&mut pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let mut csv = String::new();
    zip.by_name("manifest.csv")
        .unwrap()
        .read_to_string(&mut csv)
        .unwrap();
    assert!(
        csv.contains(batch["letters"][0]["case_number"].as_str().unwrap()),
        "{csv}"
    );
    assert!(zip.by_name("manifest.json").is_ok());

    // Posted today: notified on the fourth day after (§ 41 (2) VwVfG).
    let today = today(&app).to_string();
    let posted = app
        .post_as(
            &format!("/api/v1/staff/print-batches/{batch_id}/posted"),
            &printer,
            &json!({"posted_on": today}),
        )
        .await;
    assert_eq!(posted.status(), StatusCode::OK);
    let twice = app
        .post_as(
            &format!("/api/v1/staff/print-batches/{batch_id}/posted"),
            &printer,
            &json!({"posted_on": today}),
        )
        .await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    let evidence = deliveries(&app, &worker, &id).await[0].clone();
    assert_eq!(evidence["state"], "posted");
    app.clock.advance(chrono::Duration::days(5));
    run_schedule(&app, "delivery-rules").await;
    until_case_state(&app, email, &id, "festgesetzt").await;
}

async fn an_unretrieved_provision_ends_on_day_ten_and_goes_to_paper(backend: Backend) {
    let procedures = procedures_with_dog_rule("vwvfg_41_2a");
    let app = TestApp::builder(backend)
        .procedures(procedures.path())
        .with_smtp()
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await.access_token;
    let worker = app
        .staff_member(&admin, "steuer3@stadt.example", &[("case_worker", "steueramt")])
        .await;
    let email = "zehn@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    consent(&app, &citizen).await;
    let id = submit_dog(&app, &citizen, 3).await;
    decide_dog(&app, &worker, &id).await;
    let evidence = delivery_until(&app, &worker, &id, |d| d["notified_at"].is_string()).await;
    assert_eq!(evidence["statute"], "§ 41 Abs. 2a VwVfG");
    assert!(
        evidence["deemed_notified_on"].is_null(),
        "counted from retrieval only"
    );
    let listed = body(app.get_as("/api/v1/mailbox/messages", &citizen).await).await;
    let message_id = listed["items"][0]["id"].as_str().unwrap().to_owned();

    // Ten days after the notification it is still provided; on the eleventh the provision ends.
    app.clock.advance(chrono::Duration::days(10));
    run_schedule(&app, "delivery-rules").await;
    let worker = tax_worker(&app, "steuer3a@stadt.example").await;
    assert_eq!(
        deliveries(&app, &worker, &id).await[0]["state"],
        "provided",
        "still on day ten"
    );
    app.clock.advance(chrono::Duration::days(1));
    run_schedule(&app, "delivery-rules").await;
    let worker = tax_worker(&app, "steuer3b@stadt.example").await;
    let evidence = delivery_until(&app, &worker, &id, |d| d["state"] == "printing").await;
    assert_eq!(evidence["fallback_reason"], "not_retrieved");
    assert!(evidence["provision_ended_at"].is_string());
    assert!(evidence["letter_id"].is_string());

    // The document no longer counts as retrievable as the decision.
    let citizen = logged_in(&app, email).await;
    let opened = body(
        app.get_as(&format!("/api/v1/mailbox/messages/{message_id}"), &citizen)
            .await,
    )
    .await;
    assert_eq!(opened["delivery"]["state"], "printing");
    let attachment = opened["attachments"][0]["id"].as_str().unwrap();
    let gone = app
        .get_as(
            &format!("/api/v1/mailbox/messages/{message_id}/attachments/{attachment}"),
            &citizen,
        )
        .await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert_eq!(body(gone).await["code"], "provision_ended");
    let case = case_of(&app, &citizen, &id).await;
    assert!(case.to_string().contains("Nicht abgerufen"), "{case}");
}

async fn a_retrieval_starts_the_vwvfg_day_and_ozg_counts_from_provision(backend: Backend) {
    // § 41 (2a) VwVfG: notified on the day after retrieval.
    let procedures = procedures_with_dog_rule("vwvfg_41_2a");
    let app = TestApp::builder(backend.clone())
        .procedures(procedures.path())
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await.access_token;
    let worker = app
        .staff_member(&admin, "steuer4@stadt.example", &[("case_worker", "steueramt")])
        .await;
    let email = "abruf@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    consent(&app, &citizen).await;
    let id = submit_dog(&app, &citizen, 4).await;
    decide_dog(&app, &worker, &id).await;
    let listed = body(app.get_as("/api/v1/mailbox/messages", &citizen).await).await;
    let message_id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let opened = body(
        app.get_as(&format!("/api/v1/mailbox/messages/{message_id}"), &citizen)
            .await,
    )
    .await;
    let attachment = opened["attachments"][0]["id"].as_str().unwrap();
    let document = app
        .get_as(
            &format!("/api/v1/mailbox/messages/{message_id}/attachments/{attachment}"),
            &citizen,
        )
        .await;
    assert_eq!(document.status(), StatusCode::OK);
    let evidence = deliveries(&app, &worker, &id).await[0].clone();
    let retrieved =
        chrono::DateTime::parse_from_rfc3339(evidence["first_retrieved_at"].as_str().unwrap()).unwrap();
    // The service counts days in Europe/Berlin.
    let expected = berlin_date(retrieved.naive_utc()).succ_opt().unwrap().to_string();
    assert_eq!(evidence["deemed_notified_on"], expected.as_str());
    app.clock.advance(chrono::Duration::days(1));
    run_schedule(&app, "delivery-rules").await;
    until_case_state(&app, email, &id, "festgesetzt").await;

    // § 9 OZG: notified on the fourth day after provision, retrieved or not (and with no mail relay at all).
    let procedures = procedures_with_dog_rule("ozg_9");
    let app = TestApp::builder(backend)
        .procedures(procedures.path())
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await.access_token;
    let worker = app
        .staff_member(&admin, "steuer5@stadt.example", &[("case_worker", "steueramt")])
        .await;
    let email = "ozg@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    consent(&app, &citizen).await;
    let id = submit_dog(&app, &citizen, 5).await;
    decide_dog(&app, &worker, &id).await;
    let evidence = deliveries(&app, &worker, &id).await[0].clone();
    assert_eq!(evidence["statute"], "§ 9 Abs. 1 OZG");
    assert!(
        evidence["deemed_notified_on"].is_string(),
        "known from the provision on"
    );
    app.clock.advance(chrono::Duration::days(3));
    run_schedule(&app, "delivery-rules").await;
    let worker = tax_worker(&app, "steuer5a@stadt.example").await;
    assert_eq!(
        deliveries(&app, &worker, &id).await[0]["state"],
        "provided",
        "not before the fourth day"
    );
    app.clock.advance(chrono::Duration::days(2));
    run_schedule(&app, "delivery-rules").await;
    until_case_state(&app, email, &id, "festgesetzt").await;
}

async fn messages_stay_within_their_postfach_unit_and_trust_level(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let admin = app.admin().await.access_token;
    let tax = app
        .staff_member(&admin, "steuer6@stadt.example", &[("case_worker", "steueramt")])
        .await;
    let other_unit = app
        .staff_member(&admin, "ordnung@stadt.example", &[("case_worker", "ordnungsamt")])
        .await;
    let email = "schreibt@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    let stranger = app.citizen("fremd@example.de").await.tokens.access_token;
    let id = submit_dog(&app, &citizen, 6).await;

    // A citizen writes about the application: it goes to the unit handling it.
    let sent = app
        .post_as(
            "/api/v1/mailbox/messages",
            &citizen,
            &json!({"application_id": id, "subject": "Frage zum Hund", "body": "Muss ich den Impfpass schicken?"}),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let sent = body(sent).await;
    assert_eq!(sent["unit_id"], "steueramt");
    assert_eq!(sent["direction"], "to_unit");
    let message_id = sent["id"].as_str().unwrap();
    // Nobody else's application, and not for anyone else.
    let foreign = app
        .post_as(
            "/api/v1/mailbox/messages",
            &stranger,
            &json!({"application_id": id, "subject": "x", "body": "y"}),
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(foreign).await["errors"][0]["code"], "application_not_found");
    let peek = app
        .get_as(&format!("/api/v1/mailbox/messages/{message_id}"), &stranger)
        .await;
    assert_eq!(peek.status(), StatusCode::NOT_FOUND);
    let both = app
        .post_as(
            "/api/v1/mailbox/messages",
            &citizen,
            &json!({"application_id": id, "unit_id": "steueramt", "subject": "x", "body": "y"}),
        )
        .await;
    assert_eq!(both.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The tax office sees and answers it; another unit neither sees nor reads it.
    let inbox = body(
        app.get_as("/api/v1/staff/mailbox/messages?unread=true", &tax)
            .await,
    )
    .await;
    assert_eq!(inbox["items"][0]["id"], message_id);
    let elsewhere = body(app.get_as("/api/v1/staff/mailbox/messages", &other_unit).await).await;
    assert_eq!(elsewhere["items"].as_array().unwrap().len(), 0);
    let read = app
        .get_as(
            &format!("/api/v1/staff/mailbox/messages/{message_id}"),
            &other_unit,
        )
        .await;
    assert_eq!(read.status(), StatusCode::NOT_FOUND);
    let answer_elsewhere = app
        .post_as(
            &format!("/api/v1/staff/mailbox/messages/{message_id}/reply"),
            &other_unit,
            &json!({"body": "Nicht zuständig."}),
        )
        .await;
    assert_eq!(answer_elsewhere.status(), StatusCode::NOT_FOUND);
    let form = scanned("Merkblatt Hundesteuer");
    let mut upload = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"merkblatt.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    upload.extend_from_slice(&form);
    upload.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let uploaded = app
        .client
        .post(app.url("/api/v1/staff/files"))
        .bearer_auth(&tax)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let file_id = body(uploaded).await["id"].as_str().unwrap().to_owned();
    let answered = app
        .post_as(
            &format!("/api/v1/staff/mailbox/messages/{message_id}/reply"),
            &tax,
            &json!({"body": "Ja, bitte als PDF.", "attachments": [file_id]}),
        )
        .await;
    assert_eq!(answered.status(), StatusCode::CREATED);
    let answered = body(answered).await;
    assert_eq!(answered["thread_id"], sent["thread_id"]);
    assert_eq!(answered["subject"], "Re: Frage zum Hund");
    let told = mail_with(&app, email, "Neue Nachricht").await;
    assert!(
        !told.body.contains("Impfpass") && !told.body.contains("PDF"),
        "no content: {}",
        told.body
    );

    // A message above the session's trust level asks to step up; the list shows it without its text.
    let sensitive = app
        .post_as(
            "/api/v1/staff/mailbox/messages",
            &tax,
            &json!({"application_id": id, "subject": "Steuerbescheid-Vorabinfo", "body": "Vertraulich.", "required_level": "substantial"}),
        )
        .await;
    assert_eq!(sensitive.status(), StatusCode::CREATED);
    let sensitive_id = body(sensitive).await["id"].as_str().unwrap().to_owned();
    let listed = body(app.get_as("/api/v1/mailbox/messages?unread=true", &citizen).await).await;
    assert!(listed.to_string().contains("Steuerbescheid-Vorabinfo"));
    assert!(!listed.to_string().contains("Vertraulich"));
    let step_up = app
        .get_as(&format!("/api/v1/mailbox/messages/{sensitive_id}"), &citizen)
        .await;
    assert_eq!(step_up.status(), StatusCode::UNAUTHORIZED);
    let challenge = step_up.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    assert!(challenge.contains("substantial"), "{challenge}");
    let reply = app
        .post_as(
            &format!("/api/v1/mailbox/messages/{sensitive_id}/reply"),
            &citizen,
            &json!({"body": "Danke."}),
        )
        .await;
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);

    // The answer reaches the citizen; archiving takes it out of the default list.
    let reply_id = answered["id"].as_str().unwrap();
    let opened = body(
        app.get_as(&format!("/api/v1/mailbox/messages/{reply_id}"), &citizen)
            .await,
    )
    .await;
    assert_eq!(opened["body"], "Ja, bitte als PDF.");
    assert_eq!(opened["read"], true);
    let archived = app
        .post_as(
            &format!("/api/v1/mailbox/messages/{reply_id}/archive"),
            &citizen,
            &json!({}),
        )
        .await;
    assert_eq!(archived.status(), StatusCode::OK);
    let listed = body(app.get_as("/api/v1/mailbox/messages", &citizen).await).await;
    assert!(!listed.to_string().contains(reply_id));
    let with_archived = body(
        app.get_as("/api/v1/mailbox/messages?archived=true", &citizen)
            .await,
    )
    .await;
    assert!(with_archived.to_string().contains(reply_id));
}

async fn electronic_delivery_consent_is_recorded_and_revocable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("zustimmung@example.de").await.tokens.access_token;
    let before = body(app.get_as("/api/v1/me/electronic-delivery", &citizen).await).await;
    assert_eq!(before["consented"], false);
    // Eight grants at once record one.
    let grants = (0..8).map(|_| {
        app.client
            .put(app.url("/api/v1/me/electronic-delivery"))
            .bearer_auth(&citizen)
            .send()
    });
    for granted in futures_util::future::join_all(grants).await {
        assert_eq!(granted.unwrap().status(), StatusCode::OK);
    }
    let once = body(app.get_as("/api/v1/me/electronic-delivery", &citizen).await).await;
    assert_eq!(once["history"].as_array().unwrap().len(), 1, "{once}");
    consent(&app, &citizen).await;
    let revoked = app.delete_as("/api/v1/me/electronic-delivery", &citizen).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let revoked = body(revoked).await;
    assert_eq!(revoked["consented"], false);
    assert!(
        revoked["history"][0]["revoked_at"].is_string(),
        "the record stays: {revoked}"
    );
    let export = app.get_as("/api/v1/me/export", &citizen).await;
    assert_eq!(export.status(), StatusCode::OK);
    let export = body(export).await;
    assert!(export.to_string().contains("electronic_delivery"), "{export}");
}

async fn seals_survive_key_rotation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = body(app.get("/.well-known/seal-keys.json").await).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert_eq!(keys["keys"][0]["crv"], "Ed25519");
    // A seal of nothing we issued is invalid, with a reason; a malformed one too.
    let forged = format!(
        "{}.{}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"nope"}"#),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("{}"),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0u8; 64])
    );
    assert_eq!(verify_seal(&app, &forged, b"x").await["reason"], "unknown_key");
    assert_eq!(verify_seal(&app, "kaputt", b"x").await["reason"], "malformed");
    let missing = post_seal_form(&app, "x", None).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    // A decision sealed before a rotation still verifies after it, and both keys stay published.
    let worker = tax_worker(&app, "rotation@stadt.example").await;
    let citizen = app.citizen("rotation@example.de").await.tokens.access_token;
    consent(&app, &citizen).await;
    let id = submit_dog(&app, &citizen, 16).await;
    decide_dog(&app, &worker, &id).await;
    let listed = body(app.get_as("/api/v1/mailbox/messages", &citizen).await).await;
    let message_id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let opened = body(
        app.get_as(&format!("/api/v1/mailbox/messages/{message_id}"), &citizen)
            .await,
    )
    .await;
    let base = format!(
        "/api/v1/mailbox/messages/{message_id}/attachments/{}",
        opened["attachments"][0]["id"].as_str().unwrap()
    );
    let document = app.get_as(&base, &citizen).await.bytes().await.unwrap().to_vec();
    let seal = app
        .get_as(&format!("{base}/seal"), &citizen)
        .await
        .text()
        .await
        .unwrap();
    let refused = app
        .post_as("/api/v1/admin/seal-keys/rotate", &worker, &json!({}))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let admin = app.admin().await.access_token;
    let rotated = app
        .post_as("/api/v1/admin/seal-keys/rotate", &admin, &json!({}))
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let new_kid = body(rotated).await["kid"].as_str().unwrap().to_owned();
    let keys = body(app.get("/.well-known/seal-keys.json").await).await;
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter()
            .any(|k| k["kid"] == new_kid.as_str() && k["retired_at"].is_null())
    );
    assert!(
        keys.iter()
            .any(|k| k["kid"] != new_kid.as_str() && k["retired_at"].is_string())
    );
    let checked = verify_seal(&app, &seal, &document).await;
    assert_eq!(checked["valid"], true, "{checked}");
    assert_ne!(checked["key_id"], new_kid.as_str());
}

/// A one-page PDF whose page says `text` (uncompressed, as a scanner's text layer may be).
fn scanned(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    format!(
        "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n\
         3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>\nendobj\n\
         4 0 obj\n<< /Length {} >>\nstream\n{content}\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
        content.len()
    )
    .into_bytes()
}

/// Uploads inbound mail with the text `fields` and the PDF.
async fn inbound(app: &TestApp, token: &str, fields: &[(&str, &str)], pdf: &[u8]) -> reqwest::Response {
    let mut form = Vec::new();
    for (name, value) in fields {
        form.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    form.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.pdf\"\r\n\
             Content-Type: application/pdf\r\n\r\n"
        )
        .as_bytes(),
    );
    form.extend_from_slice(pdf);
    form.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    app.client
        .post(app.url("/api/v1/mailroom/inbound"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form)
        .send()
        .await
        .unwrap()
}

async fn inbound_mail_is_routed_by_case_number_procedure_or_to_triage(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin_tokens = app.admin().await;
    let admin = admin_tokens.access_token.clone();
    let scan = app
        .staff_member(&admin, "scan@stadt.example", &[("scan_office", "*")])
        .await;
    let tax = app
        .staff_member(&admin, "steuer7@stadt.example", &[("case_worker", "steueramt")])
        .await;
    let order = app
        .staff_member(
            &admin,
            "ordnung7@stadt.example",
            &[("case_worker", "ordnungsamt")],
        )
        .await;
    let email = "brief@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    let id = submit_dog(&app, &citizen, 7).await;
    let number = case_of(&app, &citizen, &id).await["case_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let today = today(&app).to_string();
    let blank = scanned("Sehr geehrte Damen und Herren");

    // By the case number in the reference…
    let by_reference = inbound(
        &app,
        &scan,
        &[
            ("sender", "Erika Mustermann"),
            ("received_on", &today),
            ("reference", &format!("Ihr Zeichen {number}")),
            ("page_count", "1"),
        ],
        &blank,
    )
    .await;
    assert_eq!(by_reference.status(), StatusCode::CREATED);
    let by_reference = body(by_reference).await;
    assert_eq!(by_reference["routed_by"], "case_number_reference");
    assert_eq!(by_reference["application_id"], id.as_str());
    assert_eq!(by_reference["unit_id"], "steueramt");
    assert_eq!(by_reference["channel"], "scan");
    // …or in the text layer…
    let by_text = body(
        inbound(
            &app,
            &scan,
            &[("sender", "E. M."), ("received_on", &today)],
            &scanned(&format!("Az. {number} - Widerspruch")),
        )
        .await,
    )
    .await;
    assert_eq!(by_text["routed_by"], "case_number_text", "{by_text}");
    assert_eq!(by_text["case_number"], number.as_str());
    // …then by procedure; else to triage.
    let by_procedure = body(
        inbound(
            &app,
            &scan,
            &[
                ("sender", "Firma X"),
                ("received_on", &today),
                ("procedure_id", "bewohnerparkausweis"),
            ],
            &blank,
        )
        .await,
    )
    .await;
    assert_eq!(by_procedure["routed_by"], "procedure");
    assert_eq!(by_procedure["unit_id"], "ordnungsamt");
    let unknown = body(
        inbound(
            &app,
            &scan,
            &[("sender", "Unbekannt"), ("received_on", &today)],
            &blank,
        )
        .await,
    )
    .await;
    assert_eq!(unknown["state"], "triage");
    assert!(unknown["unit_id"].is_null());
    let unknown_id = unknown["id"].as_str().unwrap();

    // Bad metadata: nothing recorded.
    let future = inbound(
        &app,
        &scan,
        &[("sender", "X"), ("received_on", "2999-01-01")],
        &blank,
    )
    .await;
    assert_eq!(future.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Only the scan office and clients with the scope record inbound mail.
    let refused = inbound(&app, &tax, &[("sender", "X"), ("received_on", &today)], &blank).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (client_id, secret) = app.api_client(&admin_tokens, &["mailroom:inbound"]).await;
    let client = body(app.client_token(&client_id, &secret).await).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let from_authority = inbound(
        &app,
        &client,
        &[
            ("sender", "Landratsamt"),
            ("received_on", &today),
            ("reference", &number),
        ],
        &blank,
    )
    .await;
    assert_eq!(from_authority.status(), StatusCode::CREATED);
    assert_eq!(body(from_authority).await["channel"], "authority");
    let (other_id, other_secret) = app.api_client(&admin_tokens, &["procedures:read"]).await;
    let other = body(app.client_token(&other_id, &other_secret).await).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        inbound(&app, &other, &[("sender", "X"), ("received_on", &today)], &blank)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Each unit sees its own items only; the triage inbox is the scan office's.
    let tax_items = body(app.get_as("/api/v1/mailroom/inbound", &tax).await).await;
    let tax_ids: Vec<&str> = tax_items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(tax_ids.contains(&by_reference["id"].as_str().unwrap()));
    assert!(!tax_ids.contains(&by_procedure["id"].as_str().unwrap()));
    assert!(!tax_ids.contains(&unknown_id));
    let foreign = app
        .get_as(
            &format!(
                "/api/v1/mailroom/inbound/{}",
                by_reference["id"].as_str().unwrap()
            ),
            &order,
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let reroute = app
        .post_as(
            &format!(
                "/api/v1/mailroom/inbound/{}/assign",
                by_reference["id"].as_str().unwrap()
            ),
            &order,
            &json!({"unit_id": "ordnungsamt"}),
        )
        .await;
    assert_eq!(
        reroute.status(),
        StatusCode::NOT_FOUND,
        "another unit cannot route it"
    );
    let document = app
        .get_as(
            &format!(
                "/api/v1/mailroom/inbound/{}/document",
                by_reference["id"].as_str().unwrap()
            ),
            &tax,
        )
        .await;
    assert_eq!(document.status(), StatusCode::OK);
    assert!(document.bytes().await.unwrap().starts_with(b"%PDF"));
    let triage = body(app.get_as("/api/v1/mailroom/inbound?state=triage", &scan).await).await;
    assert_eq!(triage["items"][0]["id"], unknown_id);

    // The scan office assigns it to the case; the citizen's timeline shows the letters.
    let assigned = app
        .post_as(
            &format!("/api/v1/mailroom/inbound/{unknown_id}/assign"),
            &scan,
            &json!({"application_id": id}),
        )
        .await;
    assert_eq!(assigned.status(), StatusCode::OK);
    let assigned = body(assigned).await;
    assert_eq!(assigned["routed_by"], "staff");
    assert_eq!(assigned["unit_id"], "steueramt");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let case = case_of(&app, &citizen, &id).await;
        let letters = case["business_status"]["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["label"] == "Schreiben eingegangen")
            .count();
        if letters == 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{letters} letters in {case}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn formal_service_counts_from_the_day_on_the_certificate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let worker = tax_worker(&app, "pzu-steuer@stadt.example").await;
    let printer = app
        .staff_member(&admin, "pzu-druck@stadt.example", &[("print_office", "*")])
        .await;
    let email = "pzu@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    let id = submit_dog(&app, &citizen, 8).await;
    decide_dog(&app, &worker, &id).await;
    let delivery = deliveries(&app, &worker, &id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ordered = app
        .post_as(
            &format!("/api/v1/staff/deliveries/{delivery}/formal-service"),
            &worker,
            &json!({}),
        )
        .await;
    assert_eq!(ordered.status(), StatusCode::OK);
    let batch = body(
        app.post_as("/api/v1/staff/print-batches", &printer, &json!({}))
            .await,
    )
    .await;
    assert_eq!(batch["letters"][0]["kind"], "pzu");
    let again = app
        .post_as(
            &format!("/api/v1/staff/deliveries/{delivery}/formal-service"),
            &worker,
            &json!({}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "already in a batch");
    let today = today(&app);
    let early = app
        .post_as(
            &format!("/api/v1/staff/deliveries/{delivery}/served"),
            &worker,
            &json!({"served_on": today.to_string()}),
        )
        .await;
    assert_eq!(early.status(), StatusCode::CONFLICT, "not posted yet");
    let posted = app
        .post_as(
            &format!(
                "/api/v1/staff/print-batches/{}/posted",
                batch["id"].as_str().unwrap()
            ),
            &printer,
            &json!({"posted_on": today.to_string()}),
        )
        .await;
    assert_eq!(posted.status(), StatusCode::OK);
    let evidence = deliveries(&app, &worker, &id).await[0].clone();
    assert_eq!(evidence["state"], "posted");
    assert!(
        evidence["deemed_notified_on"].is_null(),
        "no fourth-day rule for formal service"
    );

    // The certificate comes back: served two days after posting.
    app.clock.advance(chrono::Duration::days(5));
    run_schedule(&app, "delivery-rules").await;
    let worker = tax_worker(&app, "pzu-steuer2@stadt.example").await;
    assert_eq!(deliveries(&app, &worker, &id).await[0]["state"], "posted");
    let served_on = (today + chrono::Days::new(2)).to_string();
    let served = app
        .post_as(
            &format!("/api/v1/staff/deliveries/{delivery}/served"),
            &worker,
            &json!({"served_on": served_on}),
        )
        .await;
    assert_eq!(served.status(), StatusCode::OK);
    let served = body(served).await;
    assert_eq!(served["served_on"], served_on.as_str());
    assert_eq!(served["deemed_notified_on"], served_on.as_str());
    assert_eq!(served["statute"], "Postzustellungsurkunde (§ 3 VwZG)");
    let twice = app
        .post_as(
            &format!("/api/v1/staff/deliveries/{delivery}/served"),
            &worker,
            &json!({"served_on": served_on}),
        )
        .await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    run_schedule(&app, "delivery-rules").await;
    until_case_state(&app, email, &id, "festgesetzt").await;
}

async fn one_time_steps_happen_once_under_parallel_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let worker = tax_worker(&app, "parallel@stadt.example").await;
    let printer = app
        .staff_member(&admin, "parallel-druck@stadt.example", &[("print_office", "*")])
        .await;
    let email = "parallel@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    consent(&app, &citizen).await;
    let id = submit_dog(&app, &citizen, 9).await;
    decide_dog(&app, &worker, &id).await;
    let listed = body(app.get_as("/api/v1/mailbox/messages", &citizen).await).await;
    let message_id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let opened = body(
        app.get_as(&format!("/api/v1/mailbox/messages/{message_id}"), &citizen)
            .await,
    )
    .await;
    let attachment = opened["attachments"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/mailbox/messages/{message_id}/attachments/{attachment}");

    // Ten downloads at once: the first retrieval is recorded once.
    let downloads = (0..10).map(|_| app.get_as(&path, &citizen));
    for response in futures_util::future::join_all(downloads).await {
        assert_eq!(response.status(), StatusCode::OK);
    }
    let evidence = deliveries(&app, &worker, &id).await[0].clone();
    let delivery = evidence["id"].as_str().unwrap().to_owned();
    let mut conn = app.connect();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let retrievals: Count = diesel::RunQueryDsl::get_result(
        diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'delivery.retrieved' AND object_id = '{delivery}'"
        )),
        &mut conn,
    )
    .unwrap();
    assert_eq!(retrievals.n, 1);

    // Five print batches at once over the letters of five paper deliveries: each letter in exactly one batch.
    for chip in 10..15 {
        let paper = app
            .citizen(&format!("papier{chip}@example.de"))
            .await
            .tokens
            .access_token;
        let id = submit_dog(&app, &paper, chip).await;
        decide_dog(&app, &worker, &id).await;
    }
    let nothing = json!({});
    let batches = (0..5).map(|_| app.post_as("/api/v1/staff/print-batches", &printer, &nothing));
    let mut letters = Vec::new();
    for response in futures_util::future::join_all(batches).await {
        match response.status() {
            StatusCode::CREATED => {
                for letter in body(response).await["letters"].as_array().unwrap() {
                    letters.push(letter["id"].as_str().unwrap().to_owned());
                }
            }
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    letters.sort();
    let before = letters.len();
    letters.dedup();
    assert_eq!(letters.len(), before, "a letter in two batches");
    assert_eq!(letters.len(), 5);
}

async fn a_notification_refused_for_good_sends_the_decision_to_paper(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let worker = tax_worker(&app, "refused@stadt.example").await;
    let email = "refused@example.de";
    let citizen = app.citizen(email).await.tokens.access_token;
    consent(&app, &citizen).await;
    let id = submit_dog(&app, &citizen, 17).await;
    // The address on file has become unusable: the relay cannot take a mail for it, ever.
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE accounts SET email = 'nicht-zustellbar' WHERE email = '{email}'"
        )),
        &mut app.connect(),
    )
    .unwrap();
    decide_dog(&app, &worker, &id).await;
    let evidence = delivery_until(&app, &worker, &id, |d| d["state"] == "printing").await;
    assert_eq!(evidence["fallback_reason"], "notification_failed");
    assert_eq!(evidence["notifications"][0]["status"], "permanent-failure");
    assert!(evidence["notified_at"].is_null(), "no period started");
    assert!(evidence["letter_id"].is_string());
}

backend_tests!(
    a_notification_refused_for_good_sends_the_decision_to_paper,
    one_time_steps_happen_once_under_parallel_requests,
    formal_service_counts_from_the_day_on_the_certificate,
    inbound_mail_is_routed_by_case_number_procedure_or_to_triage,
    a_decision_reaches_the_postfach_with_evidence_and_closes_the_case,
    without_consent_the_decision_goes_to_paper_through_print_batches,
    an_unretrieved_provision_ends_on_day_ten_and_goes_to_paper,
    a_retrieval_starts_the_vwvfg_day_and_ozg_counts_from_provision,
    messages_stay_within_their_postfach_unit_and_trust_level,
    electronic_delivery_consent_is_recorded_and_revocable,
    seals_survive_key_rotation,
);
