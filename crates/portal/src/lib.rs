//! The citizen portal: server-rendered pages, served by the same binary and built on the same services as the API
//! (no second implementation of any rule), usable without JavaScript.
//!
//! - The public catalogue: search by words and unit, each procedure's page.
//! - The account: register, verify the address, log in (with TOTP or the eID card), reset the password, set up
//!   TOTP, profile, consents, security events, data export, deletion — with the API's step-up where it asks.
//! - Applying: the form generated from the procedure's JSON Schema and UI hints, drafts, uploads, review, submit,
//!   receipt, payment through the Paypage; following an application, answering information requests, withdrawing.
//! - The Postfach: messages and decisions, downloads (with their evidence recorded by the API), replies.
//! - The accessibility statement with feedback (BITV 2.0 § 7) and an explanation in Leichte Sprache.
//!
//! Every page calls this process's REST API over loopback with the browser session's token ([`api`]): validation,
//! ownership, trust levels, throttling and idempotency stay the API's. Browser sessions ([`session`]) are bound to
//! the account's sessions; every form carries a CSRF token; personal pages are never cached; every page goes out
//! with a strict Content-Security-Policy (no inline script or style). German by default; English by `?lang=en`, a
//! remembered choice, or `Accept-Language`.

#![allow(
    clippy::result_large_err,
    reason = "page helpers answer a finished page as the error: an early answer handed straight back, not a failure carried far"
)]

mod account;
mod api;
mod apply;
mod follow;
mod form;
mod i18n;
mod info;
mod pages;
mod postfach;
mod schema;
mod session;
mod upload;
mod web;

use std::sync::Arc;

use actix_web::web::{self as actix, Data, ServiceConfig};
use amtsweg_account::AccountService;
use amtsweg_auth::Authenticator;
use amtsweg_catalogue::CatalogueService;
use amtsweg_db::Database;
use amtsweg_kernel::SharedClock;
use amtsweg_payment::PaymentService;
use minijinja::Environment;

pub use i18n::PortalLang;

/// What the portal is built from.
pub struct PortalDeps {
    pub db: Database,
    pub clock: SharedClock,
    pub catalogue: CatalogueService,
    pub accounts: AccountService,
    pub payments: PaymentService,
    pub auth: Arc<Authenticator>,
    /// Where this process's API answers on loopback, e.g. `http://127.0.0.1:8080`.
    pub api_base: String,
    /// The portal's public address; cookies are `Secure` when it is `https`.
    pub portal_url: String,
    /// Whether the eID login is configured (its button is shown).
    pub eid: bool,
}

/// The portal's service: templates, its way to the API, and its browser sessions.
#[derive(Clone)]
pub struct Portal {
    db: Database,
    clock: SharedClock,
    catalogue: CatalogueService,
    accounts: AccountService,
    payments: PaymentService,
    auth: Arc<Authenticator>,
    api: Arc<api::Api>,
    templates: Arc<Environment<'static>>,
    secure_cookies: bool,
    eid: bool,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("procedure.html", include_str!("../templates/procedure.html")),
    ("not_found.html", include_str!("../templates/not_found.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("register.html", include_str!("../templates/register.html")),
    ("token_form.html", include_str!("../templates/token_form.html")),
    (
        "reauthenticate.html",
        include_str!("../templates/reauthenticate.html"),
    ),
    ("account.html", include_str!("../templates/account.html")),
    ("totp.html", include_str!("../templates/totp.html")),
    (
        "applications.html",
        include_str!("../templates/applications.html"),
    ),
    ("draft.html", include_str!("../templates/draft.html")),
    ("review.html", include_str!("../templates/review.html")),
    ("application.html", include_str!("../templates/application.html")),
    ("payment.html", include_str!("../templates/payment.html")),
    ("postfach.html", include_str!("../templates/postfach.html")),
    ("mail.html", include_str!("../templates/mail.html")),
    ("compose.html", include_str!("../templates/compose.html")),
    (
        "accessibility.html",
        include_str!("../templates/accessibility.html"),
    ),
    ("easy.html", include_str!("../templates/easy.html")),
];

impl Portal {
    pub fn new(deps: PortalDeps) -> Result<Portal, String> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).map_err(|err| err.to_string())?;
        }
        env.add_filter("datetime", i18n::datetime);
        env.add_filter("date", i18n::date);
        env.add_filter("euro", i18n::euro);
        env.add_filter("bytes", i18n::bytes);
        Ok(Portal {
            db: deps.db,
            clock: deps.clock,
            catalogue: deps.catalogue,
            accounts: deps.accounts,
            payments: deps.payments,
            auth: deps.auth,
            api: Arc::new(api::Api::new(deps.api_base)?),
            templates: Arc::new(env),
            secure_cookies: deps.portal_url.starts_with("https://"),
            eid: deps.eid,
        })
    }
}

