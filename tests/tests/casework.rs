//! Case work: queues per unit and procedure, claims that hand a case to exactly one case worker, transitions with
//! `If-Match`, the citizen's timeline following along, and units that never see each other's cases.

use amtsweg_test_support::{Backend, EidProvider, TestApp, Tokens, backend_tests, dog, inspect_pdf};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// A member of staff with `roles` (`(role, unit)`), logged in; answers the access token.
async fn staff(app: &TestApp, admin: &str, email: &str, roles: &[(&str, &str)]) -> String {
    app.staff_member(admin, email, roles).await
}

/// Submits a dog registration for a new citizen; answers (citizen token, application id).
async fn submitted_dog(app: &TestApp, email: &str, chip: u32) -> (String, String) {
    let token = app.citizen(email).await.tokens.access_token;
    let id = submit_dog_of(app, &token, chip).await;
    (token, id)
}

/// `n` case workers of the tax office, logged in; answers their tokens.
async fn tax_office(app: &TestApp, admin: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut workers = Vec::new();
    for i in 0..n {
        let email = format!("{prefix}{i}@stadt.example");
        workers.push(staff(app, admin, &email, &[("case_worker", "steueramt")]).await);
    }
    workers
}

async fn transition(
    app: &TestApp,
    token: &str,
    id: &str,
    etag: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v1/staff/cases/{id}/transitions")))
        .bearer_auth(token)
        .json(&body);
    if let Some(etag) = etag {
        request = request.header("if-match", etag);
    }
    request.send().await.unwrap()
}

async fn request_information(
    app: &TestApp,
    token: &str,
    id: &str,
    etag: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v1/staff/cases/{id}/information-requests")))
        .bearer_auth(token)
        .json(&body);
    if let Some(etag) = etag {
        request = request.header("if-match", etag);
    }
    request.send().await.unwrap()
}

