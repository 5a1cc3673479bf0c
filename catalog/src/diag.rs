//! Diagnostic kinds: a no-op for benchmarks and smoke tests, kinds that let tests and the
//! chaos runner exercise crashes and failures through the real worker, and one that records an
//! unfenced effect to count lost and duplicated work. The API offers them only with
//! `NIGHTSHIFT_DIAGNOSTICS=1`.
use std::time::Duration;

use nightshift_queue::{Backoff, BatchOutcome, Rate};
use serde::{Deserialize, Serialize};

use crate::{Exposure, Kind, Policy};

const DIAG_POLICY: Policy = Policy {
    queue: "default",
    max_attempts: 3,
    timeout: Duration::from_secs(60),
    backoff: Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
    },
};

/// Does nothing; succeeds.
pub struct Noop;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopPayload {
    /// Its batch's outcome, when it is a batch's callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchOutcome>,
}

impl Kind for Noop {
    const NAME: &'static str = "noop";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    type Payload = NoopPayload;
}

/// Sleeps, then succeeds with the attempt it ran on: lets tests kill a worker mid-job.
pub struct Sleep;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepPayload {
    pub ms: u64,
    /// Sleeps without reporting progress (`nightshift bench-progress` compares the two).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
}

impl Kind for Sleep {
    const NAME: &'static str = "diag.sleep";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    type Payload = SleepPayload;
}

/// Blocks its runtime thread (`std::thread::sleep`), as a CPU-bound or synchronous handler
/// does: lets tests check that lease renewal does not depend on handlers yielding, and that a
/// handler blocked past its timeout (20 s here) loses its lease and is retried.
pub struct Block;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockPayload {
    /// At most 600,000.
    pub ms: u64,
}

impl Kind for Block {
    const NAME: &'static str = "diag.block";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = Policy {
        timeout: Duration::from_secs(20),
        ..DIAG_POLICY
    };
    type Payload = BlockPayload;
}

/// Fails with the given message: it must end dead after exactly its max attempts. With
/// `succeed_from_attempt` it succeeds from that attempt on, as a job whose cause was fixed
/// does when an operator retries it.
pub struct Fail;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailPayload {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub succeed_from_attempt: Option<u32>,
    /// The retry's delay instead of the kind's backoff (at most 60 s), so a test can find the
    /// job retrying.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
    /// Never used: a field the kind declares sensitive, so masking is tested on a real kind.
    #[serde(default)]
    pub token: Option<String>,
}

impl Kind for Fail {
    const NAME: &'static str = "diag.fail";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    const SENSITIVE: &'static [&'static str] = &["token"];
    type Payload = FailPayload;
}

/// Snoozes `times` times, then succeeds with how often it snoozed: proves a snooze uses no
/// attempt (the count is kept in Redis, since the attempt number does not move).
pub struct Snooze;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnoozePayload {
    pub times: u32,
}

impl Kind for Snooze {
    const NAME: &'static str = "diag.snooze";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    type Payload = SnoozePayload;
}

/// Records one row in `diag_effects` per execution, unfenced: counting rows per job id shows
/// lost jobs (none) and duplicated executions. With a business `key`, it then holds the job for
/// `ms` (so faults land mid-job) and applies a fenced effect: the key's done row and the ledger
/// row commit in one transaction, so a second execution of the same key applies nothing.
pub struct Effect;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectPayload {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub ms: u64,
    /// Its batch's outcome, when it is a batch's callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchOutcome>,
}

impl Kind for Effect {
    const NAME: &'static str = "diag.effect";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    /// For the rate-key tests: slow enough to see, fast enough for test time.
    const RATE: Option<Rate> = Some(Rate::per_second(20, 5));
    type Payload = EffectPayload;
}

/// Aborts its worker process on every attempt, like a segfaulting native library: the lease
/// expires, the reaper counts the attempt, and the job must end dead at its max attempts rather
/// than kill workers forever. Only where NIGHTSHIFT_DIAG_ABORT=1 (the chaos runner's workers):
/// elsewhere any client could take a worker down with one request.
pub struct Abort;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortPayload {}

impl Kind for Abort {
    const NAME: &'static str = "diag.abort";
    const EXPOSURE: Exposure = Exposure::Operator;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    type Payload = AbortPayload;
}
