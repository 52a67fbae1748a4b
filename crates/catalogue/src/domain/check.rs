//! What makes a procedure definition well-formed beyond its shape: identifiers in their official formats, a form
//! schema that compiles and agrees with its UI hints and fee rules, booking data ePayBL accepts, a payment policy
//! that fits the fees. Every problem is reported with the path inside the file, not just the first one.

use std::collections::HashSet;

use amtsweg_kernel::Text;
use rust_decimal::Decimal;
use serde_json::Value;

use super::booking::MAX_AMOUNT_CENTS;
use super::form::{self, CompiledForm, DRAFT_2020_12};
use super::procedure::{FeeRule, PaymentPolicy, Procedure};

/// One problem in a procedure file: `path` inside the document (e.g. `fees[0].booking.buchungstext`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub reason: String,
}

/// FIT-Connect's limit for one attachment.
pub const MAX_DOCUMENT_BYTES: u64 = 500 * 1024 * 1024;

#[derive(Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Issue {
            path: path.into(),
            reason: reason.into(),
        });
    }
}

pub fn is_slug(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value.split('-').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn digits(value: &str, count: usize) -> bool {
    value.len() == count && value.bytes().all(|b| b.is_ascii_digit())
}

fn check_text(issues: &mut Issues, path: &str, text: &Text) {
    if text.de.trim().is_empty() {
        issues.add(format!("{path}.de"), "must not be empty");
    }
    if text.en.trim().is_empty() {
        issues.add(format!("{path}.en"), "must not be empty");
    }
}

/// Checks a parsed procedure from the file `file_stem`; on success returns its compiled form.
pub fn check(procedure: &Procedure, file_stem: &str) -> Result<CompiledForm, Vec<Issue>> {
    let mut issues = Issues::default();
    if !is_slug(&procedure.id) {
        issues.add(
            "id",
            "must be a slug: lower-case letters and digits joined by single hyphens, at most 64",
        );
    } else if procedure.id != file_stem {
        issues.add(
            "id",
            format!("`{}` must match the file name `{file_stem}`", procedure.id),
        );
    }
    if procedure.version == 0 {
        issues.add("version", "must be 1 or higher");
    }
    if !digits(&procedure.leika_key, 14) {
        issues.add(
            "leika_key",
            format!("`{}` is not a LeiKa key (14 digits)", procedure.leika_key),
        );
    }
    check_text(&mut issues, "title", &procedure.title);
    check_text(&mut issues, "description", &procedure.description);
    for (i, keyword) in procedure.keywords.iter().enumerate() {
        if keyword.trim().is_empty() {
            issues.add(format!("keywords[{i}]"), "must not be empty");
        }
    }
    check_text(&mut issues, "authority.name", &procedure.authority.name);
    if !digits(&procedure.authority.ags, 8) {
        issues.add(
            "authority.ags",
            format!(
                "`{}` is not an official municipality key (AGS, 8 digits)",
                procedure.authority.ags
            ),
        );
    }
    if !is_slug(&procedure.unit.id) {
        issues.add("unit.id", "must be a slug");
    }
    check_text(&mut issues, "unit.name", &procedure.unit.name);

    let compiled = check_form(&mut issues, procedure);
    check_documents(&mut issues, procedure);
    check_fees(&mut issues, procedure);

    if procedure.processing.target_days == 0 || procedure.processing.target_days > 3650 {
        issues.add("processing.target_days", "must be between 1 and 3650 days");
    }
    if procedure.retention.years == 0 || procedure.retention.years > 200 {
        issues.add("retention.years", "must be between 1 and 200 years");
    }
    if !is_slug(&procedure.workflow) {
        issues.add("workflow", "must name a workflow by its slug");
    }
    if let Some(remedies) = &procedure.remedies {
        check_text(&mut issues, "remedies", remedies);
    }
    if let Some(rule) = &procedure.decision_fee {
        check_text(&mut issues, "decision_fee.description", &rule.description);
        for (field, reason) in rule.booking.violations() {
            issues.add(format!("decision_fee.booking.{field}"), reason);
        }
        if procedure.payment != PaymentPolicy::AfterDecision {
            issues.add(
                "decision_fee",
                "a fee set with the decision needs `payment: after_decision`",
            );
        }
    }
    if procedure
        .delivery
        .days
        .is_some_and(|days| !(1..=30).contains(&days))
    {
        issues.add("delivery.days", "must be 1 to 30 days");
    }
    if let Some(fiction) = &procedure.approval_fiction {
        if fiction.statute.trim().is_empty() {
            issues.add(
                "approval_fiction.statute",
                "must name the statute that orders the fiction of approval",
            );
        }
        if !(1..=24).contains(&fiction.months) {
            issues.add("approval_fiction.months", "must be 1 to 24 months");
        }
        if !(1..=fiction.months.max(1)).contains(&fiction.max_extension_months) {
            issues.add(
                "approval_fiction.max_extension_months",
                "must be at least 1 and at most the period itself",
            );
        }
        if !(1..=60).contains(&fiction.alert_days) {
            issues.add("approval_fiction.alert_days", "must be 1 to 60 days");
        }
    }
    if procedure.written_form && procedure.trust_level != amtsweg_kernel::TrustLevel::High {
        issues.add(
            "written_form",
            "the electronic substitute of the written form (§ 3a (2) VwVfG) is the eID: it needs `trust_level: high`",
        );
    }

    match compiled {
        Some(compiled) if issues.0.is_empty() => Ok(compiled),
        _ => Err(issues.0),
    }
}

fn check_form(issues: &mut Issues, procedure: &Procedure) -> Option<CompiledForm> {
    let schema = &procedure.form.schema;
    if !schema.is_object() {
        issues.add("form.schema", "must be a JSON Schema object");
        return None;
    }
    match schema.get("$schema") {
        None => {}
        Some(Value::String(dialect)) if dialect == DRAFT_2020_12 => {}
        Some(other) => issues.add(
            "form.schema.$schema",
            format!("must be `{DRAFT_2020_12}`, is {other}"),
        ),
    }
    if schema.get("type") != Some(&Value::String("object".into())) {
        issues.add("form.schema.type", "the application payload must be an `object`");
    }
    let compiled = match CompiledForm::compile(schema) {
        Ok(compiled) => Some(compiled),
        Err(reason) => {
            issues.add(
                "form.schema",
                format!("is not a valid JSON Schema 2020-12: {reason}"),
            );
            None
        }
    };

    let mut seen = HashSet::new();
    for (i, hint) in procedure.form.ui.iter().enumerate() {
        let path = format!("form.ui[{i}]");
        check_text(issues, &format!("{path}.label"), &hint.label);
        if let Some(help) = &hint.help {
            check_text(issues, &format!("{path}.help"), help);
        }
        if let Some(step) = &hint.step {
            check_text(issues, &format!("{path}.step"), step);
        }
        let property = form::property_schema(schema, &hint.field);
        for (value, label) in &hint.options {
            check_text(issues, &format!("{path}.options.{value}"), label);
            let allowed = property
                .and_then(|p| p.get("enum"))
                .and_then(serde_json::Value::as_array)
                .is_some_and(|values| values.iter().any(|v| v.as_str() == Some(value.as_str())));
            if !allowed {
                issues.add(
                    format!("{path}.options.{value}"),
                    format!("`{value}` is not one of the values of `{}`", hint.field),
                );
            }
        }
        if property.is_none() {
            issues.add(
                format!("{path}.field"),
                format!("`{}` is not a property of the form schema", hint.field),
            );
        } else if !seen.insert(hint.field.as_str()) {
            issues.add(
                format!("{path}.field"),
                format!("`{}` has a UI hint already", hint.field),
            );
        }
    }
    for leaf in form::leaf_pointers(schema) {
        if !seen.contains(leaf.as_str()) {
            issues.add(
                "form.ui",
                format!("the field `{leaf}` has no UI hint, so no form could show it"),
            );
        }
    }
    compiled
}

fn check_documents(issues: &mut Issues, procedure: &Procedure) {
    let mut kinds = HashSet::new();
    for (i, document) in procedure.documents.iter().enumerate() {
        let path = format!("documents[{i}]");
        if !is_slug(&document.kind) {
            issues.add(format!("{path}.type"), "must be a slug");
        } else if !kinds.insert(document.kind.as_str()) {
            issues.add(
                format!("{path}.type"),
                format!("`{}` is listed twice", document.kind),
            );
        }
        check_text(issues, &format!("{path}.name"), &document.name);
        if document.media_types.is_empty() {
            issues.add(format!("{path}.media_types"), "must list at least one media type");
        }
        for (j, media_type) in document.media_types.iter().enumerate() {
            let well_formed = media_type.split_once('/').is_some_and(|(kind, sub)| {
                !kind.is_empty() && !sub.is_empty() && !media_type.contains(char::is_whitespace)
            });
            if !well_formed {
                issues.add(
                    format!("{path}.media_types[{j}]"),
                    format!("`{media_type}` is not a media type"),
                );
            }
        }
        if document.max_size_bytes == 0 || document.max_size_bytes > MAX_DOCUMENT_BYTES {
            issues.add(
                format!("{path}.max_size_bytes"),
                format!("must be between 1 and {MAX_DOCUMENT_BYTES}"),
            );
        }
    }
}

fn check_amount(issues: &mut Issues, path: String, amount: i64) {
    if amount <= 0 || amount > MAX_AMOUNT_CENTS {
        issues.add(path, format!("must be between 1 and {MAX_AMOUNT_CENTS} cents"));
    }
}

fn check_fees(issues: &mut Issues, procedure: &Procedure) {
    let schema = &procedure.form.schema;
    for (i, rule) in procedure.fees.iter().enumerate() {
        let path = format!("fees[{i}]");
        check_text(issues, &format!("{path}.description"), rule.description());
        for (field, reason) in rule.booking().violations() {
            issues.add(format!("{path}.booking.{field}"), reason);
        }
        let target = rule
            .field()
            .map(|field| (field, form::property_schema(schema, field)));
        if let Some((field, None)) = target {
            issues.add(
                format!("{path}.field"),
                format!("`{field}` is not a property of the form schema"),
            );
        }
        let types = target
            .and_then(|(_, s)| s)
            .map(form::declared_types)
            .unwrap_or_default();
        match rule {
            FeeRule::Fixed { amount_cents, .. } => {
                check_amount(issues, format!("{path}.amount_cents"), *amount_cents)
            }
            FeeRule::PerItem { amount_cents, .. } => {
                check_amount(issues, format!("{path}.amount_cents"), *amount_cents);
                if target.is_some_and(|(_, s)| s.is_some()) && types != ["integer"] {
                    issues.add(
                        format!("{path}.field"),
                        "must name an `integer` property to count items",
                    );
                }
            }
            FeeRule::Percentage {
                percent,
                minimum_cents,
                maximum_cents,
                ..
            } => {
                if *percent <= Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                    issues.add(
                        format!("{path}.percent"),
                        "must be greater than 0 and at most 100",
                    );
                }
                if let Some(min) = minimum_cents {
                    check_amount(issues, format!("{path}.minimum_cents"), *min);
                }
                if let Some(max) = maximum_cents {
                    check_amount(issues, format!("{path}.maximum_cents"), *max);
                }
                if let (Some(min), Some(max)) = (minimum_cents, maximum_cents)
                    && min > max
                {
                    issues.add(format!("{path}.minimum_cents"), "must not exceed maximum_cents");
                }
                let numeric = !types.is_empty() && types.iter().all(|t| matches!(*t, "number" | "integer"));
                if target.is_some_and(|(_, s)| s.is_some()) && !numeric {
                    issues.add(
                        format!("{path}.field"),
                        "must name a `number` property holding the declared value",
                    );
                }
            }
            FeeRule::ByValue { amounts_cents, .. } => {
                for (value, amount) in amounts_cents {
                    check_amount(issues, format!("{path}.amounts_cents.{value}"), *amount);
                }
                if let Some((_, Some(property))) = target {
                    let options: Vec<&str> = property
                        .get("enum")
                        .and_then(Value::as_array)
                        .map(|values| values.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    if options.is_empty() {
                        issues.add(
                            format!("{path}.field"),
                            "must name a string property with an `enum`",
                        );
                    }
                    for option in &options {
                        if !amounts_cents.contains_key(*option) {
                            issues.add(
                                format!("{path}.amounts_cents"),
                                format!("names no amount for `{option}`"),
                            );
                        }
                    }
                    for value in amounts_cents.keys() {
                        if !options.is_empty() && !options.contains(&value.as_str()) {
                            issues.add(
                                format!("{path}.amounts_cents.{value}"),
                                "is not one of the field's options",
                            );
                        }
                    }
                }
            }
        }
    }
    match (procedure.fees.is_empty(), procedure.payment) {
        (true, PaymentPolicy::BeforeProcessing | PaymentPolicy::AfterDecision) => {
            issues.add(
                "payment",
                "a procedure without fees cannot require payment; use `none`",
            );
        }
        (false, PaymentPolicy::None) => {
            issues.add(
                "payment",
                "a procedure with fees needs `before_processing` or `after_decision`",
            );
        }
        _ => {}
    }
}
