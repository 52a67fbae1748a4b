//! What a run measured: per operation latencies and failures, and the server's own gauges over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Every request's outcome, by operation.
#[derive(Default)]
pub struct Recorder {
    operations: Mutex<BTreeMap<&'static str, Operation>>,
}

#[derive(Default)]
struct Operation {
    micros: Vec<u64>,
    /// Failures by "status code" (e.g. "503 overloaded", "transport").
    failures: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn success(&self, operation: &'static str, took: Duration) {
        let mut operations = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        let entry = operations.entry(operation).or_default();
        entry
            .micros
            .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn failure(&self, operation: &'static str, took: Duration, what: String) {
        let mut operations = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        let entry = operations.entry(operation).or_default();
        entry
            .micros
            .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        *entry.failures.entry(what).or_default() += 1;
    }

    pub fn summary(&self, elapsed: Duration) -> Vec<OperationSummary> {
        let mut operations = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        operations
            .iter_mut()
            .map(|(name, operation)| {
                operation.micros.sort_unstable();
                let at = |quantile: f64| -> f64 {
                    let samples = &operation.micros;
                    if samples.is_empty() {
                        return 0.0;
                    }
                    let rank = ((samples.len() as f64 * quantile).ceil() as usize).clamp(1, samples.len());
                    samples[rank - 1] as f64 / 1000.0
                };
                let failed: u64 = operation.failures.values().sum();
                OperationSummary {
                    operation: name,
                    requests: operation.micros.len() as u64,
                    failed,
                    per_second: operation.micros.len() as f64 / elapsed.as_secs_f64().max(0.001),
                    p50_ms: at(0.50),
                    p95_ms: at(0.95),
                    p99_ms: at(0.99),
                    max_ms: operation.micros.last().map_or(0.0, |m| *m as f64 / 1000.0),
                    failures: operation.failures.clone(),
                }
            })
            .collect()
    }
}

#[derive(Debug, Serialize)]
pub struct OperationSummary {
    pub operation: &'static str,
    pub requests: u64,
    pub failed: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub failures: BTreeMap<String, u64>,
}

/// One reading of the server's `/metrics`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    pub at_secs: f64,
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    /// What the service's allocator counts as allocated and not freed (0 without jemalloc).
    pub heap_allocated_bytes: f64,
    pub threads: f64,
    pub pool_in_use: f64,
    pub pool_max: f64,
    pub in_flight: f64,
    pub jobs_queued: f64,
    pub oldest_due_job_secs: f64,
}

impl Sample {
    /// Reads the gauges from a Prometheus text exposition.
    pub fn parse(text: &str, at: Instant, started: Instant) -> Sample {
        let mut sample = Sample {
            at_secs: at.duration_since(started).as_secs_f64(),
            ..Sample::default()
        };
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            match name {
                "amtsweg_process_cpu_seconds_total" => sample.cpu_seconds = value,
                "amtsweg_process_resident_memory_bytes" => sample.resident_bytes = value,
                "amtsweg_process_heap_bytes{state=\"allocated\"}" => sample.heap_allocated_bytes = value,
                "amtsweg_process_threads" => sample.threads = value,
                "amtsweg_db_pool_connections{state=\"in_use\"}" => sample.pool_in_use = value,
                "amtsweg_db_pool_max_connections" => sample.pool_max = value,
                "amtsweg_http_requests_in_flight" => sample.in_flight = value,
                "amtsweg_jobs_oldest_due_seconds" => sample.oldest_due_job_secs = value,
                jobs if jobs.starts_with("amtsweg_jobs{") && jobs.contains("status=\"queued\"") => {
                    sample.jobs_queued += value;
                }
                _ => {}
            }
        }
        sample
    }
}

/// The server over the run.
#[derive(Debug, Serialize)]
pub struct ServerSummary {
    pub samples: usize,
    /// CPU used over the run, in percent of one core.
    pub cpu_percent_of_one_core: f64,
    pub cores: usize,
    pub resident_mib_first: f64,
    pub resident_mib_max: f64,
    pub resident_mib_last: f64,
    pub heap_allocated_mib_first: f64,
    pub heap_allocated_mib_max: f64,
    pub heap_allocated_mib_last: f64,
    pub threads_max: f64,
    pub pool_in_use_max: f64,
    pub pool_max: f64,
    pub in_flight_max: f64,
    pub jobs_queued_max: f64,
    pub jobs_queued_last: f64,
    pub oldest_due_job_secs_max: f64,
}

