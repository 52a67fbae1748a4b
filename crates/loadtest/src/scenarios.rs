//! What the simulated people do. Each scenario is a short sequence of requests, each recorded under its own
//! operation name; a request answered otherwise than expected is a failure (with its status and problem code) and
//! ends the scenario.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::Rng;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use crate::actors::{Actor, PASSWORD};
use crate::report::Recorder;

/// A tiny valid PDF, as the attachments.
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

/// The queue the dog-tax applications land in.
pub const QUEUE: &str = "steueramt.hundesteuer-anmeldung";
pub const UNIT: &str = "steueramt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// The catalogue: the list and one procedure (anonymous).
    Browse,
    /// A new account (password hashing).
    Register,
    /// A citizen's password login (password hashing).
    Login,
    /// Dog tax: draft, attachment, submit, receipt.
    Apply,
    /// Parking permit: draft, attachment, submit, payment started, paid on the simulator's Paypage.
    Pay,
    /// A citizen's own applications and one of them.
    Follow,
    /// A case worker: claim the next dog-tax case, start work, decide.
    Casework,
    /// The Postfach: the list, a message, its document.
    Postfach,
    /// A specialised procedure polls its event feed.
    Pull,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::Browse,
        Scenario::Register,
        Scenario::Login,
        Scenario::Apply,
        Scenario::Pay,
        Scenario::Follow,
        Scenario::Casework,
        Scenario::Postfach,
        Scenario::Pull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Browse => "browse",
            Scenario::Register => "register",
            Scenario::Login => "login",
            Scenario::Apply => "apply",
            Scenario::Pay => "pay",
            Scenario::Follow => "follow",
            Scenario::Casework => "casework",
            Scenario::Postfach => "postfach",
            Scenario::Pull => "pull",
        }
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|scenario| scenario.name() == name)
    }
}

/// What every scenario shares.
pub struct World {
    pub client: Client,
    pub base: String,
    pub recorder: Arc<Recorder>,
    pub citizens: Vec<Actor>,
    pub workers: Vec<Actor>,
    pub run: String,
    pub counter: AtomicU64,
    /// The specialised procedure's API client (dog tax, read scope).
    pub api_client: Actor,
    /// Where its event feed was read up to.
    pub cursor: std::sync::Mutex<Option<String>>,
    /// Dog-tax submits acknowledged (each one event the webhook receiver should get).
    pub dog_submits: AtomicU64,
}

/// Why a scenario stopped early (already recorded).
pub struct Stop;

impl World {
    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    fn citizen(&self) -> &Actor {
        &self.citizens[rand::thread_rng().gen_range(0..self.citizens.len())]
    }

