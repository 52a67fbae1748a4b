//! Inbound mail: the central scan office uploads scanned letters (PDF and what the envelope said), and other
//! authorities' systems send documents through the API. Each item is routed — by a case number found in its
//! reference or in its text layer, then by the procedure or unit named — or lands in the triage inbox, where the
//! scan office (or the unit it went to) assigns it. Every routing decision is audited; an item routed to a case
//! shows in the case's timeline (through [`crate::events::INBOUND_ROUTED`]).

use std::collections::BTreeSet;
use std::io::Read;

use amtsweg_audit::{Actor, ActorKind};
use amtsweg_auth::{StaffAuth, StaffOrClient, Units};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{FieldError, Text, Timestamp};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cases::CaseInfo;
use crate::postfach::staff_units;
use crate::schema::inbound_items;
use crate::{Mailroom, MailroomError, events};

/// The staff role of the central scan office.
pub const SCAN_OFFICE: &str = "scan_office";
/// The client scope of other authorities' systems that send documents.
pub const INBOUND_SCOPE: &str = "mailroom:inbound";

/// Scanned letters are PDFs.
pub(crate) const INBOUND: amtsweg_files::UploadPolicy = amtsweg_files::UploadPolicy {
    allowed: &["application/pdf"],
    owner_module: "mailroom",
    expires: false,
};

/// An inbound item.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = inbound_items)]
pub struct InboundItem {
    pub id: String,
    /// `scan` (the scan office) or `authority` (another authority's system).
    pub channel: String,
    /// Who uploaded it (a staff account or an API client).
    pub submitted_by: String,
    pub sender: String,
    /// The day it arrived (`YYYY-MM-DD`).
    pub received_on: String,
    pub reference: Option<String>,
    pub page_count: Option<i32>,
    #[serde(skip)]
    pub file_id: String,
    #[serde(skip)]
    pub holder: String,
    pub name: String,
    pub sha256: String,
    /// `routed` or `triage`.
    pub state: String,
    /// How it was routed: `case_number_reference`, `case_number_text`, `procedure`, `unit` or `staff`.
    pub routed_by: Option<String>,
    pub unit_id: Option<String>,
    /// The application it belongs to.
    #[serde(rename = "application_id")]
    pub case_ref: Option<String>,
    pub case_number: Option<String>,
    pub created_at: Timestamp,
    pub routed_at: Option<Timestamp>,
}

/// What came with an upload besides the PDF.
#[derive(Debug, Clone, Default)]
pub struct InboundMeta {
    pub sender: String,
    pub received_on: String,
    pub reference: Option<String>,
    pub page_count: Option<String>,
    pub procedure_id: Option<String>,
    pub unit_id: Option<String>,
}

impl InboundMeta {
    /// From the text fields of the multipart form.
    pub fn from_fields(fields: Vec<(String, String)>) -> InboundMeta {
        let mut meta = InboundMeta::default();
        for (name, value) in fields {
            let value = value.trim().to_owned();
            match name.as_str() {
                "sender" => meta.sender = value,
                "received_on" => meta.received_on = value,
                "reference" if !value.is_empty() => meta.reference = Some(value),
                "page_count" if !value.is_empty() => meta.page_count = Some(value),
                "procedure_id" if !value.is_empty() => meta.procedure_id = Some(value),
                "unit_id" if !value.is_empty() => meta.unit_id = Some(value),
                _ => {}
            }
        }
        meta
    }
}

/// Where staff send an item.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// To the case of this application (and its unit)…
    #[serde(default)]
    pub application_id: Option<String>,
    /// …or to a unit of the catalogue.
    #[serde(default)]
    pub unit_id: Option<String>,
}

/// Which items a list shows.
#[derive(Debug, Clone, Default)]
pub struct InboundFilter {
    /// `triage` or `routed`.
    pub state: Option<String>,
    pub unit_id: Option<String>,
}

/// Who uploads.
pub struct Uploader {
    pub id: String,
    pub channel: &'static str,
    pub actor: Actor,
}

