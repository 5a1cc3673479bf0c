//! What the chaos run found: every accepted job against its final state and the effect ledger,
//! the faults injected, and how long recovery took.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use nightshift_queue::{JobState, Queue};
use sqlx::PgPool;

use super::enqueue::Sent;

/// Faults injected, and what the fleet did on its own.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub killed: usize,
    pub termed: usize,
    /// SIGTERMed workers that did not exit cleanly.
    pub unclean_terms: usize,
    pub stopped: usize,
    pub stalled_jobs: usize,
    pub stalled_jobs_taken_back: usize,
    pub redis_restarts: usize,
    /// Redis SIGSTOPped past two leases, then continued.
    pub redis_stalls: usize,
    /// Failovers to the replica behind the proxy.
    pub failovers: usize,
    /// Stretches of a link to Redis half a lease slower, cutting 2 % of connections.
    pub slow_links: usize,
    /// Processes whose clocks ran off, as `worker +90s`.
    pub skewed: Vec<String>,
    /// Workers a `diag.abort` job took down.
    pub aborted: usize,
    /// Workers that exited by themselves for any other reason.
    pub other_exits: usize,
    pub api_died: bool,
}

/// Jobs a SIGKILLed worker held, until another worker leases them (or the reaper buries them).
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    pending: Vec<(Instant, String, String)>,
    times: Vec<Duration>,
}

impl Recovery {
    pub fn watch(&mut self, killed_at: Instant, held: Vec<(String, String)>) {
        self.pending
            .extend(held.into_iter().map(|(id, owner)| (killed_at, id, owner)));
    }

    pub async fn check(&mut self, queue: &Queue) {
        let mut still = Vec::new();
        for (at, id, owner) in std::mem::take(&mut self.pending) {
            match queue.inspect(&id).await {
                Ok(Some(rec)) if rec.worker.as_deref() != Some(owner.as_str()) || rec.state == JobState::Dead => {
                    self.times.push(at.elapsed())
                }
                // Finished before the kill landed: nothing to recover.
                Ok(Some(rec)) if matches!(rec.state, JobState::Succeeded | JobState::Cancelled) => {}
                Ok(None) => {}
                _ => still.push((at, id, owner)),
            }
        }
        self.pending = still;
    }
}

/// Redis outages: (killed, restart began), readiness seen while down, and Redis back → first job
/// completed.
#[derive(Debug, Default)]
pub(crate) struct Outages {
    pub windows: Vec<(Instant, Instant)>,
    pub ready_while_down: Vec<Option<u16>>,
    pub first_job_after: Vec<Option<Duration>>,
    /// Redis's `aof_delayed_fsync` just before each kill (cumulative since its start).
    pub delayed_fsync: Vec<Option<u64>>,
}

#[derive(Debug)]
pub(crate) struct Report {
    attempts: usize,
    by_status: [usize; 4],
    accepted: usize,
    accepted_while_down: usize,
    /// Attempts sent while Redis was down: [2xx (answered after its return), 503, other, none].
    sent_while_down: [usize; 4],
    slowest_while_down: Duration,
    succeeded: usize,
    dead: usize,
    dead_by_kind: HashMap<&'static str, usize>,
    unfinished: usize,
    missing: usize,
    /// Of those missing from Redis, the ones whose history holds no final state either.
    missing_unrecorded: usize,
    lost: usize,
    /// Lost or missing jobs: id, kind, and when it was sent and answered relative to the
    /// nearest Redis kill (seconds; negative is before).
    lost_ids: Vec<(uuid::Uuid, &'static str, f64, f64, String)>,
    duplicate_effects: i64,
    duplicate_executions: i64,
    /// Concurrency slots held by a job not running under a lease, once the run is over.
    slot_leaks: Vec<String>,
    rerun_jobs: usize,
    stale: u64,
    aborts: usize,
    aborts_dead: usize,
    abort_attempts: Vec<u32>,
    faults: Faults,
    recovery: Vec<Duration>,
    unrecovered: usize,
    outages: Outages,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1].as_secs_f64()
}

