//! The portal's way to the services: this process's own REST API over loopback, with the browser session's access
//! token. Every rule — validation, ownership, trust levels, throttling, idempotency — is the API's; the portal turns
//! forms into API calls and problem documents into messages next to the fields.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT_LANGUAGE, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use serde_json::Value;

use crate::session::Visitor;

pub(crate) struct Api {
    base: String,
    http: reqwest::Client,
}

/// Who a call is made for.
pub(crate) struct Call<'a> {
    token: Option<&'a str>,
    lang: &'static str,
    address: Option<&'a str>,
    user_agent: Option<&'a str>,
    idempotency_key: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn of(visitor: &'a Visitor) -> Call<'a> {
        Call {
            token: visitor.access_token(),
            lang: visitor.lang.code(),
            address: visitor.address.as_deref(),
            user_agent: visitor.user_agent.as_deref(),
            idempotency_key: None,
        }
    }

    pub fn bearer(token: &'a str) -> Call<'a> {
        Call {
            token: Some(token),
            lang: "de",
            address: None,
            user_agent: None,
            idempotency_key: None,
        }
    }

    pub fn key(mut self, key: &'a str) -> Call<'a> {
        self.idempotency_key = Some(key);
        self
    }
}

pub(crate) enum Body {
    None,
    Json(Value),
    MergePatch(Value),
    /// A body passed on as it came, e.g. a browser's `multipart/form-data`.
    Raw {
        content_type: String,
        body: reqwest::Body,
    },
}

/// A problem document of the API, or the portal's own when the API cannot be reached.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub status: u16,
    pub code: String,
    pub title: String,
    pub detail: Option<String>,
    /// `(pointer, message)` of each field problem.
    pub errors: Vec<(String, String)>,
    /// With a step-up (RFC 9470): the trust level asked for.
    pub acr_values: Option<String>,
}

impl Problem {
    pub fn unavailable(lang: &str) -> Problem {
        Problem {
            status: 503,
            code: "service_unavailable".into(),
            title: if lang == "de" {
                "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut."
                    .into()
            } else {
                "The service cannot be reached right now. Please try again in a few minutes.".into()
            },
            detail: None,
            errors: Vec::new(),
            acr_values: None,
        }
    }

    /// A problem of the portal's own at one field.
    pub fn field(pointer: &str, message: &str) -> Problem {
        Problem {
            status: 422,
            code: "invalid_input".into(),
            title: message.to_owned(),
            detail: None,
            errors: vec![(pointer.to_owned(), message.to_owned())],
            acr_values: None,
        }
    }

    /// The message to show: the detail where there is one, else the title.
    pub fn message(&self) -> &str {
        self.detail.as_deref().unwrap_or(&self.title)
    }

    /// The first field problem's message, else the problem's: what to show at a single field.
    pub fn first_message(&self) -> String {
        match self.errors.first() {
            Some((_, message)) => message.clone(),
            None => self.message().to_owned(),
        }
    }

    /// A stronger or more recent login is needed (RFC 9470).
    pub fn wants_step_up(&self) -> bool {
        self.status == 401 && self.code == "insufficient_user_authentication"
    }

    /// The session is gone or the token not accepted (not: a wrong password at a step-up).
    pub fn signed_out(&self) -> bool {
        self.status == 401 && matches!(self.code.as_str(), "invalid_token" | "session_ended")
    }

    async fn read(response: reqwest::Response, lang: &str) -> Problem {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
        let errors = body
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        (
                            e.get("pointer")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            e.get("message")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        match text("code") {
            Some(code) => Problem {
                status,
                code,
                title: text("title").unwrap_or_default(),
                detail: text("detail"),
                errors,
                acr_values: text("acr_values"),
            },
            None => Problem {
                status,
                ..Problem::unavailable(lang)
            },
        }
    }
}

impl Api {
    pub fn new(base: String) -> Result<Api, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|err| err.to_string())?;
        Ok(Api { base, http })
    }

    /// Sends a call and answers the API's response, whatever its status; `Err` only when the API cannot be reached.
    pub async fn send(
        &self,
        call: &Call<'_>,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<reqwest::Response, Problem> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(ACCEPT_LANGUAGE, call.lang);
        if let Some(token) = call.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(address) = call.address {
            request = request.header(
                amtsweg_auth::FORWARDED_FOR,
                format!("{} {address}", amtsweg_auth::forwarding_secret()),
            );
        }
        if let Some(agent) = call.user_agent {
            request = request.header(USER_AGENT, agent);
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::MergePatch(value) => request
                .header(CONTENT_TYPE, "application/merge-patch+json")
                .body(value.to_string()),
            Body::Raw { content_type, body } => request.header(CONTENT_TYPE, content_type).body(body),
        };
        request.send().await.map_err(|err| {
            tracing::warn!(error = %err, "the portal cannot reach the API");
            Problem::unavailable(call.lang)
        })
    }

    /// Sends a call and answers the JSON of a successful response (`null` when it has none), or the problem.
    pub async fn json(
        &self,
        call: &Call<'_>,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Value, Problem> {
        let response = self.send(call, method, path, body).await?;
        if response.status().is_success() {
            Ok(response.json().await.unwrap_or(Value::Null))
        } else {
            Err(Problem::read(response, call.lang).await)
        }
    }

    pub async fn get(&self, call: &Call<'_>, path: &str) -> Result<Value, Problem> {
        self.json(call, Method::GET, path, Body::None).await
    }

    /// A download answered as it came (status, type, disposition and body streamed), or the problem.
    pub async fn download(&self, call: &Call<'_>, path: &str) -> Result<reqwest::Response, Problem> {
        let response = self.send(call, Method::GET, path, Body::None).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(Problem::read(response, call.lang).await)
        }
    }
}
