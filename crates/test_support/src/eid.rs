//! A real OpenID Connect provider (the npm package oidc-provider) as the eID service in tests.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "amtsweg";
pub const CLIENT_SECRET: &str = "amtsweg-eid-test-secret";
pub const REDIRECT_URI: &str = "http://portal.example/eid/callback";

pub struct EidProvider {
    pub issuer: String,
    child: Child,
}

impl EidProvider {
    pub fn start() -> EidProvider {
        let dir = crate::workspace_root().join("tests/oidc");
        crate::tools::ensure_oidc_provider(&dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("address")
            .port();
        let child = Command::new("node")
            .arg("provider.mjs")
            .arg(port.to_string())
            .arg(REDIRECT_URI)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the eID provider did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        EidProvider {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// The settings with which Amtsweg trusts this provider.
    pub fn settings(&self) -> amtsweg_account::settings::EidSettings {
        serde_json::from_value(serde_json::json!({
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": REDIRECT_URI,
        }))
        .expect("eID settings")
    }

    /// Plays the browser: follows the provider's redirects (with its cookies) from the authorisation URL until it
    /// sends the browser back to the portal; returns `(code, state)`.
    pub async fn authorize(&self, authorization_url: &str, login_hint: Option<&str>) -> (String, String) {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("browser");
        let mut url = reqwest::Url::parse(authorization_url).expect("URL");
        if let Some(hint) = login_hint {
            url.query_pairs_mut().append_pair("login_hint", hint);
        }
        for _ in 0..10 {
            let response = browser.get(url.clone()).send().await.expect("provider answers");
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("no redirect from {url}: {}", response.status()))
                .to_owned();
            let next = url.join(&location).expect("location");
            if next.as_str().starts_with(REDIRECT_URI) {
                let mut code = None;
                let mut state = None;
                for (key, value) in next.query_pairs() {
                    match key.as_ref() {
                        "code" => code = Some(value.into_owned()),
                        "state" => state = Some(value.into_owned()),
                        "error" => panic!("the provider refused: {next}"),
                        _ => {}
                    }
                }
                return (code.expect("code"), state.expect("state"));
            }
            url = next;
        }
        panic!("too many redirects")
    }
}

impl crate::TestApp {
    /// Logs in with the eID card at `provider` (the test's browser plays along); with `token`, links the eID to
    /// that citizen's account instead. `hint` picks the card holder (the provider's subject).
    pub async fn eid_login(
        &self,
        provider: &EidProvider,
        token: Option<&str>,
        hint: Option<&str>,
    ) -> reqwest::Response {
        let start = match token {
            Some(token) => {
                self.post_as("/api/v1/auth/eid/start", token, &serde_json::json!({}))
                    .await
            }
            None => self
                .client
                .post(self.url("/api/v1/auth/eid/start"))
                .send()
                .await
                .expect("eID start"),
        };
        assert_eq!(start.status(), reqwest::StatusCode::OK, "eID start");
        let start: serde_json::Value = start.json().await.expect("eID start body");
        let url = start["authorization_url"].as_str().expect("authorisation URL");
        assert!(
            url.contains("code_challenge_method=S256") && url.contains("nonce="),
            "{url}"
        );
        let (code, state) = provider.authorize(url, hint).await;
        assert_eq!(state, start["state"]);
        self.post_json(
            "/api/v1/auth/eid/callback",
            &serde_json::json!({"code": code, "state": state}),
        )
        .await
    }
}

impl Drop for EidProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