impl Report {
    pub async fn compile(
        queue: &Queue,
        db: &PgPool,
        sent: Vec<Sent>,
        outages: Outages,
        faults: Faults,
        mut recovery: Recovery,
        stale: u64,
    ) -> anyhow::Result<Self> {
        recovery.check(queue).await;
        let ledger: HashMap<String, i64> =
            sqlx::query_as("SELECT business_key, count(*) FROM diag_ledger GROUP BY business_key")
                .fetch_all(db)
                .await?
                .into_iter()
                .collect();
        let executions: HashMap<uuid::Uuid, i64> =
            sqlx::query_as("SELECT job_id, count(*) FROM diag_effects GROUP BY job_id")
                .fetch_all(db)
                .await?
                .into_iter()
                .collect();
        // A failover to a replica that lagged loses the final states the old primary recorded
        // after the replica last caught up: the history is the record of those, and a job that
        // finished there is finished, not lost.
        let accepted: Vec<uuid::Uuid> = sent.iter().filter_map(|s| s.id).collect();
        let final_in_history: HashMap<uuid::Uuid, (JobState, u32)> = sqlx::query_as::<_, (uuid::Uuid, String, i32)>(
            "SELECT id, state, attempts FROM job_history WHERE id = ANY($1) AND state IN ('succeeded', 'dead')",
        )
        .bind(&accepted)
        .fetch_all(db)
        .await?
        .into_iter()
        .map(|(id, state, attempts)| {
            let state = if state == "dead" {
                JobState::Dead
            } else {
                JobState::Succeeded
            };
            (id, (state, attempts.max(0) as u32))
        })
        .collect();
        let mut r = Report {
            attempts: sent.len(),
            by_status: [0; 4],
            accepted: 0,
            accepted_while_down: 0,
            sent_while_down: [0; 4],
            slowest_while_down: Duration::ZERO,
            succeeded: 0,
            dead: 0,
            dead_by_kind: HashMap::new(),
            unfinished: 0,
            missing: 0,
            missing_unrecorded: 0,
            lost: 0,
            lost_ids: Vec::new(),
            duplicate_effects: ledger.values().map(|n| n - 1).sum(),
            duplicate_executions: executions.values().map(|n| n - 1).sum(),
            slot_leaks: queue.slot_leaks().await?,
            rerun_jobs: executions.values().filter(|n| **n > 1).count(),
            stale,
            aborts: 0,
            aborts_dead: 0,
            abort_attempts: Vec::new(),
            faults,
            unrecovered: recovery.pending.len(),
            recovery: recovery.times,
            outages,
        };
        r.recovery.sort();
        for s in &sent {
            let class = match s.status {
                Some(200..=299) => 0,
                Some(503) => 1,
                Some(_) => 2,
                None => 3,
            };
            r.by_status[class] += 1;
            if r.outages
                .windows
                .iter()
                .any(|(down, up)| s.started >= *down && s.started <= *up)
            {
                r.sent_while_down[class] += 1;
                r.slowest_while_down = r.slowest_while_down.max(s.ended - s.started);
            }
            if !s.accepted() {
                continue;
            }
            r.accepted += 1;
            if r.outages
                .windows
                .iter()
                .any(|(down, up)| s.started >= *down && s.ended <= *up)
            {
                r.accepted_while_down += 1;
            }
            let id = s.id.expect("accepted means an id");
            let rec = queue.inspect(&id.to_string()).await?;
            let seen = rec.as_ref().map_or("not in Redis".to_string(), |r| {
                format!("{} after {} attempts, error {:?}", r.state, r.attempts, r.error)
            });
            let state = match rec {
                Some(rec) => Some((rec.state, rec.attempts)),
                None => {
                    r.missing += 1;
                    let recorded = final_in_history.get(&id).copied();
                    r.missing_unrecorded += usize::from(recorded.is_none());
                    recorded
                }
            };
            match state {
                Some((JobState::Succeeded, _)) => r.succeeded += 1,
                Some((JobState::Dead, _)) => {
                    r.dead += 1;
                    *r.dead_by_kind.entry(s.kind).or_default() += 1;
                }
                Some(_) => r.unfinished += 1,
                None => {}
            }
            if s.kind == "diag.abort" {
                r.aborts += 1;
                if let Some((JobState::Dead, attempts)) = state {
                    r.aborts_dead += 1;
                    r.abort_attempts.push(attempts);
                }
            }
            let finished = matches!(state, Some((JobState::Succeeded | JobState::Dead, _)));
            let lost = match &s.key {
                // A fenced effect job is lost when its effect never happened and it did not die.
                Some(key) => !ledger.contains_key(key) && !matches!(state, Some((JobState::Dead, _))),
                None => !finished,
            };
            if lost {
                r.lost += 1;
            }
            if lost || state.is_none() {
                let offset = |t: Instant| {
                    r.outages
                        .windows
                        .iter()
                        .map(|(down, _)| {
                            t.saturating_duration_since(*down).as_secs_f64()
                                - down.saturating_duration_since(t).as_secs_f64()
                        })
                        .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                        .unwrap_or(f64::NAN)
                };
                r.lost_ids.push((id, s.kind, offset(s.started), offset(s.ended), seen));
            }
        }
        Ok(r)
    }

