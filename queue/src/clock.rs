//! The one clock, as a process sees it. Every time decision that two processes could disagree
//! on is made where the time is: the queue's scripts read Redis's `TIME` (leases, due times,
//! rates, windows), the scheduler and the sweeps read PostgreSQL's `now()`. What a process must
//! still time itself (a token's `iat` and `exp`, a dashboard session, the UUIDv7 ids that
//! recovery windows, partitions and dashboard ranges read as time, history timestamps) reads
//! [`now`]: its own clock plus the offset it last measured against Redis, so a host whose clock
//! drifted still agrees with the fleet. The raw clock only decides how long a process sleeps.
//!
//! The offset is measured at start and once a minute ([`follow`]): exported as
//! `nightshift_clock_offset_seconds`, logged as a warning past [`TOLERANCE`], and checked by
//! `nightshift doctor` with the same threshold.
use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, Utc};

use crate::{QueueError, RedisConn};

/// Past this, a process's clock is reported as off (metric always, warning and `doctor` past it).
pub const TOLERANCE: Duration = Duration::from_secs(1);

/// How often [`follow`] measures again.
const EVERY: Duration = Duration::from_secs(60);

/// Redis's clock minus this process's, in milliseconds, as last measured.
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The fleet's time in milliseconds since the epoch: this process's clock corrected by its
/// measured offset from Redis.
pub fn now_ms() -> i64 {
    system_ms() + OFFSET_MS.load(Ordering::Relaxed)
}

/// [`now_ms`] as a date-time.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now_ms()).unwrap_or_default()
}

/// The offset last measured (Redis's clock minus this process's).
pub fn offset() -> Duration {
    Duration::from_millis(OFFSET_MS.load(Ordering::Relaxed).unsigned_abs())
}

/// The signed offset last measured, in milliseconds.
pub fn offset_ms() -> i64 {
    OFFSET_MS.load(Ordering::Relaxed)
}

/// Redis's time, read with `TIME`.
pub async fn redis_time_ms(conn: &mut RedisConn) -> Result<i64, QueueError> {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs * 1000 + micros / 1000)
}

/// Measures Redis's clock against this process's (the midpoint of the round trip), records the
/// offset and returns it in milliseconds.
pub async fn sync(conn: &mut RedisConn) -> Result<i64, QueueError> {
    let before = system_ms();
    let redis = redis_time_ms(conn).await?;
    let after = system_ms();
    let offset = redis - (before + after) / 2;
    OFFSET_MS.store(offset, Ordering::Relaxed);
    metrics::gauge!("nightshift_clock_offset_seconds", "against" => "redis").set(offset as f64 / 1e3);
    if offset.unsigned_abs() > TOLERANCE.as_millis() as u64 {
        tracing::warn!(
            offset_ms = offset,
            tolerance_ms = TOLERANCE.as_millis() as u64,
            "this host's clock is off from Redis's; decisions use Redis's time, and this process's reads are corrected"
        );
    }
    Ok(offset)
}

/// Measures the offset now, then once a minute for the life of the process (started once per
/// process, however many of its components call this).
pub async fn follow(mut conn: RedisConn) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    if STARTED.is_completed() {
        return;
    }
    if let Err(e) = sync(&mut conn).await {
        tracing::warn!(error = %e, "clock offset from Redis not measured at start");
    }
    STARTED.call_once(|| {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(EVERY).await;
                if let Err(e) = sync(&mut conn).await {
                    tracing::debug!(error = %e, "clock offset not measured");
                }
            }
        });
    });
}
