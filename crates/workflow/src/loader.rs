//! Reading workflow files: parse (serde refuses unknown members, effects and guards with their path), check the
//! definition as a whole, and record the SHA-256 of its canonical JSON so instances can pin the version.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::check::check;
use crate::definition::Definition;

/// A mistake in a workflow file: the file, the path inside it (empty for the file as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    pub path: String,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.path, self.reason)
        }
    }
}

/// A checked definition and the hash of its canonical JSON.
#[derive(Debug, Clone)]
pub struct LoadedWorkflow {
    pub definition: Arc<Definition>,
    pub sha256: String,
}

/// Every loaded workflow, by id.
#[derive(Debug, Clone, Default)]
pub struct Workflows {
    by_id: BTreeMap<String, LoadedWorkflow>,
}

impl Workflows {
    pub fn get(&self, id: &str) -> Option<&LoadedWorkflow> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &LoadedWorkflow> {
        self.by_id.values()
    }

    /// The procedures (id, `workflow:`) that name a workflow that is not here.
    pub fn missing_for<'a>(&self, procedures: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
        procedures
            .into_iter()
            .filter(|(_, workflow)| !self.by_id.contains_key(*workflow))
            .map(|(procedure, workflow)| {
                format!(
                    "procedure {procedure:?} names the workflow {workflow:?}, which does not exist (known: {})",
                    self.by_id.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect()
    }

    pub(crate) fn from_list(list: Vec<LoadedWorkflow>) -> Workflows {
        Workflows {
            by_id: list.into_iter().map(|w| (w.definition.id.clone(), w)).collect(),
        }
    }
}

/// Parses and checks one workflow document; `file_stem` is what the id must equal.
pub fn parse(
    text: &str,
    file_stem: &str,
    known_roles: &[&str],
) -> Result<LoadedWorkflow, Vec<(String, String)>> {
    // Through JSON values: YAML would want tags (`!notify x`) for enum variants with data; as JSON they are the
    // one-member maps the files use (`notify: x`).
    let value: serde_json::Value =
        serde_yaml_ng::from_str(text).map_err(|err| vec![(String::new(), err.to_string())])?;
    let definition: Definition = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        vec![(path, err.into_inner().to_string())]
    })?;
    let mut problems: Vec<(String, String)> = check(&definition, known_roles)
        .into_iter()
        .map(|problem| (problem.path, problem.reason))
        .collect();
    if definition.id != file_stem {
        problems.insert(
            0,
            (
                "id".into(),
                format!(
                    "the id {:?} must equal the file name {file_stem:?}",
                    definition.id
                ),
            ),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    LoadedWorkflow::of(definition).map_err(|err| vec![(String::new(), err.to_string())])
}

impl LoadedWorkflow {
    fn of(definition: Definition) -> Result<LoadedWorkflow, serde_json::Error> {
        let canonical = serde_json::to_vec(&definition)?;
        Ok(LoadedWorkflow {
            sha256: hex::encode(Sha256::digest(&canonical)),
            definition: Arc::new(definition),
        })
    }

    /// The canonical JSON the hash is taken over, as recorded for instances pinned to this version.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(&*self.definition).unwrap_or_default()
    }

    /// A version recorded earlier (its canonical JSON), for the cases pinned to it. It was checked when it was
    /// loaded from its file; the hash is taken again, so a record changed by hand is noticed.
    pub fn from_recorded(json: &str) -> Result<LoadedWorkflow, String> {
        let definition: Definition = serde_json::from_str(json).map_err(|err| err.to_string())?;
        LoadedWorkflow::of(definition).map_err(|err| err.to_string())
    }
}

/// Loads every `*.yaml` of `dir`; all mistakes of all files are reported together.
pub fn load_dir(dir: &Path, known_roles: &[&str]) -> Result<Workflows, Vec<LoadError>> {
    let whole_file = |file: &Path, reason: String| LoadError {
        file: file.to_owned(),
        path: String::new(),
        reason,
    };
    let entries =
        std::fs::read_dir(dir).map_err(|err| vec![whole_file(dir, format!("cannot read: {err}"))])?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let texts = files.into_iter().map(|file| {
        let text = std::fs::read_to_string(&file);
        (file, text)
    });
    let mut errors = Vec::new();
    let mut loaded = Vec::new();
    for (file, text) in texts {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        match text {
            Err(err) => errors.push(whole_file(&file, format!("cannot read: {err}"))),
            Ok(text) => collect(&mut loaded, &mut errors, &file, parse(&text, &stem, known_roles)),
        }
    }
    if loaded.is_empty() && errors.is_empty() {
        errors.push(whole_file(dir, "no workflow files (*.yaml)".into()));
    }
    if errors.is_empty() {
        Ok(Workflows::from_list(loaded))
    } else {
        Err(errors)
    }
}

pub(crate) fn collect(
    loaded: &mut Vec<LoadedWorkflow>,
    errors: &mut Vec<LoadError>,
    file: &Path,
    result: Result<LoadedWorkflow, Vec<(String, String)>>,
) {
    match result {
        Ok(workflow) => loaded.push(workflow),
        Err(problems) => errors.extend(problems.into_iter().map(|(path, reason)| LoadError {
            file: file.to_owned(),
            path,
            reason,
        })),
    }
}
