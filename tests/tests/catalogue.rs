//! The public procedure catalogue: listing, reading, validating and fee computation, in German and English.

use amtsweg_test_support::{Backend, TestApp, backend_tests};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn body(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn starts_with_the_shipped_catalogue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/api/v1/procedures?limit=100").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let page = body(response).await;
    assert_eq!(
        ids(&page),
        [
            "baugenehmigung",
            "bewohnerparkausweis",
            "gewerbeanmeldung",
            "hundesteuer-anmeldung",
            "kita-platz",
            "meldebescheinigung"
        ]
    );
    assert!(page.get("next_cursor").is_none(), "one page holds all");
}

async fn lists_in_german_by_default_and_in_english_on_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let german = body(app.get("/api/v1/procedures?q=hund").await).await;
    assert_eq!(german["items"][0]["title"], "Hund zur Hundesteuer anmelden");
    assert_eq!(german["items"][0]["unit"]["name"], "Stadtkämmerei – Steueramt");

    let by_query = app.get("/api/v1/procedures?q=hund&lang=en").await;
    assert_eq!(by_query.headers()["content-language"], "en");
    assert_eq!(
        body(by_query).await["items"][0]["title"],
        "Register a dog for dog tax"
    );

    let by_header = app
        .client
        .get(app.url("/api/v1/procedures?q=hund"))
        .header("Accept-Language", "fr-FR, en;q=0.8, de;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(by_header).await["items"][0]["unit"]["name"],
        "City Treasury – Tax Office"
    );
}

async fn filters_by_text_unit_and_trust_level(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let list = |query: &'static str| {
        let app = &app;
        async move { ids(&body(app.get(&format!("/api/v1/procedures?{query}")).await).await) }
    };
    assert_eq!(
        list("q=PARKEN").await,
        ["bewohnerparkausweis"],
        "case does not matter"
    );
    assert_eq!(
        list("q=building%20permit").await,
        ["baugenehmigung"],
        "English words match, all must occur"
    );
    assert_eq!(
        list("q=99050012104000").await,
        ["gewerbeanmeldung"],
        "LeiKa key matches"
    );
    assert_eq!(
        list("unit=ordnungsamt").await,
        ["bewohnerparkausweis", "gewerbeanmeldung"]
    );
    assert_eq!(
        list("trust_level=substantial").await,
        ["gewerbeanmeldung", "meldebescheinigung"]
    );
    assert_eq!(
        list("max_trust_level=basic").await,
        ["bewohnerparkausweis", "hundesteuer-anmeldung", "kita-platz"]
    );
    assert_eq!(list("q=nichtvorhanden").await, Vec::<String>::new());

    let bad = app.get("/api/v1/procedures?trust_level=extreme").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let problem = body(bad).await;
    assert_eq!(problem["code"], "invalid_query");
    assert_eq!(problem["errors"][0]["parameter"], "trust_level");

    let unknown = body(app.get("/api/v1/procedures?sort=title").await).await;
    assert_eq!(unknown["errors"][0]["parameter"], "sort");
}

async fn pages_through_the_catalogue_with_cursors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/procedures?limit=2".to_owned();
    loop {
        let page = body(app.get(&path).await).await;
        let items = ids(&page);
        assert!(items.len() <= 2);
        seen.extend(items);
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/procedures?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "stable order, no duplicates");
    sorted.dedup();
    assert_eq!(sorted.len(), 6);

    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=!!", "cursor"),
        ("limit=zwei", "limit"),
    ] {
        let response = app.get(&format!("/api/v1/procedures?{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            body(response).await["errors"][0]["parameter"],
            parameter,
            "{query}"
        );
    }
}

