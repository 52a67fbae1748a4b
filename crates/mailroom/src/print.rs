//! Paper: decisions that cannot be delivered electronically become letters for the central print line. A batch
//! takes every letter waiting; its archive holds one PDF per letter (the decision, addressed for a DIN 5008
//! window envelope) and a manifest; the day the batch was handed to the post is recorded, from which § 41 (2)
//! VwVfG counts (notified on the fourth day after posting).

use std::io::Write;

use amtsweg_audit::{Actor, ActorKind};
use amtsweg_auth::{StaffAuth, Units};
use amtsweg_db::DbConnection;
use amtsweg_kernel::{FieldError, Text, Timestamp};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::delivery::{self, state};
use crate::rules::{berlin_day, posted_deemed_on};
use crate::schema::{deliveries, delivery_documents, print_batches, print_letters};
use crate::{Mailroom, MailroomError, PRINT_OFFICE, events};

/// One letter of a batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Letter {
    pub id: String,
    pub delivery_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_number: Option<String>,
    pub unit_id: String,
    /// Why it goes on paper: `no_consent`, `no_notification_address`, `not_retrieved`, `notification_failed`.
    pub reason: String,
    /// `letter`, or `pzu` for formal service with a delivery certificate (Postzustellungsurkunde).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<i32>,
    /// The file in the batch archive.
    pub file: String,
    pub sha256: String,
}

/// A print batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Batch {
    pub id: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub letters: Vec<Letter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posted_on: Option<String>,
}

/// The day a batch was handed to the post.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Posted {
    /// `YYYY-MM-DD`.
    pub posted_on: NaiveDate,
}

/// The letter kind of formal service with a delivery certificate (Postzustellungsurkunde).
pub const PZU: &str = "pzu";

/// The day the delivery certificate names.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Served {
    /// `YYYY-MM-DD`, as on the returned certificate.
    pub served_on: NaiveDate,
}

fn require_print_office(auth: &StaffAuth) -> Result<(), MailroomError> {
    if matches!(auth.units_for(PRINT_OFFICE), Units::All) || auth.is_system_admin() {
        Ok(())
    } else {
        Err(MailroomError::Forbidden(Text::fixed(
            "Druckaufträge sind Sache der zentralen Druckstraße (Rolle print_office).",
            "Print batches are for the central print line (role print_office).",
        )))
    }
}

fn not_found() -> MailroomError {
    MailroomError::NotFound(
        "print_batch_not_found",
        Text::fixed("Druckauftrag nicht gefunden.", "Print batch not found."),
    )
}

fn audit(
    conn: &mut DbConnection,
    auth: &StaffAuth,
    action: &str,
    id: &str,
    now: Timestamp,
) -> Result<(), MailroomError> {
    let actor = Actor::new(ActorKind::Staff, &auth.account_id, auth.address.clone());
    Ok(crate::audit(conn, &actor, action, ("print_batch", id), now)?)
}

type LetterRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i32>,
    String,
    String,
    String,
);

fn load_batch(conn: &mut DbConnection, id: &str) -> Result<(Batch, Vec<(String, String)>), MailroomError> {
    let (id, created_at, created_by, posted_on): (String, Timestamp, String, Option<String>) =
        print_batches::table
            .find(id)
            .select((
                print_batches::id,
                print_batches::created_at,
                print_batches::created_by,
                print_batches::posted_on,
            ))
            .first(conn)
            .optional()?
            .ok_or_else(not_found)?;
    let rows: Vec<LetterRow> = print_letters::table
        .inner_join(deliveries::table.on(deliveries::id.eq(print_letters::delivery_id)))
        .inner_join(
            delivery_documents::table.on(delivery_documents::delivery_id.eq(print_letters::delivery_id)),
        )
        .filter(print_letters::batch_id.eq(&id))
        .order(print_letters::id)
        .select((
            print_letters::id,
            print_letters::delivery_id,
            print_letters::unit_id,
            print_letters::reason,
            print_letters::kind,
            deliveries::case_number,
            delivery_documents::pages,
            delivery_documents::sha256,
            delivery_documents::file_id,
            delivery_documents::holder,
        ))
        .load(conn)?;
    let mut files = Vec::new();
    let letters = rows
        .into_iter()
        .map(
            |(id, delivery_id, unit_id, reason, kind, case_number, pages, sha256, file_id, holder)| {
                files.push((file_id, holder));
                Letter {
                    file: format!("letters/{id}.pdf"),
                    id,
                    delivery_id,
                    case_number,
                    unit_id,
                    reason,
                    kind,
                    pages,
                    sha256,
                }
            },
        )
        .collect();
    Ok((
        Batch {
            id,
            created_at,
            created_by,
            letters,
            posted_on,
        },
        files,
    ))
}

