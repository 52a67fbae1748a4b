//! Reading `procedures/*.yaml`. A broken file is reported with the file, the path inside it and the reason; every
//! file is read so that one run shows every mistake.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::catalogue::{Catalogue, LoadedProcedure};
use crate::domain::Procedure;
use crate::domain::check;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    /// Path inside the document, e.g. `fees[0].booking.buchungstext`; empty for the file as a whole.
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

fn whole_file(file: &Path, reason: impl Into<String>) -> LoadError {
    LoadError {
        file: file.to_owned(),
        path: String::new(),
        reason: reason.into(),
    }
}

/// Loads every `*.yaml` / `*.yml` file of `dir` (not recursively), in name order.
pub fn load_dir(dir: &Path) -> Result<Catalogue, Vec<LoadError>> {
    let entries = std::fs::read_dir(dir).map_err(|err| {
        vec![whole_file(
            dir,
            format!("cannot read the catalogue directory: {err}"),
        )]
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file() && matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();

    let mut procedures = Vec::new();
    let mut errors = Vec::new();
    let mut ids: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match load_file(&file) {
            Ok(procedure) => {
                let id = procedure.procedure.id.clone();
                if let Some(first) = ids.get(&id) {
                    errors.push(LoadError {
                        file: file.clone(),
                        path: "id".into(),
                        reason: format!("`{id}` is already defined in {}", first.display()),
                    });
                } else {
                    ids.insert(id, file);
                    procedures.push(procedure);
                }
            }
            Err(mut found) => errors.append(&mut found),
        }
    }
    if errors.is_empty() {
        Ok(Catalogue::new(procedures))
    } else {
        Err(errors)
    }
}

pub fn load_file(file: &Path) -> Result<LoadedProcedure, Vec<LoadError>> {
    let bytes = std::fs::read(file).map_err(|err| vec![whole_file(file, format!("cannot read: {err}"))])?;
    let text = String::from_utf8(bytes).map_err(|_| vec![whole_file(file, "is not UTF-8 text")])?;
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    parse(&text, stem).map_err(|issues| {
        issues
            .into_iter()
            .map(|(path, reason)| LoadError {
                file: file.to_owned(),
                path,
                reason,
            })
            .collect()
    })
}

/// Parses and checks one procedure document; `file_stem` is what the id must equal.
pub fn parse(text: &str, file_stem: &str) -> Result<LoadedProcedure, Vec<(String, String)>> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    let procedure: Procedure = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let reason = err.into_inner().to_string();
        // serde_yaml_ng starts some messages with (part of) the path; say it once.
        let reason = match reason.split_once(": ") {
            Some((head, rest)) if !head.contains(' ') && !head.is_empty() && path.starts_with(head) => {
                rest.to_owned()
            }
            _ => reason,
        };
        vec![(path, reason)]
    })?;
    let form = check::check(&procedure, file_stem).map_err(|issues| {
        issues
            .into_iter()
            .map(|issue| (issue.path, issue.reason))
            .collect::<Vec<_>>()
    })?;
    LoadedProcedure::new(procedure, form).map_err(|reason| vec![(String::new(), reason)])
}
