//! Open data: how many applications per procedure and month were submitted, decided (by result) and withdrawn,
//! and how long decisions took — counts only, no personal data. Small counts are suppressed by the caller.

use std::collections::BTreeMap;

use amtsweg_db::DbError;
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;

use crate::schema::{application_decisions, application_steps, applications};
use crate::service::ApplicationService;

/// The raw figures of one procedure in one month (Europe/Berlin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthFigures {
    pub submitted: u64,
    pub approved: u64,
    pub rejected: u64,
    pub partially_approved: u64,
    pub withdrawn: u64,
    /// Calendar days from submission to the first decision, of the decisions made this month.
    pub processing_days: Vec<i64>,
}

/// Figures per (procedure, `YYYY-MM`).
pub type Figures = BTreeMap<(String, String), MonthFigures>;

fn month(at: Timestamp) -> String {
    amtsweg_workflow::deadline::berlin_date(at.utc().naive_utc())
        .format("%Y-%m")
        .to_string()
}

impl ApplicationService {
    /// Counts every submitted application, its first decision and its withdrawal (a citizen's step into a final
    /// state) by procedure and month.
    pub async fn statistics(&self) -> Result<Figures, DbError> {
        let service = self.clone();
        self.db()
            .read(move |conn| {
                let submitted: Vec<(String, String, Option<String>, Option<Timestamp>)> = applications::table
                    .filter(applications::status.eq("submitted"))
                    .select((
                        applications::id,
                        applications::procedure_id,
                        applications::workflow_id,
                        applications::submitted_at,
                    ))
                    .load(conn)?;
                let decisions: Vec<(String, Timestamp, String)> = application_decisions::table
                    .select((
                        application_decisions::application_id,
                        application_decisions::created_at,
                        application_decisions::result,
                    ))
                    .order(application_decisions::created_at.asc())
                    .load(conn)?;
                let citizen_steps: Vec<(String, String, Timestamp)> = application_steps::table
                    .filter(application_steps::actor_kind.eq("citizen"))
                    .select((
                        application_steps::application_id,
                        application_steps::to_state,
                        application_steps::at,
                    ))
                    .load(conn)?;
                let mut first_decision: BTreeMap<&str, (Timestamp, &str)> = BTreeMap::new();
                for (id, at, result) in &decisions {
                    first_decision
                        .entry(id.as_str())
                        .or_insert((*at, result.as_str()));
                }
                let mut withdrawn_at: BTreeMap<&str, Timestamp> = BTreeMap::new();
                let cases: BTreeMap<&str, (&str, Option<&str>, Option<Timestamp>)> = submitted
                    .iter()
                    .map(|(id, procedure, workflow, at)| {
                        (id.as_str(), (procedure.as_str(), workflow.as_deref(), *at))
                    })
                    .collect();
                for (id, to_state, at) in &citizen_steps {
                    let Some((_, Some(workflow), _)) = cases.get(id.as_str()) else {
                        continue;
                    };
                    let terminal = service
                        .workflow(workflow)
                        .and_then(|w| w.state(to_state).map(|s| s.terminal))
                        .unwrap_or(false);
                    if terminal {
                        withdrawn_at.insert(id.as_str(), *at);
                    }
                }
                let mut figures = Figures::new();
                for (id, (procedure, _, submitted_at)) in &cases {
                    let Some(submitted_at) = submitted_at else {
                        continue;
                    };
                    figures
                        .entry(((*procedure).to_owned(), month(*submitted_at)))
                        .or_default()
                        .submitted += 1;
                    if let Some((decided_at, result)) = first_decision.get(id) {
                        let month_figures = figures
                            .entry(((*procedure).to_owned(), month(*decided_at)))
                            .or_default();
                        match *result {
                            "approved" => month_figures.approved += 1,
                            "rejected" => month_figures.rejected += 1,
                            _ => month_figures.partially_approved += 1,
                        }
                        month_figures
                            .processing_days
                            .push((*decided_at - *submitted_at).num_days().max(0));
                    }
                    if let Some(at) = withdrawn_at.get(id) {
                        figures
                            .entry(((*procedure).to_owned(), month(*at)))
                            .or_default()
                            .withdrawn += 1;
                    }
                }
                Ok(figures)
            })
            .await
    }
}
