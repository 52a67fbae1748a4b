//! The citizen's own profile for pre-filling forms ("once only"). Fields that came from an eID are verified and
//! cannot be edited by hand.

use std::collections::BTreeSet;

use amtsweg_audit::Outcome;
use amtsweg_kernel::{Checked, FieldError, Lang, Text, Timestamp, TrustLevel};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::login::Realm;
use super::register::check_name;
use super::{AccountService, Meta, actor_for, audit};
use crate::error::AccountError;
use crate::store;
use crate::store::schema::{accounts, eid_links, profiles};

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
    pub preferred_language: Lang,
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
    /// Cannot be cleared.
    #[schema(value_type = Lang)]
    pub preferred_language: Option<Option<Checked<Lang>>>,
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

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Ok(Some(Option::<T>::deserialize(deserializer)?))
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = profiles)]
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
        .select(ProfileRow::as_select())
        .first(conn)
        .optional()?)
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
                    created_at: account.created_at.rfc3339(),
                    deletion_flagged_at: account.deletion_flagged_at.map(Timestamp::rfc3339),
                    session_level,
                })
            })
            .await
    }

    /// Applies a merge patch; fields verified by eID cannot be changed by hand.
    pub async fn update_profile(
        &self,
        account_id: &str,
        mut patch: ProfilePatch,
        session_level: TrustLevel,
        meta: Meta,
    ) -> Result<ProfileView, AccountError> {
        let mut errors = Vec::new();
        if let Some(name) = &patch.name {
            check_name(&mut errors, "/name", name.as_deref().unwrap_or(""));
        }
        let language = patch.preferred_language.take().and_then(|language| {
            language
                .unwrap_or(Checked::Invalid(serde_json::Value::Null))
                .check(&mut errors, "/preferred_language")
        });
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
                if let Some(language) = language {
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
                    .set(profiles::updated_at.eq(now))
                    .execute(conn)?;
                diesel::update(accounts::table.find(&id))
                    .set(accounts::updated_at.eq(now))
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
}

pub(crate) const PROFILE_FIELDS: [&str; 9] = FIELDS;
