//! The migrations are embedded at compile time. A new or changed migration must rebuild this crate, also when
//! `cargo check` already re-ran this script (Cargo then considers the script's run fresh for `cargo build`): so the
//! script hands the crate a fingerprint of every migration file as an environment variable the crate reads, and
//! rustc's dependency tracking rebuilds the crate whenever the fingerprint changes.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }
}

fn main() {
    let root = Path::new("../../migrations");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut all = Vec::new();
    files(root, &mut all);
    all.sort();
    let mut hasher = DefaultHasher::new();
    for file in &all {
        file.hash(&mut hasher);
        std::fs::read(file).unwrap_or_default().hash(&mut hasher);
    }
    println!(
        "cargo:rustc-env=AMTSWEG_MIGRATIONS_FINGERPRINT={:016x}",
        hasher.finish()
    );
}
