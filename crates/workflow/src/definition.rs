//! The shape of a workflow file. Serde refuses unknown members, unknown effects and unknown guards with the path
//! to them; [`crate::check`] then looks at the definition as a whole (states, reachability, roles, timers).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::deadline::Period;

/// A text in both languages the service speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub de: String,
    pub en: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Equals the file name without `.yaml`; procedures name it in `workflow:`.
    pub id: String,
    /// Raised with every change; an instance stays on the version it started with.
    pub version: u32,
    pub title: Label,
    /// The state a submitted application enters.
    pub initial: String,
    pub states: Vec<State>,
    pub transitions: Vec<Transition>,
    #[serde(default)]
    pub timers: Vec<Timer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub id: String,
    /// What the citizen sees as the business status.
    pub label: Label,
    /// What the citizen must do next, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step: Option<Label>,
    /// A final state: nothing leaves it.
    #[serde(default)]
    pub terminal: bool,
    /// A case in this state waits in its unit's queue for a case worker.
    #[serde(default)]
    pub queued: bool,
    /// Whom the case waits for; while it waits for the citizen the service-norm clock pauses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<Waits>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_enter: Vec<Effect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Waits {
    Citizen,
    Payment,
    Delivery,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The name callers use, e.g. `pruefung_beginnen`.
    pub action: String,
    pub label: Label,
    pub from: Vec<String>,
    pub to: String,
    /// Who takes it: staff (default) with one of `roles`, the citizen, the system (timers, events), or a
    /// specialised procedure through the integration API (`client`, with an `applications:write` scope).
    #[serde(default)]
    pub by: By,
    /// Staff roles allowed (staff transitions only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<Guard>,
    /// A reason must be given.
    #[serde(default)]
    pub comment_required: bool,
    /// Must be taken by someone other than the author of the decision under review.
    #[serde(default)]
    pub four_eyes: bool,
    /// System transitions taken as soon as their guards hold.
    #[serde(default)]
    pub automatic: bool,
    /// The decision this transition records, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Whether the citizen's timeline shows the comment (never the staff member's name).
    #[serde(default)]
    pub public: bool,
    /// Taken by opening an information request (message, fields and documents asked for, reply window): the
    /// target state waits for the citizen, whose one answering transition brings the case back.
    #[serde(default)]
    pub information_request: bool,
    /// Effects of taking this transition, before those of entering `to`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    #[default]
    Staff,
    Citizen,
    System,
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
    PartiallyApproved,
}

/// What entering a state or taking a transition sets off; run as jobs in the transaction of the transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// A mail to the applicant through the mail queue, by template name (no form content in it).
    Notify(String),
    StartTimer(String),
    StopTimer(String),
    /// Asks the ePayment module to collect the assessed fee.
    RequestPayment,
    /// Hands the decision document to the Virtuelle Poststelle for delivery.
    DeliverDecision,
    /// Publishes `de.amtsweg.application.<name>.v1`.
    Publish(String),
}

/// A condition a transition needs. Written as a string: `documents_complete`, `payment_settled`, `cosigned`,
/// `deadline_passed:<timer>` or `has_role:<role>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Every document the procedure requires is attached.
    DocumentsComplete,
    /// The payment the procedure's policy requires before processing is settled (or none is required).
    PaymentSettled,
    /// A second staff member of the unit, not the author, has co-signed the pending decision.
    Cosigned,
    /// The timer has run out.
    DeadlinePassed(String),
    /// The caller holds this role in the case's unit.
    HasRole(String),
}

impl FromStr for Guard {
    type Err = String;

    fn from_str(text: &str) -> Result<Guard, String> {
        match text.split_once(':') {
            None if text == "documents_complete" => Ok(Guard::DocumentsComplete),
            None if text == "payment_settled" => Ok(Guard::PaymentSettled),
            None if text == "cosigned" => Ok(Guard::Cosigned),
            Some(("deadline_passed", timer)) if !timer.is_empty() => {
                Ok(Guard::DeadlinePassed(timer.to_owned()))
            }
            Some(("has_role", role)) if !role.is_empty() => Ok(Guard::HasRole(role.to_owned())),
            _ => Err(format!(
                "unknown guard {text:?}: documents_complete, payment_settled, cosigned, deadline_passed:<timer> or \
                 has_role:<role>"
            )),
        }
    }
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Guard::DocumentsComplete => f.write_str("documents_complete"),
            Guard::PaymentSettled => f.write_str("payment_settled"),
            Guard::Cosigned => f.write_str("cosigned"),
            Guard::DeadlinePassed(timer) => write!(f, "deadline_passed:{timer}"),
            Guard::HasRole(role) => write!(f, "has_role:{role}"),
        }
    }
}

impl<'de> Deserialize<'de> for Guard {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Guard, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Guard {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timer {
    pub id: String,
    pub kind: TimerKind,
    pub period: Period,
    /// When to warn before it runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_before: Option<Period>,
    pub on_expiry: Expiry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// A statutory period (§ 31 VwVfG): ends on the next working day when its last day is not one.
    Deadline,
    /// The time the citizen has to answer; a fixed end date is communicated, so it does not move.
    ReplyWindow,
    /// Wiedervorlage: a case worker's reminder.
    Resubmission,
    /// The period after which approval is deemed given (§ 42a VwVfG), where a statute orders it.
    ApprovalFiction,
}

/// What happens when a timer runs out: a system transition is taken, or people are alerted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Expiry {
    Action(String),
    Alert(AlertTarget),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTarget {
    /// Everyone holding a role in the case's unit.
    Unit,
    /// The case worker who holds the case.
    Assignee,
}

impl Definition {
    pub fn state(&self, id: &str) -> Option<&State> {
        self.states.iter().find(|state| state.id == id)
    }

    pub fn timer(&self, id: &str) -> Option<&Timer> {
        self.timers.iter().find(|timer| timer.id == id)
    }

    /// The transitions that leave `state`.
    pub fn leaving<'a>(&'a self, state: &'a str) -> impl Iterator<Item = &'a Transition> + 'a {
        self.transitions
            .iter()
            .filter(move |transition| transition.from.iter().any(|from| from == state))
    }

    /// The citizen's answer to an information request waiting in `state`: the one citizen transition from there
    /// to a state that is not terminal (withdrawing is the other way out).
    pub fn answer<'a>(&'a self, state: &'a str) -> Option<&'a Transition> {
        let mut answers = self
            .leaving(state)
            .filter(|t| t.by == By::Citizen && self.state(&t.to).is_some_and(|to| !to.terminal));
        let answer = answers.next()?;
        answers.next().is_none().then_some(answer)
    }

    /// The staff transition from `state` that opens an information request, if there is one.
    pub fn information_request<'a>(&'a self, state: &'a str) -> Option<&'a Transition> {
        self.leaving(state).find(|t| t.information_request)
    }
}
