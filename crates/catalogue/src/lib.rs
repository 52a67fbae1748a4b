//! The procedure catalogue (Leistungskatalog): procedures defined as YAML files, validated and compiled at
//! start-up, each version recorded so applications can pin the exact form and fees they were made under.

pub mod catalogue;
pub mod domain;
mod error;
pub mod http;
pub mod loader;
pub mod service;
mod shipped;
pub mod store;

pub use catalogue::{Catalogue, ListFilter, LoadedProcedure};
pub use error::CatalogueError;
pub use http::configure;
pub use loader::{LoadError, load_dir};
pub use service::{CatalogueService, Source, StartError};
pub use shipped::load_shipped;
