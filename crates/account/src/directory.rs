//! What other modules may ask about accounts, inside their own transaction: whom to write to, in which language and
//! under which name, and who acts for an organisation. The account tables stay the account module's.

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Lang;
use diesel::prelude::*;

use crate::store::schema::{accounts, organisation_members};

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
