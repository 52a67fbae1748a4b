//! The workflows compiled into the binary: `workflows/` as it was at build time, used when no workflow directory
//! is configured or present (like the shipped catalogue).

use std::path::PathBuf;

use crate::loader::{LoadError, Workflows, collect, parse};

/// File name and content of every shipped workflow. A test checks this against `workflows/`.
pub const SHIPPED: [(&str, &str); 5] = [
    (
        "automatische-auskunft.yaml",
        include_str!("../../../workflows/automatische-auskunft.yaml"),
    ),
    (
        "bauantrag.yaml",
        include_str!("../../../workflows/bauantrag.yaml"),
    ),
    (
        "platzvergabe.yaml",
        include_str!("../../../workflows/platzvergabe.yaml"),
    ),
    (
        "standard-pruefung.yaml",
        include_str!("../../../workflows/standard-pruefung.yaml"),
    ),
    (
        "steuerfestsetzung.yaml",
        include_str!("../../../workflows/steuerfestsetzung.yaml"),
    ),
];

/// Loads the shipped workflows, checked like files on disk.
pub fn load_shipped(known_roles: &[&str]) -> Result<Workflows, Vec<LoadError>> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in SHIPPED {
        let file = PathBuf::from(format!("(shipped) {name}"));
        collect(
            &mut loaded,
            &mut errors,
            &file,
            parse(text, name.trim_end_matches(".yaml"), known_roles),
        );
    }
    if errors.is_empty() {
        Ok(Workflows::from_list(loaded))
    } else {
        Err(errors)
    }
}
