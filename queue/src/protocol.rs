//! The worker side of the queue protocol: fetch leases jobs, ack writes their outcomes, renew
//! extends the leases of running jobs, reap takes back the jobs of dead workers and release
//! returns leased jobs that never started.
use std::time::Duration;

use crate::{
    Queue, QueueError,
    job::{Job, JobState, Outcome, PROGRESS_MESSAGE_MAX},
    scripts::SCRIPTS,
};

/// The result of one fetch: leased jobs, and how long until the earliest scheduled job falls
/// due (a duration by Redis's clock: the worker sleeps it, it never compares times).
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub jobs: Vec<Job>,
    pub next_due_in: Option<Duration>,
}

/// An outcome ready to be written, with its lease.
#[derive(Debug)]
pub(crate) struct Ack<'a> {
    pub job: &'a Job,
    pub outcome: &'a Outcome,
    pub retry_delay: Duration,
}

/// One job taken back by the reaper.
#[derive(Debug, Clone)]
pub(crate) struct Reaped {
    pub id: String,
    pub state: JobState,
    pub attempts: u32,
    pub kind: String,
    pub worker: String,
}

impl Queue {
    pub(crate) async fn fetch(&self, count: usize, worker: &str) -> Result<Fetched, QueueError> {
        let k = &self.keys;
        let reply: Vec<String> = SCRIPTS
            .fetch
            .key(&k.ready)
            .key(&k.scheduled)
            .key(&k.retry)
            .key(&k.inflight)
            .key(&k.paused)
            .arg(&k.base)
            .arg(self.config.lease.as_millis() as u64)
            .arg(count)
            .arg(worker)
            .arg(self.config.sweep_batch)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let mut it = reply.into_iter();
        let (Some(due_in), Some(now)) = (it.next(), it.next()) else {
            return Err(QueueError::Protocol("fetch reply without its head".into()));
        };
        let next_due_in = due_in
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .map(|ms| Duration::from_millis(ms as u64));
        // Redis's time at the lease: the run's start on record, by the one clock.
        let now: i64 = now.parse().unwrap_or_else(|_| crate::clock::now_ms());
        let rest: Vec<String> = it.collect();
        if !rest.len().is_multiple_of(9) {
            return Err(QueueError::Protocol("fetch reply not in 9-field records".into()));
        }
        let mut jobs = Vec::with_capacity(rest.len() / 9);
        let mut fields = rest.into_iter();
        while let Some(id) = fields.next() {
            let mut next = || fields.next().unwrap_or_default();
            let (kind, payload, attempt, max, created, timeout, tp, flags) =
                (next(), next(), next(), next(), next(), next(), next(), next());
            let timeout_ms: u64 = timeout.parse().unwrap_or(0);
            // The same member fetch.lua wrote, ending in its flags (batch, concurrency slot).
            let lease = format!("{id}|{worker}#{attempt}{flags}");
            jobs.push(Job {
                id,
                queue: self.name.clone(),
                kind,
                payload: payload.into(),
                attempt: attempt.parse().unwrap_or(1),
                max_attempts: max.parse().unwrap_or(1),
                created_at_ms: created.parse().unwrap_or(now),
                started_at_ms: now,
                timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)),
                trace_parent: (!tp.is_empty()).then_some(tp),
                lease,
            });
        }
        Ok(Fetched { jobs, next_due_in })
    }

    /// Writes outcomes in one call. Returns Redis's time of the write and the resulting state
    /// per job; `None` marks an ack refused because the lease had already been taken back.
    pub(crate) async fn ack(&self, acks: &[Ack<'_>]) -> Result<(i64, Vec<Option<JobState>>), QueueError> {
        let k = &self.keys;
        let mut inv = SCRIPTS.ack.prepare_invoke();
        inv.key(&k.ready)
            .key(&k.scheduled)
            .key(&k.retry)
            .key(&k.inflight)
            .key(&k.dead)
            .key(&k.stats)
            .key(&k.done)
            .arg(&k.base)
            .arg(acks.len());
        for a in acks {
            let (code, text) = match a.outcome {
                Outcome::Succeeded(r) => ("s", r.as_deref().unwrap_or("")),
                Outcome::Retry { error, .. } => ("r", error.as_str()),
                Outcome::Dead(e) => ("d", e.as_str()),
                Outcome::Cancelled(e) => ("c", e.as_str()),
                Outcome::Snooze { reason, .. } => ("z", reason.as_str()),
            };
            inv.arg(&a.job.id)
                .arg(&a.job.lease)
                .arg(code)
                .arg(text)
                .arg(a.retry_delay.as_millis() as u64);
        }
        let reply: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await?;
        let (now, states) = reply
            .split_first()
            .ok_or_else(|| QueueError::Protocol("empty ack reply".into()))?;
        let now = now.parse().unwrap_or_else(|_| crate::clock::now_ms());
        Ok((now, states.iter().map(|s| s.parse().ok()).collect()))
    }

    /// Extends the leases of running jobs; returns (lost, cancel-requested) ids.
    pub(crate) async fn renew(&self, leases: &[(String, String)]) -> Result<(Vec<String>, Vec<String>), QueueError> {
        let mut inv = SCRIPTS.renew.prepare_invoke();
        inv.key(&self.keys.inflight)
            .arg(&self.keys.base)
            .arg(self.config.lease.as_millis() as u64)
            .arg(leases.len());
        for (id, member) in leases {
            inv.arg(id).arg(member);
        }
        let reply: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await?;
        let mut parts = reply.split(|s| s.is_empty());
        let lost = parts.next().unwrap_or_default().to_vec();
        let cancelled = parts.next().unwrap_or_default().to_vec();
        Ok((lost, cancelled))
    }

    pub(crate) async fn reap(&self, owner: &str) -> Result<Vec<Reaped>, QueueError> {
        let k = &self.keys;
        let reply: Vec<String> = SCRIPTS
            .reap
            .key(&k.ready)
            .key(&k.inflight)
            .key(&k.dead)
            .key(&k.stats)
            .key(&k.reaper)
            .key(&k.done)
            .arg(&k.base)
            .arg(self.config.sweep_batch)
            .arg((self.config.reap_interval.as_millis() as u64).max(100))
            .arg(owner)
            .arg(self.config.finished_ttl.as_millis() as u64)
            .arg(&k.wake)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(reply
            .chunks_exact(5)
            .filter_map(|c| {
                Some(Reaped {
                    id: c[0].clone(),
                    state: c[1].parse().ok()?,
                    attempts: c[2].parse().unwrap_or(0),
                    kind: c[3].clone(),
                    worker: c[4].clone(),
                })
            })
            .collect())
    }

    /// Records how far a running job is, while its lease is held; false once it is not. The
    /// message is cut to [`PROGRESS_MESSAGE_MAX`] characters.
    pub async fn report_progress(&self, job: &Job, percent: u8, message: &str) -> Result<bool, QueueError> {
        let message: String = message.chars().take(PROGRESS_MESSAGE_MAX).collect();
        let written: i64 = SCRIPTS
            .progress
            .key(&self.keys.inflight)
            .arg(&self.keys.base)
            .arg(&job.id)
            .arg(&job.lease)
            .arg(percent.min(100))
            .arg(message)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(written == 1)
    }

    /// Gives leased jobs that never started back to the head of the queue.
    pub(crate) async fn release(&self, jobs: &[Job]) -> Result<u64, QueueError> {
        let mut inv = SCRIPTS.release.prepare_invoke();
        inv.key(&self.keys.ready)
            .key(&self.keys.inflight)
            .arg(&self.keys.base)
            .arg(&self.keys.wake);
        for job in jobs {
            inv.arg(&job.id).arg(&job.lease);
        }
        Ok(inv.invoke_async(&mut self.conn.clone()).await?)
    }
}
