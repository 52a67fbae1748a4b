//! The catalogue compiled into the binary: the procedures of `procedures/` as they were at build time, used when
//! the binary runs where no catalogue directory is (a container, an installed package).

use std::path::PathBuf;

use crate::catalogue::Catalogue;
use crate::loader::{LoadError, parse};

/// File name and content of every shipped procedure. A test checks this against `procedures/`.
pub const SHIPPED: [(&str, &str); 6] = [
    (
        "baugenehmigung.yaml",
        include_str!("../../../procedures/baugenehmigung.yaml"),
    ),
    (
        "bewohnerparkausweis.yaml",
        include_str!("../../../procedures/bewohnerparkausweis.yaml"),
    ),
    (
        "gewerbeanmeldung.yaml",
        include_str!("../../../procedures/gewerbeanmeldung.yaml"),
    ),
    (
        "hundesteuer-anmeldung.yaml",
        include_str!("../../../procedures/hundesteuer-anmeldung.yaml"),
    ),
    (
        "kita-platz.yaml",
        include_str!("../../../procedures/kita-platz.yaml"),
    ),
    (
        "meldebescheinigung.yaml",
        include_str!("../../../procedures/meldebescheinigung.yaml"),
    ),
];

/// Loads the shipped catalogue, checked like files on disk.
pub fn load_shipped() -> Result<Catalogue, Vec<LoadError>> {
    let mut procedures = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in SHIPPED {
        let stem = name.trim_end_matches(".yaml");
        match parse(text, stem) {
            Ok(procedure) => procedures.push(procedure),
            Err(issues) => errors.extend(issues.into_iter().map(|(path, reason)| LoadError {
                file: PathBuf::from(format!("(shipped) {name}")),
                path,
                reason,
            })),
        }
    }
    if errors.is_empty() {
        Ok(Catalogue::new(procedures))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_is_the_procedures_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../procedures");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        on_disk.sort();
        let shipped: Vec<(String, String)> = SHIPPED
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
            .collect();
        assert_eq!(shipped, on_disk, "add new procedure files to SHIPPED");
        assert_eq!(load_shipped().unwrap().len(), SHIPPED.len());
    }
}
