//! Each kind of mistake in a procedure file gets its own clear message naming the path inside the file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

use std::path::Path;

use amtsweg_catalogue::loader;

fn shipped(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../procedures")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(path).unwrap()
}

/// The problems of `text` (a procedure file named `stem.yaml`) as `path: reason` lines.
fn problems(text: &str, stem: &str) -> Vec<String> {
    match loader::parse(text, stem) {
        Ok(_) => Vec::new(),
        Err(issues) => issues
            .into_iter()
            .map(|(path, reason)| format!("{path}: {reason}"))
            .collect(),
    }
}

fn assert_reported(text: &str, stem: &str, expected: &str) {
    let found = problems(text, stem);
    assert!(
        found.iter().any(|p| p.contains(expected)),
        "expected `{expected}` among {found:#?}"
    );
}

#[test]
fn the_shipped_catalogue_is_valid() {
    let catalogue =
        loader::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../procedures")).unwrap();
    assert!(catalogue.len() >= 5);
}

#[test]
fn yaml_syntax_errors_name_line_and_column() {
    assert_reported("id: x\ntitle: {de: \"a\"\nversion: 1\n", "x", "line 3 column");
}

#[test]
fn unknown_and_missing_fields_are_named() {
    let text = shipped("kita-platz");
    assert_reported(
        &text.replace("retention:", "aufbewahrung:"),
        "kita-platz",
        "unknown field `aufbewahrung`",
    );
    assert_reported(
        &text.replace("workflow: platzvergabe\n", ""),
        "kita-platz",
        "missing field `workflow`",
    );
    assert_reported(
        &text.replace("  target_days: 60", "  target_days: sechzig"),
        "kita-platz",
        "processing.target_days: invalid type",
    );
    assert_reported(
        &text.replace("trust_level: basic", "trust_level: mittel"),
        "kita-platz",
        "trust_level: unknown variant `mittel`",
    );
    assert_reported(
        &text.replace("  en: Request a daycare place\n", ""),
        "kita-platz",
        "title: missing field `en`",
    );
}

#[test]
fn identifiers_must_have_their_official_format() {
    let text = shipped("kita-platz");
    assert_reported(&text, "kita", "id: `kita-platz` must match the file name `kita`");
    assert_reported(
        &text.replace("id: kita-platz", "id: Kita_Platz"),
        "Kita_Platz",
        "id: must be a slug",
    );
    assert_reported(
        &text.replace("\"99072010001000\"", "\"9907\""),
        "kita-platz",
        "leika_key: `9907` is not a LeiKa key",
    );
    assert_reported(
        &text.replace("\"14713000\"", "\"1471300A\""),
        "kita-platz",
        "authority.ags: `1471300A` is not an official municipality key",
    );
    assert_reported(
        &text.replace("version: 2", "version: 0"),
        "kita-platz",
        "version: must be 1 or higher",
    );
    assert_reported(
        &text.replace("workflow: platzvergabe", "workflow: Platz Vergabe"),
        "kita-platz",
        "workflow: must name a workflow",
    );
}

#[test]
fn the_form_schema_must_be_valid_json_schema() {
    let text = shipped("kita-platz");
    assert_reported(
        &text.replace("type: integer", "type: ganzzahl"),
        "kita-platz",
        "form.schema: is not a valid JSON Schema 2020-12",
    );
    assert_reported(
        &text.replace(
            "https://json-schema.org/draft/2020-12/schema",
            "http://json-schema.org/draft-07/schema#",
        ),
        "kita-platz",
        "form.schema.$schema: must be `https://json-schema.org/draft/2020-12/schema`",
    );
}

#[test]
fn option_labels_name_values_of_the_field() {
    let text = shipped("bewohnerparkausweis");
    assert_reported(
        &text.replace("        leasing: { de:", "        mietwagen: { de:"),
        "bewohnerparkausweis",
        "form.ui[7].options.mietwagen: `mietwagen` is not one of the values of `/fahrzeug_halter`",
    );
    assert_reported(
        &text.replace(
            "selbst: { de: Ich selbst, en: Myself }",
            "selbst: { de: Ich selbst, en: '' }",
        ),
        "bewohnerparkausweis",
        "form.ui[7].options.selbst.en: must not be empty",
    );
}

#[test]
fn ui_hints_and_schema_must_agree() {
    let text = shipped("kita-platz");
    assert_reported(
        &text.replace("- field: /foerderbedarf", "- field: /foerderung"),
        "kita-platz",
        "form.ui[10].field: `/foerderung` is not a property of the form schema",
    );
    assert_reported(
        &text.replace("- field: /foerderbedarf", "- field: /foerderung"),
        "kita-platz",
        "form.ui: the field `/foerderbedarf` has no UI hint",
    );
    assert_reported(
        &text.replace(
            "      label: { de: Vorname des Kindes, en: Child's first name }",
            "      label: { de: '', en: Child's first name }",
        ),
        "kita-platz",
        "form.ui[0].label.de: must not be empty",
    );
}

#[test]
fn documents_need_media_types_and_sane_sizes() {
    let text = shipped("kita-platz");
    assert_reported(
        &text.replace("[application/pdf, image/jpeg, image/png]", "[pdf]"),
        "kita-platz",
        "documents[0].media_types[0]: `pdf` is not a media type",
    );
    assert_reported(
        &text.replace("max_size_bytes: 10485760", "max_size_bytes: 0"),
        "kita-platz",
        "documents[0].max_size_bytes: must be between 1 and",
    );
}

