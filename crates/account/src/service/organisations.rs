//! Organisation accounts (companies, associations): they cannot log in themselves but act through their member
//! persons. A person who creates one becomes its representative and may invite members (`invitations`).

use amtsweg_audit::Outcome;
use amtsweg_db::InTransaction;
use amtsweg_kernel::{FieldError, Text, Timestamp};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::login::Realm;
use super::register::check_name;
use super::{AccountService, Meta, actor_for, audit};
use crate::error::AccountError;
use crate::events;
use crate::store::schema::{accounts, organisation_members};
use crate::store::{self, NewAccount};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberView {
    pub account_id: String,
    pub name: String,
    /// `representative` or `member`.
    pub role: String,
    pub since: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganisationView {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub register_number: Option<String>,
    /// The caller's role in it.
    pub role: String,
    pub members: Vec<MemberView>,
}

pub(super) fn not_found() -> AccountError {
    AccountError::NotFound(
        "organisation_not_found",
        Text::fixed("Organisation nicht gefunden.", "Organisation not found."),
    )
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = organisation_members)]
struct MemberRow {
    #[diesel(select_expression = accounts::id)]
    account_id: String,
    #[diesel(select_expression = accounts::display_name)]
    name: String,
    role: String,
    #[diesel(column_name = added_at)]
    since: Timestamp,
}

pub(super) fn view(
    conn: &mut store::Conn,
    organisation_id: &str,
    caller: &str,
) -> Result<OrganisationView, AccountError> {
    let role: Option<String> = organisation_members::table
        .find((organisation_id, caller))
        .select(organisation_members::role)
        .first(conn)
        .optional()?;
    let Some(role) = role else { return Err(not_found()) };
    let organisation = store::account(conn, organisation_id)?.ok_or_else(not_found)?;
    let members: Vec<MemberRow> = organisation_members::table
        .inner_join(accounts::table.on(accounts::id.eq(organisation_members::account_id)))
        .filter(organisation_members::organisation_id.eq(organisation_id))
        .order(organisation_members::added_at.asc())
        .select(MemberRow::as_select())
        .load(conn)?;
    Ok(OrganisationView {
        id: organisation.id,
        name: organisation.display_name,
        register_number: organisation.register_number,
        role,
        members: members
            .into_iter()
            .map(|member| MemberView {
                account_id: member.account_id,
                name: member.name,
                role: member.role,
                since: member.since.rfc3339(),
            })
            .collect(),
    })
}

impl AccountService {
    pub async fn create_organisation(
        &self,
        person: &str,
        name: &str,
        register_number: Option<String>,
        meta: Meta,
        also: InTransaction<OrganisationView>,
    ) -> Result<OrganisationView, AccountError> {
        let mut errors = Vec::new();
        check_name(&mut errors, "/name", name);
        if let Some(number) = &register_number
            && (number.is_empty() || number.len() > 40 || number.chars().any(char::is_control))
        {
            errors.push(FieldError::at_pointer(
                "/register_number",
                "invalid_value",
                Text::fixed(
                    "Bitte 1 bis 40 Zeichen, z. B. „HRB 12345“.",
                    "Please 1 to 40 characters, e.g. “HRB 12345”.",
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(AccountError::Validation(errors));
        }
        let now = self.now();
        let (person, name) = (person.to_owned(), name.trim().to_owned());
        self.db
            .write(move |conn| {
                let id = amtsweg_kernel::id::new_id();
                let inserted = store::insert_account(
                    conn,
                    &NewAccount {
                        id: &id,
                        realm: "citizen",
                        kind: "organisation",
                        email: None,
                        email_key: None,
                        display_name: &name,
                        password_hash: None,
                        preferred_language: amtsweg_kernel::Lang::De,
                        status: "active",
                        register_number: register_number.as_deref(),
                    },
                    now,
                )?;
                if !inserted {
                    return Err(AccountError::Internal("account id collision".into()));
                }
                diesel::insert_into(organisation_members::table)
                    .values((
                        organisation_members::organisation_id.eq(&id),
                        organisation_members::account_id.eq(&person),
                        organisation_members::role.eq("representative"),
                        organisation_members::added_at.eq(now),
                    ))
                    .execute(conn)?;
                audit(
                    conn,
                    &actor_for(Realm::Citizen, &person, &meta),
                    "organisation.created",
                    Some(("account", &id)),
                    Outcome::Success,
                    now,
                )?;
                events::account(
                    conn,
                    &events::ACCOUNT_CREATED,
                    &events::AccountState {
                        account_id: &id,
                        realm: "citizen",
                        kind: "organisation",
                        status: "active",
                        via: Some("representative"),
                    },
                    now,
                )?;
                let created = view(conn, &id, &person)?;
                also(conn, &created)?;
                Ok(created)
            })
            .await
    }

    pub async fn organisations_of(&self, person: &str) -> Result<Vec<OrganisationView>, AccountError> {
        let person = person.to_owned();
        self.db
            .read(move |conn| {
                let ids: Vec<String> = organisation_members::table
                    .filter(organisation_members::account_id.eq(&person))
                    .select(organisation_members::organisation_id)
                    .load(conn)?;
                ids.iter().map(|id| view(conn, id, &person)).collect()
            })
            .await
    }

    pub async fn organisation(
        &self,
        person: &str,
        organisation_id: &str,
    ) -> Result<OrganisationView, AccountError> {
        let (person, id) = (person.to_owned(), organisation_id.to_owned());
        self.db.read(move |conn| view(conn, &id, &person)).await
    }
}
