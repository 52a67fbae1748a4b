//! External test peers that are installed on first use: aiosmtpd, moto and pypdf (PyPI) and oidc-provider (npm). Installation is
//! serialised across the test processes that run in parallel.

use std::path::Path;
use std::process::Command;

/// Runs `install` once, under an exclusive lock on `lock_file`, unless `present` already holds.
fn ensure(lock_file: &Path, present: impl Fn() -> bool, install: impl Fn()) {
    if present() {
        return;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_file)
        .expect("lock file");
    lock.lock().expect("install lock");
    if !present() {
        install();
    }
    let _ = lock.unlock();
}

/// Installs a pinned PyPI package (`requirement`) unless `import` already succeeds in python3.
fn ensure_python(import: &str, requirement: &str) {
    let present = || {
        Command::new("python3")
            .args(["-c", &format!("import {import}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let name = requirement.split(['=', '[']).next().unwrap_or(requirement);
    ensure(
        &std::env::temp_dir().join(format!("amtsweg-{name}.lock")),
        present,
        || {
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    requirement,
                ])
                .status()
                .expect("pip runs");
            assert!(status.success(), "installing {requirement} failed");
        },
    );
}

pub fn ensure_aiosmtpd() {
    ensure_python("aiosmtpd", "aiosmtpd==1.4.6");
}

pub fn ensure_moto() {
    ensure_python("moto.server, flask", "moto[server]==5.2.1");
}

pub fn ensure_pypdf() {
    ensure_python("pypdf", "pypdf==6.4.0");
}

/// Installs a directory's npm packages (from its lock file) unless `marker` (a file under `node_modules`) is there.
fn ensure_npm(dir: &Path, marker: &str) {
    let present = || dir.join("node_modules").join(marker).exists();
    ensure(&dir.join(".install.lock"), present, || {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

pub fn ensure_oidc_provider(dir: &Path) {
    ensure_npm(dir, "oidc-provider/package.json");
}

/// Playwright (its core, no downloaded browsers) and axe-core for the portal's browser tests.
pub fn ensure_browser_tests(dir: &Path) {
    ensure_npm(dir, "playwright-core/package.json");
}
