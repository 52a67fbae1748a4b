//! The applications section of the GDPR export and erasure.

use amtsweg_db::personal_data::{PersonalData, Retained};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::schema::{application_attachments, application_steps, application_timers, applications};

pub struct ApplicationsPersonalData;

#[derive(Queryable, Selectable)]
#[diesel(table_name = applications)]
struct Exported {
    id: String,
    procedure_id: String,
    status: String,
    case_number: Option<String>,
    state: Option<String>,
    data: String,
    submitted_at: Option<Timestamp>,
    created_at: Timestamp,
}

impl PersonalData for ApplicationsPersonalData {
    fn section(&self) -> &'static str {
        "applications"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["applications"]
    }

    fn export(&self, conn: &mut DbConnection, account_id: &str) -> Result<Value, DbError> {
        let rows: Vec<Exported> = applications::table
            .filter(applications::account_id.eq(account_id))
            .select(Exported::as_select())
            .order(applications::id)
            .load(conn)?;
        let mut exported = Vec::with_capacity(rows.len());
        for row in rows {
            // Who saw or worked on the case file: every staff read and step is in the audit log.
            let accessed: Vec<Value> = amtsweg_audit::entries_for(conn, &row.id, 10_000)?
                .into_iter()
                .filter(|entry| {
                    entry.actor_kind == "staff" && entry.object_id.as_deref() == Some(row.id.as_str())
                })
                .rev()
                .map(|entry| json!({"at": entry.at, "staff_id": entry.actor_id, "action": entry.action}))
                .collect();
            exported.push(json!({
                "id": row.id,
                "procedure_id": row.procedure_id,
                "status": row.status,
                "case_number": row.case_number,
                "state": row.state,
                "data": serde_json::from_str::<Value>(&row.data).unwrap_or(Value::Null),
                "submitted_at": row.submitted_at,
                "created_at": row.created_at,
                "accessed_by_staff": accessed,
            }));
        }
        Ok(Value::Array(exported))
    }

    /// Drafts go; submitted applications are records of administrative procedures and stay for their
    /// retention period.
    fn erase(
        &self,
        conn: &mut DbConnection,
        account_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Retained>, DbError> {
        let drafts: Vec<String> = applications::table
            .filter(applications::account_id.eq(account_id))
            .filter(applications::status.eq("draft"))
            .select(applications::id)
            .load(conn)?;
        for id in &drafts {
            let files: Vec<String> = application_attachments::table
                .filter(application_attachments::application_id.eq(id))
                .select(application_attachments::file_id)
                .load(conn)?;
            diesel::delete(
                application_attachments::table.filter(application_attachments::application_id.eq(id)),
            )
            .execute(conn)?;
            for file in files {
                amtsweg_files::remove(conn, &amtsweg_files::FileId::from_string(file), now)?;
            }
            diesel::delete(application_steps::table.filter(application_steps::application_id.eq(id)))
                .execute(conn)?;
            diesel::delete(application_timers::table.filter(application_timers::application_id.eq(id)))
                .execute(conn)?;
            diesel::delete(applications::table.find(id)).execute(conn)?;
        }
        let submitted: i64 = applications::table
            .filter(applications::account_id.eq(account_id))
            .count()
            .get_result(conn)?;
        Ok(if submitted > 0 {
            vec![Retained {
                section: "applications",
                category: "submitted applications and their case files",
                legal_basis: "Art. 17(3)(b) GDPR: records of administrative procedures kept for the retention period of the procedure",
            }]
        } else {
            Vec::new()
        })
    }
}