async fn shows_a_procedure_in_full(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/api/v1/procedures/bewohnerparkausweis").await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let procedure = body(response).await;
    assert_eq!(procedure["version"], 3);
    assert_eq!(procedure["content_hash"].as_str().unwrap().len(), 64);
    assert_eq!(procedure["trust_level"], "basic");
    assert_eq!(procedure["authority"]["ags"], "14713000");
    assert_eq!(
        procedure["form"]["schema"]["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        procedure["form"]["ui"][0],
        json!({"field": "/antragsteller/vorname", "label": "Vorname"})
    );
    assert_eq!(
        procedure["form"]["ui"][6]["help"],
        "Mit Bindestrich und Leerzeichen, z. B. L-AB 1234"
    );
    assert_eq!(procedure["documents"][0]["type"], "fahrzeugschein");
    assert_eq!(procedure["documents"][0]["required"], true);
    assert_eq!(procedure["fees"][0]["rule"], "per_item");
    assert_eq!(procedure["fees"][0]["amount_cents"], 3070);
    assert_eq!(
        procedure["fees"][0]["booking"]["buchungstext"],
        "BEWOHNERPARKAUSWEIS"
    );
    assert_eq!(procedure["payment"], "before_processing");
    assert_eq!(procedure["workflow"], "standard-pruefung");

    let english = body(app.get("/api/v1/procedures/bewohnerparkausweis?lang=en").await).await;
    assert_eq!(english["form"]["ui"][0]["label"], "First name");
    assert_eq!(
        english["documents"][0]["name"],
        "Vehicle registration certificate part I"
    );

    let cached = app
        .client
        .get(app.url("/api/v1/procedures/bewohnerparkausweis"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    let missing = app.get("/api/v1/procedures/reisepass?lang=en").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let problem = body(missing).await;
    assert_eq!(problem["code"], "procedure_not_found");
    assert_eq!(problem["title"], "Procedure not found.");
}

async fn validates_a_good_payload(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payload = json!({
        "antragsteller": {"vorname": "Erika", "nachname": "Mustermann"},
        "anschrift": {"strasse": "Karl-Liebknecht-Straße", "hausnummer": "12a", "plz": "04107"},
        "parkgebiet": "A1",
        "kennzeichen": "L-EM 1234",
        "fahrzeug_halter": "selbst",
        "laufzeit_jahre": 2
    });
    let response = app
        .post_json("/api/v1/procedures/bewohnerparkausweis/validate", &payload)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, json!({"valid": true}));
}

async fn reports_every_violation_with_its_pointer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payload = json!({
        "antragsteller": {"vorname": ""},
        "anschrift": {"strasse": "Markt", "hausnummer": "1", "plz": "10115"},
        "parkgebiet": "Z9",
        "kennzeichen": "l-em1234",
        "fahrzeug_halter": "selbst",
        "laufzeit_jahre": 3,
        "bemerkung": "bitte schnell"
    });
    let response = app
        .post_json(
            "/api/v1/procedures/bewohnerparkausweis/validate?lang=en",
            &payload,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json; charset=utf-8"
    );
    let problem = body(response).await;
    assert_eq!(problem["code"], "validation_failed");
    assert_eq!(problem["status"], 422);
    let mut found: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    let expected = [
        ("/anschrift/plz", "invalid_format"),
        ("/antragsteller/nachname", "required"),
        ("/antragsteller/vorname", "too_short"),
        ("/bemerkung", "unknown_field"),
        ("/kennzeichen", "invalid_format"),
        ("/laufzeit_jahre", "too_large"),
        ("/parkgebiet", "not_allowed"),
    ];
    assert_eq!(found, expected.map(|(p, c)| (p.to_owned(), c.to_owned())));
    let zone = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pointer"] == "/parkgebiet")
        .unwrap();
    assert_eq!(zone["message"], "Allowed values are: A1, A2, B1, B2, C1, W1.");

    let german = body(
        app.post_json("/api/v1/procedures/bewohnerparkausweis/validate", &payload)
            .await,
    )
    .await;
    let years = german["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pointer"] == "/laufzeit_jahre")
        .unwrap();
    assert_eq!(years["message"], "Der Wert darf höchstens 2 sein.");

    let not_an_object = app
        .post_json("/api/v1/procedures/bewohnerparkausweis/validate", &json!([1, 2]))
        .await;
    assert_eq!(not_an_object.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(not_an_object).await["errors"][0]["pointer"], "");
}

async fn fee(app: &TestApp, procedure: &str, payload: Value) -> Value {
    let response = app
        .post_json(&format!("/api/v1/procedures/{procedure}/fee"), &payload)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{procedure} {payload}");
    body(response).await
}

fn building(cost: Value) -> Value {
    json!({
        "bauherr": {"name": "Wohnbau Leipzig GmbH", "anschrift": "Markt 1, 04109 Leipzig"},
        "grundstueck": {"gemarkung": "Gohlis", "flurstueck": "1234/5"},
        "vorhaben": {"art": "neubau", "beschreibung": "Mehrfamilienhaus mit 12 Wohnungen"},
        "baukosten_euro": cost
    })
}

