//! Applications, the citizen's side: draft → patch → attach → submit (idempotent, atomic, with the final case
//! number) → business status and timeline; every object-level route refuses strangers.

use amtsweg_kernel::clock::Clock;
use amtsweg_test_support::{Backend, TestApp, backend_tests};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

fn dog() -> Value {
    json!({
        "halter": {"vorname": "Erika", "nachname": "Mustermann", "geburtsdatum": "1980-04-01"},
        "hund": {"name": "Bello", "rasse": "Labrador", "chipnummer": "276098106123456"},
        "haltung_seit": "2026-11-01"
    })
}

fn parking() -> Value {
    json!({
        "antragsteller": {"vorname": "Erika", "nachname": "Mustermann"},
        "anschrift": {"strasse": "Markt", "hausnummer": "1", "plz": "04109"},
        "parkgebiet": "A1",
        "kennzeichen": "L-AB 1234",
        "fahrzeug_halter": "selbst",
        "laufzeit_jahre": 1
    })
}

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

async fn draft(app: &TestApp, token: &str, procedure: &str, data: Value) -> Value {
    let created = app
        .post_as(
            "/api/v1/applications",
            token,
            &json!({"procedure_id": procedure, "data": data}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    body(created).await
}

async fn submit(app: &TestApp, token: &str, id: &str, key: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/applications/{id}/submit")))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap()
}

async fn attach(
    app: &TestApp,
    token: &str,
    id: &str,
    document_type: &str,
    content: &[u8],
) -> reqwest::Response {
    app.attach_pdf(token, id, document_type, "zulassung.pdf", content)
        .await
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(app: &TestApp, query: &str) -> i64 {
    diesel::sql_query(query)
        .get_result::<Count>(&mut app.connect())
        .unwrap()
        .n
}

fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn a_dog_is_registered_from_draft_to_case_number(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("erika@example.de").await;
    let token = &citizen.tokens.access_token;

    let created = draft(
        &app,
        token,
        "hundesteuer-anmeldung",
        json!({"hund": {"name": "Bello"}}),
    )
    .await;
    assert_eq!(created["status"], "draft");
    assert_eq!(created["procedure_version"], 3);
    assert!(created.get("case_number").is_none());
    let id = created["id"].as_str().unwrap();

    // A draft may be incomplete: the answer says what is still missing.
    let patched = app
        .client
        .patch(app.url(&format!("/api/v1/applications/{id}")))
        .bearer_auth(token)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"data": {"hund": {"rasse": "Labrador"}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let patched = body(patched).await;
    assert_eq!(
        patched["data"]["hund"],
        json!({"name": "Bello", "rasse": "Labrador"}),
        "merged, not replaced"
    );
    assert!(!patched["warnings"].as_array().unwrap().is_empty(), "{patched}");

    // Submitting needs a key, then the whole form.
    let without_key = app
        .post_as(&format!("/api/v1/applications/{id}/submit"), token, &json!({}))
        .await;
    assert_eq!(without_key.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(without_key).await["code"], "idempotency_key_required");
    let incomplete = submit(&app, token, id, "first-try").await;
    assert_eq!(incomplete.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = body(incomplete).await;
    assert!(
        pointers(&problem).len() >= 2,
        "every violation is reported: {problem}"
    );

    let complete = app
        .patch_as(
            &format!("/api/v1/applications/{id}"),
            token,
            &json!({"data": dog()}),
        )
        .await;
    assert_eq!(complete.status(), StatusCode::OK);
    assert!(
        body(complete).await.get("warnings").is_none(),
        "nothing left to complain about"
    );

    let submitted = submit(&app, token, id, "dog-1").await;
    assert_eq!(submitted.status(), StatusCode::CREATED);
    let submitted = body(submitted).await;
    let case_number = submitted["case_number"].as_str().unwrap().to_owned();
    // The year in Europe/Berlin on the service's clock (on New Year's Eve after 23:00 UTC it is the next one).
    let now = chrono::DateTime::<chrono::Utc>::from(app.clock.now()).naive_utc();
    let year = amtsweg_workflow::deadline::berlin_date(now)
        .format("%Y")
        .to_string();
    assert!(
        case_number.starts_with(&format!("steueramt-{year}-")),
        "{case_number}"
    );
    assert_eq!(case_number.len(), "steueramt-2026-000001".len(), "{case_number}");
    assert_eq!(submitted["status"], "submitted");
    let status = &submitted["business_status"];
    assert_eq!(status["state"], "eingegangen");
    assert_eq!(status["label"], "Eingegangen");
    assert_eq!(status["terminal"], false);
    assert!(
        status["processing_deadline"].is_string(),
        "the three-week deadline runs: {status}"
    );
    assert_eq!(status["timeline"].as_array().unwrap().len(), 1);

    // A retry with the key gets the same answer; the case number is final.
    let retry = submit(&app, token, id, "dog-1").await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(body(retry).await["case_number"], case_number);
    let again = submit(&app, token, id, "dog-2").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(body(again).await["code"], "application_not_draft");
    let late_patch = app
        .patch_as(
            &format!("/api/v1/applications/{id}"),
            token,
            &json!({"data": {"haltung_seit": "2026-10-01"}}),
        )
        .await;
    assert_eq!(late_patch.status(), StatusCode::CONFLICT);

    // In English, with the timeline.
    let english = app
        .client
        .get(app.url(&format!("/api/v1/applications/{id}?lang=en")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let english = body(english).await;
    assert_eq!(english["business_status"]["label"], "Received");
    assert_eq!(english["business_status"]["timeline"][0]["state"], "eingegangen");

    // The notice mail says there is news, without form content.
    let mail = app.mails_to(&citizen.email, 2).await.remove(1);
    assert!(mail.subject.contains(&case_number), "{}", mail.subject);
    assert!(
        !mail.body.contains("Bello") && !mail.body.contains("276098106123456"),
        "{}",
        mail.body
    );

    // Submission, event and audit entry committed together.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM events WHERE event_type = 'de.amtsweg.application.submitted.v1'"
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM events WHERE event_type = 'de.amtsweg.application.accepted.v1'"
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'application.submitted'"
        ),
        1
    );

    // The list shows it; filters narrow it.
    let mine = body(app.get_as("/api/v1/applications", token).await).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let drafts = body(app.get_as("/api/v1/applications?status=draft", token).await).await;
    assert!(drafts["items"].as_array().unwrap().is_empty());
    let bad_filter = app.get_as("/api/v1/applications?status=maybe", token).await;
    assert_eq!(bad_filter.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn ten_simultaneous_submits_give_one_case_number(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("zehn@example.de").await;
    let token = citizen.tokens.access_token.clone();
    let id = draft(&app, &token, "hundesteuer-anmeldung", dog()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let attempts = (0..10).map(|_| submit(&app, &token, &id, "same-key"));
    let answers = futures_util::future::join_all(attempts).await;
    // One request does the work; the others either find it still running (409) or, once it has committed, get
    // its answer replayed — never a second submission.
    let mut fresh = 0;
    let mut numbers = std::collections::BTreeSet::new();
    for answer in answers {
        let status = answer.status();
        let replayed = answer.headers().contains_key("idempotent-replayed");
        let answer = body(answer).await;
        match status {
            StatusCode::CREATED => {
                fresh += usize::from(!replayed);
                numbers.insert(answer["case_number"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => assert_eq!(answer["code"], "idempotency_key_in_use"),
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one request submitted");
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    let replay = body(submit(&app, &token, &id, "same-key").await).await;
    assert!(replay["case_number"].is_string());
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM applications WHERE case_number IS NOT NULL"
        ),
        1
    );
}

async fn attachments_are_checked_and_required_documents_enforced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("parken@example.de").await;
    let token = &citizen.tokens.access_token;
    let id = draft(&app, token, "bewohnerparkausweis", parking()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let missing = submit(&app, token, &id, "park-1").await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = body(missing).await;
    assert_eq!(pointers(&problem), ["/attachments/fahrzeugschein"], "{problem}");
    assert_eq!(problem["errors"][0]["code"], "document_missing");

    let unknown = attach(&app, token, &id, "steuerbescheid", PDF).await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(unknown).await["errors"][0]["code"], "unknown_document_type");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM files"),
        0,
        "a refused attachment leaves no file"
    );

    let attached = attach(&app, token, &id, "fahrzeugschein", PDF).await;
    assert_eq!(attached.status(), StatusCode::CREATED);
    let attachment = body(attached).await;
    assert_eq!(attachment["media_type"], "application/pdf");
    let download = app
        .get_as(
            &format!(
                "/api/v1/applications/{id}/attachments/{}",
                attachment["id"].as_str().unwrap()
            ),
            token,
        )
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().as_ref(), PDF);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM files WHERE expires_at IS NULL AND owner_module = 'applications'"
        ),
        1,
        "the upload is kept as the application's"
    );

    let submitted = submit(&app, token, &id, "park-2").await;
    assert_eq!(submitted.status(), StatusCode::CREATED);
    let submitted = body(submitted).await;
    assert!(
        submitted["case_number"]
            .as_str()
            .unwrap()
            .starts_with("ordnungsamt-")
    );
    assert_eq!(submitted["fee_cents"], 3070);
    // Paid before processing: until the ePayment module reports the payment the case waits for it, visibly.
    let status = &submitted["business_status"];
    assert_eq!(status["state"], "zahlung_ausstehend");
    assert_eq!(status["waiting_for"], "payment");
    assert_eq!(status["next_step"], "Bitte bezahlen Sie die Gebühr.");
    let detach = app
        .delete_as(
            &format!(
                "/api/v1/applications/{id}/attachments/{}",
                attachment["id"].as_str().unwrap()
            ),
            token,
        )
        .await;
    assert_eq!(
        detach.status(),
        StatusCode::CONFLICT,
        "a submitted application keeps its documents"
    );
}

async fn a_procedure_needing_a_higher_trust_level_asks_to_step_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("gewerbe@example.de").await;
    let token = &citizen.tokens.access_token;
    let id = draft(&app, token, "gewerbeanmeldung", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = submit(&app, token, &id, "gewerbe-1").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    assert!(challenge.contains("substantial"), "{challenge}");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM applications WHERE status = 'submitted'"
        ),
        0
    );
}

async fn a_draft_is_prefilled_from_the_profile_only_under_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("profil@example.de").await;
    let token = &citizen.tokens.access_token;
    let profile = app
        .patch_as(
            "/api/v1/me",
            token,
            &json!({"given_name": "Erika", "family_name": "Mustermann", "date_of_birth": "1980-04-01"}),
        )
        .await;
    assert_eq!(profile.status(), StatusCode::OK);

    let without = draft(&app, token, "hundesteuer-anmeldung", json!({})).await;
    assert_eq!(without["data"], json!({}), "no consent, nothing filled");
    assert!(without.get("prefilled").is_none());

    let consent = app
        .post_as(
            "/api/v1/me/consents",
            token,
            &json!({"recipient": {"kind": "procedure", "id": "hundesteuer-anmeldung"}, "attributes": ["given_name", "family_name"]}),
        )
        .await;
    assert_eq!(consent.status(), StatusCode::CREATED);
    let consent_id = body(consent).await["id"].as_str().unwrap().to_owned();
    let filled = draft(
        &app,
        token,
        "hundesteuer-anmeldung",
        json!({"halter": {"vorname": "Eigene Angabe"}}),
    )
    .await;
    assert_eq!(
        filled["data"]["halter"]["vorname"], "Eigene Angabe",
        "what the citizen sends wins"
    );
    assert_eq!(filled["data"]["halter"]["nachname"], "Mustermann");
    assert!(
        filled["data"]["halter"].get("geburtsdatum").is_none(),
        "the date of birth was not consented to"
    );
    assert_eq!(
        filled["prefilled"],
        json!([{"pointer": "/halter/nachname", "attribute": "family_name", "consent_id": consent_id}])
    );
    let read = body(
        app.get_as(
            &format!("/api/v1/applications/{}", filled["id"].as_str().unwrap()),
            token,
        )
        .await,
    )
    .await;
    assert_eq!(read["prefilled"], filled["prefilled"], "recorded with the draft");

    let revoked = app
        .delete_as(&format!("/api/v1/me/consents/{consent_id}"), token)
        .await;
    assert!(revoked.status().is_success());
    let after = draft(&app, token, "hundesteuer-anmeldung", json!({})).await;
    assert_eq!(after["data"], json!({}), "a revoked consent fills nothing");

    // The catalogue says which fields a consent would fill.
    let procedure = body(
        app.get_as("/api/v1/procedures/hundesteuer-anmeldung", token)
            .await,
    )
    .await;
    assert_eq!(
        procedure["prefill"]["/halter/nachname"], "family_name",
        "{procedure}"
    );
    assert_eq!(procedure["processed_by"], "staff");
}

async fn strangers_never_see_an_application(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.citizen("eigen@example.de").await;
    let stranger = app.citizen("fremd@example.de").await;
    let (mine, theirs) = (&owner.tokens.access_token, &stranger.tokens.access_token);
    let id = draft(&app, mine, "bewohnerparkausweis", parking()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let attachment = body(attach(&app, mine, &id, "fahrzeugschein", PDF).await).await;
    let attachment_id = attachment["id"].as_str().unwrap();

    let path = format!("/api/v1/applications/{id}");
    for answer in [
        app.get_as(&path, theirs).await,
        app.patch_as(&path, theirs, &json!({"data": {}})).await,
        app.delete_as(&path, theirs).await,
        submit(&app, theirs, &id, "steal").await,
        attach(&app, theirs, &id, "fahrzeugschein", PDF).await,
        app.get_as(&format!("{path}/attachments/{attachment_id}"), theirs)
            .await,
        app.delete_as(&format!("{path}/attachments/{attachment_id}"), theirs)
            .await,
        app.get_as(&format!("{path}/receipt"), theirs).await,
        app.get_as(&format!("{path}/requests"), theirs).await,
    ] {
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{}", answer.url());
        assert_eq!(body(answer).await["code"], "application_not_found");
    }
    let listed = body(app.get_as("/api/v1/applications", theirs).await).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
    // Nothing was changed by the attempts.
    let still = body(app.get_as(&path, mine).await).await;
    assert_eq!(still["status"], "draft");
    let no_receipt = app.get_as(&format!("{path}/receipt"), mine).await;
    assert_eq!(
        body(no_receipt).await["code"],
        "receipt_not_found",
        "a draft has no receipt"
    );
    assert_eq!(still["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM files"),
        1,
        "the stranger's upload was not kept"
    );

    // Organisation members see the organisation's applications; others do not.
    let organisation = body(
        app.post_as("/api/v1/organisations", mine, &json!({"name": "Muster GmbH"}))
            .await,
    )
    .await;
    let org_id = organisation["id"].as_str().unwrap();
    let refused = app
        .post_as(
            "/api/v1/applications",
            theirs,
            &json!({"procedure_id": "hundesteuer-anmeldung", "on_behalf_of": org_id}),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(refused).await["errors"][0]["code"], "not_a_member");
    let for_org = app
        .post_as(
            "/api/v1/applications",
            mine,
            &json!({"procedure_id": "hundesteuer-anmeldung", "on_behalf_of": org_id}),
        )
        .await;
    assert_eq!(for_org.status(), StatusCode::CREATED);
    assert_eq!(body(for_org).await["on_behalf_of"], org_id);

    // A deleted draft takes its attachments with it.
    assert_eq!(app.delete_as(&path, mine).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_as(&path, mine).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM application_attachments"),
        0
    );
}

backend_tests!(
    a_draft_is_prefilled_from_the_profile_only_under_consent,
    a_dog_is_registered_from_draft_to_case_number,
    ten_simultaneous_submits_give_one_case_number,
    attachments_are_checked_and_required_documents_enforced,
    a_procedure_needing_a_higher_trust_level_asks_to_step_up,
    strangers_never_see_an_application,
);
