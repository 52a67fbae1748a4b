//! HTTP routes of the account service.

mod admin;
mod auth;
mod me;
mod oauth;
mod organisations;
mod staff;

use actix_web::HttpRequest;
use amtsweg_auth::peer_address;

use crate::service::Meta;

/// Every route; `/oauth/token` and the JWKS sit outside `/api/v1` where OAuth clients expect them.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    auth::configure(cfg);
    me::configure(cfg);
    organisations::configure(cfg);
    staff::configure(cfg);
    admin::configure(cfg);
    oauth::configure_client(cfg);
}

/// Routes outside the `/api/v1` scope.
pub fn configure_root(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    oauth::configure(cfg);
    amtsweg_auth::http::configure(cfg);
}

pub(crate) fn meta(req: &HttpRequest) -> Meta {
    Meta {
        address: peer_address(req),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect()),
    }
}
