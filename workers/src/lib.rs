//! Nightshift's job kinds and the worker runtime that runs them on apalis-core over our Redis
//! queue backend.
pub mod bench;
pub mod bench_backup;
pub mod bench_cashflow;
pub mod bench_email;
pub mod bench_scale;
pub mod chaos;
pub mod jobs;
mod runtime;

pub use runtime::{Queues, export_queue_depth, run};
