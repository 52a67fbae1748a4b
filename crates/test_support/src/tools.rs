//! External test peers that are installed on first use: aiosmtpd (PyPI) and oidc-provider (npm). Installation is
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

pub fn ensure_aiosmtpd() {
    let present = || {
        Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    ensure(
        &std::env::temp_dir().join("amtsweg-aiosmtpd.lock"),
        present,
        || {
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "aiosmtpd==1.4.6",
                ])
                .status()
                .expect("pip runs");
            assert!(status.success(), "installing aiosmtpd failed");
        },
    );
}

pub fn ensure_oidc_provider(dir: &Path) {
    let present = || dir.join("node_modules/oidc-provider/package.json").exists();
    ensure(&dir.join(".install.lock"), present, || {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "installing oidc-provider failed");
    });
}

pub fn ensure_moto() {
    let present = || {
        Command::new("python3")
            .args(["-c", "import moto.server, flask"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    ensure(&std::env::temp_dir().join("amtsweg-moto.lock"), present, || {
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "moto[server]==5.2.1",
            ])
            .status()
            .expect("pip runs");
        assert!(status.success(), "installing moto failed");
    });
}

pub fn ensure_pypdf() {
    let present = || {
        Command::new("python3")
            .args(["-c", "import pypdf"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    ensure(&std::env::temp_dir().join("amtsweg-pypdf.lock"), present, || {
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "pypdf==6.4.0",
            ])
            .status()
            .expect("pip runs");
        assert!(status.success(), "installing pypdf failed");
    });
}
