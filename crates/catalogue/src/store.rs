//! The record of every procedure version ever loaded (`procedure_versions`), owned by the catalogue alone.

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;

use crate::catalogue::Catalogue;

diesel::table! {
    procedure_versions (procedure_id, version) {
        procedure_id -> Text,
        version -> Integer,
        content_hash -> Text,
        definition -> Text,
        loaded_at -> Timestamp,
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = procedure_versions)]
pub struct VersionRecord {
    pub procedure_id: String,
    pub version: i32,
    pub content_hash: String,
    pub loaded_at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// Files whose content conflicts with what was recorded before: (procedure, reason).
    #[error("{}", .0.iter().map(|(id, why)| format!("{id}: {why}")).collect::<Vec<_>>().join("; "))]
    Conflicts(Vec<(String, String)>),
}

impl From<diesel::result::Error> for RecordError {
    fn from(err: diesel::result::Error) -> Self {
        RecordError::Db(DbError::from(err))
    }
}

/// Records each procedure version not seen before. An unchanged file records nothing; a changed file that kept
/// its version, or a version older than one already recorded, is refused and nothing is written.
/// Returns the `(id, version)` pairs recorded now.
pub fn record_versions(
    conn: &mut DbConnection,
    catalogue: &Catalogue,
    now: Timestamp,
) -> Result<Vec<(String, u32)>, RecordError> {
    use procedure_versions::dsl;
    let known: Vec<(String, i32, String)> = dsl::procedure_versions
        .select((dsl::procedure_id, dsl::version, dsl::content_hash))
        .load(conn)?;
    let mut conflicts = Vec::new();
    let mut fresh = Vec::new();
    for loaded in catalogue.iter() {
        let p = &loaded.procedure;
        let version = i32::try_from(p.version).unwrap_or(i32::MAX);
        let same_id: Vec<_> = known.iter().filter(|(id, _, _)| id == &p.id).collect();
        match same_id.iter().find(|(_, v, _)| *v == version) {
            Some((_, _, hash)) if *hash == loaded.content_hash => {}
            Some(_) => conflicts.push((
                p.id.clone(),
                format!("version {version} was loaded before with other content; raise `version` to publish a change"),
            )),
            None => match same_id.iter().map(|(_, v, _)| *v).max() {
                Some(newest) if newest > version => conflicts.push((
                    p.id.clone(),
                    format!("version {version} is older than the recorded version {newest}"),
                )),
                _ => fresh.push(loaded.clone()),
            },
        }
    }
    if !conflicts.is_empty() {
        return Err(RecordError::Conflicts(conflicts));
    }
    let mut recorded = Vec::new();
    for loaded in fresh {
        let p = &loaded.procedure;
        diesel::insert_into(dsl::procedure_versions)
            .values((
                dsl::procedure_id.eq(&p.id),
                dsl::version.eq(i32::try_from(p.version).unwrap_or(i32::MAX)),
                dsl::content_hash.eq(&loaded.content_hash),
                dsl::definition.eq(&loaded.canonical_json),
                dsl::loaded_at.eq(now),
            ))
            .execute(conn)?;
        recorded.push((p.id.clone(), p.version));
    }
    Ok(recorded)
}

/// Every recorded version of a procedure, newest first.
pub fn versions_of(conn: &mut DbConnection, id: &str) -> Result<Vec<VersionRecord>, DbError> {
    use procedure_versions::dsl;
    Ok(dsl::procedure_versions
        .filter(dsl::procedure_id.eq(id))
        .order(dsl::version.desc())
        .select(VersionRecord::as_select())
        .load(conn)?)
}

/// The recorded definition (canonical JSON) of one version, for applications pinned to it.
pub fn definition_of(conn: &mut DbConnection, id: &str, version: u32) -> Result<Option<String>, DbError> {
    use procedure_versions::dsl;
    Ok(dsl::procedure_versions
        .filter(dsl::procedure_id.eq(id))
        .filter(dsl::version.eq(i32::try_from(version).unwrap_or(i32::MAX)))
        .select(dsl::definition)
        .first(conn)
        .optional()?)
}
