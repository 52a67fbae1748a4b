//! API clients of specialised procedures (Fachverfahren): registered by an administrator, authenticated with the
//! OAuth 2.0 client credentials grant (RFC 6749 §4.4, `client_secret_basic`), limited to scopes per procedure.
//! Secrets are shown once and stored as SHA-256 (they are 256-bit random); a rotated secret stays valid for an
//! overlap period so the procedure can switch without downtime.

use actix_web::http::StatusCode;
use amtsweg_audit::{Actor, Outcome};
use amtsweg_auth::GrantedScope;
use amtsweg_auth::{Audience, TokenSpec};
use amtsweg_db::InTransaction;
use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{FieldError, Text, Timestamp};
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AccountService, Meta, audit};
use crate::domain::secret::{hash_token, random_token, same_hash};
use crate::error::AccountError;
use crate::store::schema::api_clients;

#[derive(Queryable, Selectable)]
#[diesel(table_name = api_clients)]
struct ClientListRow {
    id: String,
    name: String,
    scopes: String,
    created_at: Timestamp,
    disabled_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientCreated {
    pub client_id: String,
    /// Shown once; store it in the procedure's secret store.
    pub client_secret: String,
    pub scopes: Vec<String>,
    /// Until when the previous secret keeps working (after a rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_valid_until: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientSummary {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenGrant {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

/// What a token request needs of a client.
#[derive(Queryable, Selectable)]
#[diesel(table_name = api_clients)]
struct ClientRow {
    scopes: String,
    secret_hash: String,
    previous_secret_hash: Option<String>,
    previous_valid_until: Option<Timestamp>,
    disabled_at: Option<Timestamp>,
}

fn oauth(status: StatusCode, error: &'static str, description: &'static str) -> AccountError {
    AccountError::OAuth {
        status,
        error,
        description,
    }
}

fn invalid_client() -> AccountError {
    oauth(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed.",
    )
}

fn not_found() -> AccountError {
    AccountError::NotFound(
        "client_not_found",
        Text::fixed("API-Client nicht gefunden.", "API client not found."),
    )
}

impl AccountService {
    /// Scopes are those the modules declared: plain (`procedures:read`) or per procedure
    /// (`applications:read:{procedure}`, with `*` for every procedure of the catalogue).
    fn check_scopes(&self, scopes: &[String]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let forms: Vec<String> = self
            .access
            .scopes()
            .iter()
            .map(|s| {
                if s.per_procedure {
                    format!("{}:{{procedure|*}}", s.name)
                } else {
                    s.name.to_owned()
                }
            })
            .collect();
        for (i, scope) in scopes.iter().enumerate() {
            let valid = match self.access.read_scope(scope) {
                Some(GrantedScope::Plain(_)) => true,
                Some(GrantedScope::PerProcedure(_, procedure)) => {
                    procedure == "*" || self.catalogue.catalogue().get(procedure).is_some()
                }
                None => false,
            };
            if !valid {
                errors.push(FieldError::at_pointer(
                    format!("/scopes/{i}"),
                    "invalid_scope",
                    Text::new(
                        format!("Erlaubt sind: {} (Verfahren des Katalogs).", forms.join(", ")),
                        format!("Allowed are: {} (procedures of the catalogue).", forms.join(", ")),
                    ),
                ));
            }
        }
        if scopes.is_empty() {
            errors.push(FieldError::at_pointer(
                "/scopes",
                "too_few_items",
                Text::fixed("Mindestens ein Scope.", "At least one scope."),
            ));
        }
        errors
    }

    pub async fn create_client(
        &self,
        actor: Actor,
        name: &str,
        scopes: Vec<String>,
        also: InTransaction<ClientCreated>,
    ) -> Result<ClientCreated, AccountError> {
        let mut errors = self.check_scopes(&scopes);
        let length = name.trim().chars().count();
        if length == 0 || length > 200 {
            errors.push(FieldError::at_pointer(
                "/name",
                "invalid_value",
                Text::fixed("Bitte 1 bis 200 Zeichen.", "Please 1 to 200 characters."),
            ));
        }
        if !errors.is_empty() {
            return Err(AccountError::Validation(errors));
        }
        let now = self.now();
        let client_id = format!(
            "fv-{}",
            &random_token()[..16].to_lowercase().replace(['-', '_'], "x")
        );
        let secret = random_token();
        let created = ClientCreated {
            client_id: client_id.clone(),
            client_secret: secret.clone(),
            scopes: scopes.clone(),
            previous_secret_valid_until: None,
        };
        let name = name.trim().to_owned();
        let answer = created.clone();
        self.db
            .write(move |conn| {
                diesel::insert_into(api_clients::table)
                    .values((
                        api_clients::id.eq(&client_id),
                        api_clients::name.eq(&name),
                        api_clients::scopes.eq(scopes.join(" ")),
                        api_clients::secret_hash.eq(hash_token(&secret)),
                        api_clients::created_at.eq(now),
                    ))
                    .execute(conn)?;
                audit(
                    conn,
                    &actor,
                    "client.created",
                    Some(("client", &client_id)),
                    Outcome::Success,
                    now,
                )?;
                also(conn, &answer)?;
                Ok::<_, AccountError>(())
            })
            .await?;
        Ok(created)
    }

    /// API clients in the order of their ids, one page after the id `page.after`.
    pub async fn list_clients(&self, page: PageRequest) -> Result<Page<ClientSummary>, AccountError> {
        self.db
            .read(move |conn| {
                let mut query = api_clients::table.into_boxed();
                if let Some(after) = &page.after {
                    query = query.filter(api_clients::id.gt(after.clone()));
                }
                let rows: Vec<ClientListRow> = query
                    .order(api_clients::id.asc())
                    .limit(i64::try_from(page.limit + 1).unwrap_or(101))
                    .select(ClientListRow::as_select())
                    .load(conn)?;
                let items = rows
                    .into_iter()
                    .map(|row| ClientSummary {
                        client_id: row.id,
                        name: row.name,
                        scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
                        created_at: row.created_at.rfc3339(),
                        disabled_at: row.disabled_at.map(Timestamp::rfc3339),
                    })
                    .collect();
                Ok(Page::from_overfetched(items, page.limit, |c: &ClientSummary| {
                    c.client_id.clone()
                }))
            })
            .await
    }

    /// Issues a new secret; the old one keeps working for the configured overlap.
    pub async fn rotate_client_secret(
        &self,
        actor: Actor,
        client_id: &str,
    ) -> Result<ClientCreated, AccountError> {
        let now = self.now();
        let until = now + Duration::hours(self.settings.client_secret_overlap_hours);
        let secret = random_token();
        let client_id = client_id.to_owned();
        let new_secret = secret.clone();
        self.db
            .write(move |conn| {
                let found: Option<(String, String, Option<Timestamp>)> = api_clients::table
                    .find(&client_id)
                    .select((
                        api_clients::secret_hash,
                        api_clients::scopes,
                        api_clients::disabled_at,
                    ))
                    .first(conn)
                    .optional()?;
                let Some((old_hash, scopes, None)) = found else {
                    return Err(not_found());
                };
                diesel::update(api_clients::table.find(&client_id))
                    .set((
                        api_clients::secret_hash.eq(hash_token(&new_secret)),
                        api_clients::previous_secret_hash.eq(Some(old_hash)),
                        api_clients::previous_valid_until.eq(Some(until)),
                    ))
                    .execute(conn)?;
                audit(
                    conn,
                    &actor,
                    "client.secret_rotated",
                    Some(("client", &client_id)),
                    Outcome::Success,
                    now,
                )?;
                Ok(ClientCreated {
                    client_id,
                    client_secret: new_secret,
                    scopes: scopes.split_whitespace().map(str::to_owned).collect(),
                    previous_secret_valid_until: Some(until.rfc3339()),
                })
            })
            .await
    }

    /// Disables a client; its tokens stop working at once.
    pub async fn disable_client(&self, actor: Actor, client_id: &str) -> Result<(), AccountError> {
        let now = self.now();
        let client_id = client_id.to_owned();
        self.db
            .write(move |conn| {
                let updated = diesel::update(
                    api_clients::table
                        .find(&client_id)
                        .filter(api_clients::disabled_at.is_null()),
                )
                .set(api_clients::disabled_at.eq(now))
                .execute(conn)?;
                if updated == 0 {
                    return Err(not_found());
                }
                audit(
                    conn,
                    &actor,
                    "client.disabled",
                    Some(("client", &client_id)),
                    Outcome::Success,
                    now,
                )?;
                Ok(())
            })
            .await
    }

    /// The client credentials grant. `requested` narrows the scopes; unknown scopes are an error.
    pub async fn client_token(
        &self,
        client_id: &str,
        secret: &str,
        grant_type: &str,
        requested: Option<&str>,
        meta: Meta,
    ) -> Result<TokenGrant, AccountError> {
        self.check_rate(&meta)?;
        let now = self.now();
        let id = client_id.to_owned();
        let row: Option<ClientRow> = self
            .db
            .read(move |conn| {
                Ok::<_, AccountError>(
                    api_clients::table
                        .find(&id)
                        .select(ClientRow::as_select())
                        .first(conn)
                        .optional()?,
                )
            })
            .await?;
        let presented = hash_token(secret);
        let authenticated = match &row {
            Some(client) if client.disabled_at.is_none() => {
                same_hash(&client.secret_hash, &presented)
                    || matches!(
                        (&client.previous_secret_hash, client.previous_valid_until),
                        (Some(previous), Some(until)) if until > now && same_hash(previous, &presented)
                    )
            }
            _ => false,
        };
        let actor = Actor::client(client_id, meta.address.clone());
        if !authenticated {
            let object = client_id.to_owned();
            self.db
                .write(move |conn| {
                    audit(
                        conn,
                        &actor,
                        "oauth.token",
                        Some(("client", &object)),
                        Outcome::Failure,
                        now,
                    )
                })
                .await?;
            return Err(invalid_client());
        }
        if grant_type != "client_credentials" {
            return Err(oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only the client_credentials grant is supported.",
            ));
        }
        let allowed: Vec<String> = row
            .map(|r| r.scopes)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let scopes: Vec<String> = match requested.map(str::trim).filter(|s| !s.is_empty()) {
            Some(requested) => {
                let wanted: Vec<String> = requested.split_whitespace().map(str::to_owned).collect();
                if wanted.iter().any(|scope| !allowed.contains(scope)) {
                    return Err(oauth(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        "A requested scope is not granted to this client.",
                    ));
                }
                wanted
            }
            None => allowed,
        };
        let minutes = self.settings.client_token_minutes.clamp(1, 15);
        let scope = scopes.join(" ");
        let (token, _) = self.auth.issue(&TokenSpec {
            audience: Audience::Client,
            subject: client_id.to_owned(),
            session_id: None,
            acr: None,
            amr: Vec::new(),
            auth_time: None,
            scope: Some(scope.clone()),
            roles: Vec::new(),
            lifetime: Duration::minutes(minutes),
        })?;
        let object = client_id.to_owned();
        self.db
            .write(move |conn| {
                audit(
                    conn,
                    &actor,
                    "oauth.token",
                    Some(("client", &object)),
                    Outcome::Success,
                    now,
                )
            })
            .await?;
        Ok(TokenGrant {
            access_token: token,
            token_type: "Bearer",
            expires_in: minutes * 60,
            scope,
        })
    }
}
