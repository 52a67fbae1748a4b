//! The catalogue's domain: what a procedure is, what makes one well-formed, how its form is checked and its fee
//! computed. No HTTP and no SQL here.

pub mod booking;
pub mod check;
pub mod delivery;
pub mod fee;
pub mod form;
pub mod procedure;

pub use booking::Booking;
pub use delivery::{DeliveryPreset, DeliveryRule, DeliveryStart, ResolvedRule};
pub use fee::{FeeAssessment, FeeLine};
pub use form::CompiledForm;
pub use procedure::{
    Authority, DocumentType, FeeRule, Form, PaymentPolicy, Procedure, Processing, Retention, Rounding,
    UiHint, Unit, Widget,
};