async fn a_case_is_claimed_and_processed_with_the_citizen_following(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let worker = staff(&app, &admin, "sb@stadt.example", &[("case_worker", "steueramt")]).await;
    let (citizen, id) = submitted_dog(&app, "halter@example.de", 1).await;

    let queues = body(app.get_as("/api/v1/staff/queues", &worker).await).await;
    let queue = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue_id"] == "steueramt.hundesteuer-anmeldung")
        .unwrap_or_else(|| panic!("{queues}"))
        .clone();
    assert_eq!(queue["count"], 1);
    assert_eq!(queue["overdue"], 0);
    assert!(queue["oldest_since"].is_string());
    assert!(
        queues
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["unit_id"] == "steueramt"),
        "only the caller's unit: {queues}"
    );

    let claimed = app
        .post_as(
            "/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next",
            &worker,
            &json!({}),
        )
        .await;
    assert_eq!(claimed.status(), StatusCode::OK);
    let claimed = body(claimed).await;
    assert_eq!(claimed["id"], id.as_str());
    assert!(claimed["case_number"].as_str().unwrap().starts_with("steueramt-"));
    let empty = app
        .post_as(
            "/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next",
            &worker,
            &json!({}),
        )
        .await;
    assert_eq!(empty.status(), StatusCode::NO_CONTENT);

    let case = app.get_as(&format!("/api/v1/staff/cases/{id}"), &worker).await;
    assert_eq!(case.status(), StatusCode::OK);
    let etag = case.headers()["etag"].to_str().unwrap().to_owned();
    let case = body(case).await;
    assert_eq!(case["state"], "eingegangen");
    assert_eq!(case["assignee"], claimed["assignee"]);
    assert_eq!(case["fields"][0]["label"], "Vorname", "labels from the form");
    let actions: Vec<&str> = case["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["bearbeitung_beginnen"]);

    let without = transition(
        &app,
        &worker,
        &id,
        None,
        json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    assert_eq!(without.status(), StatusCode::PRECONDITION_REQUIRED);
    let started = transition(
        &app,
        &worker,
        &id,
        Some(&etag),
        json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    assert_eq!(started.status(), StatusCode::OK);
    let new_etag = started.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let started = body(started).await;
    assert_eq!(started["state"], "in_bearbeitung");
    assert_eq!(
        started["assignee"], claimed["assignee"],
        "the holder keeps a case moving between queued states"
    );

    // The same version twice: the second is stale and changes nothing.
    let stale = transition(
        &app,
        &worker,
        &id,
        Some(&etag),
        json!({"action": "unterlagen_anfordern", "comment": "x"}),
    )
    .await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(body(stale).await["code"], "version_mismatch");

    let no_reason = transition(
        &app,
        &worker,
        &id,
        Some(&new_etag),
        json!({"action": "unterlagen_anfordern"}),
    )
    .await;
    assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(no_reason).await["errors"][0]["code"], "comment_required");
    let unknown = transition(&app, &worker, &id, Some(&new_etag), json!({"action": "tanzen"})).await;
    assert_eq!(body(unknown).await["errors"][0]["code"], "unknown_action");
    let decision = transition(
        &app,
        &worker,
        &id,
        Some(&new_etag),
        json!({"action": "festsetzen"}),
    )
    .await;
    assert_eq!(body(decision).await["errors"][0]["code"], "decision_action");

    let through_transitions = transition(
        &app,
        &worker,
        &id,
        Some(&new_etag),
        json!({"action": "unterlagen_anfordern", "comment": "Bitte den Impfpass nachreichen."}),
    )
    .await;
    assert_eq!(
        body(through_transitions).await["errors"][0]["code"],
        "information_request_action"
    );
    let asked = request_information(
        &app,
        &worker,
        &id,
        Some(&new_etag),
        json!({"message": "Bitte den Impfpass nachreichen.", "documents": ["haftpflichtnachweis"]}),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::CREATED);
    let asked = body(asked).await;
    assert_eq!(asked["state"], "nachforderung");
    assert_eq!(asked["information_requests"][0]["status"], "open");
    assert!(
        asked.get("assignee").is_none(),
        "waiting for the citizen, the case leaves the queue"
    );

    // The citizen sees the new status, what to do, and the public comment — not who wrote it.
    let seen = body(app.get_as(&format!("/api/v1/applications/{id}"), &citizen).await).await;
    let status = &seen["business_status"];
    assert_eq!(status["state"], "nachforderung");
    assert_eq!(status["waiting_for"], "citizen");
    assert_eq!(
        status["service_norm_paused"], true,
        "the service norm stands while the case waits"
    );
    assert!(status["service_norm_due"].is_string());
    assert_eq!(
        status["next_step"],
        "Bitte reichen Sie die angeforderten Unterlagen nach."
    );
    let timeline = status["timeline"].as_array().unwrap();
    assert_eq!(
        timeline.last().unwrap()["comment"],
        "Bitte den Impfpass nachreichen."
    );
    assert!(!seen.to_string().contains("sb@stadt.example"));

    // The citizen's data export says who saw the case file and when.
    let export = body(app.get_as("/api/v1/me/export", &citizen).await).await;
    let accessed = export["sections"]["applications"][0]["accessed_by_staff"]
        .as_array()
        .unwrap_or_else(|| panic!("{export}"))
        .clone();
    assert!(
        accessed
            .iter()
            .any(|a| a["action"] == "case.viewed" && a["staff_id"] == claimed["assignee"]),
        "{accessed:?}"
    );

    // Withdrawing ends it.
    let withdrawn = app
        .post_as(
            &format!("/api/v1/applications/{id}/withdraw"),
            &citizen,
            &json!({}),
        )
        .await;
    assert_eq!(withdrawn.status(), StatusCode::OK);
    let withdrawn = body(withdrawn).await;
    assert_eq!(withdrawn["business_status"]["state"], "zurueckgezogen");
    assert_eq!(withdrawn["business_status"]["terminal"], true);
    let requests = body(
        app.get_as(&format!("/api/v1/applications/{id}/requests"), &citizen)
            .await,
    )
    .await;
    assert_eq!(requests[0]["status"], "closed", "{requests}");
    let again = app
        .post_as(
            &format!("/api/v1/applications/{id}/withdraw"),
            &citizen,
            &json!({}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

async fn claim_next_hands_every_case_to_exactly_one_caller(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let workers = tax_office(&app, &admin, "sb", 4).await;
    // Forty cases of one citizen; sixteen clients claim until the queue is empty.
    let citizen = app.citizen("viele@example.de").await.tokens.access_token;
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(submit_dog_of(&app, &citizen, 100 + n).await);
    }
    let url = "/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next";
    let clients = (0..16).map(|n| {
        let (app, token) = (&app, workers[n % workers.len()].clone());
        async move {
            let mut mine = Vec::new();
            loop {
                let answer = app.post_as(url, &token, &json!({})).await;
                match answer.status() {
                    StatusCode::OK => mine.push(body(answer).await["id"].as_str().unwrap().to_owned()),
                    StatusCode::NO_CONTENT => return mine,
                    other => panic!("unexpected {other}"),
                }
            }
        }
    });
    let mut handed_out: Vec<String> = futures_util::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
        .collect();
    handed_out.sort();
    ids.sort();
    assert_eq!(handed_out, ids, "each case exactly once");
}

/// Submits a dog registration of an existing citizen; answers the application id.
async fn submit_dog_of(app: &TestApp, token: &str, chip: u32) -> String {
    app.submit_dog(token, chip).await
}

async fn two_instances_share_queues_and_timers(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.restart_builder().spawn().await.unwrap();
    let admin = first.admin().await.access_token;
    let workers = tax_office(&first, &admin, "zwei", 2).await;
    let citizen = first.citizen("zwei@example.de").await.tokens.access_token;
    let mut ids = Vec::new();
    for n in 0..24 {
        ids.push(submit_dog_of(&first, &citizen, 700 + n).await);
    }

    // Claims go through either instance; each case is handed out once.
    let url = "/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next";
    let clients = (0..8).map(|n| {
        let (app, token) = (if n % 2 == 0 { &first } else { &second }, workers[n % 2].clone());
        async move {
            let mut mine = Vec::new();
            loop {
                let answer = app.post_as(url, &token, &json!({})).await;
                match answer.status() {
                    StatusCode::OK => mine.push(body(answer).await["id"].as_str().unwrap().to_owned()),
                    StatusCode::NO_CONTENT => return mine,
                    other => panic!("unexpected {other}"),
                }
            }
        }
    });
    let mut handed_out: Vec<String> = futures_util::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
        .collect();
    handed_out.sort();
    ids.sort();
    assert_eq!(handed_out, ids, "each case exactly once across both instances");

    // A reply window asked for on one instance runs out once, whichever instance's timers look.
    let id = &ids[0];
    let holder = if second
        .post_as(
            &format!("/api/v1/staff/cases/{id}/claim"),
            &workers[0],
            &json!({}),
        )
        .await
        .status()
        == StatusCode::OK
    {
        &workers[0]
    } else {
        &workers[1]
    };
    let etag = etag_of(&second, holder, id).await;
    let started = transition(
        &second,
        holder,
        id,
        Some(&etag),
        json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    assert_eq!(started.status(), StatusCode::OK);
    let etag = etag_of(&first, holder, id).await;
    let asked = request_information(
        &first,
        holder,
        id,
        Some(&etag),
        json!({"message": "Bitte nachreichen.", "reply_days": 7}),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::CREATED);
    first.clock.advance(chrono::Duration::days(10));
    let admin = first.admin().await.access_token;
    let (a, b) =
        futures_util::future::join(run_timers_as(&first, &admin), run_timers_as(&second, &admin)).await;
    let fired = a["fired"].as_u64().unwrap() + b["fired"].as_u64().unwrap();
    assert!(fired <= 1, "{a} {b}");
    let started = std::time::Instant::now();
    while case_row(&first, id).0 != "in_bearbeitung" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the timer did not fire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let expiries = count_rows(
        &first,
        &format!(
            "SELECT COUNT(*) AS n FROM application_steps WHERE application_id = '{id}' AND action = 'antwortfrist_abgelaufen'"
        ),
    );
    assert_eq!(expiries, 1, "one expiry step");
}

async fn racing_requests_on_one_case_have_one_winner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let workers = tax_office(&app, &admin, "wett", 3).await;
    let citizen = app.citizen("wettlauf@example.de").await.tokens.access_token;
    let id = submit_dog_of(&app, &citizen, 500).await;

    // Eight claims of the same case at once: one holder, seven refusals.
    let (path, empty) = (format!("/api/v1/staff/cases/{id}/claim"), json!({}));
    let claims = (0..8).map(|n| app.post_as(&path, &workers[n % 3], &empty));
    let answers = futures_util::future::join_all(claims).await;
    let statuses: Vec<StatusCode> = answers.iter().map(reqwest::Response::status).collect();
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    // The winner's own repeated claims answer 200 as well (it holds the case already).
    assert!(won >= 1 && won + refused == 8, "{statuses:?}");
    let (_, holder, _) = case_row(&app, &id);
    let holder = holder.expect("someone holds it");
    let claims = case_steps(&app, &id, "case.claimed");
    assert_eq!(claims, 1, "one claim recorded");

    // Eight transitions with the same version at once: one step, seven 412s, and the case moved once.
    let holder_token = {
        let mut found = None;
        for token in &workers {
            let seen = body(app.get_as(&format!("/api/v1/staff/cases/{id}"), token).await).await;
            if seen["assignee"] == holder.as_str() {
                found = Some(token.clone());
            }
        }
        found.unwrap_or_else(|| workers[0].clone())
    };
    let etag = etag_of(&app, &holder_token, &id).await;
    let moves = (0..8).map(|n| {
        transition(
            &app,
            &workers[n % 3],
            &id,
            Some(&etag),
            json!({"action": "bearbeitung_beginnen"}),
        )
    });
    let answers = futures_util::future::join_all(moves).await;
    let statuses: Vec<StatusCode> = answers.iter().map(reqwest::Response::status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
            .count(),
        7,
        "{statuses:?}"
    );
    let steps: i64 = count_rows(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM application_steps WHERE application_id = '{id}' AND action = 'bearbeitung_beginnen'"
        ),
    );
    assert_eq!(steps, 1, "the case moved once");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count_rows(app: &TestApp, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(&mut app.connect())
        .unwrap()
        .n
}

/// How many audit entries of `action` the case has.
fn case_steps(app: &TestApp, id: &str, action: &str) -> i64 {
    count_rows(
        app,
        &format!("SELECT COUNT(*) AS n FROM audit_log WHERE object_id = '{id}' AND action = '{action}'"),
    )
}

async fn units_never_see_each_others_cases(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let tax = staff(
        &app,
        &admin,
        "steuer@stadt.example",
        &[("case_worker", "steueramt")],
    )
    .await;
    let order = staff(
        &app,
        &admin,
        "ordnung@stadt.example",
        &[("case_worker", "ordnungsamt")],
    )
    .await;
    let catalogue = staff(
        &app,
        &admin,
        "katalog@stadt.example",
        &[("catalogue_admin", "steueramt")],
    )
    .await;
    let (_, id) = submitted_dog(&app, "hund@example.de", 7).await;

    for token in [&order, &catalogue] {
        let queues = body(app.get_as("/api/v1/staff/queues", token).await).await;
        assert!(
            queues
                .as_array()
                .unwrap()
                .iter()
                .all(|q| q["unit_id"] != "steueramt"),
            "{queues}"
        );
        let case = app.get_as(&format!("/api/v1/staff/cases/{id}"), token).await;
        assert_eq!(case.status(), StatusCode::NOT_FOUND);
        assert_eq!(body(case).await["code"], "case_not_found");
        let claim = app
            .post_as(&format!("/api/v1/staff/cases/{id}/claim"), token, &json!({}))
            .await;
        assert_eq!(claim.status(), StatusCode::NOT_FOUND);
        let next = app
            .post_as(
                "/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next",
                token,
                &json!({}),
            )
            .await;
        assert_eq!(next.status(), StatusCode::NOT_FOUND);
        let moved = transition(
            &app,
            token,
            &id,
            Some("\"2\""),
            json!({"action": "bearbeitung_beginnen"}),
        )
        .await;
        assert_eq!(moved.status(), StatusCode::NOT_FOUND);
    }
    // Citizens' tokens are not staff tokens.
    let citizen = app.citizen("neugierig@example.de").await;
    let refused = app
        .get_as("/api/v1/staff/queues", &citizen.tokens.access_token)
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // The unit's own case worker claims; a colleague cannot take it over, only wait for its release.
    let colleague = staff(
        &app,
        &admin,
        "kollege@stadt.example",
        &[("case_worker", "steueramt")],
    )
    .await;
    let claimed = app
        .post_as(&format!("/api/v1/staff/cases/{id}/claim"), &tax, &json!({}))
        .await;
    assert_eq!(claimed.status(), StatusCode::OK);
    let taken = app
        .post_as(&format!("/api/v1/staff/cases/{id}/claim"), &colleague, &json!({}))
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let foreign_release = app
        .post_as(
            &format!("/api/v1/staff/cases/{id}/release"),
            &colleague,
            &json!({}),
        )
        .await;
    assert_eq!(foreign_release.status(), StatusCode::FORBIDDEN);
    let released = app
        .post_as(&format!("/api/v1/staff/cases/{id}/release"), &tax, &json!({}))
        .await;
    assert_eq!(released.status(), StatusCode::OK);
    let now_theirs = app
        .post_as(&format!("/api/v1/staff/cases/{id}/claim"), &colleague, &json!({}))
        .await;
    assert_eq!(now_theirs.status(), StatusCode::OK);
}

/// A copy of the shipped directory `shipped` in a temporary directory, with `change` applied to the file `file`.
fn shipped_with(shipped: &str, file: &str, change: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(amtsweg_test_support::workspace_root().join(shipped)).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.ends_with(file) {
            text = change(text);
        }
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    dir
}

/// The shipped catalogue in a temporary directory, with `change` applied to the dog tax procedure's file.
fn catalogue_with(change: impl Fn(String) -> String) -> tempfile::TempDir {
    shipped_with("procedures", "hundesteuer-anmeldung.yaml", change)
}

async fn a_procedure_processed_by_a_client_has_no_staff_queue(backend: Backend) {
    let dir = catalogue_with(|text| {
        let changed = text.replace(
            "processing:\n  target_days: 21",
            "processing:\n  target_days: 21\n  by: client",
        );
        assert!(changed.contains("by: client"));
        changed
    });
    let app = TestApp::builder(backend)
        .procedures(dir.path())
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await.access_token;
    let worker = staff(
        &app,
        &admin,
        "kein@stadt.example",
        &[("case_worker", "steueramt")],
    )
    .await;
    let (_, id) = submitted_dog(&app, "fachverfahren@example.de", 31).await;
    let queues = body(app.get_as("/api/v1/staff/queues", &worker).await).await;
    assert!(
        queues
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["procedure_id"] != "hundesteuer-anmeldung"),
        "{queues}"
    );
    let next = app
        .post_as(
            "/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next",
            &worker,
            &json!({}),
        )
        .await;
    assert_eq!(next.status(), StatusCode::NOT_FOUND);
    let procedure = body(
        app.get_as("/api/v1/procedures/hundesteuer-anmeldung", &worker)
            .await,
    )
    .await;
    assert_eq!(procedure["processed_by"], "client");
    // The case exists all the same, for the specialised procedure to take.
    let (state, _, _) = case_row(&app, &id);
    assert_eq!(state, "eingegangen");
}

async fn a_procedure_may_bring_its_own_notice_of_remedies(backend: Backend) {
    let dir = catalogue_with(|text| {
        text + "remedies:\n  de: Gegen diesen Steuerbescheid kann innerhalb eines Monats Klage beim Verwaltungsgericht Leipzig erhoben werden.\n  en: An action against this tax notice may be brought before the Administrative Court of Leipzig within one month.\n"
    });
    let app = TestApp::builder(backend)
        .procedures(dir.path())
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await.access_token;
    let worker = staff(
        &app,
        &admin,
        "klage@stadt.example",
        &[("case_worker", "steueramt")],
    )
    .await;
    let (_, id) = submitted_dog(&app, "klage@example.de", 41).await;
    app.post_as(&format!("/api/v1/staff/cases/{id}/claim"), &worker, &json!({}))
        .await;
    let etag = etag_of(&app, &worker, &id).await;
    let started = transition(
        &app,
        &worker,
        &id,
        Some(&etag),
        json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    assert_eq!(started.status(), StatusCode::OK);
    let etag = etag_of(&app, &worker, &id).await;
    // The dog tax has no fee set with the decision.
    let with_fee = decide(
        &app,
        &worker,
        &id,
        "decision",
        &etag,
        &json!({"result": "approved", "reasons": "Festsetzung.", "fee_cents": 500}),
    )
    .await;
    assert_eq!(with_fee.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(with_fee).await["errors"][0]["code"], "fee_not_adjustable");
    let decided = decide(
        &app,
        &worker,
        &id,
        "decision",
        &etag,
        &json!({"result": "approved", "reasons": "Die Hundesteuer wird nach der Satzung festgesetzt."}),
    )
    .await;
    assert_eq!(decided.status(), StatusCode::OK);
    let document = app
        .get_as(&format!("/api/v1/staff/cases/{id}/decision/document"), &worker)
        .await;
    let read = inspect_pdf(&document.bytes().await.unwrap());
    let text = read["text"].as_str().unwrap().replace('\n', " ");
    assert!(text.contains("Klage beim Verwaltungsgericht Leipzig"), "{text}");
    assert!(!text.contains("Widerspruch"), "{text}");
}

async fn search(app: &TestApp, token: &str, query: &str) -> Value {
    let found = app.get_as(&format!("/api/v1/staff/cases?{query}"), token).await;
    assert_eq!(found.status(), StatusCode::OK, "{query}");
    body(found).await
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| case["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn staff_search_filters_within_the_callers_units(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let tax = staff(
        &app,
        &admin,
        "suche@stadt.example",
        &[("case_worker", "steueramt")],
    )
    .await;
    let order = staff(
        &app,
        &admin,
        "anders@stadt.example",
        &[("case_worker", "ordnungsamt")],
    )
    .await;
    let (_, first) = submitted_dog(&app, "eins@example.de", 21).await;
    let (_, second) = submitted_dog(&app, "zwei@example.de", 22).await;
    // An organisation's application carries the organisation's name.
    let member = app.citizen("verein@example.de").await.tokens.access_token;
    let organisation = body(
        app.post_as(
            "/api/v1/organisations",
            &member,
            &json!({"name": "Hundefreunde Leipzig e.V."}),
        )
        .await,
    )
    .await;
    let created = body(
        app.post_as(
            "/api/v1/applications",
            &member,
            &json!({"procedure_id": "hundesteuer-anmeldung", "on_behalf_of": organisation["id"], "data": dog(23)}),
        )
        .await,
    )
    .await;
    let third = created["id"].as_str().unwrap().to_owned();
    let submitted = app
        .client
        .post(app.url(&format!("/api/v1/applications/{third}/submit")))
        .bearer_auth(&member)
        .header("idempotency-key", "verein-1")
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::CREATED);
    let number = body(submitted).await["case_number"].as_str().unwrap().to_owned();

    let all = search(&app, &tax, "").await;
    assert_eq!(ids(&all).len(), 3, "{all}");
    assert!(
        ids(&search(&app, &order, "").await).is_empty(),
        "another unit finds nothing"
    );
    assert!(ids(&search(&app, &order, "unit_id=steueramt").await).is_empty());
    assert!(ids(&search(&app, &order, &format!("case_number={number}")).await).is_empty());

    // Pages follow each other without gaps or repeats.
    let page = search(&app, &tax, "limit=2").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = search(&app, &tax, &format!("limit=2&cursor={cursor}")).await;
    assert!(rest.get("next_cursor").is_none());
    let mut paged = ids(&page);
    paged.extend(ids(&rest));
    assert_eq!(paged, ids(&all));

    assert_eq!(
        ids(&search(&app, &tax, "applicant=hundefr").await),
        std::slice::from_ref(&third)
    );
    assert_eq!(
        ids(&search(&app, &tax, "applicant=LEIPZIG%20hunde").await),
        std::slice::from_ref(&third)
    );
    let mustermann = ids(&search(&app, &tax, "applicant=erika%20must").await);
    assert_eq!(
        mustermann.len(),
        2,
        "the organisation's case carries its name, not its member's"
    );
    let people = ids(&search(&app, &tax, "applicant=muster").await);
    assert!(people.contains(&first) && people.contains(&second) && !people.contains(&third));
    assert!(ids(&search(&app, &tax, "applicant=xaver").await).is_empty());
    assert_eq!(
        ids(&search(&app, &tax, &format!("case_number={number}")).await),
        std::slice::from_ref(&third)
    );
    assert_eq!(
        ids(&search(&app, &tax, "state=eingegangen&procedure_id=hundesteuer-anmeldung").await).len(),
        3
    );
    assert!(ids(&search(&app, &tax, "state=in_bearbeitung").await).is_empty());
    assert_eq!(
        ids(&search(&app, &tax, "submitted_from=2000-01-01").await).len(),
        3
    );
    assert!(ids(&search(&app, &tax, "submitted_from=2000-01-01&submitted_to=2000-12-31").await).is_empty());

    app.post_as(&format!("/api/v1/staff/cases/{first}/claim"), &tax, &json!({}))
        .await;
    assert_eq!(
        ids(&search(&app, &tax, "assignee=me").await),
        std::slice::from_ref(&first)
    );
    assert_eq!(ids(&search(&app, &tax, "assignee=none").await).len(), 2);
    assert!(ids(&search(&app, &tax, "overdue=true").await).is_empty());

    let bad = app
        .get_as("/api/v1/staff/cases?submitted_from=gestern", &tax)
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad = body(bad).await;
    assert_eq!(bad["code"], "invalid_query");
    assert_eq!(bad["errors"][0]["code"], "invalid_date");

    // Past the processing deadline (three weeks for the dog tax) every case counts as overdue.
    app.clock.advance(chrono::Duration::days(60));
    let admin = app.admin().await.access_token;
    let later = staff(
        &app,
        &admin,
        "spaeter@stadt.example",
        &[("case_worker", "steueramt")],
    )
    .await;
    assert_eq!(ids(&search(&app, &later, "overdue=true").await).len(), 3);
    assert!(ids(&search(&app, &later, "overdue=false").await).is_empty());
}

const BOUNDARY: &str = "amtsweg-casework-boundary";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

async fn attach(app: &TestApp, token: &str, id: &str, document_type: &str) {
    let attached = app
        .attach_pdf(token, id, document_type, &format!("{document_type}.pdf"), PDF)
        .await;
    assert_eq!(attached.status(), StatusCode::CREATED);
}

/// Uploads a PDF through the files API; answers its id.
async fn upload(app: &TestApp, token: &str) -> String {
    let mut form = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"statik.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(PDF);
    form.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let uploaded = app
        .client
        .post(app.url("/api/v1/files"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    body(uploaded).await["id"].as_str().unwrap().to_owned()
}

async fn etag_of(app: &TestApp, token: &str, id: &str) -> String {
    let case = app.get_as(&format!("/api/v1/staff/cases/{id}"), token).await;
    assert_eq!(case.status(), StatusCode::OK);
    case.headers()["etag"].to_str().unwrap().to_owned()
}

async fn decide(
    app: &TestApp,
    token: &str,
    id: &str,
    path: &str,
    etag: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/staff/cases/{id}/{path}")))
        .bearer_auth(token)
        .header("if-match", etag)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn a_building_permit_is_decided_with_four_eyes(backend: Backend) {
    let provider = EidProvider::start();
    let settings = provider.settings();
    let app = TestApp::builder(backend)
        .configure(move |s| s.account.eid = Some(settings))
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await.access_token;
    let author = staff(
        &app,
        &admin,
        "bau1@stadt.example",
        &[("case_worker", "bauordnungsamt")],
    )
    .await;
    let second = staff(
        &app,
        &admin,
        "bau2@stadt.example",
        &[("supervisor", "bauordnungsamt")],
    )
    .await;

    // The building application is in written form (§ 3a (2) VwVfG): a citizen with two factors prepares it.
    let citizen = app.citizen("bauherrin@example.de").await;
    let citizen = app.with_totp(citizen).await;
    let token = &citizen.tokens.access_token;
    let data = json!({
        "bauherr": {"name": "Erika Mustermann", "anschrift": "Markt 1, 04109 Leipzig"},
        "grundstueck": {"gemarkung": "Leipzig", "flurstueck": "1234/5"},
        "vorhaben": {"art": "anbau", "beschreibung": "Wintergarten an der Südseite"},
        "baukosten_euro": 40000
    });
    let created = body(
        app.post_as(
            "/api/v1/applications",
            token,
            &json!({"procedure_id": "baugenehmigung", "data": data}),
        )
        .await,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    for document in ["lageplan", "bauzeichnungen", "baubeschreibung"] {
        attach(&app, token, &id, document).await;
    }
    let submit = |token: String| {
        let request = app
            .client
            .post(app.url(&format!("/api/v1/applications/{id}/submit")))
            .bearer_auth(token)
            .header("idempotency-key", "bau-1");
        async move { request.send().await.unwrap() }
    };
    // Two factors do not replace a signature: the answer asks for the eID card (RFC 9470 step-up).
    let refused = submit(token.clone()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("acr_values=\"high\"")
    );
    let problem = body(refused).await;
    assert_eq!(problem["code"], "insufficient_user_authentication");
    assert!(problem["detail"].as_str().unwrap().contains("§ 3a"), "{problem}");
    // With the eID card linked and used, the same draft goes in.
    let eid = app.eid_login(&provider, Some(token), None).await;
    assert_eq!(eid.status(), StatusCode::OK);
    let eid: Tokens = eid.json().await.unwrap();
    assert_eq!(
        (eid.acr.as_str(), eid.amr.clone()),
        ("high", vec!["eid".to_owned()])
    );
    let token = &eid.access_token;
    let submitted = submit(token.clone()).await;
    assert_eq!(submitted.status(), StatusCode::CREATED);

    let claimed = app
        .post_as(
            "/api/v1/staff/queues/bauordnungsamt.baugenehmigung/claim-next",
            &author,
            &json!({}),
        )
        .await;
    assert_eq!(claimed.status(), StatusCode::OK);
    let etag = etag_of(&app, &author, &id).await;
    let moved = transition(
        &app,
        &author,
        &id,
        Some(&etag),
        json!({"action": "pruefung_beginnen"}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);

    // The unit asks for the structural analysis and a fuller description, with three weeks to answer.
    let etag = etag_of(&app, &author, &id).await;
    let unknown = request_information(
        &app,
        &author,
        &id,
        Some(&etag),
        json!({"message": "x", "fields": ["/gibt/es/nicht"], "documents": ["steuerbescheid"]}),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = body(unknown).await;
    let pointers: Vec<&str> = unknown["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/fields/0", "/documents/0"], "{unknown}");
    let asked = request_information(
        &app,
        &author,
        &id,
        Some(&etag),
        json!({
            "message": "Bitte reichen Sie den Standsicherheitsnachweis nach und beschreiben Sie das Vorhaben genauer.",
            "fields": ["/vorhaben/beschreibung"],
            "documents": ["standsicherheitsnachweis"],
            "reply_days": 21
        }),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::CREATED);
    let asked = body(asked).await;
    assert_eq!(asked["state"], "nachforderung");
    let again = request_information(
        &app,
        &author,
        &id,
        Some(&etag_of(&app, &author, &id).await),
        json!({"message": "Noch etwas."}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "one open request at a time");

    // The citizen sees what is asked, with labels, and answers with the document and the changed field.
    let requests = body(
        app.get_as(&format!("/api/v1/applications/{id}/requests"), token)
            .await,
    )
    .await;
    let request = &requests[0];
    assert_eq!(request["status"], "open");
    assert_eq!(
        request["fields"][0]["label"], "Beschreibung des Vorhabens",
        "{request}"
    );
    assert_eq!(request["documents"][0]["name"], "Standsicherheitsnachweis");
    assert!(request["due_on"].is_string());
    assert!(!requests.to_string().contains("bau1@stadt.example"));
    let request_id = request["id"].as_str().unwrap().to_owned();
    let answer_path = format!("/api/v1/applications/{id}/requests/{request_id}/answer");
    let empty = app.post_as(&answer_path, token, &json!({})).await;
    assert_eq!(body(empty).await["errors"][0]["code"], "empty_answer");
    let outside = app
        .post_as(
            &answer_path,
            token,
            &json!({"data": {"baukosten_euro": 1, "vorhaben": {"beschreibung": "Wintergarten, 12 m², Holz"}}}),
        )
        .await;
    assert_eq!(outside.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let outside = body(outside).await;
    let codes: Vec<(&str, &str)> = outside["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["pointer"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert!(
        codes.contains(&("/data/baukosten_euro", "field_not_requested")),
        "{outside}"
    );
    assert!(codes.contains(&("/attachments", "document_missing")), "{outside}");
    let file_id = upload(&app, token).await;
    let other = app.citizen("fremde@example.de").await.tokens.access_token;
    let foreign = app
        .post_as(&answer_path, &other, &json!({"comment": "Hallo"}))
        .await;
    assert_eq!(
        foreign.status(),
        StatusCode::NOT_FOUND,
        "another citizen finds nothing"
    );
    // The same answer sent four times at once: one is taken, the others find the request answered.
    let answer = json!({
        "comment": "Anbei der Nachweis.",
        "data": {"vorhaben": {"beschreibung": "Wintergarten, 12 m², Holz"}},
        "attachments": [{"document_type": "standsicherheitsnachweis", "file_id": file_id}]
    });
    let sent = (0..4).map(|_| app.post_as(&answer_path, token, &answer));
    let mut taken = None;
    for response in futures_util::future::join_all(sent).await {
        match response.status() {
            StatusCode::OK => {
                assert!(taken.is_none(), "answered twice");
                taken = Some(body(response).await);
            }
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    let answered = taken.expect("one answer is taken");
    assert_eq!(answered["status"], "answered");
    assert_eq!(answered["answer"], "Anbei der Nachweis.");
    assert_eq!(
        answered["attachments"][0]["document_type"],
        "standsicherheitsnachweis"
    );
    let twice = app
        .post_as(&answer_path, token, &json!({"comment": "Nochmal"}))
        .await;
    assert_eq!(body(twice).await["code"], "request_not_open");
    let seen = body(app.get_as(&format!("/api/v1/applications/{id}"), token).await).await;
    assert_eq!(seen["business_status"]["state"], "vollstaendigkeitspruefung");
    assert_eq!(
        seen["data"]["vorhaben"]["beschreibung"],
        "Wintergarten, 12 m², Holz"
    );
    assert_eq!(seen["attachments"].as_array().unwrap().len(), 4);

    // Back in the queue, unclaimed: the unit takes it up again.
    let (_, assignee, queued) = case_row(&app, &id);
    assert_eq!((assignee, queued), (None, true));
    let claimed = app
        .post_as(
            "/api/v1/staff/queues/bauordnungsamt.baugenehmigung/claim-next",
            &author,
            &json!({}),
        )
        .await;
    assert_eq!(body(claimed).await["id"], id.as_str());
    let etag = etag_of(&app, &author, &id).await;
    let moved = transition(&app, &author, &id, Some(&etag), json!({"action": "vollstaendig"})).await;
    assert_eq!(moved.status(), StatusCode::OK);
    let case = body(app.get_as(&format!("/api/v1/staff/cases/{id}"), &author).await).await;
    assert_eq!(case["state"], "fachpruefung");
    // The case file keeps the eID assertion the application was made under: the provider's signed ID token.
    let evidence = &case["written_form"];
    assert_eq!(evidence["issuer"], provider.issuer.as_str());
    assert_eq!(evidence["subject"], "eid-4711");
    assert_eq!(evidence["level"], "high");
    let id_token = evidence["id_token"].as_str().unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&claims["iss"], &claims["sub"], &claims["aud"]),
        (&json!(provider.issuer), &json!("eid-4711"), &json!("amtsweg"))
    );
    assert_eq!(id_token.split('.').count(), 3, "a signed JWS");
    let decisions: Vec<&str> = case["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["decision"].as_str())
        .collect();
    assert_eq!(decisions, ["approved", "partially_approved", "rejected"]);
    // The fee as assessed at submission: 0.6 % of 40,000 euros, with its booking data.
    assert_eq!(case["fee_cents"], 24_000);
    assert_eq!(case["fee_lines"].as_array().unwrap().len(), 1);
    assert_eq!(case["fee_lines"][0]["amount_cents"], 24_000);
    assert_eq!(
        case["fee_lines"][0]["booking"]["buchungstext"],
        "BAUGENEHMIGUNG GEBUEHR"
    );

    let etag = etag_of(&app, &author, &id).await;
    let invalid = decide(
        &app,
        &author,
        &id,
        "decision",
        &etag,
        &json!({"result": "vielleicht", "reasons": ""}),
    )
    .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = body(invalid).await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");
    let decided = decide(
        &app,
        &author,
        &id,
        "decision",
        &etag,
        &json!({
            "result": "partially_approved",
            "reasons": "Das Vorhaben entspricht den öffentlich-rechtlichen Vorschriften; der Carport entfällt.",
            "fee_cents": 18_000
        }),
    )
    .await;
    assert_eq!(decided.status(), StatusCode::OK);
    let decided = body(decided).await;
    // The fee set with the decision replaces the assessment, booked by the procedure's decision_fee rule.
    assert_eq!(decided["fee_cents"], 18_000);
    assert_eq!(
        decided["fee_lines"],
        json!([{
            "description": "Gebühr laut Bescheid",
            "amount_cents": 18_000,
            "booking": {"haushaltsstelle": "5.1.1.0.02", "objektnummer": "51100000", "buchungstext": "BAUGENEHMIGUNG GEBUEHR LT. BESCHEID"}
        }])
    );
    assert_eq!(
        decided["state"], "mitzeichnung",
        "four eyes: the decision waits for its second signature"
    );

    // Staff read the attachments of their unit's cases; each read is recorded; other units find nothing.
    let attachment_id = case["attachments"][0]["id"].as_str().unwrap().to_owned();
    let read = app
        .get_as(
            &format!("/api/v1/staff/cases/{id}/attachments/{attachment_id}"),
            &author,
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.bytes().await.unwrap().as_ref(), PDF);
    let outsider = staff(
        &app,
        &admin,
        "fremd@stadt.example",
        &[("case_worker", "ordnungsamt")],
    )
    .await;
    let refused = app
        .get_as(
            &format!("/api/v1/staff/cases/{id}/attachments/{attachment_id}"),
            &outsider,
        )
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);

    // The decision document is in the case file: a tagged PDF/A in the applicant's language with the remedies.
    let document = app
        .get_as(&format!("/api/v1/staff/cases/{id}/decision/document"), &author)
        .await;
    assert_eq!(document.status(), StatusCode::OK);
    let read = inspect_pdf(&document.bytes().await.unwrap());
    let text = read["text"].as_str().unwrap();
    assert!(
        text.contains("Bescheid") && text.contains("eilweise genehmigt"),
        "{text}"
    );
    assert!(text.contains("180,00"), "the fee set with the decision: {text}");
    assert!(
        text.contains("Rechtsbehelfsbelehrung") && text.contains("innerhalb eines Monats"),
        "{text}"
    );
    assert!(text.contains(decided["case_number"].as_str().unwrap()), "{text}");
    assert_eq!(read["lang"], "de");
    assert_eq!(read["pdfa_part"], "2");

    // The author cannot co-sign; a second member of the unit can, and the case goes to delivery.
    let etag = etag_of(&app, &author, &id).await;
    let own = decide(&app, &author, &id, "decision/cosign", &etag, &json!({})).await;
    assert_eq!(own.status(), StatusCode::FORBIDDEN);
    let back = transition(
        &app,
        &author,
        &id,
        Some(&etag),
        json!({"action": "zurueckweisen", "comment": "x"}),
    )
    .await;
    assert_eq!(
        back.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "nor send it back as its own reviewer"
    );
    let cosigned = decide(&app, &second, &id, "decision/cosign", &etag, &json!({})).await;
    assert_eq!(cosigned.status(), StatusCode::OK);
    assert_eq!(body(cosigned).await["state"], "bescheid_zustellung");
    // The fee set with the decision is invoiced as the decision goes out: one payment with its booking line.
    let invoiced = body(
        app.get_as(&format!("/api/v1/applications/{id}/payments"), token)
            .await,
    )
    .await;
    assert_eq!(invoiced.as_array().unwrap().len(), 1, "{invoiced}");
    assert_eq!(invoiced[0]["amount_cents"], 18_000);
    assert_eq!(invoiced[0]["state"], "initial");
    assert_eq!(
        invoiced[0]["bookings"][0]["buchungstext"],
        "BAUGENEHMIGUNG GEBUEHR LT. BESCHEID"
    );
    assert!(invoiced[0]["due_on"].is_string());
    let twice = decide(
        &app,
        &second,
        &id,
        "decision/cosign",
        &etag_of(&app, &second, &id).await,
        &json!({}),
    )
    .await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);

    // The citizen sees that a decision is on its way, not yet its result.
    let seen = body(app.get_as(&format!("/api/v1/applications/{id}"), token).await).await;
    assert_eq!(seen["business_status"]["label"], "Bescheid wird zugestellt");
    assert_eq!(seen["business_status"]["waiting_for"], "delivery");
    assert!(!seen.to_string().contains("approved"), "{seen}");

    // The receipt shows what was submitted then (not the later answer), under the form's labels, with the
    // attachments' names and hashes; a mail says it is there, without any form content.
    let receipt = app
        .get_as(&format!("/api/v1/applications/{id}/receipt"), token)
        .await;
    assert_eq!(receipt.status(), StatusCode::OK);
    assert_eq!(receipt.headers()["content-type"], "application/pdf");
    let read = inspect_pdf(&receipt.bytes().await.unwrap());
    let text = read["text"].as_str().unwrap().replace('\n', " ");
    assert!(text.contains("Eingangsbestätigung"), "{text}");
    assert!(text.contains(seen["case_number"].as_str().unwrap()), "{text}");
    assert!(
        text.contains("Beschreibung des Vorhabens") && text.contains("Wintergarten an der Südseite"),
        "{text}"
    );
    assert!(
        !text.contains("12 m²"),
        "the receipt is of the submission: {text}"
    );
    let sha = seen["attachments"][0]["sha256"].as_str().unwrap();
    assert!(text.contains(&format!("SHA-256 {sha}")), "{text}");
    assert!(text.contains("lageplan.pdf"), "{text}");
    assert!(
        text.contains("Schriftformersatz") && text.contains("Online-Ausweis"),
        "{text}"
    );
    assert_eq!(read["lang"], "de");
    let started = std::time::Instant::now();
    let notice = loop {
        let mails = app.mails_to("bauherrin@example.de", 1).await;
        if let Some(notice) = mails.into_iter().find(|m| m.body.contains("Eingangsbestätigung")) {
            break notice;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no receipt mail"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(notice.subject.contains("Baugenehmigung"), "{notice:?}");
    assert!(
        !notice.body.contains("Wintergarten"),
        "no form content in the mail"
    );
    let again = app
        .get_as(&format!("/api/v1/applications/{id}/receipt"), token)
        .await;
    assert_eq!(again.status(), StatusCode::OK, "the same receipt again");
    let other = app.citizen("neugierig@example.de").await.tokens.access_token;
    let foreign = app
        .get_as(&format!("/api/v1/applications/{id}/receipt"), &other)
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
}

async fn run_timers(app: &TestApp) -> Value {
    let admin = app.admin().await.access_token;
    run_timers_as(app, &admin).await
}

async fn run_timers_as(app: &TestApp, admin: &str) -> Value {
    let run = app
        .post_as(
            "/api/v1/admin/schedules/application-timers/run",
            admin,
            &json!({}),
        )
        .await;
    assert_eq!(run.status(), StatusCode::OK);
    let run = body(run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    run["result"].clone()
}

async fn a_reply_window_that_runs_out_brings_the_case_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let worker = staff(
        &app,
        &admin,
        "frist@stadt.example",
        &[("case_worker", "steueramt")],
    )
    .await;
    let (_, id) = submitted_dog(&app, "saeumig@example.de", 9).await;
    app.post_as(&format!("/api/v1/staff/cases/{id}/claim"), &worker, &json!({}))
        .await;
    let etag = etag_of(&app, &worker, &id).await;
    transition(
        &app,
        &worker,
        &id,
        Some(&etag),
        json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    let etag = etag_of(&app, &worker, &id).await;
    let asked = request_information(
        &app,
        &worker,
        &id,
        Some(&etag),
        json!({"message": "Bitte den Impfpass nachreichen.", "reply_days": 28}),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::CREATED);
    let asked = body(asked).await;
    assert_eq!(asked["state"], "nachforderung");
    assert_eq!(run_timers(&app).await["fired"], 0, "nothing is due yet");
    let norm_before = service_norm(&app, &id);

    // Four weeks to answer; a day after the last one the case is back in the queue, unclaimed.
    // (The hourly schedule may fire it by itself as soon as the clock moves; running it by hand as well must not
    // fire it twice.)
    app.clock.advance(chrono::Duration::days(30));
    let fired = run_timers(&app).await["fired"].as_u64().unwrap();
    let started = std::time::Instant::now();
    while case_row(&app, &id).0 != "in_bearbeitung" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the timer did not fire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(fired <= 1);
    assert_eq!(run_timers(&app).await["fired"], 0, "a timer fires once");
    let steps: Vec<StepRow> = diesel::sql_query(
        "SELECT action, actor_kind FROM application_steps WHERE application_id = $1 AND action = 'antwortfrist_abgelaufen'",
    )
    .bind::<Text, _>(&id)
    .load(&mut app.connect())
    .unwrap();
    assert_eq!(steps.len(), 1, "one expiry step");
    let (state, assignee, queued) = case_row(&app, &id);
    assert_eq!(state, "in_bearbeitung");
    assert_eq!(
        (assignee, queued),
        (None, true),
        "back in the queue, for anyone to claim"
    );
    let last_step: StepRow = diesel::sql_query(
        "SELECT action, actor_kind FROM application_steps WHERE application_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind::<Text, _>(&id)
    .get_result(&mut app.connect())
    .unwrap();
    assert_eq!(
        (last_step.action.as_str(), last_step.actor_kind.as_str()),
        ("antwortfrist_abgelaufen", "system")
    );
    // (The staff token has expired with the clock moved; the record is read directly.)
    let request: RequestRow =
        diesel::sql_query("SELECT status, due_on FROM information_requests WHERE application_id = $1")
            .bind::<Text, _>(&id)
            .get_result(&mut app.connect())
            .unwrap();
    assert_eq!(request.status, "expired");
    // The 30 days the case waited for the citizen do not count against the service norm.
    let norm_after = service_norm(&app, &id);
    assert_eq!((norm_after - norm_before).num_days(), 30);
    assert_eq!(
        request.due_on,
        asked["information_requests"][0]["due_on"].as_str().unwrap()
    );
}

#[derive(QueryableByName)]
struct NormRow {
    #[diesel(sql_type = Nullable<Text>)]
    service_norm_due: Option<String>,
}

fn service_norm(app: &TestApp, id: &str) -> chrono::NaiveDate {
    let row: NormRow = diesel::sql_query("SELECT service_norm_due FROM applications WHERE id = $1")
        .bind::<Text, _>(id)
        .get_result(&mut app.connect())
        .unwrap();
    row.service_norm_due.unwrap().parse().unwrap()
}

#[derive(QueryableByName)]
struct RequestRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    due_on: String,
}

#[derive(QueryableByName)]
struct StepRow {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    actor_kind: String,
}

#[derive(QueryableByName)]
struct CaseRow {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Text>)]
    assignee: Option<String>,
    #[diesel(sql_type = Bool)]
    queued: bool,
}

fn case_row(app: &TestApp, id: &str) -> (String, Option<String>, bool) {
    let row: CaseRow = diesel::sql_query("SELECT state, assignee, queued FROM applications WHERE id = $1")
        .bind::<Text, _>(id)
        .get_result(&mut app.connect())
        .unwrap();
    (row.state, row.assignee, row.queued)
}

async fn notes_stay_internal_and_supervisors_assign(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await.access_token;
    let worker = staff(
        &app,
        &admin,
        "notiz@stadt.example",
        &[("case_worker", "steueramt")],
    )
    .await;
    let lead = staff(
        &app,
        &admin,
        "leitung@stadt.example",
        &[("supervisor", "steueramt")],
    )
    .await;
    let elsewhere = staff(
        &app,
        &admin,
        "woanders@stadt.example",
        &[("case_worker", "ordnungsamt")],
    )
    .await;
    let (citizen, id) = submitted_dog(&app, "notiert@example.de", 11).await;
    let staff_id = |token: &str| {
        let token = token.to_owned();
        let app = &app;
        async move {
            body(app.get_as("/api/v1/staff/me", &token).await).await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    let note = app
        .post_as(
            &format!("/api/v1/staff/cases/{id}/notes"),
            &worker,
            &json!({"text": "Halter telefonisch erreicht."}),
        )
        .await;
    assert_eq!(note.status(), StatusCode::CREATED);
    let empty = app
        .post_as(
            &format!("/api/v1/staff/cases/{id}/notes"),
            &worker,
            &json!({"text": "  "}),
        )
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let foreign = app
        .post_as(
            &format!("/api/v1/staff/cases/{id}/notes"),
            &elsewhere,
            &json!({"text": "x"}),
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let case = body(app.get_as(&format!("/api/v1/staff/cases/{id}"), &lead).await).await;
    assert_eq!(case["notes"][0]["text"], "Halter telefonisch erreicht.");
    let seen = body(app.get_as(&format!("/api/v1/applications/{id}"), &citizen).await).await;
    assert!(
        !seen.to_string().contains("telefonisch"),
        "notes are internal: {seen}"
    );

    let path = format!("/api/v1/staff/cases/{id}/assign");
    let worker_id = staff_id(&worker).await;
    let not_lead = app.post_as(&path, &worker, &json!({"staff_id": worker_id})).await;
    assert_eq!(not_lead.status(), StatusCode::FORBIDDEN);
    let outsider = app
        .post_as(&path, &lead, &json!({"staff_id": staff_id(&elsewhere).await}))
        .await;
    assert_eq!(outsider.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body(outsider).await["errors"][0]["code"],
        "not_a_case_worker_here"
    );
    let assigned = app.post_as(&path, &lead, &json!({"staff_id": worker_id})).await;
    assert_eq!(assigned.status(), StatusCode::OK);
    assert_eq!(body(assigned).await["assignee"], worker_id.as_str());
}

/// The shipped workflows in a directory of the test's own, with `steuerfestsetzung.yaml` changed by `change`.
fn workflows_with(change: impl Fn(String) -> String) -> tempfile::TempDir {
    shipped_with("workflows", "steuerfestsetzung.yaml", change)
}

async fn a_case_stays_on_the_workflow_version_it_was_submitted_under(backend: Backend) {
    let first = workflows_with(|text| text);
    let dir = first.path().to_owned();
    let app = TestApp::builder(backend)
        .configure(move |s| s.workflows.dir = Some(dir))
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await.access_token;
    let worker = tax_office(&app, &admin, "versionen", 1).await.remove(0);
    let (citizen, old_case) = submitted_dog(&app, "alt@example.de", 1).await;

    // The tax office publishes version 4: the first step is renamed, the first state relabelled.
    let renamed = |text: String| {
        let changed = text
            .replace("version: 3", "version: 4")
            .replace("bearbeitung_beginnen", "pruefung_beginnen")
            .replace(
                "label: { de: Eingegangen, en: Received }",
                "label: { de: Antrag eingegangen, en: Application received }",
            );
        assert!(changed.contains("pruefung_beginnen") && changed.contains("Antrag eingegangen"));
        changed
    };
    // A changed file that keeps its version is refused at start, naming the workflow.
    let unversioned = workflows_with(move |text| renamed(text).replace("version: 4", "version: 3"));
    let dir = unversioned.path().to_owned();
    let refused = app
        .restart_builder()
        .configure(move |s| s.workflows.dir = Some(dir))
        .spawn()
        .await;
    let reason = format!(
        "{:#}",
        refused
            .err()
            .expect("a changed workflow with its old version is refused")
    );
    assert!(
        reason.contains("steuerfestsetzung") && reason.contains("raise `version`"),
        "{reason}"
    );
    let second = workflows_with(renamed);
    let dir = second.path().to_owned();
    let app = app
        .restart_builder()
        .configure(move |s| s.workflows.dir = Some(dir))
        .spawn()
        .await
        .unwrap();
    let new_case = submit_dog_of(&app, &citizen, 2).await;

    let label = |id: String| {
        let app = &app;
        let citizen = &citizen;
        async move {
            body(app.get_as(&format!("/api/v1/applications/{id}"), citizen).await).await["business_status"]
                ["label"]
                .clone()
        }
    };
    assert_eq!(
        label(old_case.clone()).await,
        "Eingegangen",
        "the old case keeps its version"
    );
    assert_eq!(label(new_case.clone()).await, "Antrag eingegangen");
    let actions = |id: String| {
        let app = &app;
        let worker = &worker;
        async move {
            let case = body(app.get_as(&format!("/api/v1/staff/cases/{id}"), worker).await).await;
            case["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["action"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(
        actions(old_case.clone())
            .await
            .contains(&"bearbeitung_beginnen".to_owned())
    );
    assert!(
        actions(new_case.clone())
            .await
            .contains(&"pruefung_beginnen".to_owned())
    );

    // Each case moves by the actions of its own version.
    let etag = etag_of(&app, &worker, &new_case).await;
    let old_name = transition(
        &app,
        &worker,
        &new_case,
        Some(&etag),
        json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    assert_eq!(old_name.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let etag = etag_of(&app, &worker, &old_case).await;
    let moved = transition(
        &app,
        &worker,
        &old_case,
        Some(&etag),
        json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let etag = etag_of(&app, &worker, &new_case).await;
    let moved = transition(
        &app,
        &worker,
        &new_case,
        Some(&etag),
        json!({"action": "pruefung_beginnen"}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
}

/// The fiction of a case as staff (`staff: true`) or its applicant see it.
async fn fiction_of(app: &TestApp, token: &str, id: &str, staff: bool) -> Value {
    let path = if staff {
        format!("/api/v1/staff/cases/{id}")
    } else {
        format!("/api/v1/applications/{id}")
    };
    let seen = body(app.get_as(&path, token).await).await;
    if staff {
        seen["approval_fiction"].clone()
    } else {
        seen["business_status"]["approval_fiction"].clone()
    }
}

async fn the_approval_fiction_runs_from_complete_documents_and_is_recorded(backend: Backend) {
    // A statute (here an invented one) orders the fiction of approval for the dog tax: one month, one extension of
    // at most a month, an alert five days before the end.
    let dir = catalogue_with(|text| {
        text.replace(
            "payment: none\n",
            "payment: none\napproval_fiction:\n  statute: § 9 Testgesetz\n  months: 1\n  max_extension_months: 1\n  alert_days: 5\n",
        )
    });
    let start = chrono::DateTime::parse_from_rfc3339("2027-03-01T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let app = TestApp::builder(backend)
        .procedures(dir.path())
        .with_smtp()
        .spawn()
        .await
        .unwrap();
    let clock = app.clock.clone();
    clock.set(start);
    let admin = app.admin().await.access_token;
    let worker = tax_office(&app, &admin, "fiktion", 1).await.remove(0);
    let citizen = app.citizen("fiktion@example.de").await;
    let token = citizen.tokens.access_token.clone();

    // Submitted complete on Monday 1 March 2027: the month ends on Thursday 1 April (§ 188 (2) BGB).
    let deemed = submit_dog_of(&app, &token, 1).await;
    let fiction = fiction_of(&app, &worker, &deemed, true).await;
    assert_eq!(fiction["status"], "running");
    assert_eq!(fiction["statute"], "§ 9 Testgesetz");
    assert_eq!(
        (&fiction["started_on"], &fiction["ends_on"], &fiction["alert_on"]),
        (&json!("2027-03-01"), &json!("2027-04-01"), &json!("2027-03-27"))
    );
    let seen = fiction_of(&app, &token, &deemed, false).await;
    assert_eq!(seen["ends_on"], "2027-04-01");
    assert!(seen.get("alert_on").is_none(), "internal: {seen}");

    // The unit extends it once, with reasons, by at most a month; 1 May 2027 is a Saturday and a holiday.
    let path = format!("/api/v1/staff/cases/{deemed}/approval-fiction/extension");
    let extension =
        json!({"months": 1, "reasons": "Die Rasse ist in der Satzung nicht eindeutig eingeordnet."});
    let without = app.post_as(&path, &worker, &extension).await;
    let extend = |etag: &str, request: &Value| {
        let (app, worker, deemed) = (&app, &worker, &deemed);
        let (etag, request) = (etag.to_owned(), request.clone());
        async move { decide(app, worker, deemed, "approval-fiction/extension", &etag, &request).await }
    };
    assert_eq!(without.status(), StatusCode::PRECONDITION_REQUIRED);
    let etag = etag_of(&app, &worker, &deemed).await;
    let too_long = extend(&etag, &json!({"months": 2, "reasons": "x"})).await;
    assert_eq!(too_long.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let no_reasons = extend(&etag, &json!({"months": 1, "reasons": " "})).await;
    assert_eq!(no_reasons.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Sent four times at once: one extension; the others find the case changed (412) or extended (409).
    let sent = futures_util::future::join_all((0..4).map(|_| extend(&etag, &extension))).await;
    let mut extended = None;
    for response in sent {
        match response.status() {
            StatusCode::OK => {
                assert!(extended.is_none(), "extended twice");
                extended = Some(body(response).await);
            }
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => {}
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    let extended = extended.expect("one extension is taken");
    let steps: Vec<StepRow> = diesel::sql_query(
        "SELECT action, actor_kind FROM application_steps WHERE application_id = $1 AND action = 'fristverlaengerung'",
    )
    .bind::<Text, _>(&deemed)
    .load(&mut app.connect())
    .unwrap();
    assert_eq!(steps.len(), 1, "one extension step");
    assert_eq!(extended["approval_fiction"]["ends_on"], "2027-05-03");
    assert_eq!(extended["approval_fiction"]["alert_on"], "2027-04-28");
    let etag = etag_of(&app, &worker, &deemed).await;
    let again = extend(&etag, &extension).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(body(again).await["code"], "fiction_already_extended");
    let seen = body(
        app.get_as(&format!("/api/v1/applications/{deemed}"), &token)
            .await,
    )
    .await;
    let step = seen["business_status"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "Entscheidungsfrist verlängert")
        .cloned()
        .unwrap_or_else(|| panic!("{seen}"));
    assert_eq!(
        step["comment"],
        "Die Rasse ist in der Satzung nicht eindeutig eingeordnet."
    );
    assert!(
        seen["business_status"]["approval_fiction"]
            .get("extended_by")
            .is_none()
    );

    // Documents asked for: the application was not complete, the period has not started — it starts with the
    // answer (Wednesday 3 March, so it ends on Saturday 3 April, moved to Monday 5 April).
    let decided = submit_dog_of(&app, &token, 2).await;
    let etag = etag_of(&app, &worker, &decided).await;
    let started = transition(
        &app,
        &worker,
        &decided,
        Some(&etag),
        json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    assert_eq!(started.status(), StatusCode::OK);
    let etag = etag_of(&app, &worker, &decided).await;
    let asked = request_information(
        &app,
        &worker,
        &decided,
        Some(&etag),
        json!({"message": "Bitte den Versicherungsnachweis.", "documents": ["haftpflichtnachweis"]}),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::CREATED);
    let fiction = fiction_of(&app, &worker, &decided, true).await;
    assert_eq!(fiction["status"], "awaiting_documents");
    assert!(fiction.get("ends_on").is_none(), "{fiction}");
    clock.advance(chrono::Duration::days(2));
    let token = app
        .login(&citizen.email, &citizen.password, None)
        .await
        .json::<Tokens>()
        .await
        .unwrap()
        .access_token;
    let admin = app.admin().await.access_token;
    let worker = tax_office(&app, &admin, "fiktion-mittwoch", 1).await.remove(0);
    let requests = body(
        app.get_as(&format!("/api/v1/applications/{decided}/requests"), &token)
            .await,
    )
    .await;
    let request_id = requests[0]["id"].as_str().unwrap().to_owned();
    let file_id = upload(&app, &token).await;
    let answered = app
        .post_as(
            &format!("/api/v1/applications/{decided}/requests/{request_id}/answer"),
            &token,
            &json!({"attachments": [{"document_type": "haftpflichtnachweis", "file_id": file_id}]}),
        )
        .await;
    assert_eq!(answered.status(), StatusCode::OK, "{:?}", answered.text().await);
    let fiction = fiction_of(&app, &worker, &decided, true).await;
    assert_eq!(
        (&fiction["status"], &fiction["started_on"], &fiction["ends_on"]),
        (&json!("running"), &json!("2027-03-03"), &json!("2027-04-05"))
    );
    // A decision stops it.
    let etag = etag_of(&app, &worker, &decided).await;
    let decision = decide(
        &app,
        &worker,
        &decided,
        "decision",
        &etag,
        &json!({"result": "approved", "reasons": "Festsetzung nach der Satzung."}),
    )
    .await;
    assert_eq!(decision.status(), StatusCode::OK);
    assert_eq!(body(decision).await["approval_fiction"]["status"], "stopped");

    // From the alert day the queue shows the case whose period is about to end.
    clock.set(
        chrono::DateTime::parse_from_rfc3339("2027-04-29T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    );
    let admin = app.admin().await.access_token;
    let worker = tax_office(&app, &admin, "fiktion-april", 1).await.remove(0);
    let queues = body(app.get_as("/api/v1/staff/queues", &worker).await).await;
    let queue = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue_id"] == "steueramt.hundesteuer-anmeldung")
        .cloned()
        .unwrap();
    assert_eq!(queue["approval_fiction_alerts"], 1, "{queue}");

    // The extended period ends on Monday 3 May without a decision: on the 4th the approval is deemed granted.
    clock.set(
        chrono::DateTime::parse_from_rfc3339("2027-05-04T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    );
    run_timers(&app).await;
    let admin = app.admin().await.access_token;
    let worker = tax_office(&app, &admin, "fiktion-mai", 1).await.remove(0);
    let fiction = fiction_of(&app, &worker, &deemed, true).await;
    assert_eq!(fiction["status"], "occurred", "{fiction}");
    assert!(fiction["occurred_at"].is_string());
    assert_eq!(run_timers(&app).await["fired"], 0, "it is recorded once");
    let token = app
        .login(&citizen.email, &citizen.password, None)
        .await
        .json::<Tokens>()
        .await
        .unwrap()
        .access_token;
    let seen = body(
        app.get_as(&format!("/api/v1/applications/{deemed}"), &token)
            .await,
    )
    .await;
    assert_eq!(seen["business_status"]["approval_fiction"]["status"], "occurred");
    let timeline = seen["business_status"]["timeline"].as_array().unwrap();
    let last = timeline.last().unwrap();
    assert_eq!(last["label"], "Genehmigung gilt als erteilt");
    assert!(
        last["comment"].as_str().unwrap().contains("§ 9 Testgesetz"),
        "{last}"
    );
    let etag = etag_of(&app, &worker, &deemed).await;
    let late = decide(
        &app,
        &worker,
        &deemed,
        "approval-fiction/extension",
        &etag,
        &json!({"months": 1, "reasons": "zu spät"}),
    )
    .await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    assert_eq!(body(late).await["code"], "fiction_not_running");
    // The applicant was told of the extension and of the fiction, by mail without content.
    let started = std::time::Instant::now();
    loop {
        let mails = app.smtp().to(&citizen.email);
        let told = |part: &str| mails.iter().any(|m| m.body.contains(part));
        if told("Frist für die Entscheidung") && told("gilt als erteilt") {
            assert!(
                !mails.iter().any(|m| m.body.contains("Satzung nicht eindeutig")),
                "no reasons in mails"
            );
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{mails:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn the_applicant_is_reminded_once_before_a_reply_window_ends(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let admin = app.admin().await.access_token;
    let worker = staff(
        &app,
        &admin,
        "erinnert@stadt.example",
        &[("case_worker", "steueramt")],
    )
    .await;
    let email = "erinnerung@example.de";
    let (_, id) = submitted_dog(&app, email, 77).await;
    let claimed = app
        .post_as(
            "/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next",
            &worker,
            &json!({}),
        )
        .await;
    assert_eq!(claimed.status(), StatusCode::OK);
    let etag = etag_of(&app, &worker, &id).await;
    let started = transition(
        &app,
        &worker,
        &id,
        Some(&etag),
        json!({"action": "bearbeitung_beginnen"}),
    )
    .await;
    assert_eq!(started.status(), StatusCode::OK);
    let etag = etag_of(&app, &worker, &id).await;
    let asked = request_information(
        &app,
        &worker,
        &id,
        Some(&etag),
        json!({"message": "Bitte den Impfpass nachreichen.", "reply_days": 10}),
    )
    .await;
    assert_eq!(asked.status(), StatusCode::CREATED);
    let reminders = |app: &TestApp| {
        app.smtp()
            .to(email)
            .into_iter()
            .filter(|m| m.subject.contains("Erinnerung") || m.body.contains("Erinnerung"))
            .count()
    };
    run_timers_as(&app, &app.admin().await.access_token).await;
    assert_eq!(reminders(&app), 0, "not ten days ahead");
    app.clock.advance(chrono::Duration::days(8));
    let admin = app.admin().await.access_token;
    run_timers_as(&app, &admin).await;
    run_timers_as(&app, &admin).await;
    let mail = app.smtp().wait_for(email, 1).await;
    let started = std::time::Instant::now();
    while reminders(&app) == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{mail:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(reminders(&app), 1, "once per window");
    let reminder = app
        .smtp()
        .to(email)
        .into_iter()
        .find(|m| m.body.contains("Erinnerung"))
        .unwrap();
    assert!(
        !reminder.body.contains("Impfpass"),
        "no content: {}",
        reminder.body
    );
}

backend_tests!(
    the_applicant_is_reminded_once_before_a_reply_window_ends,
    the_approval_fiction_runs_from_complete_documents_and_is_recorded,
    a_case_stays_on_the_workflow_version_it_was_submitted_under,
    a_procedure_may_bring_its_own_notice_of_remedies,
    two_instances_share_queues_and_timers,
    a_procedure_processed_by_a_client_has_no_staff_queue,
    racing_requests_on_one_case_have_one_winner,
    staff_search_filters_within_the_callers_units,
    notes_stay_internal_and_supervisors_assign,
    a_reply_window_that_runs_out_brings_the_case_back,
    a_building_permit_is_decided_with_four_eyes,
    a_case_is_claimed_and_processed_with_the_citizen_following,
    claim_next_hands_every_case_to_exactly_one_caller,
    units_never_see_each_others_cases,
);
