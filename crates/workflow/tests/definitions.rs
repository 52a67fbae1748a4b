//! The definition checker (one test per kind of mistake), the shipped workflows, and the engine's rules.

use amtsweg_workflow::{Caller, Facts, Guard, Refusal, load_dir, load_shipped, parse};

const ROLES: [&str; 2] = ["case_worker", "supervisor"];

/// A small valid workflow; each test breaks it in one way.
const VALID: &str = r#"
id: probe
version: 1
title: { de: Probe, en: Probe }
initial: eingegangen
states:
  - id: eingegangen
    label: { de: Eingegangen, en: Received }
    queued: true
    on_enter: [ { start_timer: frist } ]
  - id: rueckfrage
    label: { de: Rückfrage, en: Question }
    waits_for: citizen
  - id: entschieden
    label: { de: Entschieden, en: Decided }
    terminal: true
transitions:
  - action: fragen
    label: { de: Fragen, en: Ask }
    from: [eingegangen]
    to: rueckfrage
    roles: [case_worker]
    comment_required: true
    information_request: true
  - action: antworten
    label: { de: Antworten, en: Answer }
    from: [rueckfrage]
    to: eingegangen
    by: citizen
  - action: frist_abgelaufen
    label: { de: Frist abgelaufen, en: Expired }
    from: [rueckfrage]
    to: eingegangen
    by: system
  - action: entscheiden
    label: { de: Entscheiden, en: Decide }
    from: [eingegangen]
    to: entschieden
    roles: [case_worker, supervisor]
    guards: [documents_complete]
    decision: approved
timers:
  - id: frist
    kind: reply_window
    period: { weeks: 2 }
    on_expiry: { action: frist_abgelaufen }
"#;

/// The problems of `VALID` with `from` replaced by `to`, as "path: reason".
fn problems(from: &str, to: &str) -> Vec<String> {
    assert!(VALID.contains(from), "the probe contains {from:?}");
    let text = VALID.replacen(from, to, 1);
    match parse(&text, "probe", &ROLES) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .into_iter()
            .map(|(path, reason)| format!("{path}: {reason}"))
            .collect(),
    }
}

fn assert_one(from: &str, to: &str, path: &str, reason_part: &str) {
    let found = problems(from, to);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(&format!("{path}: ")) && p.contains(reason_part)),
        "expected {path}: …{reason_part}…, got {found:#?}"
    );
}

#[test]
fn the_probe_is_valid() {
    assert_eq!(problems("", ""), Vec::<String>::new());
}

#[test]
fn an_unknown_state_is_named() {
    assert_one(
        "    to: entschieden\n",
        "    to: entschiedn\n",
        "transitions[3].to",
        "unknown state \"entschiedn\"",
    );
    assert_one(
        "initial: eingegangen",
        "initial: neu",
        "initial",
        "unknown state \"neu\"",
    );
    assert_one(
        "    from: [rueckfrage]\n    to: eingegangen\n    by: citizen",
        "    from: [rueckfrag]\n    to: eingegangen\n    by: citizen",
        "transitions[1].from[0]",
        "unknown state",
    );
}

#[test]
fn an_unreachable_state_is_named() {
    let text = VALID.replace(
        "  - id: entschieden\n",
        "  - id: verwaist\n    label: { de: V, en: O }\n    terminal: true\n  - id: entschieden\n",
    );
    let found = parse(&text, "probe", &ROLES).err().unwrap_or_default();
    assert!(
        found
            .iter()
            .any(|(path, reason)| path == "states[2]" && reason.contains("unreachable")),
        "{found:#?}"
    );
}

#[test]
fn a_workflow_without_a_terminal_state_is_refused() {
    assert_one("    terminal: true\n", "", "states", "no terminal state");
}

#[test]
fn dead_ends_are_named() {
    // Nothing leaves `rueckfrage` once its two transitions point elsewhere… here: remove them.
    let text = VALID
        .replace(
            "    from: [rueckfrage]\n    to: eingegangen\n    by: citizen\n",
            "    from: [eingegangen]\n    to: eingegangen\n    by: citizen\n",
        )
        .replace(
            "    from: [rueckfrage]\n    to: eingegangen\n    by: system\n",
            "    from: [eingegangen]\n    to: eingegangen\n    by: system\n",
        );
    let found = parse(&text, "probe", &ROLES).err().unwrap_or_default();
    assert!(
        found
            .iter()
            .any(|(path, reason)| path == "states[1]" && reason.contains("dead end")),
        "{found:#?}"
    );
    // A cycle with no way out is a dead end too.
    let text = VALID.replace(
        "    from: [eingegangen]\n    to: entschieden\n",
        "    from: [entschieden]\n    to: eingegangen\n",
    );
    let found = parse(&text, "probe", &ROLES).err().unwrap_or_default();
    assert!(
        found.iter().any(|(_, reason)| reason.contains("no way from")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|(_, reason)| reason.contains("is terminal: nothing leaves it")),
        "{found:#?}"
    );
}

