//! Ready actors for tests: verified citizens, citizens with TOTP, the system administrator, API clients.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::TestApp;
use crate::smtp::Mail;

pub const ADMIN_EMAIL: &str = "admin@stadt-leipzig.example";
pub const ADMIN_PASSWORD: &str = "Verwaltung mit Weitblick am Augustusplatz";
pub const STRONG_PASSWORD: &str = "kaffeetasse wolkenkratzer lindenau";

#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub acr: String,
    pub amr: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Citizen {
    pub id: String,
    pub email: String,
    pub password: String,
    pub tokens: Tokens,
    pub totp_secret: Option<String>,
    pub recovery_codes: Vec<String>,
}

impl TestApp {
    pub fn smtp(&self) -> &crate::SmtpServer {
        self.smtp.as_deref().expect("this test app was built with_smtp()")
    }

    /// Mails to `address`, from the SMTP server if there is one, else from the files the service writes.
    pub async fn mails_to(&self, address: &str, count: usize) -> Vec<Mail> {
        if let Some(smtp) = &self.smtp {
            return smtp.wait_for(address, count).await;
        }
        let started = Instant::now();
        loop {
            let mut mails: Vec<(std::time::SystemTime, Mail)> = Vec::new();
            if let Ok(entries) = std::fs::read_dir(self.data_dir.join("mail")) {
                for entry in entries.flatten() {
                    let Ok(raw) = std::fs::read(entry.path()) else {
                        continue;
                    };
                    let Some(mail) = Mail::parse(&raw) else {
                        continue;
                    };
                    if mail.to.eq_ignore_ascii_case(address) {
                        let modified = entry
                            .metadata()
                            .and_then(|m| m.modified())
                            .unwrap_or(std::time::UNIX_EPOCH);
                        mails.push((modified, mail));
                    }
                }
            }
            if mails.len() >= count {
                mails.sort_by_key(|(at, _)| *at);
                return mails.into_iter().map(|(_, m)| m).collect();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{address} received {} of {count} mails",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_as(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Submits a dog registration (the dog tax procedure) with the microchip number ending in `chip`; answers the
    /// application id.
    pub async fn submit_dog(&self, token: &str, chip: u32) -> String {
        let created: Value = self
            .post_as(
                "/api/v1/applications",
                token,
                &json!({"procedure_id": "hundesteuer-anmeldung", "data": dog(chip)}),
            )
            .await
            .json()
            .await
            .expect("draft");
        let id = created["id"].as_str().expect("an id").to_owned();
        let submitted = self
            .client
            .post(self.url(&format!("/api/v1/applications/{id}/submit")))
            .bearer_auth(token)
            .header("idempotency-key", format!("dog-{chip}"))
            .send()
            .await
            .expect("request");
        assert_eq!(submitted.status(), StatusCode::CREATED);
        id
    }

    /// Attaches a PDF to an application as `document_type` (multipart, the way a browser sends it); answers the
    /// response.
    pub async fn attach_pdf(
        &self,
        token: &str,
        application_id: &str,
        document_type: &str,
        filename: &str,
        content: &[u8],
    ) -> Response {
        const BOUNDARY: &str = "amtsweg-test-attachment-boundary";
        let mut form = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"document_type\"\r\n\r\n{document_type}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/pdf\r\n\r\n"
        )
        .into_bytes();
        form.extend_from_slice(content);
        form.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        self.client
            .post(self.url(&format!("/api/v1/applications/{application_id}/attachments")))
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(form)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_as(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// The current TOTP code by the service's clock.
    pub fn totp(&self, secret: &str) -> String {
        let unix = u64::try_from(amtsweg_kernel::Clock::now(self.clock.as_ref()).unix_seconds())
            .expect("after 1970");
        amtsweg_account::domain::totp::code_at(secret, unix).expect("a valid secret")
    }

    /// Moves the clock to the next TOTP step, so that a new code can be used.
    pub fn next_totp_step(&self) {
        self.clock.advance(chrono::Duration::seconds(30));
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Response {
        self.post_json(
            "/api/v1/accounts",
            &json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str, totp: Option<&str>) -> Response {
        let mut body = json!({"email": email, "password": password});
        if let Some(code) = totp {
            body["totp_code"] = json!(code);
        }
        self.post_json("/api/v1/auth/login", &body).await
    }

    /// Exchanges a refresh token; panics unless that succeeds.
    pub async fn refresh(&self, refresh_token: &str) -> Tokens {
        let response = self
            .post_json("/api/v1/auth/refresh", &json!({"refresh_token": refresh_token}))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "refresh");
        response.json().await.expect("tokens")
    }

    /// Registers, verifies by the mailed code and logs in.
    pub async fn citizen(&self, email: &str) -> Citizen {
        let response = self.register(email, STRONG_PASSWORD, "Erika Mustermann").await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{:?}",
            response.text().await
        );
        let mail = self.mails_to(email, 1).await.remove(0);
        let verified = self
            .post_json("/api/v1/accounts/verify-email", &json!({"token": mail.token()}))
            .await;
        assert_eq!(verified.status(), StatusCode::OK);
        let response = self.login(email, STRONG_PASSWORD, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Tokens = response.json().await.expect("tokens");
        let me: Value = self
            .get_as("/api/v1/me", &tokens.access_token)
            .await
            .json()
            .await
            .expect("profile");
        Citizen {
            id: me["id"].as_str().expect("id").to_owned(),
            email: email.to_owned(),
            password: STRONG_PASSWORD.to_owned(),
            tokens,
            totp_secret: None,
            recovery_codes: Vec::new(),
        }
    }

    /// Sets up TOTP for the citizen and logs in again with it (session level `substantial`).
    pub async fn with_totp(&self, mut citizen: Citizen) -> Citizen {
        let enrolment: Value = self
            .post_as("/api/v1/me/totp", &citizen.tokens.access_token, &json!({}))
            .await
            .json()
            .await
            .expect("enrolment");
        let secret = enrolment["secret"].as_str().expect("secret").to_owned();
        let confirmed = self
            .post_as(
                "/api/v1/me/totp/confirm",
                &citizen.tokens.access_token,
                &json!({"code": self.totp(&secret)}),
            )
            .await;
        assert_eq!(confirmed.status(), StatusCode::OK);
        let codes: Value = confirmed.json().await.expect("codes");
        citizen.recovery_codes = codes["recovery_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        self.next_totp_step();
        let response = self
            .login(&citizen.email, &citizen.password, Some(&self.totp(&secret)))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        citizen.tokens = response.json().await.expect("tokens");
        citizen.totp_secret = Some(secret);
        self.next_totp_step();
        citizen
    }

    /// Creates a member of staff with these roles (`(role, unit)`) through the admin API and logs them in; answers
    /// the access token.
    pub async fn staff_member(&self, admin: &str, email: &str, roles: &[(&str, &str)]) -> String {
        let roles: Vec<Value> = roles
            .iter()
            .map(|(role, unit)| json!({"role": role, "unit": unit}))
            .collect();
        let created = self
            .post_as(
                "/api/v1/admin/staff",
                admin,
                &json!({"email": email, "name": "Sachbearbeitung", "roles": roles}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED, "staff created");
        let created: Value = created.json().await.expect("staff");
        let password = created["initial_password"]
            .as_str()
            .expect("initial password")
            .to_owned();
        self.staff_login(email, &password, None).await.0.access_token
    }

    /// Logs a member of staff in, enrolling TOTP on the first login. Returns tokens and the TOTP secret.
    pub async fn staff_login(&self, email: &str, password: &str, secret: Option<&str>) -> (Tokens, String) {
        let secret = match secret {
            Some(secret) => secret.to_owned(),
            None => {
                let first = self
                    .post_json(
                        "/api/v1/staff/auth/login",
                        &json!({"email": email, "password": password}),
                    )
                    .await;
                assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
                let problem: Value = first.json().await.expect("problem");
                assert_eq!(problem["code"], "totp_enrollment_required");
                let enrolment_token = problem["enrollment_token"].as_str().expect("token").to_owned();
                let enrolment: Value = self
                    .post_json(
                        "/api/v1/staff/auth/totp",
                        &json!({"enrollment_token": enrolment_token}),
                    )
                    .await
                    .json()
                    .await
                    .expect("enrolment");
                let secret = enrolment["secret"].as_str().expect("secret").to_owned();
                let confirmed = self
                    .post_json(
                        "/api/v1/staff/auth/totp/confirm",
                        &json!({"enrollment_token": enrolment_token, "code": self.totp(&secret)}),
                    )
                    .await;
                assert_eq!(confirmed.status(), StatusCode::OK);
                self.next_totp_step();
                secret
            }
        };
        let response = self
            .post_json(
                "/api/v1/staff/auth/login",
                &json!({"email": email, "password": password, "totp_code": self.totp(&secret)}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{:?}", response.text().await);
        self.next_totp_step();
        (response.json().await.expect("tokens"), secret)
    }

    /// The bootstrap system administrator, logged in.
    pub async fn admin(&self) -> Tokens {
        let known = self.admin_secret.lock().expect("admin secret").clone();
        let (tokens, secret) = self
            .staff_login(ADMIN_EMAIL, ADMIN_PASSWORD, known.as_deref())
            .await;
        *self.admin_secret.lock().expect("admin secret") = Some(secret);
        tokens
    }

    /// Registers an API client through the admin API; returns (client_id, secret).
    pub async fn api_client(&self, admin: &Tokens, scopes: &[&str]) -> (String, String) {
        let response = self
            .post_as(
                "/api/v1/admin/clients",
                &admin.access_token,
                &json!({"name": "Fachverfahren Test", "scopes": scopes}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.expect("client");
        (
            created["client_id"].as_str().expect("id").to_owned(),
            created["client_secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// A client-credentials token.
    pub async fn client_token(&self, client_id: &str, secret: &str) -> Response {
        self.client
            .post(self.url("/oauth/token"))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("request")
    }
}

/// The form data of a dog registration whose microchip number ends in `chip`.
pub fn dog(chip: u32) -> Value {
    json!({
        "halter": {"vorname": "Erika", "nachname": "Mustermann", "geburtsdatum": "1980-04-01"},
        "hund": {"name": "Bello", "rasse": "Labrador", "chipnummer": format!("276098106{chip:06}")},
        "haltung_seit": "2026-11-01"
    })
}
