//! What other modules may ask about accounts, inside their own transaction: whom to write to, in which language and
//! under which name, and who acts for an organisation. The account tables stay the account module's.

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::{Lang, Timestamp};
use diesel::prelude::*;

use crate::store::schema::{accounts, consents, eid_assertions, organisation_members, profiles};

/// The eID provider's assertion behind a session opened with the eID card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EidAssertion {
    pub issuer: String,
    /// The provider's stable subject of the card holder.
    pub subject: String,
    /// The level the provider asserted (`acr`), as it named it.
    pub acr: Option<String>,
    /// The signed ID token, verifiable later against the provider's keys.
    pub id_token: String,
    pub authenticated_at: Timestamp,
}

/// The eID assertion of an account's session; `None` when the session was not opened with the eID.
pub fn eid_assertion(
    conn: &mut DbConnection,
    account_id: &str,
    session_id: &str,
) -> Result<Option<EidAssertion>, DbError> {
    let found: Option<(String, String, Option<String>, String, Timestamp)> = eid_assertions::table
        .find(session_id)
        .filter(eid_assertions::account_id.eq(account_id))
        .select((
            eid_assertions::issuer,
            eid_assertions::subject,
            eid_assertions::acr,
            eid_assertions::id_token,
            eid_assertions::authenticated_at,
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(
        |(issuer, subject, acr, id_token, authenticated_at)| EidAssertion {
            issuer,
            subject,
            acr,
            id_token,
            authenticated_at,
        },
    ))
}

/// How to address an account holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Absent for organisations (their members are written to) and accounts without an address.
    pub email: Option<String>,
    pub lang: Lang,
    /// The display name (a person's chosen name, an organisation's name).
    pub name: String,
    /// `person` or `organisation`.
    pub kind: String,
}

