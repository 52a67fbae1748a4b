//! The signed event feed: every event a client receives — in the feed, in a webhook body, on NATS — carries a
//! detached JWS (RFC 7515 appendix F) over its canonical JSON (RFC 8785) without the `jws` member, made with the
//! seal key set published at `/.well-known/seal-keys.json` (retired keys stay there), so that a receiver can prove
//! later what Amtsweg said and when.

use amtsweg_events::CloudEvent;
use amtsweg_kernel::jcs;
use amtsweg_seal::{SealError, Sealer};
use serde::Serialize;
use utoipa::ToSchema;

/// A CloudEvent with its signature.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignedEvent {
    #[serde(flatten)]
    pub event: CloudEvent,
    /// Compact JWS with a detached payload (`header..signature`, EdDSA): the payload is the RFC 8785 canonical
    /// JSON of this event without `jws`. The header's `kid` names the key in `/.well-known/seal-keys.json`.
    pub jws: String,
}

/// Signs an event.
pub fn sign(sealer: &dyn Sealer, event: CloudEvent) -> Result<SignedEvent, SealError> {
    let value = serde_json::to_value(&event)
        .map_err(|err| SealError::Db(amtsweg_db::DbError::Task(err.to_string())))?;
    let jws = sealer.sign_detached(jcs::canonicalize(&value).as_bytes())?;
    Ok(SignedEvent { event, jws })
}
