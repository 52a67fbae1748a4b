//! The Integrationsplattform: specialised procedures pull applications, acknowledge them, report status and
//! decisions (once per idempotency key), read a signed event feed limited to their procedures, and receive
//! webhooks that survive a receiver's outage, are signed as Standard Webhooks and FIT-Connect receivers check,
//! and never go to private addresses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use amtsweg_test_support::{Backend, TestApp, backend_tests};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOG: &str = "hundesteuer-anmeldung";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// A client with `scopes`; answers its access token.
async fn client(app: &TestApp, admin: &amtsweg_test_support::Tokens, scopes: &[&str]) -> String {
    credentials(app, admin, scopes).await.token(app).await
}

/// A client's credentials, for tests whose clock outruns its tokens.
struct Credentials(String, String);

impl Credentials {
    async fn token(&self, app: &TestApp) -> String {
        let token = app.client_token(&self.0, &self.1).await;
        assert_eq!(token.status(), StatusCode::OK);
        body(token).await["access_token"].as_str().unwrap().to_owned()
    }
}

async fn credentials(app: &TestApp, admin: &amtsweg_test_support::Tokens, scopes: &[&str]) -> Credentials {
    let (id, secret) = app.api_client(admin, scopes).await;
    Credentials(id, secret)
}

async fn post_with_key(
    app: &TestApp,
    token: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).bearer_auth(token).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.unwrap()
}

async fn post_decision(
    app: &TestApp,
    token: &str,
    id: &str,
    key: &str,
    result: &str,
    document: &[u8],
) -> reqwest::Response {
    const BOUNDARY: &str = "amtsweg-decision-boundary";
    let mut form = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"result\"\r\n\r\n{result}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"reasons\"\r\n\r\nFestgesetzt im Steuerverfahren.\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"Steuerbescheid.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(document);
    form.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    app.client
        .post(app.url(&format!("/api/v1/integration/applications/{id}/decision")))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form)
        .send()
        .await
        .unwrap()
}

/// Polls the client's pending list until it holds `id`.
async fn until_pending(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = body(app.get_as("/api/v1/integration/applications", token).await).await;
        if page["items"].as_array().unwrap().iter().any(|p| p["id"] == id) {
            return page;
        }
        assert!(tokio::time::Instant::now() < deadline, "never pending: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
}

/// The shipped procedures, with the dog tax processed by case workers and the city's tax system (`both`).
fn procedures_with_tax_system() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = amtsweg_test_support::workspace_root().join("procedures");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "hundesteuer-anmeldung.yaml" {
            text = text.replace("  target_days: 21\n", "  target_days: 21\n  by: both\n");
            assert!(text.contains("by: both"));
        }
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    dir
}