impl Mailroom {
    /// Puts every letter waiting into a new batch (409 `nothing_to_print` when none waits).
    pub async fn create_batch(&self, auth: &StaffAuth) -> Result<Batch, MailroomError> {
        require_print_office(auth)?;
        let (auth, now) = (auth.clone(), self.now());
        self.db()
            .write(move |conn| {
                let id = amtsweg_kernel::id::new_id();
                diesel::insert_into(print_batches::table)
                    .values((
                        print_batches::id.eq(&id),
                        print_batches::created_by.eq(&auth.account_id),
                        print_batches::created_at.eq(now),
                        print_batches::letters.eq(0),
                    ))
                    .execute(conn)?;
                // Each waiting letter lands in exactly one batch, however many are made at once.
                let taken = diesel::update(print_letters::table.filter(print_letters::batch_id.is_null()))
                    .set(print_letters::batch_id.eq(&id))
                    .execute(conn)?;
                if taken == 0 {
                    return Err(MailroomError::Conflict(
                        "nothing_to_print",
                        Text::fixed(
                            "Es wartet kein Brief auf den Druck.",
                            "No letter is waiting to be printed.",
                        ),
                    ));
                }
                diesel::update(print_batches::table.find(&id))
                    .set(print_batches::letters.eq(i32::try_from(taken).unwrap_or(i32::MAX)))
                    .execute(conn)?;
                audit(conn, &auth, "print_batch.created", &id, now)?;
                Ok(load_batch(conn, &id)?.0)
            })
            .await
    }

    pub async fn batch(&self, auth: &StaffAuth, id: &str) -> Result<Batch, MailroomError> {
        require_print_office(auth)?;
        let id = id.to_owned();
        self.db().read(move |conn| Ok(load_batch(conn, &id)?.0)).await
    }