#[test]
fn fee_rules_must_fit_the_form() {
    let parking = shipped("bewohnerparkausweis");
    assert_reported(
        &parking.replace("field: /laufzeit_jahre", "field: /jahre"),
        "bewohnerparkausweis",
        "fees[0].field: `/jahre` is not a property of the form schema",
    );
    assert_reported(
        &parking.replace("field: /laufzeit_jahre", "field: /kennzeichen"),
        "bewohnerparkausweis",
        "fees[0].field: must name an `integer` property",
    );
    assert_reported(
        &parking.replace("amount_cents: 3070", "amount_cents: -5"),
        "bewohnerparkausweis",
        "fees[0].amount_cents: must be between 1 and",
    );
    assert_reported(
        &parking.replace("rule: per_item", "rule: pauschal"),
        "bewohnerparkausweis",
        "fees[0]: unknown variant `pauschal`",
    );

    let certificate = shipped("meldebescheinigung");
    assert_reported(
        &certificate.replace("      erweitert: 1000\n", ""),
        "meldebescheinigung",
        "fees[0].amounts_cents: names no amount for `erweitert`",
    );
    assert_reported(
        &certificate.replace("erweitert: 1000", "erweitert: 1000\n      premium: 2000"),
        "meldebescheinigung",
        "fees[0].amounts_cents.premium: is not one of the field's options",
    );

    let building = shipped("baugenehmigung");
    assert_reported(
        &building.replace("percent: 0.6", "percent: 150"),
        "baugenehmigung",
        "fees[0].percent: must be greater than 0 and at most 100",
    );
    assert_reported(
        &building.replace("minimum_cents: 10000", "minimum_cents: 9000000"),
        "baugenehmigung",
        "fees[0].minimum_cents: must not exceed maximum_cents",
    );
    assert_reported(
        &building.replace("field: /baukosten_euro", "field: /vorhaben/art"),
        "baugenehmigung",
        "fees[0].field: must name a `number` property",
    );
    assert_reported(
        &building.replace("trust_level: high", "trust_level: substantial"),
        "baugenehmigung",
        "written_form: the electronic substitute of the written form (§ 3a (2) VwVfG) is the eID",
    );
    assert_reported(
        &building.replace(
            "workflow: bauantrag",
            "workflow: bauantrag\napproval_fiction:\n  statute: \" \"\n  months: 0",
        ),
        "baugenehmigung",
        "approval_fiction.statute: must name the statute",
    );
    assert_reported(
        &building.replace(
            "workflow: bauantrag",
            "workflow: bauantrag\napproval_fiction:\n  statute: § 1 X\n  months: 0",
        ),
        "baugenehmigung",
        "approval_fiction.months: must be 1 to 24 months",
    );
    assert_reported(
        &building.replace("payment: after_decision", "payment: before_processing"),
        "baugenehmigung",
        "decision_fee: a fee set with the decision needs `payment: after_decision`",
    );
    assert_reported(
        &building.replace("BAUGENEHMIGUNG GEBUEHR LT. BESCHEID", "Gebühr laut Bescheid"),
        "baugenehmigung",
        "decision_fee.booking.buchungstext: contains",
    );
}

#[test]
fn booking_data_must_satisfy_epaybl() {
    let text = shipped("gewerbeanmeldung");
    assert_reported(
        &text.replace("buchungstext: GEWERBEANMELDUNG", "buchungstext: Gewerbeanmeldung"),
        "gewerbeanmeldung",
        "fees[0].booking.buchungstext: contains `e`; ePayBL allows only",
    );
    assert_reported(
        &text.replace(
            "buchungstext: GEWERBEANMELDUNG",
            &format!("buchungstext: {}", "A".repeat(121)),
        ),
        "gewerbeanmeldung",
        "fees[0].booking.buchungstext: must be 1 to 120 characters long for ePayBL, is 121",
    );
    assert_reported(
        &text.replace("\"1.2.2.4.01\"", "\"1.2.2.4.01.77\""),
        "gewerbeanmeldung",
        "fees[0].booking.haushaltsstelle: must be 1 to 10 characters",
    );
}

#[test]
fn payment_policy_must_fit_the_fees() {
    assert_reported(
        &shipped("gewerbeanmeldung").replace("payment: before_processing", "payment: none"),
        "gewerbeanmeldung",
        "payment: a procedure with fees needs",
    );
    assert_reported(
        &shipped("kita-platz").replace("payment: none", "payment: after_decision"),
        "kita-platz",
        "payment: a procedure without fees cannot require payment",
    );
}

#[test]
fn a_directory_reports_every_broken_file_and_duplicate_ids() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kita-platz.yaml"), shipped("kita-platz")).unwrap();
    std::fs::write(dir.path().join("kita-platz.yml"), shipped("kita-platz")).unwrap();
    std::fs::write(dir.path().join("leer.yaml"), "").unwrap();
    std::fs::write(dir.path().join("notizen.txt"), "not a procedure").unwrap();
    let errors = loader::load_dir(dir.path()).unwrap_err();
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("kita-platz.yml: id: `kita-platz` is already defined in")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("leer.yaml")), "{lines:#?}");

    let missing = loader::load_dir(&dir.path().join("gibt-es-nicht")).unwrap_err();
    assert!(
        missing[0]
            .to_string()
            .contains("cannot read the catalogue directory")
    );
}
