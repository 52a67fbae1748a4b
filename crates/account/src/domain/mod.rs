//! Rules of the account service that need neither HTTP nor SQL.

pub mod email;
pub mod password;
pub mod secret;
pub mod throttle;
pub mod totp;
