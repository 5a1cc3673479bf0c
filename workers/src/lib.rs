//! The worker side of Nightshift: a handler for every kind of the catalog and the runtime that
//! runs them on apalis-core over our Redis queue backend.
mod batch_pump;
pub mod jobs;
mod runtime;
mod tracing_hook;

pub use runtime::run;
