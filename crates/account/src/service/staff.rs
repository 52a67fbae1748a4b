//! Staff accounts (case workers, supervisors, catalogue admins, system admins), with roles scoped to the
//! organisational units of the catalogue; and the first system administrator of a fresh installation.

use amtsweg_audit::{Actor, Outcome};
use amtsweg_auth::RoleReach;
use amtsweg_db::InTransaction;
use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{Checked, FieldError, Lang, Text};
use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::register::{check_email, check_name, password_errors};
use super::{AccountService, audit, send};
use crate::domain::secret::random_token;
use crate::error::AccountError;
use crate::events;
use crate::store::schema::{accounts, staff_roles};
use crate::store::{self, NewAccount};
use crate::templates;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaffRole {
    /// `case_worker`, `supervisor`, `catalogue_admin` or `system_admin`.
    pub role: String,
    /// Id of an organisational unit of the catalogue, or `*` for all (required for `system_admin`).
    pub unit: String,
}

impl StaffRole {
    /// `role` or `role:unit` as on the command line.
    pub fn parse(text: &str) -> StaffRole {
        match text.split_once(':') {
            Some((role, unit)) => StaffRole {
                role: role.to_owned(),
                unit: unit.to_owned(),
            },
            None => StaffRole {
                role: text.to_owned(),
                unit: "*".to_owned(),
            },
        }
    }
}

