//! A PostgreSQL that cannot be reached is reported with its real cause, so that an operator reading the log or the
//! start-up error knows what is wrong (the multi-backend connection used to say only "Invalid connection url for
//! multiconnection").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

use std::time::Duration;

use amtsweg_db::{Database, DatabaseUrl, DbError, PoolOptions};

#[test]
fn an_unreachable_postgresql_is_named_as_such() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = DatabaseUrl::parse(&format!("postgres://postgres@127.0.0.1:{port}/none")).unwrap();
    let options = PoolOptions {
        max_size: 2,
        checkout_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(1),
    };
    let Err(DbError::Unavailable(cause)) = Database::connect(&url, options) else {
        panic!("nothing listens there");
    };
    assert!(!cause.contains("Invalid connection url"), "{cause}");
    assert!(cause.to_lowercase().contains("connection refused"), "{cause}");
}