    /// Why the run failed, if it did.
    pub fn failed(&self) -> Option<String> {
        let mut why = Vec::new();
        if !self.slot_leaks.is_empty() {
            why.push(format!("concurrency slots leaked: {:?}", self.slot_leaks));
        }
        if self.lost > 0 {
            why.push(format!("{} jobs lost", self.lost));
        }
        if self.duplicate_effects > 0 {
            why.push(format!("{} duplicate effects", self.duplicate_effects));
        }
        if self.accepted_while_down > 0 {
            why.push(format!(
                "{} enqueues accepted while Redis was down",
                self.accepted_while_down
            ));
        }
        if self.aborts_dead < self.aborts {
            why.push(format!(
                "{} of {} aborting jobs did not end dead",
                self.aborts - self.aborts_dead,
                self.aborts
            ));
        }
        if self.outages.first_job_after.iter().any(Option::is_none) {
            why.push("processing did not resume within 60 s of Redis returning".into());
        }
        if self.faults.api_died {
            why.push("the API process died".into());
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    pub fn print(&self, faults_secs: f64, drain_secs: f64) {
        let f = &self.faults;
        let [ok, unavailable, other, none] = self.by_status;
        let dead_kinds: Vec<String> = {
            let mut v: Vec<_> = self.dead_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            v.sort();
            v
        };
        let secs = |d: &Option<Duration>| d.map_or("never".to_string(), |d| format!("{:.2}s", d.as_secs_f64()));
        let status = |s: &Option<u16>| s.map_or("no answer".to_string(), |s| s.to_string());
        println!("chaos report (faults {faults_secs:.1}s, drain {drain_secs:.1}s)");
        println!(
            "  enqueue attempts      {}: 2xx {ok}, 503 {unavailable}, other {other}, no answer {none}; 2xx while Redis was down {}",
            self.attempts, self.accepted_while_down
        );
        let [d_ok, d_unavailable, d_other, d_none] = self.sent_while_down;
        println!(
            "  sent while Redis down {}: 2xx {d_ok} (answered after it returned), 503 {d_unavailable}, other {d_other}, no answer {d_none}; slowest answer {:.2}s",
            d_ok + d_unavailable + d_other + d_none,
            self.slowest_while_down.as_secs_f64()
        );
        println!(
            "  jobs accepted         {}: succeeded {}, dead {} ({}), unfinished {}, missing from Redis {} ({} without a final state in the history either)",
            self.accepted,
            self.succeeded,
            self.dead,
            dead_kinds.join(", "),
            self.unfinished,
            self.missing,
            self.missing_unrecorded
        );
        println!("  lost                  {}", self.lost);
        for (id, kind, sent, answered, seen) in self.lost_ids.iter().take(10) {
            println!(
                "    lost or missing: {id} {kind}, {seen}; sent {sent:+.3}s and accepted {answered:+.3}s from the nearest Redis kill"
            );
        }
        println!("  duplicate effects     {}", self.duplicate_effects);
        println!("  leaked slots          {}", self.slot_leaks.len());
        println!(
            "  duplicate executions  {} (over {} jobs run more than once; allowed); late outcomes refused {}",
            self.duplicate_executions, self.rerun_jobs, self.stale
        );
        println!(
            "  aborting jobs         dead {} of {} (attempts {:?})",
            self.aborts_dead, self.aborts, self.abort_attempts
        );
        println!(
            "  faults                SIGKILL {}, SIGTERM {} ({} unclean exits), SIGSTOP {} ({} of {} held jobs taken back), Redis restarts {}, Redis stalls {}, failovers {}, slow links {}, workers aborted by jobs {}, other worker exits {}; clocks off: [{}]",
            f.killed,
            f.termed,
            f.unclean_terms,
            f.stopped,
            f.stalled_jobs_taken_back,
            f.stalled_jobs,
            f.redis_restarts,
            f.redis_stalls,
            f.failovers,
            f.slow_links,
            f.aborted,
            f.other_exits,
            f.skewed.join(", ")
        );
        println!(
            "  kill -> running again {} jobs: p50 {:.2}s, p99 {:.2}s, max {:.2}s; never {}",
            self.recovery.len(),
            percentile(&self.recovery, 0.50),
            percentile(&self.recovery, 0.99),
            self.recovery.last().map_or(f64::NAN, Duration::as_secs_f64),
            self.unrecovered
        );
        let back: Vec<String> = self.outages.first_job_after.iter().map(secs).collect();
        let ready: Vec<String> = self.outages.ready_while_down.iter().map(status).collect();
        let delayed: Vec<String> = self
            .outages
            .delayed_fsync
            .iter()
            .map(|d| d.map_or("?".into(), |d| d.to_string()))
            .collect();
        println!(
            "  Redis back -> first job completes: [{}]; readiness while down: [{}]; aof_delayed_fsync before each kill: [{}]",
            back.join(", "),
            ready.join(", "),
            delayed.join(", ")
        );
    }
}
