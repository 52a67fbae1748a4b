//! The event outbox: a reader following the feed never skips an event, not even one whose transaction commits
//! late; the account service publishes its life cycle without personal data; subscribers run once per event.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amtsweg_db::DbError;
use amtsweg_events::{EventType, Subscriptions};
use amtsweg_jobs::{Registry, handler_fn};
use amtsweg_test_support::{Backend, TestApp, backend_tests};
use serde_json::{Value, json};

const PROBE: EventType = EventType {
    source: "urn:amtsweg:test",
    name: "de.amtsweg.test.probe.v1",
};

/// Reads the whole feed from `cursor` on as the administrator; answers the events and the cursor to go on from.
async fn feed(app: &TestApp, token: &str, cursor: &str) -> (Vec<Value>, String) {
    let path = if cursor.is_empty() {
        "/api/v1/admin/events?limit=100".to_owned()
    } else {
        format!("/api/v1/admin/events?limit=100&cursor={cursor}")
    };
    let page: Value = app.get_as(&path, token).await.json().await.unwrap();
    (
        page["items"].as_array().unwrap().clone(),
        page["next_cursor"].as_str().unwrap().to_owned(),
    )
}

/// Eight publishers and one transaction that publishes first and commits last: a reader polling all along ends
/// with every event exactly once, in increasing positions.
async fn a_reader_never_skips_an_event_that_commits_late(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let now = amtsweg_kernel::Clock::now(app.clock.as_ref());
    let (_, start) = feed(&app, &admin.access_token, "").await;

    let slow = {
        let db = app.pool.clone();
        tokio::spawn(async move {
            db.write(move |conn| {
                let id = amtsweg_events::publish(conn, &PROBE, None, &json!({"slow": true}), now)?;
                std::thread::sleep(Duration::from_millis(1_500));
                Ok::<_, DbError>(id)
            })
            .await
            .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let publishers: Vec<_> = (0..8)
        .map(|p| {
            let db = app.pool.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..25 {
                    let id = db
                        .write(move |conn| {
                            amtsweg_events::publish(conn, &PROBE, None, &json!({"p": p, "i": i}), now)
                        })
                        .await
                        .unwrap();
                    ids.push(id);
                }
                ids
            })
        })
        .collect();

    let mut published: HashSet<String> = HashSet::new();
    let mut seen: Vec<String> = Vec::new();
    let mut positions: Vec<i64> = Vec::new();
    let mut cursor = start;
    let mut slow = Some(slow);
    let mut publishers = Some(publishers);
    let started = Instant::now();
    loop {
        let (items, next) = feed(&app, &admin.access_token, &cursor).await;
        for item in items.into_iter().filter(|e| e["type"] == PROBE.name) {
            seen.push(item["id"].as_str().unwrap().to_owned());
            positions.push(item["sequence"].as_str().unwrap().parse().unwrap());
        }
        cursor = next;
        if let Some(handles) = publishers.take_if(|h| h.iter().all(|t| t.is_finished())) {
            for handle in handles {
                published.extend(handle.await.unwrap());
            }
        }
        if let Some(handle) = slow.take_if(|h| h.is_finished()) {
            published.insert(handle.await.unwrap());
        }
        if slow.is_none() && publishers.is_none() && seen.len() >= published.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of 201 seen",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(published.len(), 201);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an event was read twice");
    assert_eq!(unique, published, "an event was skipped");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "positions only grow");
}

/// The account's life cycle as events: ids and states, never a name or an address.
async fn the_account_life_cycle_is_published(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("ereignis@example.de").await;
    let consent = app
        .post_as(
            "/api/v1/me/consents",
            &citizen.tokens.access_token,
            &json!({"recipient": {"kind": "procedure", "id": "bewohnerparkausweis"}, "attributes": ["address"]}),
        )
        .await;
    let consent: Value = consent.json().await.unwrap();
    app.delete_as(
        &format!("/api/v1/me/consents/{}", consent["id"].as_str().unwrap()),
        &citizen.tokens.access_token,
    )
    .await;
    let deleted = app.delete_as("/api/v1/me", &citizen.tokens.access_token).await;
    assert_eq!(deleted.status(), reqwest::StatusCode::OK);

    let admin = app.admin().await;
    let started = Instant::now();
    let about_citizen = loop {
        let (items, _) = feed(&app, &admin.access_token, "").await;
        let about: Vec<Value> = items
            .into_iter()
            .filter(|e| e["subject"] == citizen.id.as_str())
            .collect();
        if about.len() >= 5 || started.elapsed() > Duration::from_secs(5) {
            break about;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let types: Vec<&str> = about_citizen
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "de.amtsweg.account.created.v1",
            "de.amtsweg.account.verified.v1",
            "de.amtsweg.account.consent_granted.v1",
            "de.amtsweg.account.consent_revoked.v1",
            "de.amtsweg.account.deleted.v1",
        ]
    );
    let first = &about_citizen[0];
    assert_eq!(first["specversion"], "1.0");
    assert_eq!(first["source"], "urn:amtsweg:account");
    assert_eq!(first["datacontenttype"], "application/json");
    assert_eq!(first["data"]["status"], "pending");
    let text = serde_json::to_string(&about_citizen).unwrap();
    assert!(
        !text.contains("ereignis@example.de") && !text.contains("Erika"),
        "{text}"
    );
}

/// A subscriber is a job handler: it runs once for every event of its type, even when sequencing runs again.
async fn subscribers_run_once_per_event(backend: Backend) {
    let heard = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = heard.clone();
    let registry = Registry::new().handler(handler_fn("test.on_created", 3, move |job| {
        let log = log.clone();
        async move {
            log.lock()
                .unwrap()
                .push(job.payload["id"].as_str().unwrap_or_default().to_owned());
            Ok(None)
        }
    }));
    let app = TestApp::builder(backend)
        .jobs(registry)
        .subscriptions(Subscriptions::new().on(&amtsweg_account::events::ACCOUNT_CREATED, "test.on_created"))
        .spawn()
        .await
        .unwrap();
    for name in ["eins", "zwei", "drei"] {
        app.citizen(&format!("{name}@example.de")).await;
    }
    let started = Instant::now();
    // The bootstrap administrator was created before the runner started, so its event counts too.
    while heard.lock().unwrap().len() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            heard.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sequencer = amtsweg_events::Sequencer::new(app.pool.clone(), app.clock.clone(), Subscriptions::new());
    sequencer.sequence().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heard = heard.lock().unwrap();
    assert_eq!(heard.len(), 4);
    assert_eq!(heard.iter().collect::<HashSet<_>>().len(), 4, "each event once");
}

backend_tests!(
    a_reader_never_skips_an_event_that_commits_late,
    the_account_life_cycle_is_published,
    subscribers_run_once_per_event,
);
