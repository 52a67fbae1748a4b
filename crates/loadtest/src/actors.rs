//! The people the load is made of: citizens (registered, verified through the mailed link, logged in) and case
//! workers (created by the administrator, with TOTP), each with a token that is renewed when it runs out.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use totp_rs::{Builder, Secret};

pub const PASSWORD: &str = "Lasttest im Rathaus 2026!";

/// Someone who logs in: a citizen (password), a member of staff (password and TOTP), or a specialised procedure's
/// API client (client credentials; `email` holds the client id).
pub struct Actor {
    pub email: String,
    password: String,
    totp: Option<Totp>,
    client: bool,
    token: Mutex<String>,
}

struct Totp {
    secret: String,
    /// The last time step a code was used for; each code works once.
    last_step: Mutex<u64>,
}

impl Totp {
    /// A code for a step after the last used one, within the one step of skew the service allows; waits for the
    /// clock when three logins in a row used up the steps.
    async fn next_code(&self) -> anyhow::Result<String> {
        loop {
            let now = unix_now() / 30;
            let step = {
                let mut last = self.last_step.lock().unwrap_or_else(|p| p.into_inner());
                let step = (*last + 1).max(now.saturating_sub(1));
                if step <= now + 1 {
                    *last = step;
                    Some(step)
                } else {
                    None
                }
            };
            match step {
                Some(step) => return code_at(&self.secret, step * 30),
                None => tokio::time::sleep(Duration::from_secs(5)).await,
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn code_at(secret: &str, unix: u64) -> anyhow::Result<String> {
    let secret = Secret::try_from_base32(secret).map_err(|err| anyhow!("TOTP secret: {err:?}"))?;
    let totp = Builder::new()
        .with_secret(secret)
        .build()
        .map_err(|err| anyhow!("TOTP: {err:?}"))?;
    Ok(totp.generate(unix).to_string())
}

impl Actor {
    fn new(email: &str, password: &str, totp: Option<Totp>, client: bool, token: String) -> Actor {
        Actor {
            email: email.to_owned(),
            password: password.to_owned(),
            totp,
            client,
            token: Mutex::new(token),
        }
    }

    pub fn token(&self) -> String {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Logs in again (the token ran out); answers the new token.
    pub async fn renew(&self, client: &Client, base: &str) -> anyhow::Result<String> {
        let token = match &self.totp {
            None if self.client => {
                let response = client
                    .post(format!("{base}/oauth/token"))
                    .basic_auth(&self.email, Some(&self.password))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await?;
                access_token(response, "client token").await?
            }
            None => citizen_login(client, base, &self.email, &self.password).await?,
            Some(totp) => {
                let body = json!({"email": self.email, "password": self.password, "totp_code": totp.next_code().await?});
                let response = client
                    .post(format!("{base}/api/v1/staff/auth/login"))
                    .json(&body)
                    .send()
                    .await?;
                access_token(response, "staff login").await?
            }
        };
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = token.clone();
        Ok(token)
    }
}

async fn access_token(response: reqwest::Response, what: &str) -> anyhow::Result<String> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != StatusCode::OK {
        bail!("{what}: {status} {body}");
    }
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{what}: no access token in {body}"))
}

pub async fn citizen_login(
    client: &Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?;
    access_token(response, "login").await
}

/// A member of staff's first login: TOTP enrolment and confirmation, then the login itself.
pub async fn staff(
    client: &Client,
    base: &str,
    email: &str,
    password: &str,
    secret: Option<String>,
) -> anyhow::Result<Actor> {
    let secret = match secret {
        Some(secret) => secret,
        None => {
            let first = client
                .post(format!("{base}/api/v1/staff/auth/login"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await?;
            let problem: Value = first.json().await?;
            let enrolment = problem["enrollment_token"]
                .as_str()
                .ok_or_else(|| anyhow!("{email}: expected TOTP enrolment, got {problem}"))?;
            let started: Value = client
                .post(format!("{base}/api/v1/staff/auth/totp"))
                .json(&json!({"enrollment_token": enrolment}))
                .send()
                .await?
                .json()
                .await?;
            let secret = started["secret"]
                .as_str()
                .ok_or_else(|| anyhow!("no TOTP secret: {started}"))?
                .to_owned();
            // Confirmed with the code of the step before, so that the login can use the current one at once.
            let step = unix_now() / 30 - 1;
            let confirmed = client
                .post(format!("{base}/api/v1/staff/auth/totp/confirm"))
                .json(&json!({"enrollment_token": enrolment, "code": code_at(&secret, step * 30)?}))
                .send()
                .await?;
            if confirmed.status() != StatusCode::OK {
                bail!(
                    "TOTP confirmation for {email}: {} {}",
                    confirmed.status(),
                    confirmed.text().await?
                );
            }
            secret
        }
    };
    let totp = Totp {
        secret,
        last_step: Mutex::new(unix_now() / 30 - 1),
    };
    let actor = Actor::new(email, password, Some(totp), false, String::new());
    actor.renew(client, base).await?;
    Ok(actor)
}

/// Case workers of `unit`, created by the administrator.
pub async fn case_workers(
    client: &Client,
    base: &str,
    admin: &Actor,
    unit: &str,
    run: &str,
    count: usize,
) -> anyhow::Result<Vec<Actor>> {
    let mut workers = Vec::new();
    for n in 0..count {
        let email = format!("sachbearbeitung-{run}-{n}@stadt.example");
        let created = client
            .post(format!("{base}/api/v1/admin/staff"))
            .bearer_auth(admin.token())
            .json(&json!({"email": email, "name": format!("Sachbearbeitung {n}"), "roles": [{"role": "case_worker", "unit": unit}]}))
            .send()
            .await?;
        let status = created.status();
        let created: Value = created.json().await?;
        let password = created["initial_password"]
            .as_str()
            .ok_or_else(|| anyhow!("creating staff: {status} {created}"))?;
        workers.push(staff(client, base, &email, password, None).await?);
    }
    Ok(workers)
}

/// An API client of a specialised procedure with `scopes`, registered by the administrator.
pub async fn api_client(
    client: &Client,
    base: &str,
    admin: &Actor,
    run: &str,
    scopes: &[&str],
) -> anyhow::Result<Actor> {
    let created = client
        .post(format!("{base}/api/v1/admin/clients"))
        .bearer_auth(admin.token())
        .json(&json!({"name": format!("Lasttest {run}"), "scopes": scopes}))
        .send()
        .await?;
    let status = created.status();
    let created: Value = created.json().await?;
    let (Some(id), Some(secret)) = (created["client_id"].as_str(), created["client_secret"].as_str()) else {
        bail!("creating an API client: {status} {created}");
    };
    let actor = Actor::new(id, secret, None, true, String::new());
    actor.renew(client, base).await?;
    Ok(actor)
}

/// Registers `count` citizens, verifies each through the link in its mail (read from the instance's mail files)
/// and logs them in.
pub async fn citizens(
    client: &Client,
    base: &str,
    mail_dir: &Path,
    run: &str,
    count: usize,
) -> anyhow::Result<Vec<Actor>> {
    let emails: Vec<String> = (0..count)
        .map(|n| format!("buerger-{run}-{n}@example.de"))
        .collect();
    // A few at a time, as the service's hashing queue is bounded: it answers 503 with Retry-After beyond it.
    for chunk in emails.chunks(4) {
        let mut registrations = Vec::new();
        for email in chunk {
            let (client, base, email) = (client.clone(), base.to_owned(), email.clone());
            registrations.push(tokio::spawn(async move {
                let body = json!({"email": email, "password": PASSWORD, "name": "Erika Mustermann"});
                loop {
                    let response = client
                        .post(format!("{base}/api/v1/accounts"))
                        .json(&body)
                        .send()
                        .await?;
                    match response.status() {
                        StatusCode::ACCEPTED => return Ok(()),
                        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        status => bail!("registering {email}: {status} {}", response.text().await?),
                    }
                }
            }));
        }
        for registration in registrations {
            registration.await??;
        }
    }
    let tokens = verification_tokens(mail_dir, &emails, Duration::from_secs(60)).await?;
    let mut actors = Vec::new();
    for email in emails {
        let token = &tokens[&email];
        let verified = client
            .post(format!("{base}/api/v1/accounts/verify-email"))
            .json(&json!({"token": token}))
            .send()
            .await?;
        if verified.status() != StatusCode::OK {
            bail!(
                "verifying {email}: {} {}",
                verified.status(),
                verified.text().await?
            );
        }
        let token = citizen_login(client, base, &email, PASSWORD).await?;
        actors.push(Actor::new(&email, PASSWORD, None, false, token));
    }
    Ok(actors)
}

/// The verification token of each address, from the mails the instance wrote as files.
async fn verification_tokens(
    mail_dir: &Path,
    emails: &[String],
    patience: Duration,
) -> anyhow::Result<HashMap<String, String>> {
    let started = Instant::now();
    loop {
        let mut found = HashMap::new();
        if let Ok(entries) = std::fs::read_dir(mail_dir) {
            for entry in entries.flatten() {
                let Ok(raw) = std::fs::read(entry.path()) else {
                    continue;
                };
                let Some(message) = mail_parser::MessageParser::default().parse(&raw) else {
                    continue;
                };
                let Some(to) = message.to().and_then(|to| to.first()).and_then(|to| to.address()) else {
                    continue;
                };
                let body = message.body_text(0).unwrap_or_default();
                if let Some(token) = token_in(&body) {
                    found.insert(to.to_owned(), token);
                }
            }
        }
        if emails.iter().all(|email| found.contains_key(email)) {
            return Ok(found);
        }
        if started.elapsed() > patience {
            let missing = emails.iter().filter(|email| !found.contains_key(*email)).count();
            bail!(
                "{missing} verification mails did not arrive in {} within {patience:?} (is the instance writing mails as \
                 files there, i.e. without mail.smtp?)",
                mail_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn token_in(body: &str) -> Option<String> {
    let start = body.find("token=")? + "token=".len();
    let token: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// The bootstrap administrator (enrolling TOTP at the first login unless its secret is given).
pub async fn admin(
    client: &Client,
    base: &str,
    email: &str,
    password: &str,
    secret: Option<String>,
) -> anyhow::Result<Actor> {
    staff(client, base, email, password, secret)
        .await
        .context("logging in as the administrator")
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_token_in_a_link() {
        assert_eq!(
            super::token_in("Bitte bestätigen: https://x/verify-email?token=abc-DEF_12.\n").as_deref(),
            Some("abc-DEF_12")
        );
        assert_eq!(super::token_in("nichts"), None);
    }
}
