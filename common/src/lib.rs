//! What every Nightshift process shares: configuration, the database, job history, API
//! tokens, telemetry.
pub mod audit;
pub mod auth;
pub mod batches;
pub mod config;
pub mod db;
pub mod group;
pub mod history;
pub mod job_ids;
pub mod keyring;
pub mod rate;
pub mod recovery;
pub mod telemetry;
pub mod text;
pub mod zone;

pub use config::{Config, ConfigError};