async fn the_pull_api_hands_over_applications_and_takes_their_answers(backend: Backend) {
    let procedures = procedures_with_tax_system();
    let app = TestApp::builder(backend)
        .with_smtp()
        .procedures(procedures.path())
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await;
    let tax = client(
        &app,
        &admin,
        &[
            "applications:read:hundesteuer-anmeldung",
            "applications:write:hundesteuer-anmeldung",
        ],
    )
    .await;
    let other = client(
        &app,
        &admin,
        &["applications:read:kita-platz", "applications:write:kita-platz"],
    )
    .await;
    let citizen = app.citizen("erika@example.de").await.tokens.access_token;
    consent(&app, &citizen).await;
    let id = app.submit_dog(&citizen, 1).await;

    // Pending for the tax system, in a stable order; the full application with its data and actions.
    let pending = until_pending(&app, &tax, &id).await;
    let item = &pending["items"][0];
    assert_eq!(item["procedure_id"], DOG);
    assert!(
        item["case_number"].as_str().unwrap().starts_with("steueramt-"),
        "{item}"
    );
    let full = body(
        app.get_as(&format!("/api/v1/integration/applications/{id}"), &tax)
            .await,
    )
    .await;
    assert_eq!(full["case_number"], item["case_number"]);
    assert_eq!(full["data"]["hund"]["name"], "Bello");
    assert_eq!(full["payment"]["settled"], true);
    assert_eq!(full["state"], "eingegangen");
    let actions: Vec<&str> = full["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["fachverfahren_uebernimmt"]);

    // A client of another procedure sees nothing of it, in any route.
    let page = body(app.get_as("/api/v1/integration/applications", &other).await).await;
    assert_eq!(page["items"], json!([]));
    for path in [
        format!("/api/v1/integration/applications/{id}"),
        format!("/api/v1/integration/applications/{id}/attachments/none"),
    ] {
        assert_eq!(
            app.get_as(&path, &other).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let feed = body(app.get_as("/api/v1/integration/events", &other).await).await;
    assert_eq!(feed["items"], json!([]), "{feed}");
    for (path, body_) in [
        ("acknowledge", json!({"outcome": "accepted"})),
        ("status", json!({"action": "fachverfahren_uebernimmt"})),
    ] {
        let refused = post_with_key(
            &app,
            &other,
            &format!("/api/v1/integration/applications/{id}/{path}"),
            Some("k-other"),
            &body_,
        )
        .await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        post_decision(&app, &other, &id, "k-other-d", "approved", PDF)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Acknowledged twice with one key: one receipt, the replay answers the same; it leaves the pending list.
    let ack_path = format!("/api/v1/integration/applications/{id}/acknowledge");
    let first = post_with_key(
        &app,
        &tax,
        &ack_path,
        Some("ack-1"),
        &json!({"outcome": "accepted"}),
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = post_with_key(
        &app,
        &tax,
        &ack_path,
        Some("ack-1"),
        &json!({"outcome": "accepted"}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let changed = post_with_key(
        &app,
        &tax,
        &ack_path,
        None,
        &json!({"outcome": "rejected", "problems": [{"type": "urn:x:bad", "title": "Bad"}]}),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::CONFLICT);
    assert_eq!(body(changed).await["code"], "already_acknowledged");
    let page = body(app.get_as("/api/v1/integration/applications", &tax).await).await;
    assert_eq!(page["items"], json!([]));

    // A status step: a key is required; twice with one key is one step in the citizen's timeline.
    let status_path = format!("/api/v1/integration/applications/{id}/status");
    let step = json!({"action": "fachverfahren_uebernimmt"});
    let missing = post_with_key(&app, &tax, &status_path, None, &step).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    for _ in 0..2 {
        let taken = post_with_key(&app, &tax, &status_path, Some("status-1"), &step).await;
        assert_eq!(taken.status(), StatusCode::OK);
        assert_eq!(body(taken).await["state"], "in_bearbeitung");
    }
    let staff_only = post_with_key(
        &app,
        &tax,
        &status_path,
        Some("status-2"),
        &json!({"action": "festsetzen"}),
    )
    .await;
    assert_eq!(staff_only.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let case = body(app.get_as(&format!("/api/v1/applications/{id}"), &citizen).await).await;
    let steps: Vec<&Value> = case["business_status"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "in_bearbeitung")
        .collect();
    assert_eq!(steps.len(), 1, "{case}");

    // A decision with its document, twice with one key: one decision, delivered to the Postfach.
    let refused = post_decision(&app, &tax, &id, "decision-0", "approved", b"not a pdf at all").await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
    for _ in 0..2 {
        let decided = post_decision(&app, &tax, &id, "decision-1", "approved", PDF).await;
        assert_eq!(decided.status(), StatusCode::OK);
        assert_eq!(body(decided).await["state"], "bescheid_zustellung");
    }
    let decisions: i64 = diesel::RunQueryDsl::get_result(
        diesel::sql_query(format!(
            "SELECT COUNT(*) AS count FROM application_decisions WHERE application_id = '{id}'"
        )),
        &mut app.connect(),
    )
    .map(|row: Count| row.count)
    .unwrap();
    assert_eq!(decisions, 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listed = body(app.get_as("/api/v1/mailbox/messages", &citizen).await).await;
        if listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "decision" && m["application_id"] == id.as_str())
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no decision in the Postfach: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// Checks an event's detached JWS against the published seal keys.
fn verify_event(event: &Value, keys: &Value) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jws = event["jws"].as_str().unwrap();
    let (header, signature) = jws.split_once("..").unwrap();
    let header_json: Value = serde_json::from_slice(&b64.decode(header).unwrap()).unwrap();
    let key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header_json["kid"])
        .unwrap();
    let mut unsigned = event.clone();
    unsigned.as_object_mut().unwrap().remove("jws");
    let payload = b64.encode(amtsweg_kernel::jcs::canonicalize(&unsigned));
    let public: [u8; 32] = b64
        .decode(key["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&b64.decode(signature).unwrap()).unwrap();
    verifying
        .verify_strict(format!("{header}.{payload}").as_bytes(), &signature)
        .expect("a valid signature");
}

async fn the_event_feed_shows_the_clients_procedures_signed_and_in_order(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let admin = app.admin().await;
    let tax = client(&app, &admin, &["applications:read:*"]).await;
    let citizen = app.citizen("erika@example.de").await.tokens.access_token;
    let first = app.submit_dog(&citizen, 1).await;
    let second = app.submit_dog(&citizen, 2).await;
    let keys = body(app.get("/.well-known/seal-keys.json").await).await;

    let mut cursor = String::new();
    let mut seen: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen
        .iter()
        .filter(|e| e["type"] == "de.amtsweg.application.submitted.v1")
        .count()
        < 2
    {
        let page = body(
            app.get_as(
                &format!("/api/v1/integration/events?limit=2&cursor={cursor}"),
                &tax,
            )
            .await,
        )
        .await;
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
        assert!(tokio::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let positions: Vec<i64> = seen
        .iter()
        .map(|e| e["sequence"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(
        seen.iter().all(|e| e["procedure"] == DOG),
        "only application events: {seen:?}"
    );
    let submitted: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "de.amtsweg.application.submitted.v1")
        .collect();
    assert_eq!(submitted[0]["data"]["application_id"], first.as_str());
    assert_eq!(submitted[1]["data"]["application_id"], second.as_str());
    for event in &seen {
        verify_event(event, &keys);
    }
    // A changed event no longer verifies.
    let mut forged = submitted[0].clone();
    forged["data"]["state"] = json!("festgesetzt");
    let check = std::panic::catch_unwind(|| verify_event(&forged, &keys));
    assert!(check.is_err());
    // Filtered by type; a client without the read scope is refused.
    let only = body(
        app.get_as(
            "/api/v1/integration/events?type=de.amtsweg.application.submitted.v1",
            &tax,
        )
        .await,
    )
    .await;
    assert_eq!(only["items"].as_array().unwrap().len(), 2);
    let none = client(&app, &admin, &["procedures:read"]).await;
    assert_eq!(
        app.get_as("/api/v1/integration/events", &none).await.status(),
        StatusCode::FORBIDDEN
    );
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    answered: u16,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on loopback that answers with a status the test sets.
#[derive(Clone)]
struct Receiver {
    port: u16,
    answer: Arc<Mutex<(u16, Option<String>)>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            port: listener.local_addr().unwrap().port(),
            answer: Arc::new(Mutex::new((200, None))),
            received: Arc::new(Mutex::new(Vec::new())),
        };
        let shared = receiver.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(shared.clone().serve(stream));
            }
        });
        receiver
    }

    async fn serve(self, mut stream: tokio::net::TcpStream) {
        let mut buffer = Vec::new();
        loop {
            let head_end = loop {
                if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                let mut chunk = [0u8; 8192];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
            let headers: Vec<(String, String)> = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            while buffer.len() < head_end + length {
                let mut chunk = [0u8; 8192];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            let body = buffer[head_end..head_end + length].to_vec();
            buffer.drain(..head_end + length);
            let (status, retry_after) = self.answer.lock().unwrap().clone();
            self.received.lock().unwrap().push(Received {
                headers,
                body,
                answered: status,
            });
            let extra = retry_after
                .map(|r| format!("Retry-After: {r}\r\n"))
                .unwrap_or_default();
            let response = format!("HTTP/1.1 {status} X\r\n{extra}Content-Length: 0\r\n\r\n");
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn answer(&self, status: u16, retry_after: Option<&str>) {
        *self.answer.lock().unwrap() = (status, retry_after.map(str::to_owned));
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }
}

async fn subscribe(app: &TestApp, token: &str, request: Value) -> reqwest::Response {
    app.post_as("/api/v1/integration/subscriptions", token, &request)
        .await
}

async fn deliveries(app: &TestApp, client: &Credentials, subscription: &str) -> Vec<Value> {
    let token = client.token(app).await;
    let page = body(
        app.get_as(
            &format!("/api/v1/integration/subscriptions/{subscription}/deliveries?limit=100"),
            &token,
        )
        .await,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .clone()
}

/// Waits until `check` holds for the subscription's deliveries.
async fn until_deliveries(
    app: &TestApp,
    client: &Credentials,
    subscription: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = deliveries(app, client, subscription).await;
        if check(&found) {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{found:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn webhooks_survive_a_six_hour_outage_and_can_be_replayed(backend: Backend) {
    let app = TestApp::builder(backend)
        .with_smtp()
        .configure(|settings| settings.integration.webhooks.allow = vec!["127.0.0.1".into()])
        .spawn()
        .await
        .unwrap();
    let clock = app.clock.clone();
    let admin = app.admin().await;
    let fv = credentials(&app, &admin, &["applications:read:hundesteuer-anmeldung"]).await;
    let tax = fv.token(&app).await;
    let receiver = Receiver::start().await;
    receiver.answer(503, None);
    let created = subscribe(
        &app,
        &tax,
        json!({"url": receiver.url(), "event_types": ["de.amtsweg.application.submitted.v1"]}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let subscription = body(created).await;
    assert!(subscription["secret"].as_str().unwrap().starts_with("whsec_"));
    let sid = subscription["id"].as_str().unwrap().to_owned();

    let citizen = app.citizen("erika@example.de").await.tokens.access_token;
    let ids = [
        app.submit_dog(&citizen, 1).await,
        app.submit_dog(&citizen, 2).await,
    ];
    until_deliveries(&app, &fv, &sid, |d| {
        d.len() == 2 && d.iter().all(|d| d["attempts"] == 1)
    })
    .await;

    // Six hours down: the retries (5 s, 5 min, 30 min, 2 h) fail; nothing is given up.
    for hours in [0.1, 1.0, 3.0, 6.0] {
        clock.advance(chrono::Duration::minutes((hours * 60.0) as i64));
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    let failing = deliveries(&app, &fv, &sid).await;
    assert!(
        failing
            .iter()
            .all(|d| d["status"] == "pending" && d["last_status"] == 503),
        "{failing:#?}"
    );
    assert!(
        failing.iter().all(|d| d["attempts"].as_i64().unwrap() >= 4),
        "{failing:#?}"
    );

    // Back: the next retry delivers each event once.
    receiver.answer(200, None);
    clock.advance(chrono::Duration::hours(6));
    let delivered = until_deliveries(&app, &fv, &sid, |d| d.iter().all(|d| d["status"] == "succeeded")).await;
    assert_eq!(delivered.len(), 2);
    let ok: Vec<Received> = receiver
        .received()
        .into_iter()
        .filter(|r| r.answered == 200)
        .collect();
    let mut got: Vec<String> = ok
        .iter()
        .map(|r| r.event()["data"]["application_id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    let mut expected = ids.to_vec();
    expected.sort();
    assert_eq!(got, expected);
    assert!(ok.iter().all(|r| {
        r.header("content-type")
            .unwrap()
            .starts_with("application/cloudevents+json")
    }));

    // Replay from a feed position: the events after it come again, marked as replay.
    let first_position: i64 = ok
        .iter()
        .map(|r| r.event()["sequence"].as_str().unwrap().parse::<i64>().unwrap())
        .min()
        .unwrap();
    let tax = fv.token(&app).await;
    let replay = app
        .post_as(
            &format!("/api/v1/integration/subscriptions/{sid}/replay"),
            &tax,
            &json!({"after_sequence": first_position}),
        )
        .await;
    assert_eq!(replay.status(), StatusCode::ACCEPTED);
    let all = until_deliveries(&app, &fv, &sid, |d| {
        d.len() == 3 && d.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!(all.iter().filter(|d| d["replay"] == true).count(), 1);

    // 410 Gone disables the subscription.
    receiver.answer(410, None);
    let login = app
        .login("erika@example.de", amtsweg_test_support::STRONG_PASSWORD, None)
        .await;
    let citizen = body(login).await["access_token"].as_str().unwrap().to_owned();
    app.submit_dog(&citizen, 3).await;
    until_deliveries(&app, &fv, &sid, |d| {
        d.iter().any(|d| d["status"] == "dead" && d["last_status"] == 410)
    })
    .await;
    let tax = fv.token(&app).await;
    let disabled = body(
        app.get_as(&format!("/api/v1/integration/subscriptions/{sid}"), &tax)
            .await,
    )
    .await;
    assert_eq!(disabled["status"], "disabled", "{disabled}");
}

async fn retry_after_is_honoured(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|settings| settings.integration.webhooks.allow = vec!["127.0.0.0/8".into()])
        .spawn()
        .await
        .unwrap();
    let clock = app.clock.clone();
    let admin = app.admin().await;
    let fv = credentials(&app, &admin, &["applications:read:*"]).await;
    let tax = fv.token(&app).await;
    let receiver = Receiver::start().await;
    receiver.answer(429, Some("7200"));
    let sid = body(subscribe(&app, &tax, json!({"url": receiver.url()})).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let citizen = app.citizen("erika@example.de").await.tokens.access_token;
    app.submit_dog(&citizen, 1).await;
    until_deliveries(&app, &fv, &sid, |d| {
        !d.is_empty() && d.iter().all(|d| d["attempts"] == 1)
    })
    .await;
    // Past the usual 5 s and 5 min waits, not past the two hours asked for.
    clock.advance(chrono::Duration::minutes(90));
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(
        deliveries(&app, &fv, &sid)
            .await
            .iter()
            .all(|d| d["attempts"] == 1)
    );
    receiver.answer(200, None);
    clock.advance(chrono::Duration::minutes(31));
    until_deliveries(&app, &fv, &sid, |d| d.iter().all(|d| d["status"] == "succeeded")).await;
}

async fn targets_resolving_to_special_addresses_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let tax = client(&app, &admin, &["applications:read:hundesteuer-anmeldung"]).await;
    for url in [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "http://example.org/hook",
    ] {
        let refused = subscribe(&app, &tax, json!({"url": url})).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let problem = body(refused).await;
        assert_eq!(problem["errors"][0]["pointer"], "/url", "{url}: {problem}");
    }
    // Procedures outside the client's scopes cannot be subscribed to.
    let outside = subscribe(
        &app,
        &tax,
        json!({"url": "https://receiver.example.org/hook", "procedures": ["kita-platz"]}),
    )
    .await;
    assert_eq!(outside.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(outside).await["errors"][0]["code"], "procedure_not_in_scope");
}

/// The signatures of a delivery, checked by the official `standardwebhooks` library, an HMAC-SHA512 computed by
/// Python's standard library (FIT-Connect), and the event's JWS by `jwcrypto` over `rfc8785`'s canonical form.
async fn signatures_verify_with_independent_libraries(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|settings| settings.integration.webhooks.allow = vec!["127.0.0.1".into()])
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await;
    let fv = credentials(&app, &admin, &["applications:read:*"]).await;
    let tax = fv.token(&app).await;
    let standard = Receiver::start().await;
    let fit = Receiver::start().await;
    let s1 = body(subscribe(&app, &tax, json!({"url": standard.url()})).await).await;
    let s2 = body(subscribe(&app, &tax, json!({"url": fit.url(), "scheme": "fit_connect"})).await).await;
    // A client of another procedure, subscribed to everything it may see, gets none of the dog tax's events.
    let kita = client(&app, &admin, &["applications:read:kita-platz"]).await;
    let elsewhere = Receiver::start().await;
    let created = subscribe(&app, &kita, json!({"url": elsewhere.url()})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let citizen = app.citizen("erika@example.de").await.tokens.access_token;
    app.submit_dog(&citizen, 1).await;
    for (receiver, subscription) in [(&standard, &s1), (&fit, &s2)] {
        until_deliveries(&app, &fv, subscription["id"].as_str().unwrap(), |d| {
            !d.is_empty() && d.iter().all(|d| d["status"] == "succeeded")
        })
        .await;
        assert!(!receiver.received().is_empty());
    }
    let keys = body(app.get("/.well-known/seal-keys.json").await).await;
    let dir = tempfile::tempdir().unwrap();
    let case = json!({
        "keys": keys,
        "standard": {
            "secret": s1["secret"],
            "deliveries": standard.received().iter().map(|r| json!({
                "body": String::from_utf8(r.body.clone()).unwrap(),
                "headers": r.headers.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            })).collect::<Vec<_>>(),
        },
        "fit": {
            "secret": s2["secret"],
            "deliveries": fit.received().iter().map(|r| json!({
                "body": String::from_utf8(r.body.clone()).unwrap(),
                "headers": r.headers.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            })).collect::<Vec<_>>(),
        },
    });
    let input = dir.path().join("case.json");
    std::fs::write(&input, case.to_string()).unwrap();
    let script = amtsweg_test_support::workspace_root().join("tests/webhooks/verify.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    let delivered = standard.received().len();
    assert!(delivered >= 1 && delivered == fit.received().len());
    assert!(
        report.contains(&format!("standard webhooks: {delivered} verified")),
        "{report}"
    );
    assert!(
        report.contains(&format!("fit-connect: {delivered} verified")),
        "{report}"
    );
    assert!(
        report.contains(&format!("jws: {} verified", 2 * delivered)),
        "{report}"
    );

    // A client disabled by the administrator receives nothing more.
    let removed = app
        .client
        .delete(app.url(&format!("/api/v1/admin/clients/{}", fv.0)))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success(), "{}", removed.status());
    app.submit_dog(&citizen, 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while unnumbered_events(&app) > 0 || fan_out_cursor(&app) < last_position(&app) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fan-out never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        standard.received().len(),
        delivered,
        "nothing for a disabled client"
    );
    assert!(elsewhere.received().is_empty(), "nothing of other procedures");
}

fn fan_out_cursor(app: &TestApp) -> i64 {
    diesel::RunQueryDsl::get_result(
        diesel::sql_query("SELECT position AS count FROM integration_cursors WHERE name = 'webhooks'"),
        &mut app.connect(),
    )
    .map(|row: Count| row.count)
    .unwrap_or(-1)
}

async fn statistics_publish_counts_without_small_numbers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("erika@example.de").await.tokens.access_token;
    for chip in 1..=6 {
        app.submit_dog(&citizen, chip).await;
    }
    let stats = body(app.get("/api/v1/statistics").await).await;
    let month = stats["months"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["procedure_id"] == DOG)
        .cloned()
        .unwrap();
    assert_eq!(month["submitted"], 6, "{stats}");
    assert_eq!(month["decided"], 0);
    assert_eq!(month["median_processing_days"], Value::Null);
    let csv = app.get("/api/v1/statistics?format=csv").await;
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("procedure_id,month,submitted,"), "{text}");
    assert!(text.contains(&format!("{DOG},")), "{text}");
    assert!(!text.contains("erika"));
}

/// The number of events about procedures (what the NATS publisher sends).
fn procedure_events(app: &TestApp) -> i64 {
    diesel::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT COUNT(*) AS count FROM events WHERE procedure_id IS NOT NULL AND position IS NOT NULL",
        ),
        &mut app.connect(),
    )
    .map(|row: Count| row.count)
    .unwrap()
}

fn nats_cursor(app: &TestApp) -> i64 {
    diesel::RunQueryDsl::get_result(
        diesel::sql_query("SELECT position AS count FROM integration_cursors WHERE name = 'nats'"),
        &mut app.connect(),
    )
    .map(|row: Count| row.count)
    .unwrap_or(-1)
}

/// Committed events the sequencer has not numbered yet.
fn unnumbered_events(app: &TestApp) -> i64 {
    diesel::RunQueryDsl::get_result(
        diesel::sql_query("SELECT COUNT(*) AS count FROM events WHERE position IS NULL"),
        &mut app.connect(),
    )
    .map(|row: Count| row.count)
    .unwrap()
}

fn last_position(app: &TestApp) -> i64 {
    diesel::RunQueryDsl::get_result(
        diesel::sql_query("SELECT last_position AS count FROM event_sequence"),
        &mut app.connect(),
    )
    .map(|row: Count| row.count)
    .unwrap()
}

async fn until_published(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while unnumbered_events(app) > 0 || nats_cursor(app) < last_position(app) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the publisher never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Events go to NATS JetStream once per id, also when the publisher restarts after publishing but before it
/// recorded its position (the cursor set back simulates exactly that crash).
async fn events_reach_nats_once_across_a_publisher_restart(backend: Backend) {
    let suffix: u32 = rand::random();
    let (stream, prefix) = (format!("AMTSWEG_TEST_{suffix}"), format!("amtsweg_test_{suffix}"));
    let configure = {
        let (stream, prefix) = (stream.clone(), prefix.clone());
        move |settings: &mut amtsweg_server::settings::Settings| {
            settings.integration.nats.url = Some("nats://127.0.0.1:4222".into());
            settings.integration.nats.stream = stream;
            settings.integration.nats.subject_prefix = prefix;
        }
    };
    let app = TestApp::builder(backend)
        .configure(configure.clone())
        .spawn()
        .await
        .unwrap();
    let citizen = app.citizen("erika@example.de").await.tokens.access_token;
    app.submit_dog(&citizen, 1).await;
    app.submit_dog(&citizen, 2).await;
    until_published(&app).await;
    let expected = procedure_events(&app);
    assert!(expected >= 2);

    let nats = async_nats::connect("127.0.0.1:4222")
        .await
        .expect("NATS with JetStream on 127.0.0.1:4222");
    let jetstream = async_nats::jetstream::new(nats);
    let count = |jetstream: async_nats::jetstream::Context, stream: String| async move {
        let mut handle = jetstream.get_stream(&stream).await.unwrap();
        handle.info().await.unwrap().state.messages
    };
    assert_eq!(
        count(jetstream.clone(), stream.clone()).await,
        u64::try_from(expected).unwrap()
    );

    // The crash: everything published, the position not recorded. The restarted publisher sends it all again;
    // JetStream keeps one copy per event id.
    diesel::RunQueryDsl::execute(
        diesel::sql_query("UPDATE integration_cursors SET position = 0 WHERE name = 'nats'"),
        &mut app.connect(),
    )
    .unwrap();
    let app = app.restart_builder().configure(configure).spawn().await.unwrap();
    until_published(&app).await;
    assert_eq!(
        count(jetstream.clone(), stream.clone()).await,
        u64::try_from(expected).unwrap()
    );

    let handle = jetstream.get_stream(&stream).await.unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for sequence in 1..=u64::try_from(expected).unwrap() {
        let message = handle.get_raw_message(sequence).await.unwrap();
        let id = message.headers.get("Nats-Msg-Id").unwrap().to_string();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(event["id"], id.as_str());
        assert!(event["jws"].as_str().is_some());
        assert_eq!(
            message.subject.as_str(),
            format!("{prefix}.{}.{DOG}", event["type"].as_str().unwrap())
        );
        ids.insert(id);
    }
    assert_eq!(ids.len(), usize::try_from(expected).unwrap());
    jetstream.delete_stream(&stream).await.unwrap();
}

/// Ten acknowledgements at once record one receipt; ten status reports at once with different keys take one step.
async fn simultaneous_answers_take_effect_once(backend: Backend) {
    let procedures = procedures_with_tax_system();
    let app = TestApp::builder(backend)
        .procedures(procedures.path())
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await;
    let tax = client(
        &app,
        &admin,
        &[
            "applications:read:hundesteuer-anmeldung",
            "applications:write:hundesteuer-anmeldung",
        ],
    )
    .await;
    let citizen = app.citizen("erika@example.de").await.tokens.access_token;
    let id = app.submit_dog(&citizen, 1).await;
    until_pending(&app, &tax, &id).await;

    let ack_path = format!("/api/v1/integration/applications/{id}/acknowledge");
    let accepted = json!({"outcome": "accepted"});
    let acks = (0..10).map(|_| post_with_key(&app, &tax, &ack_path, None, &accepted));
    for answer in futures_util::future::join_all(acks).await {
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let status_path = format!("/api/v1/integration/applications/{id}/status");
    let keys: Vec<String> = (0..10).map(|i| format!("step-{i}")).collect();
    let step = json!({"action": "fachverfahren_uebernimmt"});
    let steps = keys
        .iter()
        .map(|key| post_with_key(&app, &tax, &status_path, Some(key), &step));
    let answers: Vec<StatusCode> = futures_util::future::join_all(steps)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        answers.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|s| *s == StatusCode::OK || s.is_client_error()),
        "{answers:?}"
    );
    let count = |sql: &str| -> i64 {
        diesel::RunQueryDsl::get_result(diesel::sql_query(sql), &mut app.connect())
            .map(|row: Count| row.count)
            .unwrap()
    };
    assert_eq!(
        count(
            "SELECT COUNT(*) AS count FROM events WHERE event_type = 'de.amtsweg.integration.application_accepted.v1'"
        ),
        1
    );
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) AS count FROM application_steps WHERE application_id = '{id}' AND action = 'fachverfahren_uebernimmt'"
        )),
        1
    );
}

fn running_deliveries(app: &TestApp) -> i64 {
    diesel::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT COUNT(*) AS count FROM jobs WHERE kind = 'integration.webhook' AND status = 'running'",
        ),
        &mut app.connect(),
    )
    .map(|row: Count| row.count)
    .unwrap()
}

/// A redirect is a failure (never followed); after the last of about three days of attempts the delivery is dead,
/// listed for administrators, and their replay delivers it.
async fn the_last_failed_attempt_leaves_a_dead_delivery_an_administrator_replays(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|settings| settings.integration.webhooks.allow = vec!["127.0.0.1".into()])
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await;
    let fv = credentials(&app, &admin, &["applications:read:*"]).await;
    let tax = fv.token(&app).await;
    let receiver = Receiver::start().await;
    receiver.answer(302, None);
    let sid = body(
        subscribe(
            &app,
            &tax,
            json!({"url": receiver.url(), "event_types": ["de.amtsweg.application.submitted.v1"]}),
        )
        .await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let citizen = app.citizen("erika@example.de").await.tokens.access_token;
    app.submit_dog(&citizen, 1).await;
    let mut attempts = 0;
    while attempts < 10 {
        let found = until_deliveries(&app, &fv, &sid, |d| {
            d.len() == 1 && d[0]["attempts"].as_i64().unwrap() > attempts
        })
        .await;
        attempts = found[0]["attempts"].as_i64().unwrap();
        assert_eq!(found[0]["last_status"], 302);
        assert!(
            found[0]["last_error"].as_str().unwrap().contains("redirects"),
            "{found:?}"
        );
        // The attempt's job back in the queue before the clock jumps (a jump past a running job's lease would
        // hand it to the runner again, as if its runner had died).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while running_deliveries(&app) > 0 {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.clock.advance(chrono::Duration::hours(25));
    }
    let dead = deliveries(&app, &fv, &sid).await;
    assert_eq!(dead[0]["status"], "dead", "{dead:?}");
    assert_eq!(dead[0]["attempts"], 10);
    // One request per attempt: the redirect was never followed.
    assert_eq!(receiver.received().len(), 10);

    let admin = app.admin().await.access_token;
    let listed = body(
        app.get_as("/api/v1/admin/integration/deliveries?status=dead", &admin)
            .await,
    )
    .await;
    assert_eq!(listed["items"][0]["id"], dead[0]["id"]);
    receiver.answer(200, None);
    let replay = app
        .post_as(
            &format!("/api/v1/admin/integration/subscriptions/{sid}/replay"),
            &admin,
            &json!({"after_sequence": 0}),
        )
        .await;
    assert_eq!(replay.status(), StatusCode::ACCEPTED);
    until_deliveries(&app, &fv, &sid, |d| {
        d.iter()
            .any(|d| d["replay"] == true && d["status"] == "succeeded")
    })
    .await;
}

backend_tests!(
    the_last_failed_attempt_leaves_a_dead_delivery_an_administrator_replays,
    simultaneous_answers_take_effect_once,
    events_reach_nats_once_across_a_publisher_restart,
    the_pull_api_hands_over_applications_and_takes_their_answers,
    the_event_feed_shows_the_clients_procedures_signed_and_in_order,
    webhooks_survive_a_six_hour_outage_and_can_be_replayed,
    retry_after_is_honoured,
    targets_resolving_to_special_addresses_are_refused,
    signatures_verify_with_independent_libraries,
    statistics_publish_counts_without_small_numbers,
);
