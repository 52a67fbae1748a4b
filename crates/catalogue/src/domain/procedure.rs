//! A procedure (Verwaltungsleistung) as a city defines it in `procedures/*.yaml`.

use std::collections::BTreeMap;

use amtsweg_kernel::{Text, TrustLevel};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::booking::Booking;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    /// Slug, equal to the file name without `.yaml`.
    pub id: String,
    /// Raised whenever the content changes; applications pin the version they were made under.
    pub version: u32,
    /// Key of the federal service catalogue (LeiKa), 14 digits.
    pub leika_key: String,
    pub title: Text,
    pub description: Text,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub authority: Authority,
    pub unit: Unit,
    /// The weakest login with which the procedure may be used.
    pub trust_level: TrustLevel,
    /// Whether a statute orders the written form: the application is then submitted under the electronic
    /// substitute of § 3a (2) VwVfG — only after a login with the eID card (`trust_level: high`), whose assertion
    /// is kept in the case file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub written_form: bool,
    pub form: Form,
    #[serde(default)]
    pub documents: Vec<DocumentType>,
    /// Empty when the procedure is free of charge.
    #[serde(default)]
    pub fees: Vec<FeeRule>,
    pub payment: PaymentPolicy,
    /// How a fee the unit sets with the decision (`fee_cents` of a decision, e.g. a reduced fee for a rejection)
    /// is booked. Only with `payment: after_decision`; without it a decision cannot change the assessed fee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_fee: Option<DecisionFee>,
    /// Only where a statute orders it (§ 42a VwVfG): the approval is deemed granted when the unit has not decided
    /// within the period after the documents were complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_fiction: Option<ApprovalFiction>,
    pub processing: Processing,
    pub retention: Retention,
    /// Name of the workflow that processes applications of this procedure.
    pub workflow: String,
    /// Form fields (JSON Pointer) filled from the citizen's profile where they consented to share the attribute
    /// named (`given_name`, `family_name`, `date_of_birth`, `address.street`, …, `phone`, `email`) with this
    /// procedure or its authority. The applications module checks the names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prefill: BTreeMap<String, String>,
    /// The notice of legal remedies printed in decisions (remedy, body, form, period), where it differs from the
    /// default: an objection (Widerspruch) to the authority within one month of notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedies: Option<Text>,
    /// How a decision provided in the Postfach counts as notified (default: § 41 (2a) VwVfG).
    #[serde(default)]
    pub delivery: super::DeliveryRule,
}

/// The fiction of approval (§ 42a VwVfG) as a statute orders it for a procedure.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFiction {
    /// The statute that orders the fiction, e.g. `§ 6a Abs. 1 GewO`.
    pub statute: String,
    /// The period in months from complete documents (§ 42a (2) sentence 1: three unless the statute says
    /// otherwise); a last day on a weekend or holiday moves to the next working day.
    #[serde(default = "three")]
    pub months: u32,
    /// The unit may extend it once, with reasons, by at most this many months (§ 42a (2) sentence 3).
    #[serde(default = "three")]
    pub max_extension_months: u32,
    /// The unit is alerted this many days before the period ends.
    #[serde(default = "fourteen")]
    pub alert_days: u32,
}

fn three() -> u32 {
    3
}

fn fourteen() -> u32 {
    14
}

/// The booking line of a fee set with the decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionFee {
    pub description: Text,
    pub booking: Booking,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    pub name: Text,
    /// Amtlicher Gemeindeschlüssel, 8 digits.
    pub ags: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// Slug of the responsible organisational unit (Fachamt); staff roles are scoped to it.
    pub id: String,
    pub name: Text,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    /// JSON Schema (draft 2020-12) of the application payload.
    pub schema: serde_json::Value,
    /// The order in which a form shows the fields, with their labels.
    pub ui: Vec<UiHint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiHint {
    /// JSON Pointer of the field in the payload, e.g. `/fahrzeug/kennzeichen`.
    pub field: String,
    pub label: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget: Option<Widget>,
    /// Starts a step of the form here, with this heading (the portal groups the fields that follow under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Text>,
    /// Labels of an enumerated field's values, e.g. `selbst: { de: Ich selbst, en: Myself }` (else the values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, Text>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Widget {
    Text,
    Textarea,
    Number,
    Date,
    Email,
    Tel,
    Select,
    Radio,
    Checkbox,
    List,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentType {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Text,
    pub required: bool,
    pub media_types: Vec<String>,
    pub max_size_bytes: u64,
}

/// One line of a fee schedule. Amounts are euro cents.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum FeeRule {
    /// A fixed amount.
    Fixed {
        description: Text,
        amount_cents: i64,
        booking: Booking,
    },
    /// An amount per item counted in an integer field; the first `free_items` cost nothing.
    PerItem {
        description: Text,
        field: String,
        amount_cents: i64,
        #[serde(default)]
        free_items: u32,
        booking: Booking,
    },
    /// A percentage of a declared value (in euros), rounded to cents and kept within minimum and maximum.
    Percentage {
        description: Text,
        field: String,
        #[serde(serialize_with = "decimal_out")]
        percent: Decimal,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minimum_cents: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        maximum_cents: Option<i64>,
        #[serde(default)]
        rounding: Rounding,
        booking: Booking,
    },
    /// An amount chosen by the value of an enumerated field.
    ByValue {
        description: Text,
        field: String,
        amounts_cents: BTreeMap<String, i64>,
        booking: Booking,
    },
}

