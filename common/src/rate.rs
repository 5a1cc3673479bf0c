//! Rate limits shared by every process: GCRA (the generic cell rate algorithm) in one Lua
//! script, one Redis key per limited thing holding its theoretical arrival time. It reads
//! Redis's clock, so the processes' clocks do not matter, and needs no cleanup: a key expires
//! once its subject has been idle for a burst's worth of time.
use std::time::Duration;

use nightshift_queue::RedisConn;
use redis::Script;

// Microseconds (Redis's TIME resolution; below 2^53, exact in Lua's doubles), so rates of
// thousands a second keep their precision.
// Several limits in one call (one round trip): KEYS[i] with ARGV[4i-3..4i] = interval, burst,
// peek, cost. They are checked in order; the first that is over answers its wait and the ones
// after it are not touched.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local interval = tonumber(ARGV[4 * i - 3])
  local burst = tonumber(ARGV[4 * i - 2])
  local peek = ARGV[4 * i - 1] == '1'
  local cost = tonumber(ARGV[4 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local wait = new_tat - now - burst * interval
  if wait > 0 then return {i, wait} end
  if not peek then
    redis.call('SET', KEYS[i], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
  end
end
return {0, 0}
"#;

#[derive(Clone, Debug)]
pub struct RateLimit {
    /// `<prefix>:rate:<name>`, to which each subject's key is appended.
    key_prefix: String,
    /// Time between two events for one subject, in microseconds.
    interval_us: u64,
    /// Events allowed at once after an idle spell.
    burst: u64,
}

impl RateLimit {
    /// `per_minute` events per subject, in bursts of up to `burst`.
    pub fn per_minute(prefix: &str, name: &str, per_minute: u32, burst: u32) -> Self {
        RateLimit {
            key_prefix: format!("{prefix}:rate:{name}"),
            interval_us: (60_000_000 / u64::from(per_minute.max(1))).max(1),
            burst: u64::from(burst.max(1)),
        }
    }

    /// Takes one event for `subject`: `None` if it may happen now, else how long to wait.
    pub async fn take(&self, conn: &mut RedisConn, subject: &str) -> redis::RedisResult<Option<Duration>> {
        self.invoke(conn, subject, 1, false).await
    }

    /// Takes `n` events at once (a batch of jobs), all or none. More than the burst never fits:
    /// see [`Self::burst`].
    pub async fn take_n(&self, conn: &mut RedisConn, subject: &str, n: u64) -> redis::RedisResult<Option<Duration>> {
        self.invoke(conn, subject, n, false).await
    }

    /// The most events one subject may take at once.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Whether one event for `subject` could happen now, without taking it: a budget that is
    /// spent only by failures (failed sign-ins) is checked before the attempt.
    pub async fn peek(&self, conn: &mut RedisConn, subject: &str) -> redis::RedisResult<Option<Duration>> {
        self.invoke(conn, subject, 1, true).await
    }

    async fn invoke(
        &self,
        conn: &mut RedisConn,
        subject: &str,
        cost: u64,
        peek: bool,
    ) -> redis::RedisResult<Option<Duration>> {
        let check = Check {
            limit: self,
            subject,
            cost,
            peek,
        };
        Ok(check_all(conn, &[check]).await?.map(|(_, wait)| wait))
    }
}

/// One limit to check in [`check_all`]: take `cost` events for `subject`, or only peek.
pub struct Check<'a> {
    pub limit: &'a RateLimit,
    pub subject: &'a str,
    pub cost: u64,
    pub peek: bool,
}

/// Checks several limits in one round trip, in order: `None` when all passed (and took their
/// events), else the index of the first that refused and how long to wait; a refusal takes
/// nothing from it or from the ones after it.
pub async fn check_all(conn: &mut RedisConn, checks: &[Check<'_>]) -> redis::RedisResult<Option<(usize, Duration)>> {
    static SCRIPT: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
    let script = SCRIPT.get_or_init(|| Script::new(GCRA));
    let mut invocation = script.prepare_invoke();
    for c in checks {
        invocation
            .key(format!("{}:{}", c.limit.key_prefix, c.subject))
            .arg(c.limit.interval_us)
            .arg(c.limit.burst)
            .arg(if c.peek { "1" } else { "0" })
            .arg(c.cost);
    }
    let (index, wait): (usize, u64) = invocation.invoke_async(conn).await?;
    Ok((index > 0).then(|| (index - 1, Duration::from_micros(wait))))
}
