//! The account service: use cases behind the HTTP handlers and the command line.

mod clients;
mod consents;
mod delivery_consent;
mod notifications;

pub(crate) use delivery_consent::current as delivery_consent_in_force;
pub use delivery_consent::{DeliveryConsent, DeliveryConsentRecord};
pub use notifications::NotificationView;
mod eid;
mod email;
pub(crate) mod guard;
mod invitations;
mod letter;
mod login;
mod organisations;
mod password;
mod privacy;
mod profile;
mod register;
mod session;
mod staff;
mod totp;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amtsweg_audit::{Actor, ActorKind, Event, Outcome};
use amtsweg_auth::Authenticator;
use amtsweg_catalogue::CatalogueService;
use amtsweg_db::personal_data::PersonalDataRegistry;
use amtsweg_db::{Database, DbError};
use amtsweg_kernel::{SharedClock, Timestamp};
use amtsweg_mail::Message;

pub use clients::{ClientCreated, ClientSummary, TokenGrant};
pub use consents::{ConsentView, SecurityEventView};
pub use eid::{EidClient, EidStart};
pub use invitations::{ReceivedInvitation, SentInvitation};
pub use letter::InformationLetter;
pub use login::{LoginRequest, Realm};
pub use organisations::{MemberView, OrganisationView};
pub use privacy::{AccountPersonalData, DeletionReport};
pub use profile::{ProfilePatch, ProfileView};
pub use register::Registration;
pub use session::SessionTokens;
pub use staff::{NewStaffMember, StaffCreated, StaffRole, StaffSummary};
pub use totp::TotpEnrollment;

use crate::error::AccountError;
use crate::hasher::PasswordHasher;
use crate::settings::AccountSettings;
use crate::store::{self, Conn};
use crate::templates::Mail;

/// Where a request came from, for security events and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone)]
pub struct AccountService {
    pub(crate) db: Database,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) clock: SharedClock,
    pub(crate) settings: Arc<AccountSettings>,
    pub(crate) privacy: PersonalDataRegistry,
    pub(crate) catalogue: CatalogueService,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) eid: Option<Arc<EidClient>>,
    pub(crate) files: amtsweg_files::FileStore,
    pub(crate) access: Arc<amtsweg_auth::Access>,
}

pub struct AccountDeps {
    pub db: Database,
    pub auth: Arc<Authenticator>,
    pub clock: SharedClock,
    pub settings: AccountSettings,
    pub privacy: PersonalDataRegistry,
    pub catalogue: CatalogueService,
    pub files: amtsweg_files::FileStore,
    /// The roles and scopes the modules declared.
    pub access: amtsweg_auth::Access,
}

