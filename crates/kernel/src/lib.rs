//! Shared building blocks every Amtsweg service uses: identifiers, the problem+json error type, languages,
//! pagination, the clock and the HTTP conventions (request ids, JSON bodies, error rendering).

pub mod clock;
pub mod http;
pub mod i18n;
pub mod id;
pub mod input;
pub mod jcs;
pub mod money;
pub mod numbering;
pub mod pagination;
pub mod problem;
pub mod text;
pub mod time;
pub mod trust;

pub use clock::{Clock, SharedClock, SystemClock};
pub use i18n::{Lang, Text};
pub use input::Checked;
pub use money::Cents;
pub use problem::{ApiError, FieldError};
pub use time::Timestamp;
pub use trust::TrustLevel;
