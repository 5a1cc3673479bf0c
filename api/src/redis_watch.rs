//! Whether Redis answers, known without asking it. A command sent to a Redis that stopped
//! answering (SIGSTOP, a blackhole) waits out the command timeout (5 s); a watcher pings it
//! several times a second, and while its last answer is older than [`SILENT`] the API answers
//! an enqueue 503 at once, reads a status from the history, and lets requests through its rate
//! limits without asking.
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use nightshift_queue::RedisConn;

/// How long Redis may be silent before the API stops waiting for it.
pub const SILENT: Duration = Duration::from_secs(2);
const EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct RedisWatch {
    since: Instant,
    /// Milliseconds from `since` to the last answer.
    last_answer: Arc<AtomicU64>,
}

impl RedisWatch {
    /// Starts watching on its own task; Redis counts as answering at first.
    pub fn spawn(conn: RedisConn) -> Self {
        let watch = RedisWatch {
            since: Instant::now(),
            last_answer: Arc::new(AtomicU64::new(0)),
        };
        let w = watch.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let mut conn = conn.clone();
                let ping = redis::cmd("PING");
                if let Ok(Ok(_)) = tokio::time::timeout(SILENT, ping.query_async::<String>(&mut conn)).await {
                    w.last_answer
                        .store(w.since.elapsed().as_millis() as u64, Ordering::Relaxed);
                }
            }
        });
        watch
    }

    /// Redis answered within the last [`SILENT`].
    pub fn answering(&self) -> bool {
        let last = Duration::from_millis(self.last_answer.load(Ordering::Relaxed));
        self.since.elapsed().saturating_sub(last) < SILENT
    }
}