pub fn server_summary(samples: &[Sample]) -> Option<ServerSummary> {
    let (first, last) = (samples.first()?, samples.last()?);
    let max = |field: fn(&Sample) -> f64| samples.iter().map(field).fold(0.0, f64::max);
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    let wall = (last.at_secs - first.at_secs).max(0.001);
    Some(ServerSummary {
        samples: samples.len(),
        cpu_percent_of_one_core: (last.cpu_seconds - first.cpu_seconds) / wall * 100.0,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        resident_mib_first: mib(first.resident_bytes),
        resident_mib_max: mib(max(|s| s.resident_bytes)),
        resident_mib_last: mib(last.resident_bytes),
        heap_allocated_mib_first: mib(first.heap_allocated_bytes),
        heap_allocated_mib_max: mib(max(|s| s.heap_allocated_bytes)),
        heap_allocated_mib_last: mib(last.heap_allocated_bytes),
        threads_max: max(|s| s.threads),
        pool_in_use_max: max(|s| s.pool_in_use),
        pool_max: last.pool_max,
        in_flight_max: max(|s| s.in_flight),
        jobs_queued_max: max(|s| s.jobs_queued),
        jobs_queued_last: last.jobs_queued,
        oldest_due_job_secs_max: max(|s| s.oldest_due_job_secs),
    })
}

/// The report as a table for people.
pub fn table(operations: &[OperationSummary], server: Option<&ServerSummary>, elapsed: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nrun of {:.1} s", elapsed.as_secs_f64());
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}  failures",
        "operation", "requests", "per s", "p50 ms", "p95 ms", "p99 ms", "max ms", "failed"
    );
    for op in operations {
        let failures: Vec<String> = op
            .failures
            .iter()
            .map(|(what, n)| format!("{what} ×{n}"))
            .collect();
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>8.2} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7}  {}",
            op.operation,
            op.requests,
            op.per_second,
            op.p50_ms,
            op.p95_ms,
            op.p99_ms,
            op.max_ms,
            op.failed,
            failures.join(", ")
        );
    }
    if let Some(server) = server {
        let _ = writeln!(
            out,
            "\nserver: CPU {:.0} % of one core ({} cores), RSS {:.0} → max {:.0} → {:.0} MiB, \
             heap allocated {:.0} → max {:.0} → {:.0} MiB, threads max {}, pool in use max {}/{}, API requests in flight max {}, jobs queued max {} (at the end {}), \
             oldest due job max {} s ({} samples)",
            server.cpu_percent_of_one_core,
            server.cores,
            server.resident_mib_first,
            server.resident_mib_max,
            server.resident_mib_last,
            server.heap_allocated_mib_first,
            server.heap_allocated_mib_max,
            server.heap_allocated_mib_last,
            server.threads_max,
            server.pool_in_use_max,
            server.pool_max,
            server.in_flight_max,
            server.jobs_queued_max,
            server.jobs_queued_last,
            server.oldest_due_job_secs_max,
            server.samples
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_failures_per_operation() {
        let recorder = Recorder::default();
        for ms in 1..=100 {
            recorder.success("catalogue.list", Duration::from_millis(ms));
        }
        recorder.failure(
            "catalogue.list",
            Duration::from_millis(500),
            "503 overloaded".into(),
        );
        let summary = recorder.summary(Duration::from_secs(10));
        let list = &summary[0];
        assert_eq!(list.requests, 101);
        assert_eq!(list.failed, 1);
        assert!((list.p50_ms - 51.0).abs() < 0.01, "{}", list.p50_ms);
        assert!((list.max_ms - 500.0).abs() < 0.01);
        assert_eq!(list.failures["503 overloaded"], 1);
    }

    #[test]
    fn reads_the_gauges() {
        let text = "# HELP x\namtsweg_process_cpu_seconds_total 12.5\namtsweg_db_pool_connections{state=\"in_use\"} 3\n\
                    amtsweg_jobs{kind=\"mail.send\",status=\"queued\"} 4\namtsweg_jobs{kind=\"x\",status=\"queued\"} 1\n\
                    amtsweg_jobs{kind=\"x\",status=\"dead\"} 9\n";
        let now = Instant::now();
        let sample = Sample::parse(text, now, now);
        assert_eq!(sample.cpu_seconds, 12.5);
        assert_eq!(sample.pool_in_use, 3.0);
        assert_eq!(sample.jobs_queued, 5.0);
    }
}
