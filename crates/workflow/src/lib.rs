//! Workflows of applications as data: YAML definitions in `workflows/` (or compiled into the binary), checked when
//! they are loaded, and the rules of the engine — which actions a caller may take in a state, what entering a state
//! sets off — together with statutory deadlines (§ 31 VwVfG with §§ 187–193 BGB).
//!
//! Pure code: no HTTP, no database. The applications module stores instances and runs effects as jobs; this crate
//! only answers questions about definitions.

pub mod check;
pub mod deadline;
pub mod definition;
pub mod engine;
mod loader;
mod shipped;

pub use check::{Problem, check};
pub use deadline::{Calendar, Land, Period};
pub use definition::{
    AlertTarget, By, Decision, Definition, Effect, Expiry, Guard, Label, State, Timer, TimerKind, Transition,
    Waits,
};
pub use engine::{Caller, Facts, Refusal, Step};
pub use loader::{LoadError, LoadedWorkflow, Workflows, load_dir, parse};
pub use shipped::load_shipped;
