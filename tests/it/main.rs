//! Nightshift's integration tests, one test binary (`cargo test --test it`) so the workspace is
//! linked once rather than once per file. Each module is one concern; `support` holds the
//! fixtures they share.
//!
//! The suite needs real services: `redis-server`/`redis-cli` on PATH (each test starts its own),
//! PostgreSQL at `NIGHTSHIFT_TEST_PG_URL` (each test creates its own database), the PostgreSQL
//! server binaries, an SMTP server (aiosmtpd), an S3 server (moto), schemathesis, libfaketime,
//! and headless Chromium with chromedriver. `scripts/test.sh` installs and starts them all, then
//! runs `cargo test --workspace`.
//!
//! All tests share this one process: nothing here may change process-global state (environment
//! variables, current directory, global subscribers) — children get their environment through
//! `Command::env` instead. The few tests that load the whole machine take `support::heavy()`
//! so that they do not overlap one another (they used to be alone in their binaries).

mod adversarial;
mod api;
mod architecture;
mod backups;
mod batches;
mod bulk_enqueue;
mod cashflow;
mod chaos;
mod clients;
mod clock;
mod cluster;
mod dashboard;
mod deploy;
mod docs;
mod doctor;
mod enqueue;
mod flow;
mod flow_keys;
mod history;
mod keyring;
mod maintenance;
mod openapi;
mod outages;
mod processes;
mod queue;
mod redis_faults;
mod reminders;
mod scale;
mod scheduler;
mod support;
mod traces;
