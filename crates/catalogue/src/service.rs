//! The catalogue as other parts of Amtsweg use it: the loaded procedures plus the record of their versions.

use std::sync::Arc;

use amtsweg_db::Database;
use amtsweg_kernel::SharedClock;

use crate::catalogue::Catalogue;
use crate::error::CatalogueError;
use crate::loader::{self, LoadError};
use crate::store::{self, RecordError, VersionRecord};

#[derive(Clone)]
pub struct CatalogueService {
    catalogue: Arc<Catalogue>,
    db: Database,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the procedure catalogue is invalid:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<LoadError>),
    #[error("the procedure catalogue conflicts with recorded versions: {0}")]
    Record(#[from] RecordError),
}

/// Where the procedure definitions come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory of `*.yaml` files.
    Dir(std::path::PathBuf),
    /// The catalogue compiled into the binary.
    Shipped,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Dir(dir) => write!(f, "{}", dir.display()),
            Source::Shipped => f.write_str("the catalogue shipped in the binary"),
        }
    }
}

impl CatalogueService {
    /// Loads the catalogue from `dir` and records new procedure versions. Refuses to start on an invalid file or
    /// on a changed file that kept its version.
    pub async fn start(
        source: &Source,
        db: Database,
        clock: SharedClock,
    ) -> Result<CatalogueService, StartError> {
        let loaded = match source {
            Source::Dir(dir) => loader::load_dir(dir),
            Source::Shipped => crate::shipped::load_shipped(),
        };
        let catalogue = Arc::new(loaded.map_err(StartError::Invalid)?);
        let to_record = catalogue.clone();
        let recorded = db
            .write(move |conn| store::record_versions(conn, &to_record, clock.now()))
            .await?;
        for (id, version) in &recorded {
            tracing::info!(procedure = %id, version, "recorded new procedure version");
        }
        tracing::info!(procedures = catalogue.len(), source = %source, "catalogue loaded");
        Ok(CatalogueService { catalogue, db })
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub async fn versions(&self, id: &str) -> Result<Vec<VersionRecord>, CatalogueError> {
        let id = id.to_owned();
        self.db
            .read(move |conn| store::versions_of(conn, &id).map_err(CatalogueError::from))
            .await
    }
}

impl amtsweg_module::Module for CatalogueService {
    fn name(&self) -> &'static str {
        "catalogue"
    }

    fn app_data(&self, cfg: &mut actix_web::web::ServiceConfig) {
        cfg.app_data(actix_web::web::Data::new(self.clone()));
    }
}
