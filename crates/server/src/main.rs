use std::io::Write;
use std::process::ExitCode;

use amtsweg_audit::Actor;
use amtsweg_server::app::{Dependencies, Services};
use amtsweg_server::cli::{
    AuditCommand, CatalogueCommand, Cli, ClientCommand, Command, KeysCommand, StaffCommand, WorkflowCommand,
};
use amtsweg_server::{Application, Settings, app, openapi, telemetry};
use clap::Parser;

/// jemalloc instead of glibc's malloc. Measured in a soak of the city-peak mix: with glibc, each of the ~40 threads
/// (actix workers, the blocking pool the database calls run on, the job runner) came to use one of up to 16 malloc
/// arenas, and free memory scattered over them kept resident memory growing while the memory in use stayed flat.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // One TLS crypto provider for everything (lettre, reqwest, the S3 client): aws-lc-rs, which reqwest and
    // object_store need anyway; ring is not compiled in.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("amtsweg: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(line: &str) {
    // The exit code carries success or failure; a closed stdout changes nothing about it.
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Catalogue {
            command: CatalogueCommand::Check { dir },
        } => Ok(check_catalogue(&dir)),
        Command::Workflow {
            command: WorkflowCommand::Check { dir, procedures },
        } => Ok(check_workflows(&dir, procedures)),
        Command::Openapi { output } => {
            let json = openapi::document_json()?;
            match output {
                Some(path) => std::fs::write(&path, json)?,
                None => std::io::stdout().write_all(json.as_bytes())?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(&settings.log);
            actix_web::rt::System::new().block_on(app::open_database(&settings))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(&settings.log);
            actix_web::rt::System::new().block_on(async move {
                let application = Application::build(settings).await?;
                application.run_until_stopped().await?;
                tracing::info!("stopped");
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Staff { command } => with_services(cli.config, |services| async move {
            let StaffCommand::Add {
                email,
                name,
                roles,
                language,
            } = command;
            let roles = roles
                .iter()
                .map(|r| amtsweg_account::service::StaffRole::parse(r))
                .collect();
            let created = services
                .accounts
                .create_staff(
                    Actor::system(),
                    amtsweg_account::service::NewStaffMember {
                        email,
                        name,
                        language: language.into(),
                        roles,
                        password: None,
                    },
                    amtsweg_db::nothing(),
                )
                .await
                .map_err(api)?;
            print(&format!(
                "created staff account {} ({})",
                created.id, created.email
            ));
            print(&format!("one-time password: {}", created.initial_password));
            services.jobs.run_due().await?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Client { command } => with_services(cli.config, |services| async move {
            let ClientCommand::Add { name, scopes } = command;
            let created = services
                .accounts
                .create_client(Actor::system(), &name, scopes, amtsweg_db::nothing())
                .await
                .map_err(api)?;
            print(&format!("client_id: {}", created.client_id));
            print(&format!("client_secret: {}", created.client_secret));
            print(&format!("scopes: {}", created.scopes.join(" ")));
            Ok(ExitCode::SUCCESS)
        }),
        Command::Backup { output } => with_database(cli.config, |settings, db| async move {
            let layout = amtsweg_server::backup::Layout {
                data_dir: &settings.storage.data_dir,
                files_url: settings.storage.files.url.as_deref(),
            };
            let manifest = amtsweg_server::backup::backup(&db, &layout, &output).await?;
            let object = output.display().to_string();
            db.write(move |conn| {
                amtsweg_audit::append(
                    conn,
                    &amtsweg_audit::Event {
                        actor: &Actor::system(),
                        action: "system.backup_made",
                        object: Some(("backup", &object)),
                        outcome: amtsweg_audit::Outcome::Success,
                        at: amtsweg_kernel::Clock::now(&amtsweg_kernel::SystemClock),
                    },
                )
            })
            .await?;
            print(&format!(
                "backup in {}: {} database, {} stored files ({} bytes){}",
                output.display(),
                manifest.backend,
                manifest.blobs,
                manifest.blob_bytes,
                match &manifest.files_elsewhere {
                    Some(store) => format!("; the files in {store} are not copied"),
                    None => String::new(),
                }
            ));
            print("the key-encryption key is not in the backup: keep keys.encryption_key_file apart from it");
            Ok(ExitCode::SUCCESS)
        }),
        Command::Restore { from } => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(&settings.log);
            let layout = amtsweg_server::backup::Layout {
                data_dir: &settings.storage.data_dir,
                files_url: settings.storage.files.url.as_deref(),
            };
            let manifest = amtsweg_server::backup::restore(&from, &settings.database_url()?, &layout)?;
            print(&format!(
                "restored the backup of {} ({} database, {} stored files)",
                manifest.created_at, manifest.backend, manifest.blobs
            ));
            let verified = actix_web::rt::System::new().block_on(async {
                let db = app::open_database(&settings).await?;
                anyhow::Ok(db.read(amtsweg_audit::verify).await?)
            })?;
            match verified.broken {
                None => {
                    print(&format!("audit log intact: {} entries", verified.rows));
                    print("restore the key-encryption key (keys.encryption_key_file) before `amtsweg serve`");
                    Ok(ExitCode::SUCCESS)
                }
                Some((seq, why)) => {
                    print(&format!("audit log broken at entry {seq}: {why}"));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => with_database(cli.config, |_, db| async move {
            let report = db.read(amtsweg_audit::verify).await?;
            match report.broken {
                None => {
                    print(&format!("audit log intact: {} entries", report.rows));
                    Ok(ExitCode::SUCCESS)
                }
                Some((seq, why)) => {
                    print(&format!(
                        "audit log broken at entry {seq}: {why} ({} entries verified before it)",
                        report.rows
                    ));
                    Ok(ExitCode::FAILURE)
                }
            }
        }),
        Command::Keys {
            command: KeysCommand::Rewrap { new_key_file },
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(&settings.log);
            let (moved, id) = actix_web::rt::System::new().block_on(async {
                let db = app::open_database(&settings).await?;
                amtsweg_server::keys::rewrap_to(&settings, &db, new_key_file.clone()).await
            })?;
            print(&format!(
                "re-wrapped {moved} signing key(s) under key-encryption key {id}; now set keys.encryption_key_file = {}",
                new_key_file.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => with_database(cli.config, |settings, db| async move {
            let kek = amtsweg_server::keys::key_encryption_key(&settings, &db).await?;
            let now = amtsweg_kernel::Clock::now(&amtsweg_kernel::SystemClock);
            let keys = amtsweg_auth::KeyRing::start(db.clone(), kek, now).await?;
            let kid = keys.rotate(now, settings.account.retired_key_grace()).await?;
            let object = kid.clone();
            db.write(move |conn| {
                amtsweg_audit::append(
                    conn,
                    &amtsweg_audit::Event {
                        actor: &Actor::system(),
                        action: "keys.rotated",
                        object: Some(("signing_key", &object)),
                        outcome: amtsweg_audit::Outcome::Success,
                        at: now,
                    },
                )
            })
            .await?;
            print(&format!("signing with new key {kid}"));
            Ok(ExitCode::SUCCESS)
        }),
    }
}

/// Validation and other client errors of a service, as text for the terminal.
fn api(err: amtsweg_account::AccountError) -> anyhow::Error {
    let problem = amtsweg_kernel::ApiError::from(err);
    let body = problem.body(amtsweg_kernel::Lang::En, None);
    anyhow::anyhow!("{}", serde_json::to_string_pretty(&body).unwrap_or_default())
}

/// For commands that need the database only (not the catalogue, not the services).
fn with_database<F, Fut>(config: Option<std::path::PathBuf>, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Settings, amtsweg_db::Database) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let settings = Settings::load(config.as_deref())?;
    telemetry::init(&settings.log);
    actix_web::rt::System::new().block_on(async move {
        std::fs::create_dir_all(&settings.storage.data_dir)?;
        let db = app::open_database(&settings).await?;
        f(settings, db).await
    })
}

fn with_services<F, Fut>(config: Option<std::path::PathBuf>, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Services) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let settings = Settings::load(config.as_deref())?;
    telemetry::init(&settings.log);
    actix_web::rt::System::new().block_on(async move {
        let services = Services::start(&settings, Dependencies::default()).await?;
        f(services).await
    })
}

fn check_workflows(dir: &std::path::Path, procedures: Option<std::path::PathBuf>) -> ExitCode {
    let procedures = procedures.or_else(|| {
        let default = std::path::PathBuf::from("./procedures");
        default.is_dir().then_some(default)
    });
    let catalogue = match &procedures {
        Some(procedures) => amtsweg_catalogue::load_dir(procedures),
        None => amtsweg_catalogue::load_shipped(),
    };
    let problems = match catalogue {
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
        Ok(catalogue) => match amtsweg_server::workflows::load(Some(dir), &catalogue) {
            Ok(workflows) => {
                print(&format!(
                    "{}: {} workflows, all valid; every procedure names one of them",
                    dir.display(),
                    workflows.len()
                ));
                return ExitCode::SUCCESS;
            }
            Err(problems) => problems,
        },
    };
    for problem in &problems {
        eprintln!("{problem}");
    }
    eprintln!("{} problem(s) found", problems.len());
    ExitCode::FAILURE
}

fn check_catalogue(dir: &std::path::Path) -> ExitCode {
    match amtsweg_catalogue::load_dir(dir) {
        Ok(catalogue) => {
            print(&format!(
                "{}: {} procedures, all valid",
                dir.display(),
                catalogue.len()
            ));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("{} problem(s) found", errors.len());
            ExitCode::FAILURE
        }
    }
}
