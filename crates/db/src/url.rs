use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// A database location with its backend decided.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("unsupported database URL scheme `{0}` (use postgres://… or sqlite://… or a file path)")]
    UnsupportedScheme(String),
    #[error("the database URL is empty")]
    Empty,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl, UrlError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(UrlError::Empty);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(UrlError::Empty);
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(UrlError::UnsupportedScheme(scheme.to_owned()));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(url)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The string libpq or SQLite is given. PostgreSQL gets a connect timeout unless the URL sets one, so an
    /// unreachable server fails fast instead of hanging a pool checkout.
    pub(crate) fn connection_string(&self, connect_timeout_secs: u64) -> String {
        match self {
            DatabaseUrl::Postgres(url) if url.contains("connect_timeout=") => url.clone(),
            DatabaseUrl::Postgres(url) => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}connect_timeout={connect_timeout_secs}")
            }
            DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
        }
    }

    /// The URL without a password, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => redact_password(url),
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split(':').next().unwrap_or("");
    let slash = if rest.contains('/') { "/" } else { "" };
    format!("{scheme}://{user}:***@{host}{slash}{tail}")
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_alone_decides_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://./data/a.sqlite").unwrap(),
            DatabaseUrl::Sqlite("./data/a.sqlite".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:a.db").unwrap(),
            DatabaseUrl::Sqlite("a.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("/var/lib/a.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/a.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("mysql://h/db"),
            Err(UrlError::UnsupportedScheme("mysql".into()))
        );
        assert_eq!(DatabaseUrl::parse(" "), Err(UrlError::Empty));
    }

    #[test]
    fn passwords_never_reach_logs() {
        let url = DatabaseUrl::parse("postgres://amtsweg:s3cret@db:5432/amtsweg").unwrap();
        assert_eq!(format!("{url:?}"), "postgres://amtsweg:***@db:5432/amtsweg");
        assert!(!url.redacted().contains("s3cret"));
    }

    #[test]
    fn postgres_gets_a_connect_timeout() {
        let url = DatabaseUrl::parse("postgres://h/db?sslmode=disable").unwrap();
        assert_eq!(
            url.connection_string(3),
            "postgres://h/db?sslmode=disable&connect_timeout=3"
        );
        let url = DatabaseUrl::parse("postgres://h/db?connect_timeout=9").unwrap();
        assert_eq!(url.connection_string(3), "postgres://h/db?connect_timeout=9");
    }
}
