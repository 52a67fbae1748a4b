//! The engine's rules: which actions a caller may take in a state, and what taking one sets off. Callers gather
//! the facts (documents, payment, co-signature, timers, roles) from storage; the answers here depend on nothing
//! else.

use crate::definition::{By, Definition, Effect, Guard, State, Transition};

/// Who asks, and what is true of the case right now.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub by: Caller<'a>,
    pub documents_complete: bool,
    pub payment_settled: bool,
    pub cosigned: bool,
    /// Timers that have run out.
    pub expired_timers: &'a [String],
    /// Whether the caller wrote the decision under review (for four-eyes transitions).
    pub caller_is_author: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub enum Caller<'a> {
    /// A staff member with these roles in the case's unit.
    Staff(&'a [String]),
    Citizen,
    #[default]
    System,
    /// A specialised procedure allowed to write to the procedure's applications.
    Client,
}

/// Why an action cannot be taken; each maps to a stable error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The workflow has no such action.
    UnknownAction,
    /// The action exists, but not from the current state.
    NotFromHere { state: String },
    /// The caller may not take it (wrong kind of caller, missing role, or the decision's own author).
    NotAllowed,
    /// A guard does not hold.
    Guard(Guard),
    /// A reason must be given.
    CommentRequired,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownAction => "unknown_action",
            Refusal::NotFromHere { .. } => "action_not_available",
            Refusal::NotAllowed => "action_not_allowed",
            Refusal::Guard(_) => "guard_not_satisfied",
            Refusal::CommentRequired => "comment_required",
        }
    }
}

/// An action taken: the transition, the state entered, and the effects in order (the transition's, then the
/// entered state's).
#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub transition: &'a Transition,
    pub to: &'a State,
    pub effects: Vec<&'a Effect>,
}

impl Definition {
    /// Takes `action` from `state`, or says why not.
    pub fn fire<'a>(
        &'a self,
        state: &str,
        action: &str,
        facts: &Facts<'_>,
        comment: Option<&str>,
    ) -> Result<Step<'a>, Refusal> {
        let mut named = self.transitions.iter().filter(|t| t.action == action).peekable();
        if named.peek().is_none() {
            return Err(Refusal::UnknownAction);
        }
        let transition = named
            .find(|t| t.from.iter().any(|from| from == state))
            .ok_or_else(|| Refusal::NotFromHere {
                state: state.to_owned(),
            })?;
        if !allowed(transition, facts) {
            return Err(Refusal::NotAllowed);
        }
        if let Some(guard) = transition.guards.iter().find(|guard| !holds(guard, facts)) {
            return Err(Refusal::Guard(guard.clone()));
        }
        if transition.comment_required && comment.is_none_or(|c| c.trim().is_empty()) {
            return Err(Refusal::CommentRequired);
        }
        let to = self.state(&transition.to).ok_or(Refusal::UnknownAction)?;
        let effects = transition.effects.iter().chain(&to.on_enter).collect();
        Ok(Step {
            transition,
            to,
            effects,
        })
    }

    /// The actions this caller may take now, in definition order (guards included, comments not).
    pub fn available<'a>(
        &'a self,
        state: &'a str,
        facts: &'a Facts<'_>,
    ) -> impl Iterator<Item = &'a Transition> + 'a {
        self.leaving(state)
            .filter(move |t| allowed(t, facts) && t.guards.iter().all(|guard| holds(guard, facts)))
    }

    /// The automatic system transition to take from `state` now, if any (the first whose guards hold).
    pub fn automatic<'a>(&'a self, state: &'a str, facts: &Facts<'_>) -> Option<&'a Transition> {
        self.leaving(state)
            .find(|t| t.automatic && t.guards.iter().all(|guard| holds(guard, facts)))
    }
}

fn allowed(transition: &Transition, facts: &Facts<'_>) -> bool {
    let by_right_kind = match (transition.by, facts.by) {
        (By::Staff, Caller::Staff(roles)) => transition.roles.iter().any(|role| roles.contains(role)),
        (By::Citizen, Caller::Citizen) | (By::System, Caller::System) | (By::Client, Caller::Client) => true,
        _ => false,
    };
    by_right_kind && !(transition.four_eyes && facts.caller_is_author)
}

fn holds(guard: &Guard, facts: &Facts<'_>) -> bool {
    match guard {
        Guard::DocumentsComplete => facts.documents_complete,
        Guard::PaymentSettled => facts.payment_settled,
        Guard::Cosigned => facts.cosigned,
        Guard::DeadlinePassed(timer) => facts.expired_timers.contains(timer),
        Guard::HasRole(role) => matches!(facts.by, Caller::Staff(roles) if roles.contains(role)),
    }
}
