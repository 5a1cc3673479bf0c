//! Reminders: `reminder.scan` finds the notifications whose time has come and fences each;
//! `reminder.notify` turns one of them into an outbox message (e-mail or webhook) exactly once.
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use nightshift_queue::Backoff;
use serde::{Deserialize, Serialize};

use crate::{Exposure, Kind, Policy};

/// The scan looks this far back by default: a scheduler or worker outage shorter than this
/// delays reminders; a longer one skips those whose time is long gone (they would be noise).
pub const DEFAULT_LOOKBACK_HOURS: u32 = 24;

const POLICY: Policy = Policy {
    queue: "reminders",
    max_attempts: 10,
    timeout: Duration::from_secs(120),
    backoff: Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(300),
    },
};

pub struct Scan;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanPayload {
    /// The instant to scan up to; defaults to now. Lets a replay scan a past moment.
    #[serde(default)]
    pub as_of: Option<DateTime<Utc>>,
    #[serde(default)]
    pub lookback_hours: Option<u32>,
}

impl Kind for Scan {
    const NAME: &'static str = "reminder.scan";
    const EXPOSURE: Exposure = Exposure::Operator;
    const POLICY: Policy = POLICY;
    type Payload = ScanPayload;
}

pub struct Notify;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyPayload {
    pub reminder_id: i64,
    pub due_date: NaiveDate,
}

impl Kind for Notify {
    const NAME: &'static str = "reminder.notify";
    const EXPOSURE: Exposure = Exposure::Internal;
    const POLICY: Policy = POLICY;
    type Payload = NotifyPayload;
}
