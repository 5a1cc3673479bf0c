//! A Redis queue backend for apalis-core.
//!
//! Jobs are leased, not popped: a fetched job sits in an in-flight set scored by its lease
//! expiry until its outcome is acknowledged, the worker renews leases of running jobs, and a
//! reaper returns the jobs of dead workers with the attempt counted. Retries, delays and the
//! dead set live in Redis. Every sweep is bounded, so the cost per job does not grow with the
//! backlog. All keys of a queue share one hash tag (one Redis Cluster slot).
//!
//! This crate knows nothing about the jobs it carries: payloads are JSON text.
mod backend;
mod batch_events;
pub mod clock;
mod config;
mod conn;
mod error;
mod flow_view;
mod identity;
mod job;
mod keys;
mod lease;
mod loops;
mod operator;
mod protocol;
mod queue;
mod renewer;
mod scripts;
mod settings;

pub use backend::{RedisBackend, WorkerOptions};
pub use batch_events::BatchEvents;
pub use config::QueueConfig;
pub use conn::{RedisConn, connect_redis, pubsub_client};
pub use error::QueueError;
pub use flow_view::{FlowView, GroupBacklog, KeyUse};
pub use identity::{WorkerIdentity, WorkerInfo, list_workers};
pub use job::{
    AttemptReport, Backoff, BatchEvent, BatchOutcome, Concurrency, DEFAULT_PRIORITY, Dedupe, DedupeMode, Job,
    JobRecord, JobState, LOWEST_PRIORITY, NewJob, Outcome, PROGRESS_MESSAGE_MAX, Progress, Pushed, Rate, RateKey,
    UnknownState, new_job_id,
};
pub use lease::{LeaseLayer, LeaseService};
pub use operator::{Counts, known_queues};
pub use queue::Queue;
pub use settings::check_redis_settings;
