//! Bürgerkonto and access control: citizen and organisation accounts, staff, API clients of specialised
//! procedures, sessions and tokens, two-factor and eID login, profile and consents, GDPR export and erasure.

pub mod directory;
pub mod domain;
mod error;
pub mod events;
mod hasher;
pub mod http;
mod jobs;
pub mod service;
pub mod settings;
mod store;
mod templates;

pub use error::AccountError;
pub use http::configure;
pub use service::{AccountDeps, AccountPersonalData, AccountService};
pub use settings::AccountSettings;

/// Backs the token extractors: a token is only good while its session (or client) is.
pub struct Sessions(pub AccountService);

impl amtsweg_auth::SessionGuard for Sessions {
    fn is_active(
        &self,
        holder: amtsweg_auth::Holder,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, amtsweg_kernel::ApiError>> + Send>>
    {
        let service = self.0.clone();
        Box::pin(async move {
            service
                .holder_is_active(holder)
                .await
                .map_err(amtsweg_kernel::ApiError::from)
        })
    }
}

/// The roles the account service checks itself.
pub fn access() -> amtsweg_auth::Access {
    amtsweg_auth::Access::new().role(amtsweg_auth::RoleDefinition {
        name: "system_admin",
        reach: amtsweg_auth::RoleReach::Global,
        description: "Administers staff, API clients, signing keys, jobs and schedules",
    })
}
