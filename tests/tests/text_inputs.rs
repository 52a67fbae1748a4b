//! Text the database cannot store (U+0000) is refused where it is parsed, on every operation of the API: the test
//! walks the OpenAPI document and sends a NUL in each string parameter and each string field of each request body,
//! one at a time, with a caller allowed to reach the operation. Nothing may answer 5xx — on PostgreSQL a NUL that
//! reached a query would.

use amtsweg_test_support::{Backend, TestApp, backend_tests};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

const NUL_TEXT: &str = "a\u{0}b";

struct Callers {
    citizen: String,
    staff: String,
    client: String,
    basic: String,
}

/// One request the walk sends, and what it varied.
struct Probe {
    method: Method,
    path: String,
    query: String,
    body: Option<(String, Vec<u8>)>,
    what: String,
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).expect("resolvable $ref"))
        }
        None => schema,
    }
}

fn types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// A plausible instance of `schema`; the string at `target` (a JSON pointer) carries the NUL. Returns the
/// instance and every pointer of a string inside it.
fn instance(doc: &Value, schema: &Value, at: &str, target: Option<&str>, strings: &mut Vec<String>) -> Value {
    let schema = resolve(doc, schema);
    for combinator in ["allOf", "oneOf", "anyOf"] {
        if let Some(first) = schema
            .get(combinator)
            .and_then(Value::as_array)
            .and_then(|options| {
                options
                    .iter()
                    .find(|o| resolve(doc, o).get("type") != Some(&json!("null")))
            })
        {
            if combinator == "allOf" {
                let mut merged = Map::new();
                for part in schema[combinator].as_array().into_iter().flatten() {
                    if let Value::Object(members) = instance(doc, part, at, target, strings) {
                        merged.extend(members);
                    }
                }
                return Value::Object(merged);
            }
            return instance(doc, first, at, target, strings);
        }
    }
    let kinds = types(schema);
    let is = |kind: &str| kinds.iter().any(|k| k == kind);
    if is("object") || schema.get("properties").is_some() {
        let mut members = Map::new();
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let pointer = format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
                members.insert(name.clone(), instance(doc, property, &pointer, target, strings));
            }
        }
        return Value::Object(members);
    }
    if is("array") {
        let item = schema.get("items").cloned().unwrap_or(json!({"type": "string"}));
        return json!([instance(doc, &item, &format!("{at}/0"), target, strings)]);
    }
    if is("string") || schema.get("enum").is_some() {
        strings.push(at.to_owned());
        if target == Some(at) {
            return json!(NUL_TEXT);
        }
        if let Some(first) = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return first.clone();
        }
        return json!("x");
    }
    if is("integer") || is("number") {
        return json!(1);
    }
    if is("boolean") {
        return json!(true);
    }
    json!(null)
}

