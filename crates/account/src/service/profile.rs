//! The citizen's own data: profile for pre-filling forms ("once only"), consents to pass named attributes to a
//! procedure or authority, and the log of security events.

use std::collections::BTreeSet;

use amtsweg_audit::Outcome;
use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{FieldError, Text, TrustLevel};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::login::Realm;
use super::register::{check_language, check_name};
use super::{AccountService, Meta, actor_for, audit, trail};
use crate::error::AccountError;
use crate::store::schema::{accounts, consents, eid_links, profiles, security_events};
use crate::store::{self, ts};

/// Attributes of the profile that can be shared with consent.
pub const SHAREABLE: [&str; 6] = [
    "given_name",
    "family_name",
    "date_of_birth",
    "address",
    "phone",
    "email",
];

/// Profile fields, each also the name used in `verified_fields`.
const FIELDS: [&str; 9] = [
    "given_name",
    "family_name",
    "date_of_birth",
    "street",
    "house_number",
    "postal_code",
    "city",
    "country",
    "phone",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Address {
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub house_number: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    #[serde(default)]
    pub country: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileView {
    pub id: String,
    pub kind: String,
    pub email: Option<String>,
    pub name: String,
    pub preferred_language: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub address: Address,
    pub phone: Option<String>,
    /// Fields that came from an eID login; they cannot be edited by hand.
    pub verified_fields: Vec<String>,
    pub totp_enabled: bool,
    /// Whether the account is linked to an eID.
    pub eid_linked: bool,
    pub created_at: String,
    /// Set when the account has been unused for two years and is due for deletion; a login clears it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_flagged_at: Option<String>,
    /// The trust level of the current session.
    pub session_level: TrustLevel,
}

/// JSON Merge Patch (RFC 7396) of the profile: a member set to `null` clears the field, an absent member keeps it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub preferred_language: Option<Option<String>>,
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub given_name: Option<Option<String>>,
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub family_name: Option<Option<String>>,
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub date_of_birth: Option<Option<String>>,
    #[serde(default)]
    pub address: Option<AddressPatch>,
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressPatch {
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub street: Option<Option<String>>,
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub house_number: Option<Option<String>>,
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub postal_code: Option<Option<String>>,
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub city: Option<Option<String>>,
    #[serde(default, with = "patch")]
    #[schema(value_type = Option<String>)]
    pub country: Option<Option<String>>,
}

/// Distinguishes an absent member (`None`) from `null` (`Some(None)`).
mod patch {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::<String>::deserialize(deserializer)?))
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub id: String,
    /// `procedure` or `authority`.
    pub recipient_kind: String,
    /// Procedure id or official municipality key (AGS) of the authority.
    pub recipient_id: String,
    pub attributes: Vec<String>,
    pub granted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecurityEventView {
    pub id: String,
    pub at: String,
    /// e.g. `login_succeeded`, `login_failed`, `password_changed`, `totp_enabled`, `exported`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

#[derive(Queryable)]
struct EventRow {
    id: String,
    at: NaiveDateTime,
    kind: String,
    address: Option<String>,
    user_agent: Option<String>,
}

fn stamp(at: NaiveDateTime) -> String {
    amtsweg_kernel::clock::rfc3339(at.and_utc())
}

#[derive(Queryable)]
pub(crate) struct ProfileRow {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub street: Option<String>,
    pub house_number: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub verified_fields: String,
}

pub(crate) fn load_profile(
    conn: &mut store::Conn,
    account_id: &str,
) -> Result<Option<ProfileRow>, AccountError> {
    Ok(profiles::table
        .find(account_id)
        .select((
            profiles::given_name,
            profiles::family_name,
            profiles::date_of_birth,
            profiles::street,
            profiles::house_number,
            profiles::postal_code,
            profiles::city,
            profiles::country,
            profiles::phone,
            profiles::verified_fields,
        ))
        .first(conn)
        .optional()?)
}

pub(crate) fn consent_view(
    row: (
        String,
        String,
        String,
        String,
        NaiveDateTime,
        Option<NaiveDateTime>,
    ),
) -> ConsentView {
    let (id, recipient_kind, recipient_id, attributes, granted_at, revoked_at) = row;
    ConsentView {
        id,
        recipient_kind,
        recipient_id,
        attributes: attributes
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
        granted_at: stamp(granted_at),
        revoked_at: revoked_at.map(stamp),
    }
}

fn not_found_consent() -> AccountError {
    AccountError::NotFound(
        "consent_not_found",
        Text::fixed("Einwilligung nicht gefunden.", "Consent not found."),
    )
}

fn check_text(
    errors: &mut Vec<FieldError>,
    pointer: &str,
    value: &Option<Option<String>>,
    max: usize,
    allowed: fn(char) -> bool,
) {
    if let Some(Some(text)) = value {
        let length = text.chars().count();
        if length == 0 || length > max || !text.chars().all(allowed) {
            errors.push(FieldError::at_pointer(
                pointer,
                "invalid_value",
                Text::new(
                    format!("Bitte 1 bis {max} zulässige Zeichen."),
                    format!("Please 1 to {max} valid characters."),
                ),
            ));
        }
    }
}

fn printable(c: char) -> bool {
    !c.is_control()
}

impl AccountService {
    pub async fn profile(
        &self,
        account_id: &str,
        session_level: TrustLevel,
    ) -> Result<ProfileView, AccountError> {
        let id = account_id.to_owned();
        self.db
            .read(move |conn| {
                let account = store::account(conn, &id)?.ok_or(AccountError::LoginFailed)?;
                let profile = load_profile(conn, &id)?;
                let eid: i64 = eid_links::table
                    .filter(eid_links::account_id.eq(&id))
                    .count()
                    .get_result(conn)?;
                let p = profile.unwrap_or(ProfileRow {
                    given_name: None,
                    family_name: None,
                    date_of_birth: None,
                    street: None,
                    house_number: None,
                    postal_code: None,
                    city: None,
                    country: None,
                    phone: None,
                    verified_fields: String::new(),
                });
                Ok(ProfileView {
                    totp_enabled: account.totp_enabled(),
                    id: account.id,
                    kind: account.kind,
                    email: account.email,
                    name: account.display_name,
                    preferred_language: account.preferred_language,
                    given_name: p.given_name,
                    family_name: p.family_name,
                    date_of_birth: p.date_of_birth,
                    address: Address {
                        street: p.street,
                        house_number: p.house_number,
                        postal_code: p.postal_code,
                        city: p.city,
                        country: p.country,
                    },
                    phone: p.phone,
                    verified_fields: p
                        .verified_fields
                        .split(',')
                        .filter(|f| !f.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    eid_linked: eid > 0,
                    created_at: stamp(account.created_at),
                    deletion_flagged_at: account.deletion_flagged_at.map(stamp),
                    session_level,
                })
            })
            .await
    }

    /// Applies a merge patch; fields verified by eID cannot be changed by hand.
    pub async fn update_profile(
        &self,
        account_id: &str,
        patch: ProfilePatch,
        session_level: TrustLevel,
        meta: Meta,
    ) -> Result<ProfileView, AccountError> {
        let mut errors = Vec::new();
        if let Some(name) = &patch.name {
            check_name(&mut errors, "/name", name.as_deref().unwrap_or(""));
        }
        if let Some(language) = &patch.preferred_language {
            check_language(
                &mut errors,
                "/preferred_language",
                language.as_deref().unwrap_or(""),
            );
        }
        check_text(&mut errors, "/given_name", &patch.given_name, 100, printable);
        check_text(&mut errors, "/family_name", &patch.family_name, 100, printable);
        if let Some(Some(date)) = &patch.date_of_birth
            && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err()
        {
            errors.push(FieldError::at_pointer(
                "/date_of_birth",
                "invalid_format",
                Text::fixed("Datum im Format JJJJ-MM-TT.", "Date as YYYY-MM-DD."),
            ));
        }
        check_text(&mut errors, "/phone", &patch.phone, 30, |c| {
            c.is_ascii_digit() || " +-/()".contains(c)
        });
        let address = patch.address.clone().unwrap_or_default();
        check_text(&mut errors, "/address/street", &address.street, 150, printable);
        check_text(
            &mut errors,
            "/address/house_number",
            &address.house_number,
            10,
            |c| c.is_alphanumeric() || " -/".contains(c),
        );
        check_text(
            &mut errors,
            "/address/postal_code",
            &address.postal_code,
            10,
            |c| c.is_ascii_alphanumeric() || c == ' ',
        );
        check_text(&mut errors, "/address/city", &address.city, 100, printable);
        check_text(&mut errors, "/address/country", &address.country, 2, |c| {
            c.is_ascii_uppercase()
        });

        let now = self.now();
        let id = account_id.to_owned();
        let errors_so_far = errors;
        self.db
            .write(move |conn| {
                let verified: String = profiles::table
                    .find(&id)
                    .select(profiles::verified_fields)
                    .first(conn)?;
                let verified: BTreeSet<&str> = verified.split(',').filter(|f| !f.is_empty()).collect();
                let mut errors = errors_so_far;
                let touched = [
                    ("given_name", "/given_name", patch.given_name.is_some()),
                    ("family_name", "/family_name", patch.family_name.is_some()),
                    ("date_of_birth", "/date_of_birth", patch.date_of_birth.is_some()),
                    ("street", "/address/street", address.street.is_some()),
                    (
                        "house_number",
                        "/address/house_number",
                        address.house_number.is_some(),
                    ),
                    (
                        "postal_code",
                        "/address/postal_code",
                        address.postal_code.is_some(),
                    ),
                    ("city", "/address/city", address.city.is_some()),
                    ("country", "/address/country", address.country.is_some()),
                    ("phone", "/phone", patch.phone.is_some()),
                ];
                for (field, pointer, is_touched) in touched {
                    if is_touched && verified.contains(field) {
                        errors.push(FieldError::at_pointer(
                            pointer,
                            "verified_field",
                            Text::fixed(
                                "Diese Angabe stammt aus dem Online-Ausweis und kann nicht geändert werden.",
                                "This value comes from the eID and cannot be changed.",
                            ),
                        ));
                    }
                }
                if !errors.is_empty() {
                    return Err(AccountError::Validation(errors));
                }
                if let Some(Some(name)) = &patch.name {
                    diesel::update(accounts::table.find(&id))
                        .set(accounts::display_name.eq(name.trim()))
                        .execute(conn)?;
                }
                if let Some(Some(language)) = &patch.preferred_language {
                    diesel::update(accounts::table.find(&id))
                        .set(accounts::preferred_language.eq(language))
                        .execute(conn)?;
                }
                let target = profiles::table.find(&id);
                macro_rules! apply {
                    ($value:expr, $column:expr) => {
                        if let Some(value) = &$value {
                            diesel::update(target)
                                .set($column.eq(value.as_deref().map(str::trim)))
                                .execute(conn)?;
                        }
                    };
                }
                apply!(patch.given_name, profiles::given_name);
                apply!(patch.family_name, profiles::family_name);
                apply!(patch.date_of_birth, profiles::date_of_birth);
                apply!(address.street, profiles::street);
                apply!(address.house_number, profiles::house_number);
                apply!(address.postal_code, profiles::postal_code);
                apply!(address.city, profiles::city);
                apply!(address.country, profiles::country);
                apply!(patch.phone, profiles::phone);
                diesel::update(target)
                    .set(profiles::updated_at.eq(ts(now)))
                    .execute(conn)?;
                diesel::update(accounts::table.find(&id))
                    .set(accounts::updated_at.eq(ts(now)))
                    .execute(conn)?;
                audit(
                    conn,
                    &actor_for(Realm::Citizen, &id, &meta),
                    "account.profile_updated",
                    Some(("account", &id)),
                    Outcome::Success,
                    now,
                )?;
                Ok(())
            })
            .await?;
        self.profile(account_id, session_level).await
    }

    /// The trust level a procedure of the catalogue requires.
    pub fn required_level(&self, procedure_id: &str) -> Option<TrustLevel> {
        self.catalogue
            .catalogue()
            .get(procedure_id)
            .map(|p| p.procedure.trust_level)
    }

    /// Grants a procedure (by id) or an authority (by AGS) the use of named profile attributes.
    pub async fn grant_consent(
        &self,
        account_id: &str,
        recipient_kind: &str,
        recipient_id: &str,
        attributes: Vec<String>,
        meta: Meta,
    ) -> Result<ConsentView, AccountError> {
        let mut errors = Vec::new();
        let known = match recipient_kind {
            "procedure" => self.catalogue.catalogue().get(recipient_id).is_some(),
            "authority" => self
                .catalogue
                .catalogue()
                .iter()
                .any(|p| p.procedure.authority.ags == recipient_id),
            _ => {
                errors.push(FieldError::at_pointer(
                    "/recipient/kind",
                    "not_allowed",
                    Text::fixed(
                        "Erlaubt sind „procedure“ und „authority“.",
                        "Allowed are “procedure” and “authority”.",
                    ),
                ));
                true
            }
        };
        if !known {
            errors.push(FieldError::at_pointer(
                "/recipient/id",
                "unknown_recipient",
                Text::fixed(
                    "Kein Verfahren oder keine Behörde mit dieser Kennung.",
                    "No procedure or authority with this id.",
                ),
            ));
        }
        let mut unique = BTreeSet::new();
        for (i, attribute) in attributes.iter().enumerate() {
            if !SHAREABLE.contains(&attribute.as_str()) {
                errors.push(FieldError::at_pointer(
                    format!("/attributes/{i}"),
                    "not_allowed",
                    Text::new(
                        format!("Erlaubt sind: {}.", SHAREABLE.join(", ")),
                        format!("Allowed are: {}.", SHAREABLE.join(", ")),
                    ),
                ));
            }
            unique.insert(attribute.clone());
        }
        if attributes.is_empty() {
            errors.push(FieldError::at_pointer(
                "/attributes",
                "too_few_items",
                Text::fixed("Mindestens ein Merkmal.", "At least one attribute."),
            ));
        }
        if !errors.is_empty() {
            return Err(AccountError::Validation(errors));
        }
        let now = self.now();
        let (account_id, kind, recipient) = (
            account_id.to_owned(),
            recipient_kind.to_owned(),
            recipient_id.to_owned(),
        );
        self.db
            .write(move |conn| {
                let id = amtsweg_kernel::id::new_id();
                let list = unique.into_iter().collect::<Vec<_>>().join(",");
                diesel::insert_into(consents::table)
                    .values((
                        consents::id.eq(&id),
                        consents::account_id.eq(&account_id),
                        consents::recipient_kind.eq(&kind),
                        consents::recipient_id.eq(&recipient),
                        consents::attributes.eq(&list),
                        consents::granted_at.eq(ts(now)),
                    ))
                    .execute(conn)?;
                trail(
                    conn,
                    &actor_for(Realm::Citizen, &account_id, &meta),
                    &account_id,
                    "consent_granted",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                Ok(consent_view((id, kind, recipient, list, ts(now), None)))
            })
            .await
    }

    pub async fn consents(&self, account_id: &str) -> Result<Vec<ConsentView>, AccountError> {
        let id = account_id.to_owned();
        self.db
            .read(move |conn| {
                let rows = consents::table
                    .filter(consents::account_id.eq(&id))
                    .order(consents::granted_at.desc())
                    .select((
                        consents::id,
                        consents::recipient_kind,
                        consents::recipient_id,
                        consents::attributes,
                        consents::granted_at,
                        consents::revoked_at,
                    ))
                    .load(conn)?;
                Ok(rows.into_iter().map(consent_view).collect())
            })
            .await
    }

    /// Revokes one of the caller's consents; someone else's consent is "not found".
    pub async fn revoke_consent(
        &self,
        account_id: &str,
        consent_id: &str,
        meta: Meta,
    ) -> Result<ConsentView, AccountError> {
        let now = self.now();
        let (account_id, consent_id) = (account_id.to_owned(), consent_id.to_owned());
        self.db
            .write(move |conn| {
                let own = consents::table
                    .find(&consent_id)
                    .filter(consents::account_id.eq(&account_id));
                let row: Option<(
                    String,
                    String,
                    String,
                    String,
                    NaiveDateTime,
                    Option<NaiveDateTime>,
                )> = own
                    .select((
                        consents::id,
                        consents::recipient_kind,
                        consents::recipient_id,
                        consents::attributes,
                        consents::granted_at,
                        consents::revoked_at,
                    ))
                    .first(conn)
                    .optional()?;
                let Some(mut row) = row else {
                    return Err(not_found_consent());
                };
                if row.5.is_none() {
                    diesel::update(own)
                        .set(consents::revoked_at.eq(ts(now)))
                        .execute(conn)?;
                    row.5 = Some(ts(now));
                    trail(
                        conn,
                        &actor_for(Realm::Citizen, &account_id, &meta),
                        &account_id,
                        "consent_revoked",
                        Outcome::Success,
                        &meta,
                        now,
                    )?;
                }
                Ok(consent_view(row))
            })
            .await
    }

    /// The account's security events, newest first.
    pub async fn security_events(
        &self,
        account_id: &str,
        page: PageRequest,
    ) -> Result<Page<SecurityEventView>, AccountError> {
        let id = account_id.to_owned();
        self.db
            .read(move |conn| {
                let mut query = security_events::table
                    .filter(security_events::account_id.eq(&id))
                    .into_boxed();
                if let Some(before) = &page.after {
                    query = query.filter(security_events::id.lt(before.clone()));
                }
                let limit = i64::try_from(page.limit + 1).unwrap_or(101);
                let rows: Vec<EventRow> = query
                    .order(security_events::id.desc())
                    .limit(limit)
                    .select((
                        security_events::id,
                        security_events::at,
                        security_events::kind,
                        security_events::address,
                        security_events::user_agent,
                    ))
                    .load(conn)?;
                let items = rows
                    .into_iter()
                    .map(|e| SecurityEventView {
                        id: e.id,
                        at: stamp(e.at),
                        kind: e.kind,
                        address: e.address,
                        user_agent: e.user_agent,
                    })
                    .collect();
                Ok(Page::from_overfetched(
                    items,
                    page.limit,
                    |e: &SecurityEventView| e.id.clone(),
                ))
            })
            .await
    }
}

pub(crate) const PROFILE_FIELDS: [&str; 9] = FIELDS;
