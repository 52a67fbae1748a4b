//! Browser sessions. The cookie holds a random secret; the database keeps its SHA-256, the account session it is
//! bound to and the session's CSRF secret. Every request asks the account service for a short-lived access token
//! of that account session, so a logout, a password reset or a revoked session ends the browser session at once.
//! Before a login, forms carry a double-submit CSRF token (cookie and hidden field).

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::USER_AGENT;
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use chrono::Duration;
use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Portal;
use crate::i18n::PortalLang;
use crate::schema::portal_sessions;

pub(crate) const SESSION_COOKIE: &str = "amtsweg_session";
pub(crate) const CSRF_COOKIE: &str = "amtsweg_csrf";

/// A browser session ends after this long without a request.
const IDLE: Duration = Duration::minutes(30);
/// How often a session's last request is written down (not on every page).
const TOUCH_EVERY: Duration = Duration::minutes(1);

pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Who is asking: the language, the browser session if any, and the CSRF token the page's forms carry.
pub(crate) struct Visitor {
    pub lang: PortalLang,
    pub signed_in: Option<SignedIn>,
    pub csrf: String,
    /// A fresh pre-login CSRF token to set as a cookie with the answer.
    pub new_csrf_cookie: bool,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    /// The path and query of this request (where to come back after a login).
    pub here: String,
}

pub(crate) struct SignedIn {
    token_hash: String,
    pub session_id: String,
    pub access_token: String,
}

impl Visitor {
    /// Whether a submitted form carries this visitor's CSRF token.
    pub fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|token| {
            !token.is_empty() && bool::from(token.as_bytes().ct_eq(self.csrf.as_bytes()))
        })
    }

    pub fn access_token(&self) -> Option<&str> {
        self.signed_in.as_ref().map(|s| s.access_token.as_str())
    }
}

#[derive(Queryable)]
struct Row {
    session_id: String,
    csrf: String,
    last_seen_at: Timestamp,
}

fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Portal {
    /// Reads the visitor of a request. A session cookie whose browser session or account session has ended counts
    /// as no session.
    pub(crate) async fn visitor(&self, req: &HttpRequest) -> Result<Visitor, DbError> {
        let lang = PortalLang::of(req);
        let here = match req.uri().path_and_query() {
            Some(pq) => pq.as_str().to_owned(),
            None => "/".to_owned(),
        };
        let address = amtsweg_auth::peer_address(req);
        let user_agent = req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect());
        let mut visitor = Visitor {
            lang,
            signed_in: None,
            csrf: String::new(),
            new_csrf_cookie: false,
            address,
            user_agent,
            here,
        };
        if let Some(secret) = cookie_value(req, SESSION_COOKIE) {
            let token_hash = hash(&secret);
            let now = self.clock.now();
            let found = {
                let token_hash = token_hash.clone();
                self.db
                    .read(move |conn| {
                        portal_sessions::table
                            .find(&token_hash)
                            .select((
                                portal_sessions::session_id,
                                portal_sessions::csrf,
                                portal_sessions::last_seen_at,
                            ))
                            .first::<Row>(conn)
                            .optional()
                            .map_err(DbError::from)
                    })
                    .await?
            };
            if let Some(row) = found {
                if now - row.last_seen_at > IDLE {
                    self.end(&token_hash, &row.session_id).await?;
                } else if let Some(access_token) = self
                    .accounts
                    .session_access_token(&row.session_id)
                    .await
                    .map_err(|err| DbError::Unavailable(err.to_string()))?
                {
                    if now - row.last_seen_at > TOUCH_EVERY {
                        let token_hash = token_hash.clone();
                        self.db
                            .write(move |conn| {
                                diesel::update(portal_sessions::table.find(&token_hash))
                                    .set(portal_sessions::last_seen_at.eq(now))
                                    .execute(conn)
                                    .map_err(DbError::from)
                            })
                            .await?;
                    }
                    visitor.csrf = row.csrf;
                    visitor.signed_in = Some(SignedIn {
                        token_hash,
                        session_id: row.session_id,
                        access_token,
                    });
                    return Ok(visitor);
                } else {
                    // The account session ended (logout elsewhere, password reset, deletion).
                    forget(&self.db, &token_hash).await?;
                }
            }
        }
        match cookie_value(req, CSRF_COOKIE) {
            Some(token) => visitor.csrf = token,
            None => {
                visitor.csrf = random_secret();
                visitor.new_csrf_cookie = true;
            }
        }
        Ok(visitor)
    }

    /// Opens a browser session bound to an account session; answers the cookie secret.
    pub(crate) async fn open(
        &self,
        session_id: &str,
        replacing: Option<&Visitor>,
    ) -> Result<String, DbError> {
        let secret = random_secret();
        let (token_hash, session_id, csrf, now) = (
            hash(&secret),
            session_id.to_owned(),
            random_secret(),
            self.clock.now(),
        );
        let old = replacing
            .and_then(|v| v.signed_in.as_ref())
            .map(|s| s.token_hash.clone());
        self.db
            .write(move |conn| {
                if let Some(old) = old {
                    diesel::delete(portal_sessions::table.find(old)).execute(conn)?;
                }
                diesel::insert_into(portal_sessions::table)
                    .values((
                        portal_sessions::token_hash.eq(&token_hash),
                        portal_sessions::session_id.eq(&session_id),
                        portal_sessions::csrf.eq(&csrf),
                        portal_sessions::created_at.eq(now),
                        portal_sessions::last_seen_at.eq(now),
                    ))
                    .execute(conn)
                    .map_err(DbError::from)
            })
            .await?;
        Ok(secret)
    }

    /// Ends a browser session and the account session behind it.
    pub(crate) async fn end(&self, token_hash: &str, session_id: &str) -> Result<(), DbError> {
        if let Ok(Some(token)) = self.accounts.session_access_token(session_id).await {
            // The account service ends the session and audits it; the portal only forgets its cookie.
            let _ = self
                .api
                .send(
                    &crate::api::Call::bearer(&token),
                    reqwest::Method::POST,
                    "/api/v1/auth/logout",
                    crate::api::Body::None,
                )
                .await;
        }
        forget(&self.db, token_hash).await
    }

    pub(crate) async fn sign_out(&self, visitor: &Visitor) -> Result<(), DbError> {
        match &visitor.signed_in {
            Some(s) => self.end(&s.token_hash, &s.session_id).await,
            None => Ok(()),
        }
    }

    /// A cookie of the portal: HttpOnly, SameSite=Lax, Secure when the portal is served over TLS.
    pub(crate) fn cookie<'c>(&self, name: &'c str, value: String) -> Cookie<'c> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .secure(self.secure_cookies)
            .same_site(SameSite::Lax)
            .finish()
    }

    pub(crate) fn removal<'c>(&self, name: &'c str) -> Cookie<'c> {
        let mut cookie = self.cookie(name, String::new());
        cookie.make_removal();
        cookie
    }
}

async fn forget(db: &amtsweg_db::Database, token_hash: &str) -> Result<(), DbError> {
    let token_hash = token_hash.to_owned();
    db.write(move |conn: &mut DbConnection| {
        diesel::delete(portal_sessions::table.find(&token_hash))
            .execute(conn)
            .map(|_| ())
            .map_err(DbError::from)
    })
    .await
}