async fn computes_fees_with_rounding_and_limits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let parking = json!({
        "antragsteller": {"vorname": "Erika", "nachname": "Mustermann"},
        "anschrift": {"strasse": "Markt", "hausnummer": "1", "plz": "04109"},
        "parkgebiet": "A1", "kennzeichen": "L-EM 1234", "fahrzeug_halter": "selbst", "laufzeit_jahre": 2
    });
    let quote = fee(&app, "bewohnerparkausweis", parking).await;
    assert_eq!(quote["currency"], "EUR");
    assert_eq!(quote["total_cents"], 6140, "2 years × 30.70 €");
    assert_eq!(quote["payment"], "before_processing");
    assert_eq!(
        quote["lines"][0]["booking"],
        json!({"haushaltsstelle": "1.2.2.1.01", "objektnummer": "12210000", "buchungstext": "BEWOHNERPARKAUSWEIS"})
    );
    assert_eq!(quote["lines"][0]["description"], "Gebühr je Jahr Gültigkeit");

    // 0.6 % of the declared cost, half up to the cent, at least 100 €, at most 50,000 €.
    assert_eq!(
        fee(&app, "baugenehmigung", building(json!(200_000.25))).await["total_cents"],
        120_000
    );
    assert_eq!(
        fee(&app, "baugenehmigung", building(json!(123_456.79))).await["total_cents"],
        74_074
    );
    assert_eq!(
        fee(&app, "baugenehmigung", building(json!(100_000.75))).await["total_cents"],
        60_000
    );
    assert_eq!(
        fee(&app, "baugenehmigung", building(json!(10_000))).await["total_cents"],
        10_000,
        "minimum"
    );
    assert_eq!(
        fee(&app, "baugenehmigung", building(json!(900_000_000))).await["total_cents"],
        5_000_000,
        "maximum"
    );

    let certificate = |art: &str| json!({"person": {"vorname": "Max", "nachname": "Muster", "geburtsdatum": "1980-02-29"}, "art": art, "zustellung": "postfach"});
    assert_eq!(
        fee(&app, "meldebescheinigung", certificate("einfach")).await["total_cents"],
        500
    );
    let extended = fee(&app, "meldebescheinigung", certificate("erweitert")).await;
    assert_eq!(extended["total_cents"], 1000);

    let dog = json!({
        "halter": {"vorname": "Max", "nachname": "Muster", "geburtsdatum": "1980-02-29"},
        "hund": {"name": "Bello", "rasse": "Mischling", "chipnummer": "276098106543210"},
        "haltung_seit": "2026-11-01"
    });
    let free = fee(&app, "hundesteuer-anmeldung", dog).await;
    assert_eq!(free["total_cents"], 0);
    assert_eq!(free["lines"], json!([]));
    assert_eq!(free["payment"], "none");

    let invalid = app
        .post_json("/api/v1/procedures/baugenehmigung/fee", &building(json!("teuer")))
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(invalid).await["errors"][0]["pointer"], "/baukosten_euro");
}

async fn records_each_procedure_version_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let versions = body(app.get("/api/v1/procedures/kita-platz/versions").await).await;
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[0]["current"], true);
    assert!(versions[0]["loaded_at"].as_str().unwrap().ends_with('Z'));

    // A restart with unchanged files records nothing new.
    let again = app.restart_builder().spawn().await.expect("restart");
    let versions = body(again.get("/api/v1/procedures/kita-platz/versions").await).await;
    assert_eq!(versions.as_array().unwrap().len(), 1);

    // A changed file that kept its version is refused; with a new version it is recorded beside the old one.
    let dir = tempfile::tempdir().unwrap();
    let shipped =
        std::fs::read_to_string(amtsweg_test_support::workspace_root().join("procedures/kita-platz.yaml"))
            .unwrap();
    let changed = shipped.replace("target_days: 60", "target_days: 45");
    std::fs::write(dir.path().join("kita-platz.yaml"), &changed).unwrap();
    let refused = app
        .restart_builder()
        .procedures(dir.path())
        .spawn()
        .await
        .err()
        .expect("start-up refused");
    let message = format!("{refused:#}");
    assert!(
        message.contains("kita-platz") && message.contains("raise `version`"),
        "{message}"
    );

    std::fs::write(
        dir.path().join("kita-platz.yaml"),
        changed.replace("version: 2", "version: 3"),
    )
    .unwrap();
    let upgraded = app
        .restart_builder()
        .procedures(dir.path())
        .spawn()
        .await
        .expect("new version starts");
    let versions = body(upgraded.get("/api/v1/procedures/kita-platz/versions").await).await;
    assert_eq!(versions[0]["version"], 3);
    assert_eq!(versions[0]["current"], true);
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["current"], false);
    assert_ne!(versions[0]["content_hash"], versions[1]["content_hash"]);
    let detail = body(upgraded.get("/api/v1/procedures/kita-platz").await).await;
    assert_eq!(detail["target_days"], 45);
}

async fn refuses_to_start_with_a_broken_catalogue(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kaputt.yaml"),
        std::fs::read_to_string(
            amtsweg_test_support::workspace_root().join("procedures/gewerbeanmeldung.yaml"),
        )
        .unwrap()
        .replace("buchungstext: GEWERBEANMELDUNG", "buchungstext: Gewerbeanmeldung"),
    )
    .unwrap();
    let err = TestApp::builder(backend)
        .procedures(dir.path())
        .spawn()
        .await
        .err()
        .expect("start-up refused");
    let message = format!("{err:#}");
    assert!(message.contains("kaputt.yaml"), "{message}");
    assert!(
        message.contains("id: `gewerbeanmeldung` must match the file name `kaputt`"),
        "{message}"
    );
    assert!(message.contains("fees[0].booking.buchungstext"), "{message}");
}

backend_tests!(
    starts_with_the_shipped_catalogue,
    lists_in_german_by_default_and_in_english_on_request,
    filters_by_text_unit_and_trust_level,
    pages_through_the_catalogue_with_cursors,
    shows_a_procedure_in_full,
    validates_a_good_payload,
    reports_every_violation_with_its_pointer,
    computes_fees_with_rounding_and_limits,
    records_each_procedure_version_once,
    refuses_to_start_with_a_broken_catalogue,
);