impl Uploader {
    /// The scan office (role `scan_office`) or a client with the scope `mailroom:inbound`.
    pub fn of(auth: &StaffOrClient) -> Result<Uploader, MailroomError> {
        match auth {
            StaffOrClient::Staff(staff) if is_scan_office(staff) => Ok(Uploader {
                id: staff.account_id.clone(),
                channel: "scan",
                actor: Actor::new(ActorKind::Staff, &staff.account_id, staff.address.clone()),
            }),
            StaffOrClient::Staff(_) => Err(MailroomError::Forbidden(Text::fixed(
                "Eingänge erfasst die zentrale Scanstelle (Rolle scan_office).",
                "Inbound mail is recorded by the central scan office (role scan_office).",
            ))),
            StaffOrClient::Client(client) => {
                client.require_scope(INBOUND_SCOPE)?;
                Ok(Uploader {
                    id: client.client_id.clone(),
                    channel: "authority",
                    actor: Actor::client(&client.client_id, client.address.clone()),
                })
            }
        }
    }
}

fn is_scan_office(auth: &StaffAuth) -> bool {
    matches!(auth.units_for(SCAN_OFFICE), Units::All)
}

fn not_found() -> MailroomError {
    MailroomError::NotFound(
        "inbound_item_not_found",
        Text::fixed("Eingang nicht gefunden.", "Inbound item not found."),
    )
}

/// The text a PDF shows in literal strings — of the page content as written and of every stream that inflates
/// (FlateDecode). Enough to find a case number in the text layer a scanner's OCR adds; at most 1 MB.
pub fn text_of(pdf: &[u8]) -> String {
    const LIMIT: usize = 1 << 20;
    let mut text = String::new();
    literals(pdf, &mut text, LIMIT);
    let mut rest = pdf;
    while let Some(start) = find(rest, b"stream") {
        let mut body = &rest[start + b"stream".len()..];
        body = body.strip_prefix(b"\r").unwrap_or(body);
        body = body.strip_prefix(b"\n").unwrap_or(body);
        let Some(end) = find(body, b"endstream") else {
            break;
        };
        let mut inflated = Vec::new();
        let decoder = flate2::read::ZlibDecoder::new(&body[..end]);
        if decoder.take(8 << 20).read_to_end(&mut inflated).is_ok() {
            literals(&inflated, &mut text, LIMIT);
        }
        rest = &body[end + b"endstream".len()..];
        if text.len() >= LIMIT {
            break;
        }
    }
    text
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Appends the printable content of the PDF literal strings `( … )` in `bytes`.
fn literals(bytes: &[u8], text: &mut String, limit: usize) {
    let mut depth = 0usize;
    let mut escaped = false;
    for &byte in bytes {
        if text.len() >= limit {
            return;
        }
        match (depth, escaped, byte) {
            (0, _, b'(') => depth = 1,
            (0, _, _) => {}
            (_, true, _) => {
                escaped = false;
                if byte.is_ascii_graphic() {
                    text.push(char::from(byte));
                }
            }
            (_, false, b'\\') => escaped = true,
            (_, false, b'(') => depth += 1,
            (1, false, b')') => {
                depth = 0;
                text.push(' ');
            }
            (_, false, b')') => depth -= 1,
            (_, false, _) if byte.is_ascii_graphic() || byte == b' ' => text.push(char::from(byte)),
            _ => {}
        }
    }
}

/// Words that could be case numbers: a digit, a separator, 6–64 characters.
fn candidates(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '.' | '_')))
        .map(|word| word.trim_matches(|c: char| matches!(c, '.' | '-' | '/' | '_')))
        .filter(|word| (6..=64).contains(&word.len()))
        .filter(|word| word.chars().any(|c| c.is_ascii_digit()) && word.contains(['-', '/']))
        .filter(|word| seen.insert(word.to_string()))
        .take(100)
        .map(str::to_owned)
        .collect()
}

/// Where routing sends an item.
struct Route {
    by: &'static str,
    unit_id: Option<String>,
    case: Option<CaseInfo>,
}

