//! `secrets.rotate`: the daily check that rotates the API's token signing key once it is older
//! than the rotation period (or at once with `force`).
use std::time::Duration;

use nightshift_queue::Backoff;
use serde::{Deserialize, Serialize};

use crate::{Exposure, Kind, Policy};

pub struct Rotate;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotatePayload {
    /// Rotate now, whatever the active key's age.
    #[serde(default)]
    pub force: bool,
}

impl Kind for Rotate {
    const NAME: &'static str = "secrets.rotate";
    const EXPOSURE: Exposure = Exposure::Operator;
    const POLICY: Policy = Policy {
        queue: "default",
        max_attempts: 5,
        timeout: Duration::from_secs(60),
        backoff: Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(600),
        },
    };
    type Payload = RotatePayload;
}