/// The contact of an active or pending account; `None` when there is no such account.
pub fn contact(conn: &mut DbConnection, account_id: &str) -> Result<Option<Contact>, DbError> {
    let found: Option<(Option<String>, Lang, String, String)> = accounts::table
        .find(account_id)
        .filter(accounts::status.ne("deactivated"))
        .select((
            accounts::email,
            accounts::preferred_language,
            accounts::display_name,
            accounts::kind,
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(|(email, lang, name, kind)| Contact {
        email,
        lang,
        name,
        kind,
    }))
}

/// Whether `person` is a member (any role) of `organisation`.
pub fn is_member(conn: &mut DbConnection, organisation: &str, person: &str) -> Result<bool, DbError> {
    let count: i64 = organisation_members::table
        .filter(organisation_members::organisation_id.eq(organisation))
        .filter(organisation_members::account_id.eq(person))
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

/// The organisations `person` acts for.
pub fn organisations_of(conn: &mut DbConnection, person: &str) -> Result<Vec<String>, DbError> {
    Ok(organisation_members::table
        .filter(organisation_members::account_id.eq(person))
        .select(organisation_members::organisation_id)
        .load(conn)?)
}

/// The roles an active member of staff holds in `unit` (directly or for every unit, `*`).
pub fn staff_roles_in(conn: &mut DbConnection, staff_id: &str, unit: &str) -> Result<Vec<String>, DbError> {
    use crate::store::schema::staff_roles;
    let active: i64 = accounts::table
        .find(staff_id)
        .filter(accounts::realm.eq("staff"))
        .filter(accounts::status.eq("active"))
        .count()
        .get_result(conn)?;
    if active == 0 {
        return Ok(Vec::new());
    }
    Ok(staff_roles::table
        .filter(staff_roles::account_id.eq(staff_id))
        .filter(staff_roles::unit.eq(unit).or(staff_roles::unit.eq("*")))
        .select(staff_roles::role)
        .load(conn)?)
}

/// The attributes of a profile that can be shared, by the names procedures use in `prefill:` — the consent
/// attribute `address` covers its parts.
pub const PREFILL_ATTRIBUTES: [&str; 10] = [
    "given_name",
    "family_name",
    "date_of_birth",
    "address.street",
    "address.house_number",
    "address.postal_code",
    "address.city",
    "address.country",
    "phone",
    "email",
];

/// The consent's id and the attributes shared under it, by name.
pub type SharedProfile = (String, Vec<(&'static str, String)>);

/// Profile values the account holder consented to share with a procedure (or with its authority, by AGS), with
/// the consent that covers them; `None` without such a consent. Values the profile lacks are left out.
pub fn shared_profile(
    conn: &mut DbConnection,
    account_id: &str,
    procedure_id: &str,
    authority_ags: &str,
) -> Result<Option<SharedProfile>, DbError> {
    let consent: Option<(String, String)> = consents::table
        .filter(consents::account_id.eq(account_id))
        .filter(consents::revoked_at.is_null())
        .filter(
            consents::recipient_kind
                .eq("procedure")
                .and(consents::recipient_id.eq(procedure_id))
                .or(consents::recipient_kind
                    .eq("authority")
                    .and(consents::recipient_id.eq(authority_ags))),
        )
        .order(consents::granted_at.desc())
        .select((consents::id, consents::attributes))
        .first(conn)
        .optional()?;
    let Some((consent_id, granted)) = consent else {
        return Ok(None);
    };
    let granted: Vec<&str> = granted.split(',').filter(|a| !a.is_empty()).collect();
    #[allow(clippy::type_complexity, reason = "one row of the profile")]
    let profile: Option<(
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    )> = profiles::table
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
        ))
        .first(conn)
        .optional()?;
    let email: Option<String> = accounts::table
        .find(account_id)
        .select(accounts::email)
        .first(conn)
        .optional()?
        .flatten();
    let (given, family, born, street, number, postal, city, country, phone) = profile.unwrap_or_default();
    let values = [
        ("given_name", "given_name", given),
        ("family_name", "family_name", family),
        ("date_of_birth", "date_of_birth", born),
        ("address.street", "address", street),
        ("address.house_number", "address", number),
        ("address.postal_code", "address", postal),
        ("address.city", "address", city),
        ("address.country", "address", country),
        ("phone", "phone", phone),
        ("email", "email", email),
    ];
    let shared = values
        .into_iter()
        .filter(|(_, consented_as, _)| granted.contains(consented_as))
        .filter_map(|(name, _, value)| value.map(|value| (name, value)))
        .collect();
    Ok(Some((consent_id, shared)))
}

/// The consent in force to receive administrative acts electronically: (its id, when it was given); `None`
/// without one — the decision then goes out on paper.
pub fn electronic_delivery(
    conn: &mut DbConnection,
    account_id: &str,
) -> Result<Option<(String, Timestamp)>, DbError> {
    Ok(crate::service::delivery_consent_in_force(conn, account_id)?.map(|r| (r.id, r.granted_at)))
}

/// The postal address lines of an account holder for a letter (name, street, town, country abroad); empty when
/// the profile has no address.
pub fn postal_address(conn: &mut DbConnection, account_id: &str) -> Result<Vec<String>, DbError> {
    #[allow(clippy::type_complexity, reason = "one row of the profile")]
    let found: Option<(
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    )> = profiles::table
        .find(account_id)
        .select((
            profiles::given_name,
            profiles::family_name,
            profiles::street,
            profiles::house_number,
            profiles::postal_code,
            profiles::city,
            profiles::country,
        ))
        .first(conn)
        .optional()?;
    let Some((given, family, street, number, postal, city, country)) = found else {
        return Ok(Vec::new());
    };
    let (Some(street), Some(postal), Some(city)) = (street, postal, city) else {
        return Ok(Vec::new());
    };
    let name = match (given, family) {
        (Some(given), Some(family)) => format!("{given} {family}"),
        (given, family) => given.or(family).unwrap_or_default(),
    };
    let mut lines = vec![
        name,
        format!("{street} {}", number.unwrap_or_default())
            .trim()
            .to_owned(),
        format!("{postal} {city}"),
    ];
    if let Some(country) = country.filter(|c| !c.eq_ignore_ascii_case("DE") && !c.is_empty()) {
        lines.push(country.to_uppercase());
    }
    lines.retain(|line| !line.is_empty());
    Ok(lines)
}

/// The scopes an API client holds now; `None` when there is no such client or it is disabled (its deliveries and
/// subscriptions stop).
pub fn client_scopes(conn: &mut DbConnection, client_id: &str) -> Result<Option<Vec<String>>, DbError> {
    use crate::store::schema::api_clients;
    let row: Option<(String, Option<Timestamp>)> = api_clients::table
        .find(client_id)
        .select((api_clients::scopes, api_clients::disabled_at))
        .first(conn)
        .optional()?;
    Ok(row
        .filter(|(_, disabled)| disabled.is_none())
        .map(|(scopes, _)| scopes.split_whitespace().map(str::to_owned).collect()))
}
