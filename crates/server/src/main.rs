use std::io::Write;
use std::process::ExitCode;

use amtsweg_server::cli::{CatalogueCommand, Cli, Command};
use amtsweg_server::{Application, Settings, app, openapi, telemetry};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("amtsweg: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Catalogue {
            command: CatalogueCommand::Check { dir },
        } => Ok(check_catalogue(&dir)),
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
    }
}

fn check_catalogue(dir: &std::path::Path) -> ExitCode {
    match amtsweg_catalogue::load_dir(dir) {
        Ok(catalogue) => {
            let mut out = std::io::stdout();
            // A failed write to stdout changes nothing about the verdict, which the exit code carries.
            let _ = writeln!(
                out,
                "{}: {} procedures, all valid",
                dir.display(),
                catalogue.len()
            );
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