impl FeeRule {
    pub fn kind(&self) -> &'static str {
        match self {
            FeeRule::Fixed { .. } => "fixed",
            FeeRule::PerItem { .. } => "per_item",
            FeeRule::Percentage { .. } => "percentage",
            FeeRule::ByValue { .. } => "by_value",
        }
    }

    pub fn description(&self) -> &Text {
        match self {
            FeeRule::Fixed { description, .. }
            | FeeRule::PerItem { description, .. }
            | FeeRule::Percentage { description, .. }
            | FeeRule::ByValue { description, .. } => description,
        }
    }

    pub fn booking(&self) -> &Booking {
        match self {
            FeeRule::Fixed { booking, .. }
            | FeeRule::PerItem { booking, .. }
            | FeeRule::Percentage { booking, .. }
            | FeeRule::ByValue { booking, .. } => booking,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            FeeRule::Fixed { .. } => None,
            FeeRule::PerItem { field, .. }
            | FeeRule::Percentage { field, .. }
            | FeeRule::ByValue { field, .. } => Some(field),
        }
    }
}

/// Fee rules are tagged by `rule`. serde's internally tagged enums lose the path of an error inside the rule, so
/// the rule is read as a value first and its fields with their own path, e.g. `amounts_cents.einfach: …`.
impl<'de> Deserialize<'de> for FeeRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fixed {
            description: Text,
            amount_cents: i64,
            booking: Booking,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct PerItem {
            description: Text,
            field: String,
            amount_cents: i64,
            #[serde(default)]
            free_items: u32,
            booking: Booking,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Percentage {
            description: Text,
            field: String,
            #[serde(deserialize_with = "decimal")]
            percent: Decimal,
            #[serde(default)]
            minimum_cents: Option<i64>,
            #[serde(default)]
            maximum_cents: Option<i64>,
            #[serde(default)]
            rounding: Rounding,
            booking: Booking,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ByValue {
            description: Text,
            field: String,
            amounts_cents: BTreeMap<String, i64>,
            booking: Booking,
        }

        fn fields<T: serde::de::DeserializeOwned, E: Error>(value: serde_json::Value) -> Result<T, E> {
            serde_path_to_error::deserialize(value).map_err(|err| {
                let path = err.path().to_string();
                if path == "." {
                    E::custom(err.into_inner())
                } else {
                    E::custom(format!("{path}: {}", err.into_inner()))
                }
            })
        }

        let mut value = serde_json::Value::deserialize(deserializer)?;
        let map = value
            .as_object_mut()
            .ok_or_else(|| D::Error::custom("a fee rule must be a mapping"))?;
        let rule = match map.remove("rule") {
            Some(serde_json::Value::String(rule)) => rule,
            Some(_) => return Err(D::Error::custom("`rule` must be a string")),
            None => return Err(D::Error::missing_field("rule")),
        };
        Ok(match rule.as_str() {
            "fixed" => {
                let Fixed {
                    description,
                    amount_cents,
                    booking,
                } = fields(value)?;
                FeeRule::Fixed {
                    description,
                    amount_cents,
                    booking,
                }
            }
            "per_item" => {
                let PerItem {
                    description,
                    field,
                    amount_cents,
                    free_items,
                    booking,
                } = fields(value)?;
                FeeRule::PerItem {
                    description,
                    field,
                    amount_cents,
                    free_items,
                    booking,
                }
            }
            "percentage" => {
                let Percentage {
                    description,
                    field,
                    percent,
                    minimum_cents,
                    maximum_cents,
                    rounding,
                    booking,
                } = fields(value)?;
                FeeRule::Percentage {
                    description,
                    field,
                    percent,
                    minimum_cents,
                    maximum_cents,
                    rounding,
                    booking,
                }
            }
            "by_value" => {
                let ByValue {
                    description,
                    field,
                    amounts_cents,
                    booking,
                } = fields(value)?;
                FeeRule::ByValue {
                    description,
                    field,
                    amounts_cents,
                    booking,
                }
            }
            other => {
                return Err(D::Error::unknown_variant(
                    other,
                    &["fixed", "per_item", "percentage", "by_value"],
                ));
            }
        })
    }
}

/// How a computed amount is rounded to whole cents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Kaufmännisch: halves away from zero.
    #[default]
    HalfUp,
    /// Halves to the even cent.
    HalfEven,
    Up,
    Down,
}

/// When a fee is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentPolicy {
    /// Free of charge.
    None,
    /// Paid online before the application is processed: submitting assigns the case number and requests the
    /// payment; the case enters the queue once the payment is settled.
    BeforeProcessing,
    /// Invoiced with the decision.
    AfterDecision,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processing {
    /// Target processing time in calendar days (a service norm, not a statutory period).
    pub target_days: u32,
    /// Who processes the applications: case workers in the unit's queue (`staff`, the default), a specialised
    /// procedure through the integration API (`client`, no staff queue shows them), or `both`.
    #[serde(default)]
    pub by: ProcessedBy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessedBy {
    #[default]
    Staff,
    Client,
    Both,
}

impl ProcessedBy {
    /// Whether the unit's case workers see the cases in their queues.
    pub fn staff(self) -> bool {
        matches!(self, ProcessedBy::Staff | ProcessedBy::Both)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Years the file is kept after the case is closed.
    pub years: u32,
}

/// Decimals may be written as YAML numbers (`0.5`) or strings (`"0.5"`); both parse exactly.
fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(serde_json::Number),
    }
    let text = match Raw::deserialize(deserializer)? {
        Raw::Text(text) => text,
        Raw::Number(number) => number.to_string(),
    };
    text.trim()
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a decimal number")))
}

fn decimal_out<S: serde::Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.normalize().to_string())
}
