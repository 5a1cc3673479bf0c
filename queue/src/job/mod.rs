//! Jobs as the queue sees them, one concept a module: a job's state, a job to push, a leased job
//! and its outcome, what the queue reports of a job, and retry delays.
mod backoff;
mod leased;
mod new_job;
mod record;
mod state;

pub use backoff::Backoff;
pub use leased::{Job, Outcome};
pub(crate) use new_job::FLOW_SEP;
pub use new_job::{
    Concurrency, DEFAULT_PRIORITY, Dedupe, DedupeMode, LOWEST_PRIORITY, NewJob, Pushed, Rate, RateKey, new_job_id,
};
pub use record::{AttemptReport, BatchEvent, BatchOutcome, JobRecord, PROGRESS_MESSAGE_MAX, Progress};
pub use state::{JobState, UnknownState};
