//! Endpoints for operators and orchestrators: liveness, readiness, metrics; and the fallback that answers unknown
//! routes (404) and known routes with the wrong method (405 with `Allow`).

use std::time::Duration;

use actix_web::http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, get, web};
use amtsweg_db::Database;
use amtsweg_kernel::http::ok;
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, Text};
use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::{Metrics, MetricsAccess};

/// Readiness must answer within 2 s even when the database hangs.
const READY_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `up` (live) or `ready`.
    status: &'static str,
}

/// The process is up. Never touches the database.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is up", body = Health)))]
#[get("/health/live")]
pub async fn live() -> Result<HttpResponse, ApiError> {
    ok(&Health { status: "up" })
}

/// The service can serve requests: the database answers. 503 within 2 s when it does not; 200 again as soon as
/// it is back, without a restart.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database is unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/health/ready")]
pub async fn ready(db: web::Data<Database>) -> Result<HttpResponse, ApiError> {
    match db.ping(READY_TIMEOUT).await {
        Ok(()) => ok(&Health { status: "ready" }),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                Text::fixed("Der Dienst ist nicht bereit.", "The service is not ready."),
            )
            .with_detail(Text::fixed(
                "Die Datenbank ist nicht erreichbar.",
                "The database is unreachable.",
            ))
            .with_header(
                actix_web::http::header::RETRY_AFTER,
                HeaderValue::from_static("5"),
            ))
        }
    }
}

/// Prometheus text exposition. With `metrics.token` configured it needs `Authorization: Bearer {token}`; with
/// `metrics.listen` it is served only on that address (and 404 here).
#[utoipa::path(
    tag = "operations",
    security((), ("metrics" = [])),
    responses(
        (status = 200, description = "Metrics in Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "A token is configured and was not given", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/metrics")]
pub async fn metrics(
    metrics: web::Data<Metrics>,
    access: web::Data<MetricsAccess>,
    db: web::Data<Database>,
    clock: web::Data<amtsweg_kernel::SharedClock>,
    admission: web::Data<amtsweg_kernel::http::Admission>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    access.check(&req)?;
    let now = clock.now();
    let jobs = db
        .read(move |conn| amtsweg_jobs::stats(conn, now))
        .await
        .map_err(|err| match err {
            amtsweg_db::DbError::Unavailable(cause) => ApiError::unavailable(cause),
            other => ApiError::internal(other),
        })?;
    let text = metrics
        .render(&db, &jobs, &admission)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(text))
}

/// The routes the service knows, as path templates with their methods; built from the OpenAPI document so that it
/// cannot drift from the handlers.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<String>, Vec<Method>)>,
}

impl RouteTable {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> RouteTable {
        let mut table = RouteTable::default();
        for (path, item) in &api.paths.paths {
            let methods = [
                (&item.get, Method::GET),
                (&item.post, Method::POST),
                (&item.put, Method::PUT),
                (&item.patch, Method::PATCH),
                (&item.delete, Method::DELETE),
            ]
            .into_iter()
            .filter(|(operation, _)| operation.is_some())
            .map(|(_, method)| method)
            .collect();
            table.add(path, methods);
        }
        table.add("/openapi.json", vec![Method::GET]);
        table
    }

    fn add(&mut self, template: &str, methods: Vec<Method>) {
        self.routes
            .push((template.split('/').map(str::to_owned).collect(), methods));
    }

    /// The methods allowed on `path`, if any route matches it.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut allowed: Vec<Method> = Vec::new();
        for (template, methods) in &self.routes {
            let matches = template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s);
            if matches {
                allowed.extend(methods.iter().cloned());
            }
        }
        if allowed.is_empty() { None } else { Some(allowed) }
    }
}

pub async fn fallback(req: HttpRequest, routes: web::Data<RouteTable>) -> Result<HttpResponse, ApiError> {
    Err(match routes.allowed(req.path()) {
        Some(methods) => {
            let allow = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            let error = ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED).with_detail(Text::new(
                format!("Erlaubt sind: {allow}."),
                format!("Allowed methods: {allow}."),
            ));
            match HeaderValue::from_str(&allow) {
                Ok(value) => error.with_header(ALLOW, value),
                Err(_) => error,
            }
        }
        None => ApiError::from_status(StatusCode::NOT_FOUND).with_detail(Text::fixed(
            "Unter dieser Adresse gibt es nichts. Die API liegt unter /api/v1, ihre Beschreibung unter /docs.",
            "There is nothing at this address. The API lives under /api/v1, its description under /docs.",
        )),
    })
}
