//! The scheduler: fires periodic jobs from cron expressions, exactly once per tick whatever the
//! number of replicas or their clock skew. Each replica pushes a due tick with a deterministic
//! idempotency key (schedule + tick instant), so the queue holds one job per tick, then records
//! the tick in the PostgreSQL ledger under a UNIQUE (schedule, tick) key. The ledger is also
//! how a restarted scheduler knows what it missed: each schedule's misfire policy decides, and
//! what it decided is recorded. Correctness needs no leader lock.
//!
//! This crate is the loop alone: the schedules file, the cron maths, the ledger and the push
//! are `nightshift_catalog::schedules`, which the API uses too.
mod run;

pub use run::run;
