//! What the citizen sees of an application.

use amtsweg_kernel::{FieldError, Lang, Timestamp};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::service::AttachmentRow;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApplicationView {
    pub id: String,
    pub procedure_id: String,
    /// The procedure version the application is made under.
    pub procedure_version: u32,
    /// The organisation the application is made for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// `draft` or `submitted`.
    pub status: String,
    /// The final case number (Aktenzeichen), given at submission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_number: Option<String>,
    /// The form's data.
    #[schema(value_type = Object)]
    pub data: Value,
    pub attachments: Vec<AttachmentView>,
    /// Where the case stands, once submitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_status: Option<BusinessStatus>,
    /// The fee assessed at submission, in euro cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_cents: Option<i64>,
    /// Raised with every change.
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The fields filled from the profile when the draft was made, and under which consent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prefilled: Vec<PrefilledField>,
    /// After a change of a draft: what the form still finds wrong (a draft may be incomplete).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// A field filled from the citizen's profile.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct PrefilledField {
    /// The form field (JSON Pointer).
    pub pointer: String,
    /// The profile attribute, e.g. `family_name`.
    pub attribute: String,
    /// The consent under which it was shared.
    pub consent_id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: String,
    /// The catalogue's document type.
    pub document_type: String,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub created_at: Timestamp,
}

impl AttachmentView {
    pub(crate) fn of(row: &AttachmentRow) -> AttachmentView {
        AttachmentView {
            id: row.id.clone(),
            document_type: row.document_type.clone(),
            name: row.name.clone(),
            media_type: row.media_type.clone(),
            size: row.size,
            sha256: row.sha256.clone(),
            created_at: row.created_at,
        }
    }
}

/// The citizen-facing status of a submitted application.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BusinessStatus {
    /// The workflow state.
    pub state: String,
    /// Its label in the request's language.
    pub label: String,
    /// What the citizen must do next, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    pub terminal: bool,
    /// `citizen`, `payment` or `delivery` while the case waits for one of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<&'static str>,
    /// The last day of the running processing deadline (Europe/Berlin), if one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_deadline: Option<String>,
    /// The last day of the procedure's service norm (its target processing time in calendar days, Europe/Berlin);
    /// it moves back by the days the case waits for the citizen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_norm_due: Option<String>,
    /// The service-norm clock stands while the case waits for the citizen.
    pub service_norm_paused: bool,
    /// Where a statute orders a fiction of approval (§ 42a VwVfG): the period, an extension with its reasons, and
    /// whether the approval is deemed granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_fiction: Option<crate::fiction::FictionView>,
    /// The steps so far, oldest first (on the single application only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineStep>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineStep {
    pub at: Timestamp,
    pub state: String,
    pub label: String,
    /// A comment the workflow marks as public; never internal notes or staff names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A problem of a draft that does not stop saving it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Warning {
    pub pointer: Option<String>,
    pub code: String,
    pub message: String,
}

impl Warning {
    pub(crate) fn of(error: &FieldError, lang: Lang) -> Warning {
        Warning {
            pointer: error.pointer.clone(),
            code: error.code.to_string(),
            message: error.message.get(lang).to_owned(),
        }
    }
}
