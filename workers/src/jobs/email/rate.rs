//! A per-recipient-domain send rate shared by every worker: GCRA (the generic cell rate
//! algorithm) in one Lua script, one key per domain holding its theoretical arrival time. It
//! reads Redis's clock, so workers' clocks do not matter, and it needs no cleanup: a key
//! expires once its domain has been idle for a burst's worth of time.
use std::time::Duration;

use redis::{Script, aio::ConnectionManager};

const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - burst * interval
if wait > 0 then return wait end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return 0
"#;

#[derive(Clone, Debug)]
pub struct DomainRate {
    prefix: String,
    /// Time between two sends to one domain, in milliseconds.
    interval_ms: u64,
    /// Sends allowed at once after an idle spell.
    burst: u64,
}

impl DomainRate {
    /// `per_second` sends per domain, in bursts of up to `burst`.
    pub fn new(prefix: &str, per_second: u32, burst: u32) -> Self {
        DomainRate {
            prefix: prefix.to_string(),
            interval_ms: (1000 / u64::from(per_second.max(1))).max(1),
            burst: u64::from(burst.max(1)),
        }
    }

    /// Takes one send for `domain`: `None` if it may go now, else how long to wait first.
    pub async fn take(&self, conn: &mut ConnectionManager, domain: &str) -> redis::RedisResult<Option<Duration>> {
        static SCRIPT: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
        let key = format!("{}:rate:email:{}", self.prefix, domain.to_ascii_lowercase());
        let wait: u64 = SCRIPT
            .get_or_init(|| Script::new(GCRA))
            .key(key)
            .arg(self.interval_ms)
            .arg(self.burst)
            .invoke_async(conn)
            .await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }
}