    /// The batch for the print line: a ZIP with `letters/{id}.pdf` per letter and `manifest.json` /
    /// `manifest.csv` (letter, delivery, case number, unit, reason, pages, file, SHA-256).
    pub async fn batch_archive(&self, auth: &StaffAuth, id: &str) -> Result<Vec<u8>, MailroomError> {
        require_print_office(auth)?;
        let id = id.to_owned();
        let (batch, files) = self.db().read(move |conn| load_batch(conn, &id)).await?;
        let mut contents = Vec::with_capacity(files.len());
        for (file_id, holder) in &files {
            let file = self
                .files()
                .file_of(holder, &amtsweg_files::FileId::from_string(file_id.clone()))
                .await?;
            contents.push(self.files().read_all(&file).await?);
        }
        let manifest =
            serde_json::to_vec_pretty(&batch).map_err(|err| MailroomError::Internal(err.to_string()))?;
        let mut csv =
            String::from("letter_id;delivery_id;case_number;unit_id;reason;kind;pages;file;sha256\n");
        for letter in &batch.letters {
            csv.push_str(&format!(
                "{};{};{};{};{};{};{};{};{}\n",
                letter.id,
                letter.delivery_id,
                letter.case_number.clone().unwrap_or_default(),
                letter.unit_id,
                letter.reason,
                letter.kind,
                letter.pages.map(|p| p.to_string()).unwrap_or_default(),
                letter.file,
                letter.sha256
            ));
        }
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>, zip::result::ZipError> {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let options =
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            for (letter, content) in batch.letters.iter().zip(contents) {
                zip.start_file(letter.file.as_str(), options)?;
                zip.write_all(&content)?;
            }
            zip.start_file("manifest.json", options)?;
            zip.write_all(&manifest)?;
            zip.start_file("manifest.csv", options)?;
            zip.write_all(csv.as_bytes())?;
            Ok(zip.finish()?.into_inner())
        })
        .await
        .map_err(|err| MailroomError::Internal(err.to_string()))?
        .map_err(|err| MailroomError::Internal(err.to_string()))
    }

    /// Records the day the batch was handed to the post (once): each letter counts as notified on the fourth day
    /// after it.
    pub async fn batch_posted(
        &self,
        auth: &StaffAuth,
        id: &str,
        posted_on: NaiveDate,
    ) -> Result<Batch, MailroomError> {
        require_print_office(auth)?;
        let (auth, id, now) = (auth.clone(), id.to_owned(), self.now());
        self.db()
            .write(move |conn| {
                let (batch, _) = load_batch(conn, &id)?;
                if batch.posted_on.is_some() {
                    return Err(MailroomError::Conflict(
                        "already_posted",
                        Text::fixed(
                            "Für diesen Druckauftrag ist der Posteingang schon erfasst.",
                            "This batch has been recorded as posted already.",
                        ),
                    ));
                }
                if posted_on < berlin_day(batch.created_at) || posted_on > berlin_day(now) {
                    return Err(MailroomError::Validation(vec![FieldError::at_pointer(
                        "/posted_on",
                        "out_of_range",
                        Text::fixed(
                            "Der Tag liegt nicht zwischen dem Druckauftrag und heute.",
                            "The day is not between the batch and today.",
                        ),
                    )]));
                }
                let day = posted_on.to_string();
                let deemed = posted_deemed_on(posted_on).to_string();
                diesel::update(print_batches::table.find(&id))
                    .set((
                        print_batches::posted_on.eq(&day),
                        print_batches::posted_by.eq(&auth.account_id),
                        print_batches::posted_at.eq(now),
                    ))
                    .execute(conn)?;
                for letter in &batch.letters {
                    // Formal service counts from the day on the returned certificate, not from posting.
                    let deemed = (letter.kind != PZU).then_some(deemed.as_str());
                    let changed = diesel::update(
                        deliveries::table
                            .find(&letter.delivery_id)
                            .filter(deliveries::state.eq(state::PRINTING)),
                    )
                    .set((
                        deliveries::state.eq(state::POSTED),
                        deliveries::posted_on.eq(&day),
                        deliveries::deemed_notified_on.eq(deemed),
                    ))
                    .execute(conn)?;
                    if changed == 1 {
                        let case_ref: Option<String> = deliveries::table
                            .find(&letter.delivery_id)
                            .select(deliveries::case_ref)
                            .first(conn)?;
                        delivery::audit(
                            conn,
                            &Actor::system(),
                            "delivery.posted",
                            &letter.delivery_id,
                            now,
                        )?;
                        events::delivery(
                            conn,
                            &events::POSTED,
                            &letter.delivery_id,
                            case_ref.as_deref(),
                            "paper",
                            deemed,
                            now,
                        )?;
                    }
                }
                audit(conn, &auth, "print_batch.posted", &id, now)?;
                Ok(load_batch(conn, &id)?.0)
            })
            .await
    }
}

fn delivery_of_unit(
    conn: &mut DbConnection,
    auth: &StaffAuth,
    delivery_id: &str,
) -> Result<delivery::DeliveryRow, MailroomError> {
    let units = crate::postfach::staff_units(auth);
    delivery::load(conn, delivery_id)?
        .filter(|row| units.contains(&row.unit_id))
        .ok_or_else(|| {
            MailroomError::NotFound(
                "delivery_not_found",
                Text::fixed("Zustellung nicht gefunden.", "Delivery not found."),
            )
        })
}

