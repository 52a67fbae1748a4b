//! Open data (`GET /api/v1/statistics`): per procedure and month, applications submitted, decided (by result) and
//! withdrawn, with the median and 90th percentile of the days to a decision. Counts from 1 to 4 are suppressed
//! (`null`), and so are the durations of fewer than five decisions, so that no figure points at a person. The
//! figures are computed at most every few minutes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amtsweg_applications::statistics::MonthFigures;
use serde::Serialize;
use utoipa::ToSchema;

/// Counts below this are suppressed.
pub const SUPPRESS_BELOW: u64 = 5;
/// How long computed figures are served.
const FRESH_FOR: Duration = Duration::from_secs(300);

/// The figures of one procedure in one month.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct MonthStatistics {
    pub procedure_id: String,
    /// `YYYY-MM` (Europe/Berlin).
    pub month: String,
    /// Counts are `null` where suppressed (1–4).
    pub submitted: Option<u64>,
    pub decided: Option<u64>,
    pub approved: Option<u64>,
    pub rejected: Option<u64>,
    pub partially_approved: Option<u64>,
    pub withdrawn: Option<u64>,
    /// Calendar days from submission to decision, of this month's decisions (`null` for fewer than 5).
    pub median_processing_days: Option<f64>,
    pub p90_processing_days: Option<f64>,
}

/// The published statistics.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Statistics {
    /// When the figures were computed (RFC 3339).
    pub generated_at: String,
    /// Counts from 1 to this minus one are published as `null`.
    pub suppressed_below: u64,
    pub months: Vec<MonthStatistics>,
}

fn shown(count: u64) -> Option<u64> {
    (count == 0 || count >= SUPPRESS_BELOW).then_some(count)
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).map(|v| *v as f64)
}

fn median(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    }
}

/// Publishes raw figures with small counts suppressed.
pub fn publish(figures: amtsweg_applications::statistics::Figures, generated_at: String) -> Statistics {
    let months = figures
        .into_iter()
        .map(|((procedure_id, month), f): ((String, String), MonthFigures)| {
            let decided = f.approved + f.rejected + f.partially_approved;
            let mut days = f.processing_days.clone();
            days.sort_unstable();
            let enough = days.len() as u64 >= SUPPRESS_BELOW;
            MonthStatistics {
                procedure_id,
                month,
                submitted: shown(f.submitted),
                decided: shown(decided),
                approved: shown(f.approved),
                rejected: shown(f.rejected),
                partially_approved: shown(f.partially_approved),
                withdrawn: shown(f.withdrawn),
                median_processing_days: if enough { median(&days) } else { None },
                p90_processing_days: if enough { percentile(&days, 0.9) } else { None },
            }
        })
        .collect();
    Statistics {
        generated_at,
        suppressed_below: SUPPRESS_BELOW,
        months,
    }
}

/// The statistics as CSV (RFC 4180, a header line; suppressed values empty).
pub fn csv(statistics: &Statistics) -> String {
    let mut out = String::from(
        "procedure_id,month,submitted,decided,approved,rejected,partially_approved,withdrawn,median_processing_days,p90_processing_days\r\n",
    );
    let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let f = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for m in &statistics.months {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\r\n",
            m.procedure_id,
            m.month,
            n(m.submitted),
            n(m.decided),
            n(m.approved),
            n(m.rejected),
            n(m.partially_approved),
            n(m.withdrawn),
            f(m.median_processing_days),
            f(m.p90_processing_days),
        ));
    }
    out
}

/// The last computed statistics.
#[derive(Default)]
pub struct Cache {
    kept: Mutex<Option<(Instant, Arc<Statistics>)>>,
}

impl Cache {
    pub fn fresh(&self) -> Option<Arc<Statistics>> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.as_ref()
            .filter(|(at, _)| at.elapsed() < FRESH_FOR)
            .map(|(_, s)| s.clone())
    }

    pub fn keep(&self, statistics: Arc<Statistics>) {
        *self.kept.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), statistics));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_and_few_durations_are_suppressed() {
        let mut figures = amtsweg_applications::statistics::Figures::new();
        figures.insert(
            ("p".into(), "2026-12".into()),
            MonthFigures {
                submitted: 7,
                approved: 4,
                rejected: 2,
                partially_approved: 0,
                withdrawn: 1,
                processing_days: vec![3, 1, 10, 2, 2, 5],
            },
        );
        let published = publish(figures, "now".into());
        let m = &published.months[0];
        assert_eq!(m.submitted, Some(7));
        assert_eq!(m.decided, Some(6));
        assert_eq!(
            (m.approved, m.rejected, m.partially_approved),
            (None, None, Some(0))
        );
        assert_eq!(m.withdrawn, None);
        assert_eq!(m.median_processing_days, Some(2.5));
        assert_eq!(m.p90_processing_days, Some(10.0));
        assert!(csv(&published).contains("\r\np,2026-12,7,6,,,0,,2.5,10\r\n"));
    }
}
