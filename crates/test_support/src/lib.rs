//! The test harness: spawns the real application on port 0 against a fresh database per test and talks HTTP to
//! it. The same test runs on SQLite (always) and on PostgreSQL when `AMTSWEG_TEST_POSTGRES_URL` is set; with
//! `CI=true` a missing PostgreSQL URL fails the test instead of skipping it.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness aborts the test when its setup fails"
)]

mod app;
mod backend;
mod eid;
mod pdf;
mod postgres;
pub mod process;
mod proxy;
mod s3;
mod smtp;
pub mod tools;
mod users;

pub use app::{TestApp, TestAppBuilder};
pub use backend::{Backend, FreshDatabase};
pub use eid::EidProvider;
pub use pdf::inspect_pdf;
pub use proxy::TcpProxy;
pub use s3::S3Server;
pub use smtp::{Mail, SmtpServer, free_port};
pub use users::{ADMIN_EMAIL, Citizen, STRONG_PASSWORD, Tokens, dog};

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::Backend::postgres() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

/// The workspace root, for shipped files such as `procedures/` and `openapi/`.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}
