//! Prometheus metrics: request counts and latencies per route and status, database pool usage, catalogue size —
//! and who may read them: everyone on the main address (the zero-config default, bound to loopback), only callers
//! with the configured bearer token, and/or only on a separate listen address that serves nothing else.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use amtsweg_db::Database;
use amtsweg_kernel::http::Admission;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
    pool_max: IntGauge,
    pub catalogue_size: IntGauge,
    jobs: IntGaugeVec,
    oldest_due_job: IntGauge,
    in_flight: IntGauge,
    in_flight_limit: IntGauge,
    cpu_seconds: Gauge,
    resident_bytes: IntGauge,
    threads: IntGauge,
    heap: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("amtsweg".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method, route and status",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route", "status"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        let pool_max = IntGauge::new("db_pool_max_connections", "Largest size of the database pool")?;
        let catalogue_size = IntGauge::new("catalogue_procedures", "Procedures in the loaded catalogue")?;
        let jobs = IntGaugeVec::new(
            Opts::new("jobs", "Background jobs by kind and status"),
            &["kind", "status"],
        )?;
        let oldest_due_job = IntGauge::new(
            "jobs_oldest_due_seconds",
            "How long the oldest due background job has been waiting",
        )?;
        let in_flight = IntGauge::new(
            "http_requests_in_flight",
            "API requests being handled now (admission control counts these)",
        )?;
        let in_flight_limit = IntGauge::new(
            "http_requests_in_flight_limit",
            "API requests handled at once before more are turned away with 503",
        )?;
        let cpu_seconds = Gauge::new(
            "process_cpu_seconds_total",
            "CPU time this process has used (user and system)",
        )?;
        let resident_bytes =
            IntGauge::new("process_resident_memory_bytes", "Resident memory of this process")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(in_flight_limit.clone()))?;
        registry.register(Box::new(cpu_seconds.clone()))?;
        let threads = IntGauge::new("process_threads", "Threads of this process")?;
        let heap = IntGaugeVec::new(
            Opts::new(
                "process_heap_bytes",
                "The memory allocator's view: `allocated` by the service and not yet freed, `resident` pages it \
                 holds (allocated plus what it keeps for reuse); meaningful in the `amtsweg` binary, which \
                 allocates through jemalloc",
            ),
            &["state"],
        )?;
        registry.register(Box::new(resident_bytes.clone()))?;
        registry.register(Box::new(threads.clone()))?;
        registry.register(Box::new(heap.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(catalogue_size.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(oldest_due_job.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            pool,
            pool_max,
            catalogue_size,
            jobs,
            oldest_due_job,
            in_flight,
            in_flight_limit,
            cpu_seconds,
            resident_bytes,
            threads,
            heap,
        })
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// The text exposition, with pool, queue, admission and process gauges read now.
    pub fn render(
        &self,
        db: &Database,
        jobs: &amtsweg_jobs::JobStats,
        admission: &Admission,
    ) -> Result<String, prometheus::Error> {
        self.in_flight
            .set(i64::try_from(admission.in_flight()).unwrap_or(i64::MAX));
        self.in_flight_limit
            .set(i64::try_from(admission.limit()).unwrap_or(i64::MAX));
        if let Some(process) = ProcessStats::read() {
            self.cpu_seconds.set(process.cpu_seconds);
            self.resident_bytes.set(process.resident_bytes);
            self.threads.set(process.threads);
        }
        if let Some((allocated, resident)) = heap() {
            self.heap.with_label_values(&["allocated"]).set(allocated);
            self.heap.with_label_values(&["resident"]).set(resident);
        }
        self.jobs.reset();
        for count in &jobs.counts {
            self.jobs
                .with_label_values(&[count.kind.as_str(), count.status.as_str()])
                .set(count.count);
        }
        self.oldest_due_job.set(jobs.oldest_due_seconds);
        let status = db.status();
        self.pool.with_label_values(&["idle"]).set(i64::from(status.idle));
        self.pool
            .with_label_values(&["in_use"])
            .set(i64::from(status.connections.saturating_sub(status.idle)));
        self.pool_max.set(i64::from(status.max_size));
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Records every request under its route pattern (never the raw path, so ids do not explode the label set).
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        metrics.observe(
            &method,
            &route,
            res.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(res)
}

/// Who may read `/metrics` (app data).
#[derive(Clone, Default)]
pub struct MetricsAccess {
    /// Required as `Authorization: Bearer …` when set.
    pub token: Option<secrecy::SecretString>,
    /// The port of the separate metrics listener, when there is one: `/metrics` only there, nothing else there.
    pub port: Option<u16>,
}

impl MetricsAccess {
    fn on_metrics_listener(&self, req: &actix_web::HttpRequest) -> bool {
        self.port
            .is_some_and(|port| req.app_config().local_addr().port() == port)
    }

    /// Whether this request may read the metrics; the error says why not.
    pub fn check(&self, req: &actix_web::HttpRequest) -> Result<(), amtsweg_kernel::ApiError> {
        use actix_web::http::StatusCode;
        use amtsweg_kernel::{ApiError, Text};
        use secrecy::ExposeSecret;
        use subtle::ConstantTimeEq;

        if self.port.is_some() && !self.on_metrics_listener(req) {
            return Err(ApiError::from_status(StatusCode::NOT_FOUND));
        }
        let Some(token) = &self.token else {
            return Ok(());
        };
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, value)| value.trim().as_bytes().to_vec())
            .unwrap_or_default();
        if bool::from(presented.ct_eq(token.expose_secret().as_bytes())) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Text::fixed(
                "Für die Metriken ist ein Token erforderlich.",
                "The metrics need a token.",
            ),
        )
        .with_header(
            actix_web::http::header::WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static("Bearer realm=\"metrics\""),
        ))
    }
}

/// On the separate metrics listener, everything but `/metrics` is "not found": the API is not reachable there.
pub async fn confine_listener(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, Error> {
    let access = req.app_data::<web::Data<MetricsAccess>>().cloned();
    if let Some(access) = access
        && access.on_metrics_listener(req.request())
        && req.path() != "/metrics"
    {
        let (req, _) = req.into_parts();
        let response = actix_web::ResponseError::error_response(&amtsweg_kernel::ApiError::from_status(
            actix_web::http::StatusCode::NOT_FOUND,
        ));
        return Ok(ServiceResponse::new(req, response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// jemalloc's bytes allocated and resident, read fresh (its statistics are refreshed by advancing the epoch).
fn heap() -> Option<(i64, i64)> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    let allocated = i64::try_from(stats::allocated::read().ok()?).ok()?;
    let resident = i64::try_from(stats::resident::read().ok()?).ok()?;
    Some((allocated, resident))
}

/// CPU time, resident memory and threads of this process, from `/proc` (Linux; elsewhere the gauges stay 0).
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: i64,
    threads: i64,
}

impl ProcessStats {
    fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces; the fields after its closing parenthesis start at field 3.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok();
        // utime and stime (fields 14 and 15) count USER_HZ ticks, 100 per second on every Linux ABI.
        let cpu_seconds = (ticks(11)? + ticks(12)?) / 100.0;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let field = |name: &str| -> Option<i64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        Some(ProcessStats {
            cpu_seconds,
            resident_bytes: field("VmRSS:")? * 1024,
            threads: field("Threads:")?,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let stats = super::ProcessStats::read().unwrap();
        assert!(stats.resident_bytes > 1024 * 1024);
        assert!(stats.cpu_seconds >= 0.0);
        assert!(stats.threads >= 1);
    }
}