impl AccountService {
    pub fn new(deps: AccountDeps) -> Result<AccountService, AccountError> {
        let hasher = PasswordHasher::new(Duration::from_millis(deps.settings.hash_queue_timeout_ms))?;
        let limiter = Arc::new(RateLimiter::new(deps.settings.auth_requests_per_minute));
        let eid = match &deps.settings.eid {
            Some(eid) => Some(Arc::new(EidClient::new(eid.clone())?)),
            None => None,
        };
        Ok(AccountService {
            db: deps.db,
            auth: deps.auth,
            hasher,
            clock: deps.clock,
            settings: Arc::new(deps.settings),
            privacy: deps.privacy,
            catalogue: deps.catalogue,
            limiter,
            eid,
            files: deps.files,
            access: Arc::new(deps.access),
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn settings(&self) -> &AccountSettings {
        &self.settings
    }

    pub(crate) fn link(&self, path: &str, token: &str) -> String {
        format!("{}?token={token}", self.link_plain(path))
    }

    /// A link into the portal without a token.
    pub(crate) fn link_plain(&self, path: &str) -> String {
        format!("{}{path}", self.settings.portal_url.trim_end_matches('/'))
    }

    /// Refuses an address that sent too many authentication requests in the last minute.
    pub(crate) fn check_rate(&self, meta: &Meta) -> Result<(), AccountError> {
        match self.limiter.check(meta.address.as_deref().unwrap_or("unknown")) {
            Ok(()) => Ok(()),
            Err(retry_after_secs) => Err(AccountError::RateLimited { retry_after_secs }),
        }
    }

    /// Signs new tokens with a fresh key; the old key keeps verifying until its tokens have expired.
    pub async fn rotate_signing_key(&self, actor: Actor) -> Result<String, AccountError> {
        let now = self.now();
        let kid = self
            .auth
            .keys()
            .rotate(now, self.settings.retired_key_grace())
            .await
            .map_err(|err| AccountError::Internal(err.to_string()))?;
        let object = kid.clone();
        self.db
            .write(move |conn| {
                audit(
                    conn,
                    &actor,
                    "keys.rotated",
                    Some(("signing_key", &object)),
                    Outcome::Success,
                    now,
                )
            })
            .await?;
        Ok(kid)
    }

    /// The account behind a token; a token of a vanished account is as good as none.
    pub(crate) async fn account_row(&self, account_id: &str) -> Result<store::AccountRow, AccountError> {
        let id = account_id.to_owned();
        self.db
            .read(move |conn| Ok::<_, AccountError>(store::account(conn, &id)?))
            .await?
            .ok_or(AccountError::LoginFailed)
    }

    /// Whether a session, or an API client, may still act. Backs the token extractors.
    pub async fn holder_is_active(&self, holder: amtsweg_auth::Holder) -> Result<bool, AccountError> {
        self.db
            .read(move |conn| match holder {
                amtsweg_auth::Holder::Session(id) => session::session_active(conn, &id),
                amtsweg_auth::Holder::Client(id) => session::client_active(conn, &id),
            })
            .await
    }
}

/// Queues a mail for an account inside the caller's transaction.
pub(crate) fn send(
    conn: &mut Conn,
    to: &str,
    account_id: Option<&str>,
    mail: Mail,
    now: Timestamp,
) -> Result<(), DbError> {
    amtsweg_mail::enqueue(
        conn,
        &Message {
            to: to.to_owned(),
            subject: mail.subject,
            body: mail.body,
            kind: mail.kind,
            account_id: account_id.map(str::to_owned),
            reference: None,
            publish_outcome: false,
        },
        now,
    )?;
    Ok(())
}

/// Tells the account's owner by mail that something security-relevant changed (`what` in German and English).
pub(crate) fn notify_owner(
    conn: &mut Conn,
    account: &store::AccountRow,
    what: (&str, &str),
    now: Timestamp,
) -> Result<(), DbError> {
    match &account.email {
        Some(email) => send(
            conn,
            email,
            Some(&account.id),
            crate::templates::security_notice(account.lang(), what),
            now,
        ),
        None => Ok(()),
    }
}

/// Records a security event for the account's own log and the same fact in the audit log.
pub(crate) fn trail(
    conn: &mut Conn,
    actor: &Actor,
    account_id: &str,
    event: &str,
    outcome: Outcome,
    meta: &Meta,
    now: Timestamp,
) -> Result<(), DbError> {
    store::record_security_event(
        conn,
        account_id,
        event,
        meta.address.as_deref(),
        meta.user_agent.as_deref(),
        now,
    )?;
    audit(conn, actor, event, Some(("account", account_id)), outcome, now)
}

pub(crate) fn audit(
    conn: &mut Conn,
    actor: &Actor,
    action: &str,
    object: Option<(&str, &str)>,
    outcome: Outcome,
    now: Timestamp,
) -> Result<(), DbError> {
    amtsweg_audit::append(
        conn,
        &Event {
            actor,
            action,
            object,
            outcome,
            at: now,
        },
    )
}

pub(crate) fn actor_for(realm: Realm, account_id: &str, meta: &Meta) -> Actor {
    let kind = match realm {
        Realm::Citizen => ActorKind::Citizen,
        Realm::Staff => ActorKind::Staff,
    };
    Actor::new(kind, account_id, meta.address.clone())
}

/// Fixed one-minute windows per client address. In memory: each instance limits on its own, which is what
/// protects its own hashing capacity.
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` when the address is over its limit.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.per_minute {
            Err(60u64.saturating_sub(now.duration_since(entry.0).as_secs()).max(1))
        } else {
            Ok(())
        }
    }
}
