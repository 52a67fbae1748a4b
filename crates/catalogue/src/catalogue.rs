//! The loaded catalogue, held in memory: procedures are read at start-up and change only with a restart, so lists
//! and lookups never touch the database.

use std::collections::BTreeMap;
use std::sync::Arc;

use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{FieldError, TrustLevel};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::fee::{self, FeeError};
use crate::domain::{CompiledForm, FeeAssessment, Procedure};

#[derive(Debug)]
pub struct LoadedProcedure {
    pub procedure: Procedure,
    /// SHA-256 of the canonical JSON of the definition: formatting and comments in the file do not change it.
    pub content_hash: String,
    /// The definition as canonical JSON, as recorded in the database.
    pub canonical_json: String,
    form: CompiledForm,
    search_text: String,
}

impl LoadedProcedure {
    pub fn new(procedure: Procedure, form: CompiledForm) -> Result<LoadedProcedure, String> {
        let value = serde_json::to_value(&procedure).map_err(|err| err.to_string())?;
        let canonical_json = canonical(&value);
        let content_hash = hex::encode(Sha256::digest(canonical_json.as_bytes()));
        let p = &procedure;
        let search_text = [
            p.id.as_str(),
            &p.leika_key,
            &p.title.de,
            &p.title.en,
            &p.description.de,
            &p.description.en,
            &p.unit.name.de,
            &p.unit.name.en,
            &p.keywords.join(" "),
        ]
        .join("\n")
        .to_lowercase();
        Ok(LoadedProcedure {
            procedure,
            content_hash,
            canonical_json,
            form,
            search_text,
        })
    }

    pub fn id(&self) -> &str {
        &self.procedure.id
    }

    /// Every violation of the form by `payload`; empty when it is valid.
    pub fn violations(&self, payload: &Value) -> Vec<FieldError> {
        if self.form.is_valid(payload) {
            Vec::new()
        } else {
            self.form.violations(payload)
        }
    }

    pub fn assess_fee(&self, payload: &Value) -> Result<FeeAssessment, FeeError> {
        fee::assess(&self.procedure.fees, payload)
    }
}

/// JSON with object keys sorted at every level and no insignificant white space.
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: BTreeMap<&String, Value> = map.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = serde_json::Map::new();
                for (key, value) in ordered {
                    out.insert(key.clone(), value);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Words that must all occur in id, LeiKa key, titles, descriptions, unit or keywords (any case).
    pub text: Option<String>,
    pub unit: Option<String>,
    pub trust_level: Option<TrustLevel>,
    pub max_trust_level: Option<TrustLevel>,
}

#[derive(Debug, Default)]
pub struct Catalogue {
    procedures: BTreeMap<String, Arc<LoadedProcedure>>,
}

impl Catalogue {
    pub fn new(procedures: Vec<LoadedProcedure>) -> Catalogue {
        Catalogue {
            procedures: procedures
                .into_iter()
                .map(|p| (p.procedure.id.clone(), Arc::new(p)))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.procedures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procedures.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<Arc<LoadedProcedure>> {
        self.procedures.get(id).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedProcedure>> {
        self.procedures.values()
    }

    /// Procedures matching `filter`, ordered by id, one page at a time.
    pub fn list(&self, filter: &ListFilter, page: &PageRequest) -> Page<Arc<LoadedProcedure>> {
        let words: Vec<String> = filter
            .text
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let start = match &page.after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let matching = self
            .procedures
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, p)| p)
            .filter(|p| {
                filter
                    .unit
                    .as_ref()
                    .is_none_or(|unit| &p.procedure.unit.id == unit)
            })
            .filter(|p| {
                filter
                    .trust_level
                    .is_none_or(|level| p.procedure.trust_level == level)
            })
            .filter(|p| {
                filter
                    .max_trust_level
                    .is_none_or(|level| p.procedure.trust_level <= level)
            })
            .filter(|p| words.iter().all(|word| p.search_text.contains(word.as_str())))
            .take(page.limit + 1)
            .cloned()
            .collect();
        Page::from_overfetched(matching, page.limit, |p| p.procedure.id.clone())
    }
}
