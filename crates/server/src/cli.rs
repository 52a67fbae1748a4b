//! The command line of the `amtsweg` binary.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "amtsweg",
    version,
    about = "Amtsweg — online applications, processing and payment for a city administration",
    long_about = "Amtsweg — online applications, processing and payment for a city administration.\n\n\
        Configuration comes from built-in defaults, then --config FILE (TOML), then environment variables \
        AMTSWEG__SECTION__KEY (e.g. AMTSWEG__DATABASE__URL=postgres://…). Without any, the service runs on SQLite \
        in ./data."
)]
pub struct Cli {
    /// TOML configuration file, applied over the defaults and under the environment.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service: applies migrations, loads the catalogue, serves the API (and /docs) until SIGTERM or
    /// SIGINT, letting in-flight requests finish.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write the OpenAPI 3.1 document of the API (stdout unless --output is given).
    Openapi {
        /// File to write, e.g. openapi/openapi.json.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Work with the procedure catalogue.
    Catalogue {
        #[command(subcommand)]
        command: CatalogueCommand,
    },
    /// Work with workflow definitions.
    Workflow {
        #[command(subcommand)]
        command: WorkflowCommand,
    },
    /// Manage staff accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Manage API clients of specialised procedures.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Back up the database and the stored files into a new directory while the service runs (SQLite: VACUUM
    /// INTO; PostgreSQL: pg_dump from one snapshot). The key-encryption key is never included: keep it apart.
    Backup {
        /// A directory that does not exist yet (or is empty).
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
    },
    /// Restore a backup into the configured, still empty database (a SQLite file that does not exist yet, or an
    /// empty PostgreSQL database) and data directory; then checks the audit log. The key-encryption key must be
    /// restored separately (keys.encryption_key_file) before `serve`.
    Restore {
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// Check the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Validate a procedures directory without starting anything or touching a database. Reports every problem
    /// as FILE: PATH: REASON and exits non-zero when there is one.
    Check {
        /// Directory of procedure definitions (*.yaml).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Check a workflows directory without starting anything: unknown states, unreachable states, no terminal
    /// state, dead ends, unknown roles, guards and effects, timers without a target, and procedures naming a
    /// workflow that is not there. Reports every problem as FILE: PATH: REASON and exits non-zero when there is one.
    Check {
        /// Directory of workflow definitions (*.yaml).
        dir: PathBuf,
        /// The procedures whose `workflow:` must exist (default: ./procedures if present, else the shipped ones).
        #[arg(long, value_name = "DIR")]
        procedures: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Create a staff account and print its one-time initial password. TOTP is set up at the first login.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// ROLE or ROLE:UNIT, repeatable; roles: case_worker, supervisor, catalogue_admin, system_admin.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// de or en.
        #[arg(long, default_value = "de")]
        language: amtsweg_kernel::Lang,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an API client and print its client_id and secret (shown only now).
    Add {
        #[arg(long)]
        name: String,
        /// procedures:read, applications:read:PROCEDURE or applications:write:PROCEDURE; repeatable.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; print the first broken link and exit non-zero if there is one.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Sign new tokens with a fresh key; the old one verifies until its tokens have expired.
    Rotate,
    /// Re-encrypt every stored signing key under a new key-encryption key (from FILE, generated there if it does
    /// not exist), in one transaction. Afterwards set keys.encryption_key_file to FILE.
    Rewrap {
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}
