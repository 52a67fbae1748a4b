//! The ePayBL connector against the simulator binary, over real HTTP: a Buchungsliste is created (idempotently by
//! its transaction number), paid on the Paypage, reported by a signed notification that the connector verifies,
//! and read back as paid by a status query; the platform refuses bookings that do not add up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use amtsweg_payment::epaybl::{Epaybl, EpayblSettings};
use amtsweg_payment::model::Observed;
use amtsweg_payment::provider::{Order, Provider, ProviderError, Reference, Urls};
use amtsweg_payment::xbezahldienste::{Xbezahldienste, XbezahldiensteSettings};
use support::{booking, start_simulator};

mod support;

/// Notifications as they arrived: content type and body.
type Inbox = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

fn connector(base: &str, secret: &str) -> Epaybl {
    Epaybl::new(EpayblSettings {
        base_url: base.into(),
        mandant: "LEIPZIG".into(),
        bewirtschafter: "12345678".into(),
        secret: secret.to_owned().into(),
        kennzeichen_mahnverfahren: "11000".into(),
        zahlverfahrencodes: vec!["KREDITKARTE".into()],
        kassenzeichen_len: 12,
        client_certificate: None,
        client_key: None,
        ca_certificate: None,
    })
    .expect("connector")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_and_the_simulator_complete_a_payment_over_http() {
    let secret = "geteiltes-geheimnis";
    let sim = start_simulator::<&str>(secret, &[]);
    let base = format!("http://127.0.0.1:{}", sim.port);
    let epaybl = connector(&base, secret);

    // Where the simulator sends its notification.
    let received: Inbox = Arc::default();
    let inbox = received.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let notify_port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let inbox = inbox.clone();
        App::new().route(
            "/notify",
            web::post().to(move |req: actix_web::HttpRequest, body: web::Bytes| {
                let inbox = inbox.clone();
                async move {
                    let content_type = req
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    inbox.lock().unwrap().push((content_type, body.to_vec()));
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    let bookings = [booking(3070)];
    let urls = Urls {
        notify: format!("http://127.0.0.1:{notify_port}/notify"),
        success: "http://127.0.0.1:9/ok".into(),
        error: "http://127.0.0.1:9/error".into(),
        cancel: "http://127.0.0.1:9/cancel".into(),
    };
    let order = Order {
        transaction_number: "AW0000000000000000000000000001",
        kassenzeichen: None,
        amount_cents: 3070,
        purpose: "2026-000001",
        description: "Bewohnerparkausweis",
        bookings: &bookings,
        due_on: "2026-12-15",
        urls: urls.clone(),
    };
    let created = epaybl.create(&order).await.expect("created");
    assert!(created.kassenzeichen.starts_with("SIM"));
    assert_eq!(
        epaybl.create(&order).await.expect("again"),
        created,
        "idempotent by transaction number"
    );
    let reference = Reference {
        transaction_number: order.transaction_number,
        kassenzeichen: Some(&created.kassenzeichen),
        provider_ref: None,
        amount_cents: 3070,
    };
    assert_eq!(epaybl.status(reference).await.expect("status"), Observed::Open);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let chosen = http
        .post(&created.paypage_url)
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(chosen.headers()["location"], "http://127.0.0.1:9/ok");
    assert_eq!(
        epaybl.status(reference).await.expect("status"),
        Observed::Paid { amount_cents: 3070 }
    );

    let started = Instant::now();
    let (content_type, notification) = loop {
        if let Some(first) = received.lock().unwrap().first().cloned() {
            break first;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no notification arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let notice = epaybl
        .notification(&content_type, &notification)
        .expect("verifies");
    assert_eq!(
        notice.kassenzeichen.as_deref(),
        Some(created.kassenzeichen.as_str())
    );
    let stranger = connector(&base, "ein-anderes-geheimnis");
    assert!(
        stranger.notification(&content_type, &notification).is_err(),
        "another secret does not verify"
    );

    // Bookings that do not add up are refused by the platform too (we check before calling; so does it).
    let wrong = [booking(3000)];
    let refused = epaybl
        .create(&Order {
            transaction_number: "AW0000000000000000000000000002",
            bookings: &wrong,
            ..order.clone()
        })
        .await;
    assert!(
        matches!(refused, Err(ProviderError::Refused { .. })),
        "{refused:?}"
    );
    let unknown = epaybl
        .status(Reference {
            kassenzeichen: Some("SIM999999999"),
            ..reference
        })
        .await
        .expect("answer");
    assert_eq!(unknown, Observed::Unknown);
    // The switches: a slow platform answers late but answers; an unavailable one is "unavailable" to the connector.
    let control = format!("{base}/control");
    let slow = http
        .put(&control)
        .json(&serde_json::json!({"delay_ms": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), reqwest::StatusCode::OK);
    let started = Instant::now();
    assert_eq!(
        epaybl.status(reference).await.expect("late but there"),
        Observed::Paid { amount_cents: 3070 }
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    http.put(&control)
        .json(&serde_json::json!({"unavailable": true}))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        epaybl.status(reference).await,
        Err(ProviderError::Unavailable(_))
    ));
    handle.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xbezahldienste_connector_maps_the_standards_problems_on_purpose() {
    let sim = start_simulator::<&str>("geheim", &[]);
    let base = format!("http://127.0.0.1:{}", sim.port);
    let connector = Xbezahldienste::new(XbezahldiensteSettings {
        base_url: base.clone(),
        originator_id: "LEIPZIG".into(),
        endpoint_id: "12345678".into(),
        kassenzeichen_len: 12,
        client_certificate: None,
        client_key: None,
        ca_certificate: None,
    })
    .unwrap();
    let bookings = [booking(1500), booking(1570)];
    let order = Order {
        transaction_number: "AW0000000000000000000000000009",
        kassenzeichen: None,
        amount_cents: 3070,
        purpose: "2026-000002",
        description: "Bewohnerparkausweis",
        bookings: &bookings,
        due_on: "2026-12-15",
        urls: Urls {
            notify: String::new(),
            success: "http://127.0.0.1:9/back".into(),
            error: "http://127.0.0.1:9/back".into(),
            cancel: "http://127.0.0.1:9/back".into(),
        },
    };
    let created = connector.create(&order).await.expect("created");
    assert_eq!(created.provider_ref.as_deref(), Some(order.transaction_number));
    // The same requestId again (PAYMENT_EXISTS): read back, not an error.
    assert_eq!(connector.create(&order).await.expect("read back"), created);
    let reference = Reference {
        transaction_number: order.transaction_number,
        kassenzeichen: Some(&created.kassenzeichen),
        provider_ref: created.provider_ref.as_deref(),
        amount_cents: 3070,
    };
    assert_eq!(connector.status(reference).await.unwrap(), Observed::Open);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let chosen = http
        .post(&created.paypage_url)
        .form(&[("action", "fail")])
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.headers()["location"], "http://127.0.0.1:9/back");
    assert_eq!(connector.status(reference).await.unwrap(), Observed::Failed);

    let wrong = [booking(3000)];
    let refused = connector
        .create(&Order {
            transaction_number: "AW0000000000000000000000000010",
            bookings: &wrong,
            ..order.clone()
        })
        .await;
    match refused {
        Err(ProviderError::Refused { code, .. }) => assert_eq!(code, "CALCULATION_ERROR"),
        other => panic!("{other:?}"),
    }
    let unknown = connector
        .status(Reference {
            provider_ref: Some("AW-unbekannt"),
            ..reference
        })
        .await
        .unwrap();
    assert_eq!(unknown, Observed::Unknown);
}
