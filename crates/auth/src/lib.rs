//! Who is calling: signed access tokens for citizens, staff and API clients, the keys that sign them, and the
//! extractors that turn a bearer token into a principal — or into a precise 401.
//!
//! Tokens are Ed25519-signed JWTs (RFC 9068 `at+jwt`) with a key id; keys rotate while old tokens stay verifiable
//! until they expire; public keys are served at `/.well-known/jwks.json`.

pub mod access;
pub mod kek;
pub mod keys;
mod principal;
mod proxies;
mod token;

pub mod http;

pub use access::{Access, GrantedScope, RoleDefinition, RoleReach, ScopeDefinition, Units};
pub use kek::{KekError, KeyEncryptionKey};
pub use keys::{KeyError, KeyRing};
pub use principal::{
    Authenticator, CitizenAuth, ClientAuth, FORWARDED_FOR, Holder, Role, SessionGuard, StaffAuth,
    StaffOrClient, bearer_challenge, eid_required, forwarding_secret, peer_address,
};
pub use proxies::TrustedProxies;
pub use token::{Audience, Claims, TokenError, TokenSpec};
