//! `maintenance.cleanup`: deletes what has outlived its use (finished jobs' history, sent and
//! failed outbox rows, old tick-ledger and delivery rows), hourly by default.
use std::time::Duration;

use nightshift_queue::Backoff;
use serde::{Deserialize, Serialize};

use crate::{Exposure, Kind, Policy};

pub struct Cleanup;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupPayload {
    /// Finished jobs' history is kept this long; default 30.
    #[serde(default)]
    pub history_days: Option<u32>,
    /// Sent or failed e-mails and webhook deliveries, fired ticks and reminder deliveries are
    /// kept this long; default 90. Their keys fence duplicates until then.
    #[serde(default)]
    pub records_days: Option<u32>,
}

impl Kind for Cleanup {
    const NAME: &'static str = "maintenance.cleanup";
    const EXPOSURE: Exposure = Exposure::Operator;
    const POLICY: Policy = Policy {
        queue: "default",
        max_attempts: 3,
        timeout: Duration::from_secs(1800),
        backoff: Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(600),
        },
    };
    type Payload = CleanupPayload;
}
