//! The Postfach in the GDPR export and erasure. Messages about a case and the delivery evidence belong to the
//! administrative file and are kept under its retention duty; messages about no case are erased with the account.

use amtsweg_db::personal_data::{PersonalData, Retained};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::delivery::DeliveryRow;
use crate::postfach::MessageRow;
use crate::schema::{deliveries, mailbox_attachments, mailbox_messages};

pub struct MailroomPersonalData;

impl PersonalData for MailroomPersonalData {
    fn section(&self) -> &'static str {
        "mailroom"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["mailbox_messages", "mailbox_attachments", "deliveries"]
    }

    fn export(&self, conn: &mut DbConnection, account_id: &str) -> Result<Value, DbError> {
        let messages: Vec<MessageRow> = mailbox_messages::table
            .filter(mailbox_messages::mailbox.eq(format!("account:{account_id}")))
            .order(mailbox_messages::created_at.asc())
            .select(MessageRow::as_select())
            .load(conn)?;
        let delivered: Vec<DeliveryRow> = deliveries::table
            .filter(deliveries::recipient.eq(account_id))
            .order(deliveries::created_at.asc())
            .select(DeliveryRow::as_select())
            .load(conn)?;
        let stamp = |t: Option<Timestamp>| t.map(Timestamp::rfc3339);
        Ok(json!({
            "messages": messages.iter().map(|m| json!({
                "id": m.id,
                "direction": m.direction,
                "kind": m.kind,
                "unit_id": m.unit_id,
                "subject": m.subject,
                "body": m.body,
                "case_number": m.case_number,
                "created_at": m.created_at.rfc3339(),
                "read_at": stamp(m.read_at),
            })).collect::<Vec<_>>(),
            "deliveries": delivered.iter().map(|d| json!({
                "id": d.id,
                "case_number": d.case_number,
                "channel": d.channel,
                "state": d.state,
                "provided_at": stamp(d.provided_at),
                "notified_at": stamp(d.notified_at),
                "notification_address": d.notification_address,
                "first_retrieved_at": stamp(d.first_retrieved_at),
                "deemed_notified_on": d.deemed_notified_on,
                "posted_on": d.posted_on,
            })).collect::<Vec<_>>(),
        }))
    }

    fn erase(
        &self,
        conn: &mut DbConnection,
        account_id: &str,
        _now: Timestamp,
    ) -> Result<Vec<Retained>, DbError> {
        let loose: Vec<String> = mailbox_messages::table
            .filter(mailbox_messages::mailbox.eq(format!("account:{account_id}")))
            .filter(mailbox_messages::case_ref.is_null())
            .select(mailbox_messages::id)
            .load(conn)?;
        diesel::delete(mailbox_attachments::table.filter(mailbox_attachments::message_id.eq_any(&loose)))
            .execute(conn)?;
        diesel::delete(mailbox_messages::table.filter(mailbox_messages::id.eq_any(&loose))).execute(conn)?;
        Ok(vec![Retained {
            section: "mailroom",
            category: "case_messages_and_delivery_evidence",
            legal_basis: "Art. 17(3)(b) DSGVO, § 41 VwVfG: Nachrichten zu Vorgängen und Zustellnachweise gehören zur Akte / messages about cases and evidence of delivery belong to the case file",
        }])
    }
}