impl Mailroom {
    fn route(&self, conn: &mut DbConnection, meta: &InboundMeta, text: &str) -> Result<Route, DbError> {
        for (by, source) in [
            (
                "case_number_reference",
                meta.reference.as_deref().unwrap_or_default(),
            ),
            ("case_number_text", text),
        ] {
            for candidate in candidates(source) {
                if let Some(case) = self.cases().case_by_number(conn, &candidate)? {
                    return Ok(Route {
                        by,
                        unit_id: Some(case.unit_id.clone()),
                        case: Some(case),
                    });
                }
            }
        }
        let catalogue = self.catalogue().catalogue();
        if let Some(procedure) = meta.procedure_id.as_deref().and_then(|id| catalogue.get(id)) {
            return Ok(Route {
                by: "procedure",
                unit_id: Some(procedure.procedure.unit.id.clone()),
                case: None,
            });
        }
        if let Some(unit) = &meta.unit_id
            && catalogue.iter().any(|p| &p.procedure.unit.id == unit)
        {
            return Ok(Route {
                by: "unit",
                unit_id: Some(unit.clone()),
                case: None,
            });
        }
        Ok(Route {
            by: "triage",
            unit_id: None,
            case: None,
        })
    }

    /// Checks what came with an upload.
    pub fn check_meta(&self, meta: &InboundMeta) -> Result<(), MailroomError> {
        let mut errors = Vec::new();
        if meta.sender.is_empty() || meta.sender.chars().count() > 300 {
            errors.push(FieldError::at_pointer(
                "/sender",
                "invalid_length",
                Text::fixed(
                    "Bitte den Absender angeben (bis 300 Zeichen).",
                    "Please give the sender (up to 300 characters).",
                ),
            ));
        }
        match meta.received_on.parse::<NaiveDate>() {
            Ok(day) if day <= crate::rules::berlin_day(self.now()) => {}
            _ => errors.push(FieldError::at_pointer(
                "/received_on",
                "invalid_date",
                Text::fixed(
                    "Bitte den Eingangstag angeben (JJJJ-MM-TT, nicht in der Zukunft).",
                    "Please give the day it arrived (YYYY-MM-DD, not in the future).",
                ),
            )),
        }
        if meta
            .page_count
            .as_deref()
            .is_some_and(|p| p.parse::<i32>().map_or(true, |n| !(1..=10_000).contains(&n)))
        {
            errors.push(FieldError::at_pointer(
                "/page_count",
                "out_of_range",
                Text::fixed("1 bis 10.000 Seiten.", "1 to 10,000 pages."),
            ));
        }
        if meta.reference.as_deref().is_some_and(|r| r.chars().count() > 500) {
            errors.push(FieldError::at_pointer(
                "/reference",
                "invalid_length",
                Text::fixed("Höchstens 500 Zeichen.", "At most 500 characters."),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(MailroomError::Validation(errors))
        }
    }

    /// Records an uploaded item and routes it.
    pub async fn receive(
        &self,
        uploader: Uploader,
        file: amtsweg_files::FileView,
        meta: InboundMeta,
    ) -> Result<InboundItem, MailroomError> {
        let content = self.files().read_all(&file).await?;
        let text = tokio::task::spawn_blocking(move || text_of(&content))
            .await
            .map_err(|err| MailroomError::Internal(err.to_string()))?;
        let (service, now) = (self.clone(), self.now());
        self.db()
            .write(move |conn| {
                let route = service.route(conn, &meta, &text)?;
                let id = amtsweg_kernel::id::new_id();
                diesel::insert_into(inbound_items::table)
                    .values((
                        inbound_items::id.eq(&id),
                        inbound_items::channel.eq(uploader.channel),
                        inbound_items::submitted_by.eq(&uploader.id),
                        inbound_items::sender.eq(&meta.sender),
                        inbound_items::received_on.eq(&meta.received_on),
                        inbound_items::reference.eq(&meta.reference),
                        inbound_items::page_count
                            .eq(meta.page_count.as_deref().and_then(|p| p.parse::<i32>().ok())),
                        inbound_items::file_id.eq(file.id.as_str()),
                        inbound_items::holder.eq(&uploader.id),
                        inbound_items::name.eq(&file.name),
                        inbound_items::sha256.eq(&file.sha256),
                        inbound_items::state.eq(if route.unit_id.is_some() {
                            "routed"
                        } else {
                            "triage"
                        }),
                        inbound_items::routed_by.eq((route.unit_id.is_some()).then_some(route.by)),
                        inbound_items::unit_id.eq(&route.unit_id),
                        inbound_items::case_ref.eq(route.case.as_ref().map(|c| c.case_ref.clone())),
                        inbound_items::case_number
                            .eq(route.case.as_ref().and_then(|c| c.case_number.clone())),
                        inbound_items::created_at.eq(now),
                        inbound_items::routed_at.eq(route.unit_id.is_some().then_some(now)),
                    ))
                    .execute(conn)?;
                crate::audit(
                    conn,
                    &uploader.actor,
                    "inbound.received",
                    ("inbound_item", &id),
                    now,
                )?;
                let action = if route.unit_id.is_some() {
                    route_action(route.by)
                } else {
                    "inbound.triaged"
                };
                crate::audit(conn, &Actor::system(), action, ("inbound_item", &id), now)?;
                if let Some(case) = &route.case {
                    events::inbound(conn, &id, &case.case_ref, now)?;
                }
                load(conn, &id)
            })
            .await
    }

    /// The items the caller may see: the scan office all of them (triage included), unit staff their units'.
    pub async fn inbound_items(
        &self,
        auth: &StaffAuth,
        filter: InboundFilter,
        page: PageRequest,
    ) -> Result<Page<InboundItem>, MailroomError> {
        let reach = reach(auth)?;
        self.db()
            .read(move |conn| {
                let mut query = inbound_items::table.into_boxed();
                if let Units::Some(units) = &reach {
                    query = query.filter(inbound_items::unit_id.eq_any(units.clone()));
                }
                if let Some(state) = &filter.state {
                    query = query.filter(inbound_items::state.eq(state.clone()));
                }
                if let Some(unit) = &filter.unit_id {
                    query = query.filter(inbound_items::unit_id.eq(unit.clone()));
                }
                if let Some(after) = &page.after {
                    query = query.filter(inbound_items::id.lt(after.clone()));
                }
                let rows: Vec<InboundItem> = query
                    .order(inbound_items::id.desc())
                    .limit(i64::try_from(page.limit + 1).unwrap_or(101))
                    .select(InboundItem::as_select())
                    .load(conn)?;
                Ok(Page::from_overfetched(rows, page.limit, |i: &InboundItem| {
                    i.id.clone()
                }))
            })
            .await
    }

    /// One item the caller may see.
    pub async fn inbound_item(&self, auth: &StaffAuth, id: &str) -> Result<InboundItem, MailroomError> {
        let (reach, id) = (reach(auth)?, id.to_owned());
        self.db()
            .read(move |conn| {
                let item = load(conn, &id)?;
                visible(&item, &reach)?;
                Ok(item)
            })
            .await
    }

    /// The scanned document of an item the caller may see.
    pub async fn inbound_document(
        &self,
        auth: &StaffAuth,
        id: &str,
    ) -> Result<amtsweg_files::FileView, MailroomError> {
        let item = self.inbound_item(auth, id).await?;
        let file = amtsweg_files::FileId::from_string(item.file_id.clone());
        Ok(self.files().file_of(&item.holder, &file).await?)
    }

    /// Staff route an item: the scan office any item, a unit's staff the items that went to their unit.
    pub async fn assign(
        &self,
        auth: &StaffAuth,
        id: &str,
        assignment: Assignment,
    ) -> Result<InboundItem, MailroomError> {
        if assignment.application_id.is_some() == assignment.unit_id.is_some() {
            return Err(MailroomError::Validation(vec![FieldError::at_pointer(
                "/application_id",
                "one_of_required",
                Text::fixed(
                    "Bitte entweder einen Antrag (application_id) oder eine Stelle (unit_id) angeben.",
                    "Please give either an application (application_id) or a unit (unit_id).",
                ),
            )]));
        }
        if let Some(unit) = &assignment.unit_id
            && !self
                .catalogue()
                .catalogue()
                .iter()
                .any(|p| &p.procedure.unit.id == unit)
        {
            return Err(MailroomError::Validation(vec![FieldError::at_pointer(
                "/unit_id",
                "unknown_unit",
                Text::fixed("Keine Stelle mit dieser Kennung.", "No unit with this id."),
            )]));
        }
        let (reach, id, auth, now, service) = (
            reach(auth)?,
            id.to_owned(),
            auth.clone(),
            self.now(),
            self.clone(),
        );
        self.db()
            .write(move |conn| {
                let item = load(conn, &id)?;
                visible(&item, &reach)?;
                let case = match &assignment.application_id {
                    Some(application) => Some(service.cases().case(conn, application)?.ok_or_else(|| {
                        MailroomError::Validation(vec![FieldError::at_pointer(
                            "/application_id",
                            "application_not_found",
                            Text::fixed(
                                "Kein eingereichter Antrag mit dieser Kennung.",
                                "No submitted application with this id.",
                            ),
                        )])
                    })?),
                    None => None,
                };
                let unit = case
                    .as_ref()
                    .map_or_else(|| assignment.unit_id.clone(), |c| Some(c.unit_id.clone()));
                diesel::update(inbound_items::table.find(&id))
                    .set((
                        inbound_items::state.eq("routed"),
                        inbound_items::routed_by.eq("staff"),
                        inbound_items::unit_id.eq(&unit),
                        inbound_items::case_ref.eq(case.as_ref().map(|c| c.case_ref.clone())),
                        inbound_items::case_number.eq(case.as_ref().and_then(|c| c.case_number.clone())),
                        inbound_items::routed_at.eq(now),
                    ))
                    .execute(conn)?;
                let actor = Actor::new(ActorKind::Staff, &auth.account_id, auth.address.clone());
                crate::audit(conn, &actor, "inbound.assigned", ("inbound_item", &id), now)?;
                if let Some(case) = &case
                    && item.case_ref.as_deref() != Some(&case.case_ref)
                {
                    events::inbound(conn, &id, &case.case_ref, now)?;
                }
                load(conn, &id)
            })
            .await
    }
}

fn route_action(by: &str) -> &'static str {
    match by {
        "case_number_reference" | "case_number_text" => "inbound.routed_by_case_number",
        "procedure" => "inbound.routed_by_procedure",
        _ => "inbound.routed_by_unit",
    }
}

/// The scan office sees every item; unit staff the items of their units.
fn reach(auth: &StaffAuth) -> Result<Units, MailroomError> {
    if is_scan_office(auth) {
        return Ok(Units::All);
    }
    match staff_units(auth) {
        Units::None => Err(MailroomError::Forbidden(Text::fixed(
            "Eingänge sehen die Scanstelle und die Stellen, an die sie gingen.",
            "Inbound items are for the scan office and the units they went to.",
        ))),
        units => Ok(units),
    }
}

fn visible(item: &InboundItem, reach: &Units) -> Result<(), MailroomError> {
    let seen = match (reach, &item.unit_id) {
        (Units::All, _) => true,
        (units, Some(unit)) => units.contains(unit),
        (_, None) => false,
    };
    if seen { Ok(()) } else { Err(not_found()) }
}

fn load(conn: &mut DbConnection, id: &str) -> Result<InboundItem, MailroomError> {
    inbound_items::table
        .find(id)
        .select(InboundItem::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_numbers_are_found_in_literal_and_compressed_text() {
        let plain = b"%PDF-1.4\nBT /F1 12 Tf (Ihr Zeichen: steueramt-2026-000042) Tj ET";
        assert!(candidates(&text_of(plain)).contains(&"steueramt-2026-000042".to_owned()));
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, b"BT (Az. OA-2026-7) Tj ET").unwrap_or_default();
        let compressed = encoder.finish().unwrap_or_default();
        let mut pdf = b"%PDF-1.4\n1 0 obj << /Filter /FlateDecode >>\nstream\n".to_vec();
        pdf.extend_from_slice(&compressed);
        pdf.extend_from_slice(b"\nendstream\nendobj\n");
        assert!(candidates(&text_of(&pdf)).contains(&"OA-2026-7".to_owned()));
    }

    #[test]
    fn only_words_like_case_numbers_are_looked_up() {
        assert_eq!(
            candidates("Sehr geehrte Damen, Az. steueramt-2026-000001. Telefon 0341 123456, 2026"),
            vec!["steueramt-2026-000001".to_owned()]
        );
    }
}