#[test]
fn unknown_roles_guards_and_effects_are_refused() {
    assert_one(
        "    roles: [case_worker]\n",
        "    roles: [hausmeister]\n",
        "transitions[0].roles[0]",
        "unknown role \"hausmeister\"",
    );
    assert_one(
        "    guards: [documents_complete]",
        "    guards: [has_role:praesident]",
        "transitions[3].guards[0]",
        "unknown role",
    );
    assert_one(
        "    guards: [documents_complete]",
        "    guards: [sonnenschein]",
        "transitions[3].guards[0]",
        "unknown guard",
    );
    assert_one(
        "on_enter: [ { start_timer: frist } ]",
        "on_enter: [ { start_timer: frist }, { fax: x } ]",
        "states[0].on_enter[1]",
        "unknown variant",
    );
    assert_one(
        "    roles: [case_worker]\n",
        "",
        "transitions[0].roles",
        "names the roles allowed",
    );
}

#[test]
fn timers_need_a_target_and_a_start() {
    assert_one(
        "on_expiry: { action: frist_abgelaufen }",
        "on_expiry: { action: nichts }",
        "timers[0].on_expiry",
        "no transition \"nichts\"",
    );
    assert_one(
        "on_expiry: { action: frist_abgelaufen }",
        "on_expiry: { action: antworten }",
        "timers[0].on_expiry",
        "not a system transition",
    );
    assert_one(
        "on_enter: [ { start_timer: frist } ]",
        "on_enter: []",
        "timers[0]",
        "never started",
    );
    assert_one(
        "on_enter: [ { start_timer: frist } ]",
        "on_enter: [ { start_timer: frist }, { stop_timer: uhr } ]",
        "states[0].on_enter[1]",
        "unknown timer \"uhr\"",
    );
    assert_one(
        "    on_expiry: { action: frist_abgelaufen }\n",
        "",
        "timers[0]",
        "missing field `on_expiry`",
    );
}

#[test]
fn an_information_request_needs_a_state_that_waits_for_one_answer() {
    assert_one(
        "    waits_for: citizen\n",
        "",
        "transitions[0].to",
        "must wait for the citizen",
    );
    assert_one(
        "    to: eingegangen\n    by: citizen",
        "    to: entschieden\n    by: citizen",
        "transitions[0].to",
        "nothing answers the request",
    );
    assert_one(
        "    roles: [case_worker]\n    comment_required: true\n    information_request: true",
        "    by: system\n    information_request: true",
        "transitions[0].information_request",
        "opened by staff",
    );
    assert_one(
        "    decision: approved",
        "    decision: approved\n    information_request: true",
        "transitions[3].information_request",
        "not both",
    );
}

#[test]
fn the_id_must_match_the_file_name() {
    assert_one("id: probe", "id: andere", "id", "must equal the file name");
}

#[test]
fn shipped_workflows_load_and_match_the_directory() {
    let shipped = load_shipped(&ROLES).unwrap_or_else(|errors| panic!("{errors:#?}"));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let on_disk = load_dir(&dir, &ROLES).unwrap_or_else(|errors| panic!("{errors:#?}"));
    assert_eq!(shipped.len(), 5);
    for workflow in on_disk.iter() {
        let id = &workflow.definition.id;
        let compiled = shipped
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not compiled in: add it to shipped.rs"));
        assert_eq!(
            compiled.sha256, workflow.sha256,
            "{id} differs from workflows/{id}.yaml"
        );
    }
    assert_eq!(on_disk.len(), shipped.len());
}

#[test]
fn a_procedure_naming_a_missing_workflow_is_named() {
    let shipped = load_shipped(&ROLES).unwrap_or_else(|errors| panic!("{errors:#?}"));
    let missing = shipped.missing_for([("hundesteuer-anmeldung", "steuerfestsetzung"), ("x", "fehlt")]);
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0].contains("\"x\"") && missing[0].contains("\"fehlt\""),
        "{missing:?}"
    );
}

#[test]
fn a_directory_with_mistakes_reports_file_path_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probe.yaml"),
        VALID.replace("    to: entschieden\n", "    to: nirgends\n"),
    )
    .unwrap();
    let errors = load_dir(dir.path(), &ROLES).err().unwrap();
    let line = errors[0].to_string();
    assert!(
        line.contains("probe.yaml: transitions[3].to: unknown state \"nirgends\""),
        "{line}"
    );
}