    fn worker(&self) -> &Actor {
        &self.workers[rand::thread_rng().gen_range(0..self.workers.len())]
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request as `actor` (logging in again once when its token has run out) and records it.
    async fn send(
        &self,
        operation: &'static str,
        expected: &[StatusCode],
        actor: Option<&Actor>,
        build: impl Fn(&Client, Option<&str>) -> RequestBuilder,
    ) -> Result<Response, Stop> {
        let mut token = actor.map(Actor::token);
        let mut renewed = false;
        loop {
            let started = Instant::now();
            let outcome = build(&self.client, token.as_deref()).send().await;
            let took = started.elapsed();
            match outcome {
                Ok(response) if expected.contains(&response.status()) => {
                    self.recorder.success(operation, took);
                    return Ok(response);
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !renewed => {
                    let Some(actor) = actor else {
                        self.recorder.failure(operation, took, "401".into());
                        return Err(Stop);
                    };
                    renewed = true;
                    match actor.renew(&self.client, &self.base).await {
                        Ok(fresh) => token = Some(fresh),
                        Err(err) => {
                            self.recorder
                                .failure(operation, took, format!("login again: {err}"));
                            return Err(Stop);
                        }
                    }
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let problem: Value = response.json().await.unwrap_or(Value::Null);
                    let code = problem["code"].as_str().unwrap_or("-");
                    self.recorder.failure(operation, took, format!("{status} {code}"));
                    return Err(Stop);
                }
                Err(err) => {
                    let kind = if err.is_timeout() {
                        "timeout"
                    } else if err.is_connect() {
                        "connect"
                    } else {
                        "transport"
                    };
                    self.recorder.failure(operation, took, kind.into());
                    return Err(Stop);
                }
            }
        }
    }

    async fn json(&self, response: Response) -> Value {
        response.json().await.unwrap_or(Value::Null)
    }

    pub async fn play(&self, scenario: Scenario) {
        let _ = match scenario {
            Scenario::Browse => self.browse().await,
            Scenario::Register => self.register().await,
            Scenario::Login => self.login().await,
            Scenario::Apply => self.apply().await,
            Scenario::Pay => self.pay().await,
            Scenario::Follow => self.follow().await,
            Scenario::Casework => self.casework().await,
            Scenario::Postfach => self.postfach().await,
            Scenario::Pull => self.pull().await,
        };
    }

    async fn browse(&self) -> Result<(), Stop> {
        let ok = [StatusCode::OK];
        self.send("catalogue.list", &ok, None, |c, _| {
            c.get(self.url("/api/v1/procedures?q=hund"))
        })
        .await?;
        let id = [
            "hundesteuer-anmeldung",
            "bewohnerparkausweis",
            "kita-platz",
            "meldebescheinigung",
        ][rand::thread_rng().gen_range(0..4)];
        self.send("catalogue.procedure", &ok, None, |c, _| {
            c.get(self.url(&format!("/api/v1/procedures/{id}")))
        })
        .await?;
        Ok(())
    }

    async fn register(&self) -> Result<(), Stop> {
        let email = format!("neu-{}-{}@example.de", self.run, self.next());
        self.send("account.register", &[StatusCode::ACCEPTED], None, |c, _| {
            c.post(self.url("/api/v1/accounts"))
                .json(&json!({"email": email, "password": PASSWORD, "name": "Max Mustermann"}))
        })
        .await?;
        Ok(())
    }

    async fn login(&self) -> Result<(), Stop> {
        let citizen = self.citizen();
        self.send("auth.login", &[StatusCode::OK], None, |c, _| {
            c.post(self.url("/api/v1/auth/login"))
                .json(&json!({"email": citizen.email, "password": PASSWORD}))
        })
        .await?;
        Ok(())
    }

    /// Draft, attachment and submit of one application; answers its id.
    async fn submit(
        &self,
        citizen: &Actor,
        procedure: &str,
        data: Value,
        document_type: &str,
    ) -> Result<String, Stop> {
        let draft = self
            .send(
                "application.draft",
                &[StatusCode::CREATED],
                Some(citizen),
                |c, token| {
                    c.post(self.url("/api/v1/applications"))
                        .bearer_auth(token.unwrap_or_default())
                        .json(&json!({"procedure_id": procedure, "data": data}))
                },
            )
            .await?;
        let id = self.json(draft).await["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let boundary = "amtsweg-load-boundary";
        let mut form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"document_type\"\r\n\r\n{document_type}\r\n--{boundary}\r\n\
             Content-Disposition: form-data; name=\"file\"; filename=\"nachweis.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
        )
        .into_bytes();
        form.extend_from_slice(PDF);
        form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.send(
            "application.attach",
            &[StatusCode::CREATED],
            Some(citizen),
            |c, token| {
                c.post(self.url(&format!("/api/v1/applications/{id}/attachments")))
                    .bearer_auth(token.unwrap_or_default())
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(form.clone())
            },
        )
        .await?;
        let key = format!("load-{}-{}", self.run, self.next());
        self.send(
            "application.submit",
            &[StatusCode::CREATED],
            Some(citizen),
            |c, token| {
                c.post(self.url(&format!("/api/v1/applications/{id}/submit")))
                    .bearer_auth(token.unwrap_or_default())
                    .header("idempotency-key", key.as_str())
            },
        )
        .await?;
        Ok(id)
    }

    async fn apply(&self) -> Result<(), Stop> {
        let citizen = self.citizen();
        let chip = self.next() % 1_000_000;
        let data = json!({
            "halter": {"vorname": "Erika", "nachname": "Mustermann", "geburtsdatum": "1980-04-01"},
            "hund": {"name": "Bello", "rasse": "Labrador", "chipnummer": format!("276098106{chip:06}")},
            "haltung_seit": "2026-11-01"
        });
        let id = self
            .submit(citizen, "hundesteuer-anmeldung", data, "haftpflichtnachweis")
            .await?;
        self.dog_submits.fetch_add(1, Ordering::Relaxed);
        self.send(
            "application.receipt",
            &[StatusCode::OK],
            Some(citizen),
            |c, token| {
                c.get(self.url(&format!("/api/v1/applications/{id}/receipt")))
                    .bearer_auth(token.unwrap_or_default())
            },
        )
        .await?;
        Ok(())
    }

    async fn pay(&self) -> Result<(), Stop> {
        let citizen = self.citizen();
        let data = json!({
            "antragsteller": {"vorname": "Erika", "nachname": "Mustermann"},
            "anschrift": {"strasse": "Markt", "hausnummer": "1", "plz": "04109"},
            "parkgebiet": "A1",
            "kennzeichen": "L-AB 123",
            "fahrzeug_halter": "selbst",
            "laufzeit_jahre": 1
        });
        let id = self
            .submit(citizen, "bewohnerparkausweis", data, "fahrzeugschein")
            .await?;
        let key = format!("pay-{}-{}", self.run, self.next());
        let started = self
            .send(
                "payment.start",
                &[StatusCode::CREATED, StatusCode::OK],
                Some(citizen),
                |c, token| {
                    c.post(self.url(&format!("/api/v1/applications/{id}/payments")))
                        .bearer_auth(token.unwrap_or_default())
                        .header("idempotency-key", key.as_str())
                },
            )
            .await?;
        let paypage = self.json(started).await["redirect_url"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.send(
            "payment.paypage",
            &[StatusCode::SEE_OTHER, StatusCode::FOUND],
            None,
            |c, _| c.post(&paypage).form(&[("action", "pay")]),
        )
        .await?;
        Ok(())
    }

    async fn follow(&self) -> Result<(), Stop> {
        let citizen = self.citizen();
        let ok = [StatusCode::OK];
        let list = self
            .send("application.list", &ok, Some(citizen), |c, token| {
                c.get(self.url("/api/v1/applications?limit=20"))
                    .bearer_auth(token.unwrap_or_default())
            })
            .await?;
        let list = self.json(list).await;
        if let Some(id) = list["items"][0]["id"].as_str() {
            self.send("application.read", &ok, Some(citizen), |c, token| {
                c.get(self.url(&format!("/api/v1/applications/{id}")))
                    .bearer_auth(token.unwrap_or_default())
            })
            .await?;
        }
        Ok(())
    }

    async fn casework(&self) -> Result<(), Stop> {
        let worker = self.worker();
        let claimed = self
            .send(
                "staff.claim_next",
                &[StatusCode::OK, StatusCode::NO_CONTENT],
                Some(worker),
                |c, token| {
                    c.post(self.url(&format!("/api/v1/staff/queues/{QUEUE}/claim-next")))
                        .bearer_auth(token.unwrap_or_default())
                        .json(&json!({}))
                },
            )
            .await?;
        if claimed.status() == StatusCode::NO_CONTENT {
            return Ok(());
        }
        let id = self.json(claimed).await["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let etag = self.case_etag(worker, &id).await?;
        self.send("staff.transition", &[StatusCode::OK], Some(worker), |c, token| {
            c.post(self.url(&format!("/api/v1/staff/cases/{id}/transitions")))
                .bearer_auth(token.unwrap_or_default())
                .header("if-match", etag.as_str())
                .json(&json!({"action": "bearbeitung_beginnen"}))
        })
        .await?;
        let etag = self.case_etag(worker, &id).await?;
        self.send("staff.decide", &[StatusCode::OK], Some(worker), |c, token| {
            c.post(self.url(&format!("/api/v1/staff/cases/{id}/decision")))
                .bearer_auth(token.unwrap_or_default())
                .header("if-match", etag.as_str())
                .json(&json!({"result": "approved", "reasons": "Die Hundesteuer wird nach der Satzung festgesetzt."}))
        })
        .await?;
        Ok(())
    }

    async fn case_etag(&self, worker: &Actor, id: &str) -> Result<String, Stop> {
        let case = self
            .send("staff.case", &[StatusCode::OK], Some(worker), |c, token| {
                c.get(self.url(&format!("/api/v1/staff/cases/{id}")))
                    .bearer_auth(token.unwrap_or_default())
            })
            .await?;
        Ok(case
            .headers()
            .get("etag")
            .and_then(|etag| etag.to_str().ok())
            .unwrap_or_default()
            .to_owned())
    }

    async fn pull(&self) -> Result<(), Stop> {
        let cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/integration/events?limit=50&cursor={cursor}"),
            None => "/api/v1/integration/events?limit=50".to_owned(),
        };
        let page = self
            .send(
                "integration.events",
                &[StatusCode::OK],
                Some(&self.api_client),
                |c, token| c.get(self.url(&path)).bearer_auth(token.unwrap_or_default()),
            )
            .await?;
        if let Some(next) = self.json(page).await["next_cursor"].as_str() {
            *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = Some(next.to_owned());
        }
        Ok(())
    }

    async fn postfach(&self) -> Result<(), Stop> {
        let citizen = self.citizen();
        let ok = [StatusCode::OK];
        let list = self
            .send("mailbox.list", &ok, Some(citizen), |c, token| {
                c.get(self.url("/api/v1/mailbox/messages"))
                    .bearer_auth(token.unwrap_or_default())
            })
            .await?;
        let list = self.json(list).await;
        let Some(id) = list["items"][0]["id"].as_str() else {
            return Ok(());
        };
        let message = self
            .send("mailbox.open", &ok, Some(citizen), |c, token| {
                c.get(self.url(&format!("/api/v1/mailbox/messages/{id}")))
                    .bearer_auth(token.unwrap_or_default())
            })
            .await?;
        let message = self.json(message).await;
        if let Some(attachment) = message["attachments"][0]["id"].as_str() {
            self.send("mailbox.download", &ok, Some(citizen), |c, token| {
                c.get(self.url(&format!("/api/v1/mailbox/messages/{id}/attachments/{attachment}")))
                    .bearer_auth(token.unwrap_or_default())
            })
            .await?;
        }
        Ok(())
    }
}
