//! Cash-flow projections: `cashflow.project` projects one user's daily balance;
//! `cashflow.nightly` pushes one projection per user once it is past 02:00 in their time zone.
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use nightshift_queue::Backoff;
use serde::{Deserialize, Serialize};

use crate::{Exposure, Kind, Policy};

pub const DEFAULT_HORIZON_DAYS: u32 = 90;
/// The user's local time after which the nightly run projects them.
pub const LOCAL_START: &str = "02:00";

pub struct Project;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPayload {
    pub user_id: i64,
    /// The user's local date to project from; defaults to today in the user's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_days: Option<u32>,
}

impl Kind for Project {
    const NAME: &'static str = "cashflow.project";
    const EXPOSURE: Exposure = Exposure::Client;
    const USER_FIELD: Option<&'static str> = Some("user_id");
    const POLICY: Policy = Policy {
        queue: "cashflow",
        max_attempts: 5,
        timeout: Duration::from_secs(60),
        backoff: Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(600),
        },
    };
    type Payload = ProjectPayload;
}

pub struct Nightly;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NightlyPayload {
    /// The instant whose local times decide who is due; defaults to now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

impl Kind for Nightly {
    const NAME: &'static str = "cashflow.nightly";
    const EXPOSURE: Exposure = Exposure::Operator;
    const POLICY: Policy = Policy {
        queue: "default",
        max_attempts: 5,
        timeout: Duration::from_secs(1800),
        backoff: Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(900),
        },
    };
    type Payload = NightlyPayload;
}