#[test]
fn the_engine_takes_only_allowed_actions() {
    let workflow = parse(VALID, "probe", &ROLES).unwrap();
    let definition = &workflow.definition;
    let worker = ["case_worker".to_owned()];
    let staff = Facts {
        by: Caller::Staff(&worker),
        ..Facts::default()
    };

    assert_eq!(
        definition.fire("eingegangen", "tanzen", &staff, None).err(),
        Some(Refusal::UnknownAction)
    );
    assert_eq!(
        definition.fire("rueckfrage", "fragen", &staff, Some("?")).err(),
        Some(Refusal::NotFromHere {
            state: "rueckfrage".into()
        })
    );
    assert_eq!(
        definition.fire("eingegangen", "fragen", &staff, None).err(),
        Some(Refusal::CommentRequired)
    );
    assert_eq!(
        definition.fire("eingegangen", "entscheiden", &staff, None).err(),
        Some(Refusal::Guard(Guard::DocumentsComplete))
    );
    let citizen = Facts {
        by: Caller::Citizen,
        documents_complete: true,
        ..Facts::default()
    };
    assert_eq!(
        definition
            .fire("eingegangen", "entscheiden", &citizen, None)
            .err(),
        Some(Refusal::NotAllowed)
    );
    let other = ["catalogue_admin".to_owned()];
    let outsider = Facts {
        by: Caller::Staff(&other),
        documents_complete: true,
        ..Facts::default()
    };
    assert_eq!(
        definition
            .fire("eingegangen", "entscheiden", &outsider, None)
            .err(),
        Some(Refusal::NotAllowed)
    );

    let step = definition
        .fire("eingegangen", "fragen", &staff, Some("Welche Farbe?"))
        .unwrap();
    assert_eq!(step.to.id, "rueckfrage");
    let step = definition
        .fire(
            "rueckfrage",
            "antworten",
            &Facts {
                by: Caller::Citizen,
                ..Facts::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(step.to.id, "eingegangen");
    assert_eq!(
        step.effects.len(),
        1,
        "entering `eingegangen` starts the timer again"
    );

    let ready = Facts {
        by: Caller::Staff(&worker),
        documents_complete: true,
        ..Facts::default()
    };
    let actions: Vec<&str> = definition
        .available("eingegangen", &ready)
        .map(|t| t.action.as_str())
        .collect();
    assert_eq!(actions, ["fragen", "entscheiden"]);
}

#[test]
fn four_eyes_and_automatic_transitions_in_the_building_permit() {
    let shipped = load_shipped(&ROLES).unwrap();
    let permit = &shipped.get("bauantrag").unwrap().definition;
    let supervisor = ["supervisor".to_owned()];
    let author = Facts {
        by: Caller::Staff(&supervisor),
        caller_is_author: true,
        ..Facts::default()
    };
    assert_eq!(
        permit
            .fire("mitzeichnung", "zurueckweisen", &author, Some("Begründung fehlt"))
            .err(),
        Some(Refusal::NotAllowed),
        "the author cannot review their own decision"
    );
    let second = Facts {
        by: Caller::Staff(&supervisor),
        ..Facts::default()
    };
    assert_eq!(
        permit
            .fire("mitzeichnung", "zurueckweisen", &second, Some("Begründung fehlt"))
            .unwrap()
            .to
            .id,
        "fachpruefung"
    );

    assert!(
        permit.automatic("mitzeichnung", &Facts::default()).is_none(),
        "waits for the co-signature"
    );
    let cosigned = Facts {
        cosigned: true,
        ..Facts::default()
    };
    assert_eq!(
        permit.automatic("mitzeichnung", &cosigned).unwrap().to,
        "bescheid_zustellung"
    );

    let parking = &shipped.get("standard-pruefung").unwrap().definition;
    assert!(
        parking
            .automatic("zahlung_ausstehend", &Facts::default())
            .is_none(),
        "waits for the payment"
    );
    let paid = Facts {
        payment_settled: true,
        ..Facts::default()
    };
    assert_eq!(
        parking.automatic("zahlung_ausstehend", &paid).unwrap().to,
        "eingegangen"
    );
}

#[test]
fn a_recorded_version_reads_back_to_the_same_definition_and_hash() {
    let shipped = load_shipped(&ROLES).unwrap_or_else(|errors| panic!("{errors:#?}"));
    for workflow in shipped.iter() {
        let recorded = amtsweg_workflow::LoadedWorkflow::from_recorded(&workflow.canonical_json())
            .unwrap_or_else(|err| panic!("{}: {err}", workflow.definition.id));
        assert_eq!(recorded.sha256, workflow.sha256, "{}", workflow.definition.id);
        assert_eq!(recorded.canonical_json(), workflow.canonical_json());
    }
}
