//! Every workflow version ever loaded (`workflow_versions`): a case runs to its end under the definition it was
//! submitted with, found by the hash recorded with the case, however many versions are published after it.
//! Recording follows the catalogue's rule: an unchanged file records nothing; a changed file that kept its
//! `version`, or a version older than one recorded, stops the start and nothing is written.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use amtsweg_workflow::{Definition, LoadedWorkflow, Workflows};
use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;

diesel::table! {
    workflow_versions (workflow_id, version) {
        workflow_id -> Text,
        version -> Integer,
        sha256 -> Text,
        definition -> Text,
        loaded_at -> Timestamp,
    }
}

/// Why the workflows cannot be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// Files whose content conflicts with what was recorded before, one line each.
    #[error("{}", .0.join("; "))]
    Conflicts(Vec<String>),
}

impl From<diesel::result::Error> for RecordError {
    fn from(err: diesel::result::Error) -> Self {
        RecordError::Db(DbError::from(err))
    }
}

/// Records the loaded versions not seen before; returns `(id, version)` of those recorded now.
pub(crate) fn record(
    conn: &mut DbConnection,
    workflows: &Workflows,
    now: Timestamp,
) -> Result<Vec<(String, u32)>, RecordError> {
    use workflow_versions::dsl;
    let known: Vec<(String, i32, String)> = dsl::workflow_versions
        .select((dsl::workflow_id, dsl::version, dsl::sha256))
        .load(conn)?;
    let mut conflicts = Vec::new();
    let mut fresh = Vec::new();
    for loaded in workflows.iter() {
        let definition = &loaded.definition;
        let version = i32::try_from(definition.version).unwrap_or(i32::MAX);
        let same_id: Vec<_> = known.iter().filter(|(id, _, _)| *id == definition.id).collect();
        match same_id.iter().find(|(_, v, _)| *v == version) {
            Some((_, _, hash)) if *hash == loaded.sha256 => {}
            Some(_) => conflicts.push(format!(
                "workflow {:?}: version {version} was loaded before with other content; raise `version` to publish a change",
                definition.id
            )),
            None => match same_id.iter().map(|(_, v, _)| *v).max() {
                Some(newest) if newest > version => conflicts.push(format!(
                    "workflow {:?}: version {version} is older than the recorded version {newest}",
                    definition.id
                )),
                _ => fresh.push(loaded),
            },
        }
    }
    if !conflicts.is_empty() {
        return Err(RecordError::Conflicts(conflicts));
    }
    let mut recorded = Vec::new();
    for loaded in fresh {
        let definition = &loaded.definition;
        // Two instances starting at once may both record it: the second finds the row (in a savepoint, so its
        // transaction goes on) and leaves it.
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(dsl::workflow_versions)
                .values((
                    dsl::workflow_id.eq(&definition.id),
                    dsl::version.eq(i32::try_from(definition.version).unwrap_or(i32::MAX)),
                    dsl::sha256.eq(&loaded.sha256),
                    dsl::definition.eq(loaded.canonical_json()),
                    dsl::loaded_at.eq(now),
                ))
                .execute(conn)
        });
        match inserted {
            Ok(_) => recorded.push((definition.id.clone(), definition.version)),
            Err(diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(recorded)
}

/// The definitions cases are pinned to, by hash: the loaded ones, and older versions read from the record when a
/// case first needs them.
#[derive(Default)]
pub(crate) struct Pinned {
    by_hash: RwLock<HashMap<String, Arc<Definition>>>,
}

impl Pinned {
    pub(crate) fn new(workflows: &Workflows) -> Pinned {
        Pinned {
            by_hash: RwLock::new(
                workflows
                    .iter()
                    .map(|w| (w.sha256.clone(), w.definition.clone()))
                    .collect(),
            ),
        }
    }

    /// The definition with this hash; `None` when it was never recorded.
    pub(crate) fn get(
        &self,
        conn: &mut DbConnection,
        sha256: &str,
    ) -> Result<Option<Arc<Definition>>, DbError> {
        if let Some(found) = self.by_hash.read().ok().and_then(|map| map.get(sha256).cloned()) {
            return Ok(Some(found));
        }
        use workflow_versions::dsl;
        let recorded: Option<String> = dsl::workflow_versions
            .filter(dsl::sha256.eq(sha256))
            .select(dsl::definition)
            .first(conn)
            .optional()?;
        let Some(json) = recorded else {
            return Ok(None);
        };
        let loaded = LoadedWorkflow::from_recorded(&json).map_err(DbError::Task)?;
        if loaded.sha256 != sha256 {
            return Err(DbError::Task(format!(
                "the recorded workflow version {sha256} no longer matches its hash"
            )));
        }
        if let Ok(mut map) = self.by_hash.write() {
            map.insert(loaded.sha256.clone(), loaded.definition.clone());
        }
        Ok(Some(loaded.definition))
    }
}
