//! The static check of a definition as a whole: every name resolves, every state is reachable and can reach an
//! end, roles and timers exist. Run when workflows are loaded (start-up refuses a bad one) and by
//! `amtsweg workflow check DIR`.

use std::collections::{BTreeSet, HashSet, VecDeque};

use crate::definition::{By, Definition, Effect, Expiry, Guard, Waits};

/// One mistake: where in the file (`transitions[2].to`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

/// Every problem of `definition`, given the staff roles the modules declare.
pub fn check(definition: &Definition, known_roles: &[&str]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut report = |path: String, reason: String| problems.push(Problem { path, reason });

    let mut state_ids = HashSet::new();
    for (i, state) in definition.states.iter().enumerate() {
        if !state_ids.insert(state.id.as_str()) {
            report(
                format!("states[{i}].id"),
                format!("state {:?} is declared twice", state.id),
            );
        }
    }
    let known_state = |id: &str| state_ids.contains(id);
    let mut timer_ids = HashSet::new();
    for (i, timer) in definition.timers.iter().enumerate() {
        if !timer_ids.insert(timer.id.as_str()) {
            report(
                format!("timers[{i}].id"),
                format!("timer {:?} is declared twice", timer.id),
            );
        }
    }
    let known_timer = |id: &str| timer_ids.contains(id);

    if definition.states.is_empty() {
        report("states".into(), "a workflow needs states".into());
    }
    if !known_state(&definition.initial) {
        report(
            "initial".into(),
            format!("unknown state {:?}", definition.initial),
        );
    }

    let mut started_timers = BTreeSet::new();
    let mut check_effects = |path: &str, effects: &[Effect], report: &mut dyn FnMut(String, String)| {
        for (j, effect) in effects.iter().enumerate() {
            match effect {
                Effect::StartTimer(timer) | Effect::StopTimer(timer) if !known_timer(timer) => {
                    report(format!("{path}[{j}]"), format!("unknown timer {timer:?}"));
                }
                Effect::StartTimer(timer) => {
                    started_timers.insert(timer.clone());
                }
                Effect::Notify(name) | Effect::Publish(name) if !is_name(name) => {
                    report(
                        format!("{path}[{j}]"),
                        format!("{name:?} is not a name (a-z, 0-9, _)"),
                    );
                }
                _ => {}
            }
        }
    };
    for (i, state) in definition.states.iter().enumerate() {
        check_effects(&format!("states[{i}].on_enter"), &state.on_enter, &mut report);
    }

    let mut seen_pairs = HashSet::new();
    for (i, t) in definition.transitions.iter().enumerate() {
        let at = |member: &str| format!("transitions[{i}].{member}");
        if !is_name(&t.action) {
            report(
                at("action"),
                format!("{:?} is not a name (a-z, 0-9, _)", t.action),
            );
        }
        if t.from.is_empty() {
            report(at("from"), "a transition leaves at least one state".into());
        }
        for (j, from) in t.from.iter().enumerate() {
            if !known_state(from) {
                report(
                    format!("transitions[{i}].from[{j}]"),
                    format!("unknown state {from:?}"),
                );
            } else if definition.state(from).is_some_and(|s| s.terminal) {
                report(
                    format!("transitions[{i}].from[{j}]"),
                    format!("{from:?} is terminal: nothing leaves it"),
                );
            }
            if !seen_pairs.insert((t.action.as_str(), from.as_str())) {
                report(
                    format!("transitions[{i}].from[{j}]"),
                    format!("action {:?} is declared twice from {from:?}", t.action),
                );
            }
        }
        if !known_state(&t.to) {
            report(at("to"), format!("unknown state {:?}", t.to));
        }
        match t.by {
            By::Staff if t.roles.is_empty() => {
                report(at("roles"), "a staff transition names the roles allowed".into())
            }
            By::Citizen | By::System | By::Client if !t.roles.is_empty() => {
                report(at("roles"), "only staff transitions name roles".into());
            }
            _ => {}
        }
        for (j, role) in t.roles.iter().enumerate() {
            if !known_roles.contains(&role.as_str()) {
                report(
                    format!("transitions[{i}].roles[{j}]"),
                    unknown_role(role, known_roles),
                );
            }
        }
        for (j, guard) in t.guards.iter().enumerate() {
            match guard {
                Guard::HasRole(role) if !known_roles.contains(&role.as_str()) => {
                    report(
                        format!("transitions[{i}].guards[{j}]"),
                        unknown_role(role, known_roles),
                    );
                }
                Guard::DeadlinePassed(timer) if !known_timer(timer) => {
                    report(
                        format!("transitions[{i}].guards[{j}]"),
                        format!("unknown timer {timer:?}"),
                    );
                }
                _ => {}
            }
        }
        if t.automatic && t.by != By::System {
            report(at("automatic"), "only system transitions are automatic".into());
        }
        if t.four_eyes && t.by != By::Staff {
            report(at("four_eyes"), "four eyes apply to staff transitions".into());
        }
        if t.information_request {
            if t.by != By::Staff {
                report(
                    at("information_request"),
                    "information requests are opened by staff".into(),
                );
            }
            if t.decision.is_some() {
                report(
                    at("information_request"),
                    "a transition asks for information or records a decision, not both".into(),
                );
            }
            if let Some(target) = definition.state(&t.to) {
                if target.waits_for != Some(Waits::Citizen) {
                    report(
                        at("to"),
                        format!("{:?} must wait for the citizen (`waits_for: citizen`)", t.to),
                    );
                }
                if definition.answer(&t.to).is_none() {
                    report(
                        at("to"),
                        format!(
                            "nothing answers the request: {:?} needs exactly one citizen transition to a state that is not terminal",
                            t.to
                        ),
                    );
                }
            }
        }
        check_effects(&at("effects"), &t.effects, &mut report);
    }

    for (i, state) in definition.states.iter().enumerate() {
        if definition
            .leaving(&state.id)
            .filter(|t| t.information_request)
            .count()
            > 1
        {
            report(
                format!("states[{i}]"),
                format!(
                    "more than one transition opens an information request from {:?}",
                    state.id
                ),
            );
        }
    }

    for (i, timer) in definition.timers.iter().enumerate() {
        if let Expiry::Action(action) = &timer.on_expiry {
            let mut named = definition
                .transitions
                .iter()
                .filter(|t| &t.action == action)
                .peekable();
            if named.peek().is_none() {
                report(
                    format!("timers[{i}].on_expiry"),
                    format!("no transition {action:?} to take"),
                );
            } else if named.any(|t| t.by != By::System) {
                report(
                    format!("timers[{i}].on_expiry"),
                    format!("{action:?} is not a system transition, so a timer cannot take it"),
                );
            }
        }
        if !started_timers.contains(&timer.id) {
            report(
                format!("timers[{i}]"),
                format!("timer {:?} is never started", timer.id),
            );
        }
    }

    if !definition.states.iter().any(|s| s.terminal) {
        report(
            "states".into(),
            "no terminal state: no case could ever be closed".into(),
        );
    }
    let reachable = reach(definition, [definition.initial.as_str()], false);
    let ends: Vec<&str> = definition
        .states
        .iter()
        .filter(|s| s.terminal)
        .map(|s| s.id.as_str())
        .collect();
    let can_end = reach(definition, ends, true);
    for (i, state) in definition.states.iter().enumerate() {
        if !reachable.contains(state.id.as_str()) {
            report(
                format!("states[{i}]"),
                format!("{:?} is unreachable from {:?}", state.id, definition.initial),
            );
        } else if !state.terminal && definition.leaving(&state.id).next().is_none() {
            report(
                format!("states[{i}]"),
                format!("dead end: nothing leaves {:?}, which is not terminal", state.id),
            );
        } else if !state.terminal && !can_end.contains(state.id.as_str()) {
            report(
                format!("states[{i}]"),
                format!("dead end: no way from {:?} to a terminal state", state.id),
            );
        }
    }
    problems
}

/// The states reachable from `start` along transitions (or against them, with `backwards`).
fn reach<'a>(
    definition: &'a Definition,
    start: impl IntoIterator<Item = &'a str>,
    backwards: bool,
) -> HashSet<&'a str> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut queue: VecDeque<&str> = start.into_iter().collect();
    while let Some(state) = queue.pop_front() {
        if !seen.insert(state) {
            continue;
        }
        for t in &definition.transitions {
            if backwards && t.to == state {
                queue.extend(t.from.iter().map(String::as_str));
            } else if !backwards && t.from.iter().any(|from| from == state) {
                queue.push_back(&t.to);
            }
        }
    }
    seen
}

fn unknown_role(role: &str, known: &[&str]) -> String {
    format!("unknown role {role:?}; declared roles: {}", known.join(", "))
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