fn probes(doc: &Value) -> Vec<(Probe, Option<String>)> {
    let mut all = Vec::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let method: Method = method.to_uppercase().parse().expect("method");
            let security = operation["security"]
                .as_array()
                .and_then(|s| s.first())
                .and_then(Value::as_object)
                .and_then(|s| s.keys().next().cloned());
            let parameters: Vec<&Value> = operation["parameters"].as_array().into_iter().flatten().collect();
            // Header values cannot carry a NUL at all (the HTTP codec refuses it); the walk covers paths and queries.
            let string_parameters: Vec<(&str, &str)> = parameters
                .iter()
                .filter(|p| p["in"] != "header")
                .filter(|p| {
                    let schema = resolve(doc, &p["schema"]);
                    types(schema).iter().any(|t| t == "string") || schema.get("enum").is_some()
                })
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or_default(),
                        p["in"].as_str().unwrap_or_default(),
                    )
                })
                .collect();
            let fill_path = |target: Option<&str>| {
                let mut filled = path.clone();
                for p in &parameters {
                    if p["in"] == "path" {
                        let name = p["name"].as_str().unwrap_or_default();
                        let value = if target == Some(name) { "x%00y" } else { "x" };
                        filled = filled.replace(&format!("{{{name}}}"), value);
                    }
                }
                filled
            };
            let content = operation["requestBody"]["content"].as_object();
            let body_of = |target: Option<&str>, strings: &mut Vec<String>| {
                let (media, spec) = content?.iter().next()?;
                let value = instance(doc, &spec["schema"], "", target, strings);
                let bytes = if media == "application/x-www-form-urlencoded" {
                    let pairs: Vec<(String, String)> = value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("x").to_owned()))
                        .collect();
                    serde_urlencoded::to_string(pairs).expect("form").into_bytes()
                } else {
                    serde_json::to_vec(&value).expect("JSON")
                };
                Some((media.clone(), bytes))
            };
            let mut strings = Vec::new();
            let plain_body = body_of(None, &mut strings);
            for (name, location) in &string_parameters {
                let (path, query) = match *location {
                    "path" => (fill_path(Some(name)), String::new()),
                    _ => (fill_path(None), format!("{name}=a%00b")),
                };
                all.push((
                    Probe {
                        method: method.clone(),
                        path,
                        query,
                        body: plain_body.clone(),
                        what: format!("{location} parameter {name}"),
                    },
                    security.clone(),
                ));
            }
            for pointer in strings {
                all.push((
                    Probe {
                        method: method.clone(),
                        path: fill_path(None),
                        query: String::new(),
                        body: body_of(Some(&pointer), &mut Vec::new()),
                        what: format!("body field {pointer}"),
                    },
                    security.clone(),
                ));
            }
        }
    }
    all
}

async fn send(app: &TestApp, callers: &Callers, probe: &Probe, security: Option<&str>) -> reqwest::Response {
    let url = match probe.query.as_str() {
        "" => app.url(&probe.path),
        query => format!("{}?{query}", app.url(&probe.path)),
    };
    let mut request = app.client.request(probe.method.clone(), url);
    request = match security {
        Some("citizen") => request.bearer_auth(&callers.citizen),
        Some("staff") => request.bearer_auth(&callers.staff),
        Some("client") => request.bearer_auth(&callers.client),
        Some("client_basic") => request.header("authorization", &callers.basic),
        _ => request,
    };
    if let Some((media, bytes)) = &probe.body {
        request = request.header("content-type", media).body(bytes.clone());
    }
    request.send().await.expect("request")
}

async fn no_operation_stores_a_nul(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("nul@example.de").await;
    let admin = app.admin().await;
    let (client_id, secret) = app.api_client(&admin, &["procedures:read"]).await;
    let client: Value = app.client_token(&client_id, &secret).await.json().await.unwrap();
    let callers = Callers {
        citizen: citizen.tokens.access_token.clone(),
        staff: admin.access_token.clone(),
        client: client["access_token"].as_str().unwrap().to_owned(),
        basic: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
        ),
    };
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let probes = probes(&doc);
    assert!(probes.len() > 50, "only {} probes", probes.len());
    let mut failures = Vec::new();
    for (probe, security) in &probes {
        let response = send(&app, &callers, probe, security.as_deref()).await;
        let status = response.status();
        if status.is_server_error() || status.is_success() {
            let body = response.text().await.unwrap_or_default();
            failures.push(format!(
                "{} {} ({}): {status} {body}",
                probe.method, probe.path, probe.what
            ));
        }
    }
    assert!(failures.is_empty(), "{:#?}", failures);

    // The client id inside HTTP Basic is a header used as data.
    for credentials in [format!("fv%00x:{secret}"), format!("fv\u{0}x:{secret}")] {
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        let response = app
            .client
            .post(app.url("/oauth/token"))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    // A cursor that decodes to a NUL names the parameter.
    let response = app
        .get_as(
            "/api/v1/me/security-events?cursor=azoA",
            &citizen.tokens.access_token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["parameter"], "cursor");
}

backend_tests!(no_operation_stores_a_nul);
