//! The fault loop: one planned fault at a time against the fleet, Redis and the API, with what
//! each one did to the jobs in flight.
use std::time::{Duration, Instant};

use nightshift_queue::Queue;

use super::fleet::{Fleet, held_by, signal};
use super::redis_server::PrivateRedis;
use super::report::{self, Recovery};
use crate::proxy::LatencyProxy;

/// A chaos run in progress: the fleet, the queue it watches and the API it loads, which each
/// fault acts on.
pub(super) struct FaultRun<'a> {
    pub(super) fleet: Fleet<'a>,
    pub(super) queue: Queue,
    pub(super) stats_key: String,
    pub(super) recovery: Recovery,
    pub(super) api: String,
    pub(super) http: reqwest::Client,
}

impl FaultRun<'_> {
    /// Waits `d` while keeping the fleet at size and noting recovered jobs.
    pub(super) async fn pace(&mut self, d: Duration, redis_up: bool) -> anyhow::Result<()> {
        let until = Instant::now() + d;
        loop {
            self.fleet.supervise(redis_up)?;
            if redis_up {
                self.recovery.check(&self.queue).await;
            }
            if Instant::now() >= until {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100).min(until - Instant::now())).await;
        }
    }

    pub(super) async fn kill(&mut self, sig: &str) -> anyhow::Result<()> {
        let Some(mut victim) = self.fleet.random_worker() else {
            return Ok(());
        };
        let pid = victim.id().unwrap_or(0);
        let held = held_by(&self.queue, pid).await;
        signal(pid, sig);
        if sig == "KILL" {
            let _ = victim.wait().await;
            self.recovery.watch(Instant::now(), held);
            self.fleet.faults.killed += 1;
        } else {
            self.fleet.draining.push(victim);
            self.fleet.faults.termed += 1;
        }
        self.fleet.supervise(true)
    }

    /// SIGSTOP the worker holding the most jobs, start another, wait until its jobs were taken
    /// back (its lease expired), then SIGCONT: its late outcomes must be refused.
    pub(super) async fn stall(&mut self, lease: Duration) -> anyhow::Result<()> {
        let mut best: Option<(usize, Vec<(String, String)>)> = None;
        for (i, w) in self.fleet.workers.iter().enumerate() {
            let held = held_by(&self.queue, w.id().unwrap_or(0)).await;
            if best.as_ref().is_none_or(|b| held.len() > b.1.len()) {
                best = Some((i, held));
            }
        }
        let Some((i, held)) = best else { return Ok(()) };
        let pid = self.fleet.workers[i].id().unwrap_or(0);
        signal(pid, "STOP");
        let replacement = self.fleet.spawn("worker", &[])?;
        self.fleet.workers.push(replacement);
        let ids: Vec<String> = held.iter().map(|(id, _)| id.clone()).collect();
        let stalled_at = Instant::now();
        let deadline = stalled_at + lease * 3 + Duration::from_secs(5);
        loop {
            self.pace(Duration::from_millis(200), true).await?;
            let mut taken = 0;
            for (id, owner) in &held {
                if let Ok(Some(rec)) = self.queue.inspect(id).await
                    && rec.worker.as_deref() != Some(owner.as_str())
                {
                    taken += 1;
                }
            }
            if (taken == ids.len() && stalled_at.elapsed() > lease) || Instant::now() > deadline {
                self.fleet.faults.stalled_jobs_taken_back += taken;
                self.fleet.faults.stalled_jobs += ids.len();
                break;
            }
        }
        signal(pid, "CONT");
        self.fleet.faults.stopped += 1;
        Ok(())
    }

    /// SIGSTOP Redis for `silent` (it neither answers nor closes a connection, as behind a
    /// network blackhole), then SIGCONT: commands time out meanwhile and leases lapse by
    /// Redis's own clock once it answers again.
    pub(super) async fn stall_redis(&mut self, redis: &PrivateRedis, silent: Duration) -> anyhow::Result<()> {
        redis.signal("STOP");
        let result = self.pace(silent, false).await;
        redis.signal("CONT");
        self.fleet.faults.redis_stalls += 1;
        result
    }

    /// A failover behind the proxy, as a Sentinel-driven address or a cloud endpoint does it:
    /// the replica is promoted, the primary demoted to its replica (the connections still on it
    /// get `READONLY`), new connections go to the promoted one; two seconds on the demoted one
    /// dies and comes back as the new replica. What replication had not carried is lost, and
    /// must be re-derived from the history.
    pub(super) async fn failover(
        &mut self,
        primary: &mut PrivateRedis,
        replica: &mut PrivateRedis,
        proxy: &LatencyProxy,
    ) -> anyhow::Result<()> {
        replica.replicate(None).await?;
        primary.replicate(Some(replica.port)).await?;
        proxy.set_upstream(replica.port);
        self.pace(Duration::from_secs(2), true).await?;
        primary.restart().await?;
        std::mem::swap(primary, replica);
        self.fleet.faults.failovers += 1;
        Ok(())
    }

    /// Three leases of a link to Redis half a lease slower each way round, cutting 2 % of the
    /// connections at a command.
    pub(super) async fn slow_link(&mut self, proxy: &LatencyProxy, lease: Duration) -> anyhow::Result<()> {
        proxy.set_delay(lease / 2);
        proxy.set_reset(0.02);
        let result = self.pace(lease * 3, true).await;
        proxy.set_reset(0.0);
        proxy.set_delay(Duration::ZERO);
        self.fleet.faults.slow_links += 1;
        result
    }

    pub(super) async fn restart_redis(
        &mut self,
        redis: &mut PrivateRedis,
        down: Duration,
        log: &mut report::Outages,
    ) -> anyhow::Result<()> {
        // An fsync the disk is slow to finish makes Redis postpone writing the append-only file
        // while still answering clients: a kill then loses acknowledged writes. Noted per kill.
        let info: Result<String, _> = redis::cmd("INFO")
            .arg("persistence")
            .query_async(&mut self.queue.connection())
            .await;
        let delayed = info.ok().and_then(|i| {
            i.lines()
                .find_map(|l| l.strip_prefix("aof_delayed_fsync:"))
                .and_then(|v| v.trim().parse().ok())
        });
        log.delayed_fsync.push(delayed);
        redis.kill().await;
        let down_at = Instant::now();
        self.pace(down / 2, false).await?;
        let ready = self
            .http
            .get(format!("{}/health/ready", self.api))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok();
        self.pace(down.saturating_sub(down_at.elapsed()), false).await?;
        let restart_at = Instant::now();
        redis.restart().await?;
        let back = Instant::now();
        let stat = |q: Queue, key: String| async move {
            let mut conn = q.connection();
            redis::cmd("HGET")
                .arg(key)
                .arg("succeeded")
                .query_async::<Option<u64>>(&mut conn)
                .await
        };
        let mut base = None;
        let mut first_job = None;
        while back.elapsed() < Duration::from_secs(60) {
            match (stat(self.queue.clone(), self.stats_key.clone()).await, base) {
                (Ok(n), None) => base = Some(n.unwrap_or(0)),
                (Ok(n), Some(b)) if n.unwrap_or(0) > b => {
                    first_job = Some(back.elapsed());
                    break;
                }
                _ => {}
            }
            self.fleet.supervise(true)?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        log.windows.push((down_at, restart_at));
        log.ready_while_down.push(ready);
        log.first_job_after.push(first_job);
        self.fleet.faults.redis_restarts += 1;
        Ok(())
    }
}
