//! The mails sent to the citizen and how each fared (GOV.UK Notify's statuses), in plain words.

use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{Lang, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

use super::AccountService;
use crate::error::AccountError;

/// A mail sent to the citizen.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub kind: String,
    pub subject: String,
    pub status: amtsweg_mail::Status,
    /// The status in plain words.
    pub explained: String,
    pub queued_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
}

impl AccountService {
    pub async fn notifications(
        &self,
        account_id: &str,
        page: PageRequest,
        lang: Lang,
    ) -> Result<Page<NotificationView>, AccountError> {
        let id = account_id.to_owned();
        self.db
            .read(move |conn| {
                let rows = amtsweg_mail::notifications_of(conn, &id, page.after.as_deref(), page.limit + 1)?;
                let items = rows
                    .into_iter()
                    .map(|n| NotificationView {
                        explained: n.status.explained().get(lang).to_owned(),
                        id: n.id,
                        kind: n.kind,
                        subject: n.subject,
                        status: n.status,
                        queued_at: n.queued_at,
                        sent_at: n.sent_at,
                    })
                    .collect();
                Ok(Page::from_overfetched(
                    items,
                    page.limit,
                    |n: &NotificationView| n.id.clone(),
                ))
            })
            .await
    }
}