/// What an administrator gives for a new member of staff.
pub struct NewStaffMember {
    pub email: String,
    pub name: String,
    pub language: Checked<Lang>,
    pub roles: Vec<StaffRole>,
    /// The initial password; a random one when absent.
    pub password: Option<SecretString>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffCreated {
    pub id: String,
    pub email: String,
    /// Shown once. The person sets up TOTP at the first login.
    pub initial_password: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffSummary {
    pub id: String,
    pub email: Option<String>,
    pub name: String,
    pub status: String,
    pub totp_enabled: bool,
    pub roles: Vec<StaffRole>,
}

impl AccountService {
    fn check_roles(&self, roles: &[StaffRole]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if roles.is_empty() {
            errors.push(FieldError::at_pointer(
                "/roles",
                "too_few_items",
                Text::fixed("Mindestens eine Rolle.", "At least one role."),
            ));
        }
        let units: Vec<String> = self
            .catalogue
            .catalogue()
            .iter()
            .map(|p| p.procedure.unit.id.clone())
            .collect();
        let names: Vec<&str> = self.access.roles().iter().map(|r| r.name).collect();
        for (i, role) in roles.iter().enumerate() {
            let Some(definition) = self.access.find_role(&role.role) else {
                errors.push(FieldError::at_pointer(
                    format!("/roles/{i}/role"),
                    "not_allowed",
                    Text::new(
                        format!("Erlaubt sind: {}.", names.join(", ")),
                        format!("Allowed are: {}.", names.join(", ")),
                    ),
                ));
                continue;
            };
            let unit_ok = match definition.reach {
                RoleReach::Global => role.unit == "*",
                RoleReach::Units => role.unit == "*" || units.contains(&role.unit),
            };
            if !unit_ok {
                errors.push(FieldError::at_pointer(
                    format!("/roles/{i}/unit"),
                    "unknown_unit",
                    Text::fixed(
                        "Keine Organisationseinheit des Katalogs (oder „*“; für Rollen ohne Einheiten nur „*“).",
                        "Not an organisational unit of the catalogue (or “*”; only “*” for roles without units).",
                    ),
                ));
            }
        }
        errors
    }

    /// Creates a staff account with the given roles; answers the initial password once.
    pub async fn create_staff(
        &self,
        actor: Actor,
        member: NewStaffMember,
        also: InTransaction<StaffCreated>,
    ) -> Result<StaffCreated, AccountError> {
        let NewStaffMember {
            email,
            name,
            language,
            roles,
            password,
        } = member;
        let (email, name) = (email.as_str(), name.as_str());
        let mut errors = self.check_roles(&roles);
        let parsed = check_email(&mut errors, "/email", email);
        check_name(&mut errors, "/name", name);
        let language = language.check(&mut errors, "/preferred_language");
        let password = password.unwrap_or_else(|| SecretString::from(random_token()[..20].to_owned()));
        errors.extend(password_errors("/password", &password, &[]));
        let (Some(email), Some(language)) = (parsed.filter(|_| errors.is_empty()), language) else {
            return Err(AccountError::Validation(errors));
        };
        let hash = self.hasher.hash(&password).await?;
        let now = self.now();
        let name = name.trim().to_owned();
        let id = amtsweg_kernel::id::new_id();
        let created = StaffCreated {
            id: id.clone(),
            email: email.as_str().to_owned(),
            initial_password: password.expose_secret().to_owned(),
        };
        let answer = created.clone();
        self.db
            .write(move |conn| {
                let inserted = store::insert_account(
                    conn,
                    &NewAccount {
                        id: &id,
                        realm: "staff",
                        kind: "person",
                        email: Some(email.as_str()),
                        email_key: Some(email.key()),
                        display_name: &name,
                        password_hash: Some(&hash),
                        preferred_language: language,
                        status: "active",
                        register_number: None,
                    },
                    now,
                )?;
                if !inserted {
                    return Err(AccountError::Conflict(
                        "staff_exists",
                        Text::fixed(
                            "Es gibt bereits einen Zugang mit dieser E-Mail-Adresse.",
                            "A staff account with this e-mail address exists.",
                        ),
                    ));
                }
                for role in &roles {
                    diesel::insert_into(staff_roles::table)
                        .values((
                            staff_roles::account_id.eq(&id),
                            staff_roles::role.eq(&role.role),
                            staff_roles::unit.eq(&role.unit),
                        ))
                        .execute(conn)?;
                }
                send(
                    conn,
                    email.as_str(),
                    Some(&id),
                    templates::staff_welcome(language, &name),
                    now,
                )?;
                audit(
                    conn,
                    &actor,
                    "staff.created",
                    Some(("account", &id)),
                    Outcome::Success,
                    now,
                )?;
                events::account(
                    conn,
                    &events::ACCOUNT_CREATED,
                    &events::AccountState {
                        account_id: &id,
                        realm: "staff",
                        kind: "person",
                        status: "active",
                        via: Some("administrator"),
                    },
                    now,
                )?;
                also(conn, &answer)?;
                Ok(())
            })
            .await?;
        Ok(created)
    }

    /// Staff accounts ordered by address, one page after the address `page.after`.
    pub async fn list_staff(&self, page: PageRequest) -> Result<Page<StaffSummary>, AccountError> {
        self.db
            .read(move |conn| {
                let mut query = accounts::table.filter(accounts::realm.eq("staff")).into_boxed();
                if let Some(after) = &page.after {
                    query = query.filter(accounts::email_key.gt(after.clone()));
                }
                let rows: Vec<store::AccountRow> = query
                    .order(accounts::email_key.asc())
                    .limit(i64::try_from(page.limit + 1).unwrap_or(101))
                    .select(store::AccountRow::as_select())
                    .load(conn)?;
                let mut out = Vec::new();
                for row in rows {
                    let roles = store::staff_roles_of(conn, &row.id)?
                        .into_iter()
                        .map(|(role, unit)| StaffRole { role, unit })
                        .collect();
                    out.push((
                        row.email_key.clone().unwrap_or_default(),
                        StaffSummary {
                            totp_enabled: row.totp_enabled(),
                            id: row.id,
                            email: row.email,
                            name: row.display_name,
                            status: row.status,
                            roles,
                        },
                    ));
                }
                let page = Page::from_overfetched(out, page.limit, |(key, _)| key.clone());
                Ok(Page {
                    items: page.items.into_iter().map(|(_, summary)| summary).collect(),
                    next_cursor: page.next_cursor,
                })
            })
            .await
    }

    /// On a database without any system administrator, creates the configured one. Its password comes from the
    /// configuration or is generated and logged exactly once.
    pub async fn bootstrap_admin(&self) -> Result<Option<StaffCreated>, AccountError> {
        let exists: i64 = self
            .db
            .read(move |conn| {
                Ok::<_, AccountError>(
                    staff_roles::table
                        .filter(staff_roles::role.eq("system_admin"))
                        .count()
                        .get_result(conn)?,
                )
            })
            .await?;
        if exists > 0 {
            return Ok(None);
        }
        let bootstrap = self.settings.bootstrap.clone();
        let configured = bootstrap.admin_password.is_some();
        let created = self
            .create_staff(
                Actor::system(),
                NewStaffMember {
                    email: bootstrap.admin_email.clone(),
                    name: "Systemadministration".into(),
                    language: Lang::De.into(),
                    roles: vec![StaffRole {
                        role: "system_admin".into(),
                        unit: "*".into(),
                    }],
                    password: bootstrap.admin_password,
                },
                amtsweg_db::nothing(),
            )
            .await?;
        if configured {
            tracing::warn!(email = %created.email, "first start: created the system administrator with the configured password");
        } else {
            tracing::warn!(
                email = %created.email,
                "first start: created the system administrator; one-time password: {} — log in at /api/v1/staff/auth/login, set up TOTP and change it",
                created.initial_password
            );
        }
        Ok(Some(created))
    }
}
