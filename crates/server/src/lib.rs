//! The `amtsweg` server: configuration, composition of the services, HTTP server, operability endpoints and the
//! command line.

pub mod access;
pub mod app;
pub mod backup;
pub mod cli;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod operations;
pub mod settings;
pub mod telemetry;
pub mod workflows;

pub use app::{Application, Dependencies};
pub use settings::Settings;
