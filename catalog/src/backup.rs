//! Backups: `backup.run` takes an encrypted, checksummed dump and applies retention;
//! `backup.verify` restores one into a scratch database and compares fingerprints.
use std::time::Duration;

use nightshift_queue::Backoff;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Exposure, Kind, Policy};

const POLICY: Policy = Policy {
    // Their own queue: a long dump never holds a slot that short jobs wait for.
    queue: "backups",
    max_attempts: 3,
    timeout: Duration::from_secs(6 * 3600),
    backoff: Backoff {
        base: Duration::from_secs(300),
        max: Duration::from_secs(1800),
    },
};

pub struct Run;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPayload {}

impl Kind for Run {
    const NAME: &'static str = "backup.run";
    const EXPOSURE: Exposure = Exposure::Operator;
    const POLICY: Policy = POLICY;
    type Payload = RunPayload;
}

pub struct Verify;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyPayload {
    /// The backup to check; the newest one when absent.
    #[serde(default)]
    pub backup_id: Option<Uuid>,
}

impl Kind for Verify {
    const NAME: &'static str = "backup.verify";
    const EXPOSURE: Exposure = Exposure::Operator;
    const POLICY: Policy = POLICY;
    type Payload = VerifyPayload;
}