impl amtsweg_module::Module for Portal {
    fn name(&self) -> &'static str {
        "portal"
    }

    fn app_data(&self, cfg: &mut ServiceConfig) {
        cfg.app_data(Data::new(self.clone()));
    }

    /// The pages are not part of the API document.
    fn unlisted_routes(&self, cfg: &mut ServiceConfig) {
        use actix::{get, post};
        cfg.route("/", get().to(pages::index))
            .route("/leistungen/{id}", get().to(pages::procedure))
            .route("/leistungen/{id}/antrag", post().to(apply::start))
            .route("/assets/portal.css", get().to(pages::stylesheet))
            .route("/assets/portal.js", get().to(pages::script))
            // The account.
            .route("/registrieren", get().to(account::register_form))
            .route("/registrieren", post().to(account::register))
            .route("/verify-email", get().to(account::verify_form))
            .route("/verify-email", post().to(account::verify))
            .route("/login", get().to(account::login_form))
            .route("/login", post().to(account::login))
            .route("/login/eid", post().to(account::eid_start))
            .route("/login/eid/callback", get().to(account::eid_callback))
            .route("/logout", post().to(account::logout))
            .route("/passwort-vergessen", get().to(account::forgot_form))
            .route("/passwort-vergessen", post().to(account::forgot))
            .route("/reset-password", get().to(account::reset_form))
            .route("/reset-password", post().to(account::reset))
            .route("/confirm-email", get().to(account::confirm_email_form))
            .route("/confirm-email", post().to(account::confirm_email))
            .route("/anmeldung-bestaetigen", get().to(account::reauthenticate_form))
            .route("/anmeldung-bestaetigen", post().to(account::reauthenticate))
            .route("/konto", get().to(account::overview))
            .route("/konto/profil", post().to(account::update_profile))
            .route(
                "/konto/elektronische-zustellung",
                post().to(account::electronic_delivery),
            )
            .route("/konto/zwei-faktor", post().to(account::totp_start))
            .route("/konto/zwei-faktor/bestaetigen", post().to(account::totp_confirm))
            .route(
                "/konto/einwilligungen/{id}/widerrufen",
                post().to(account::revoke_consent),
            )
            .route("/konto/export", get().to(account::export))
            .route("/konto/loeschen", post().to(account::delete))
            // Applying and following.
            .route("/antraege", get().to(follow::list))
            .route("/antraege/{id}", get().to(follow::show))
            .route("/antraege/{id}", post().to(apply::save))
            .route("/antraege/{id}/unterlagen", post().to(apply::upload))
            .route(
                "/antraege/{id}/unterlagen/{attachment}",
                get().to(follow::attachment),
            )
            .route(
                "/antraege/{id}/unterlagen/{attachment}/entfernen",
                post().to(apply::detach),
            )
            .route("/antraege/{id}/pruefen", get().to(apply::review))
            .route("/antraege/{id}/absenden", post().to(apply::submit))
            .route("/antraege/{id}/verwerfen", post().to(apply::discard))
            .route("/antraege/{id}/quittung", get().to(follow::receipt))
            .route("/antraege/{id}/bezahlen", post().to(follow::pay))
            .route("/antraege/{id}/zurueckziehen", post().to(follow::withdraw))
            .route(
                "/antraege/{id}/nachforderungen/{request}",
                post().to(follow::answer),
            )
            .route("/zahlung/{id}", get().to(follow::payment_returned))
            // The Postfach.
            .route("/postfach", get().to(postfach::list))
            .route("/postfach/neu", get().to(postfach::compose))
            .route("/postfach/neu", post().to(postfach::send))
            .route("/postfach/{id}", get().to(postfach::show))
            .route("/postfach/{id}/antworten", post().to(postfach::reply))
            .route(
                "/postfach/{id}/anhaenge/{attachment}",
                get().to(postfach::attachment),
            )
            // Information.
            .route("/barrierefreiheit", get().to(info::accessibility))
            .route("/barrierefreiheit", post().to(info::feedback))
            .route("/leichte-sprache", get().to(info::easy_language));
    }
}