impl Mailroom {
    /// Staff of the unit order formal service with a delivery certificate for a letter still waiting for print.
    pub async fn formal_service(
        &self,
        auth: &StaffAuth,
        delivery_id: &str,
    ) -> Result<crate::evidence::Evidence, MailroomError> {
        let (auth, id, now) = (auth.clone(), delivery_id.to_owned(), self.now());
        let service = self.clone();
        self.db()
            .write(move |conn| {
                let row = delivery_of_unit(conn, &auth, &id)?;
                let changed = diesel::update(
                    print_letters::table
                        .filter(print_letters::delivery_id.eq(&row.id))
                        .filter(print_letters::batch_id.is_null()),
                )
                .set(print_letters::kind.eq(PZU))
                .execute(conn)?;
                if changed == 0 {
                    return Err(MailroomError::Conflict(
                        "no_letter_waiting",
                        Text::fixed(
                            "Für diese Zustellung wartet kein Brief auf den Druck.",
                            "No letter of this delivery is waiting to be printed.",
                        ),
                    ));
                }
                let actor = Actor::new(ActorKind::Staff, &auth.account_id, auth.address.clone());
                delivery::audit(conn, &actor, "delivery.formal_service_ordered", &row.id, now)?;
                service.evidence_in(conn, &row.id)
            })
            .await
    }

    /// Records the day of service from the returned delivery certificate (once): the decision counts as notified
    /// on that day.
    pub async fn served(
        &self,
        auth: &StaffAuth,
        delivery_id: &str,
        served_on: NaiveDate,
    ) -> Result<crate::evidence::Evidence, MailroomError> {
        let (auth, id, now) = (auth.clone(), delivery_id.to_owned(), self.now());
        let service = self.clone();
        self.db()
            .write(move |conn| {
                let row = delivery_of_unit(conn, &auth, &id)?;
                let formal: i64 = print_letters::table
                    .filter(print_letters::delivery_id.eq(&row.id))
                    .filter(print_letters::kind.eq(PZU))
                    .count()
                    .get_result(conn)?;
                let posted = row.posted_on.as_deref().and_then(delivery::day);
                let Some(posted) = posted.filter(|_| formal > 0 && row.state == state::POSTED) else {
                    return Err(MailroomError::Conflict(
                        "not_formally_served",
                        Text::fixed(
                            "Diese Zustellung ist keine zur Post gegebene förmliche Zustellung.",
                            "This delivery is no formal service handed to the post.",
                        ),
                    ));
                };
                if row.served_on.is_some() {
                    return Err(MailroomError::Conflict(
                        "already_served",
                        Text::fixed(
                            "Der Tag der Zustellung ist schon erfasst.",
                            "The day of service is recorded already.",
                        ),
                    ));
                }
                if served_on < posted || served_on > berlin_day(now) {
                    return Err(MailroomError::Validation(vec![FieldError::at_pointer(
                        "/served_on",
                        "out_of_range",
                        Text::fixed(
                            "Der Tag liegt nicht zwischen der Aufgabe zur Post und heute.",
                            "The day is not between posting and today.",
                        ),
                    )]));
                }
                let day = served_on.to_string();
                diesel::update(
                    deliveries::table
                        .find(&row.id)
                        .filter(deliveries::served_on.is_null()),
                )
                .set((
                    deliveries::served_on.eq(&day),
                    deliveries::deemed_notified_on.eq(&day),
                ))
                .execute(conn)?;
                let actor = Actor::new(ActorKind::Staff, &auth.account_id, auth.address.clone());
                delivery::audit(conn, &actor, "delivery.served", &row.id, now)?;
                service.evidence_in(conn, &row.id)
            })
            .await
    }
}
