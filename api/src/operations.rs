//! Operator actions: what the CLI, the dashboard and the admin API change by hand. Each action
//! has one name here, is parsed here and is performed and audited here, whoever asks; the
//! callers only find their target and say who acts.
use std::{fmt, str::FromStr};

use nightshift_catalog::Queues;
use nightshift_catalog::schedules::{Schedule, ScheduleError, ledger};
use nightshift_common::{audit, history};
use nightshift_queue::{JobState, Queue, QueueError};
use serde_json::{Value, json};
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// Declares an action enum with its wire names, parsed and printed from the same list.
macro_rules! actions {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const NAMES: &'static [&'static str] = &[$($text),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }

        impl FromStr for $name {
            type Err = OpError;
            fn from_str(s: &str) -> Result<Self, OpError> {
                match s {
                    $($text => Ok(Self::$variant),)*
                    other => Err(OpError::UnknownAction(nightshift_common::telemetry::untrusted(other).to_string())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

actions!(
    /// On one job.
    JobAction { Retry => "retry", Cancel => "cancel", Discard => "discard" }
);
actions!(
    /// On a queue: paused queues lease nothing; running jobs finish.
    QueueAction { Pause => "pause", Resume => "resume" }
);
actions!(
    /// On a schedule.
    ScheduleAction { Pause => "pause", Resume => "resume", Run => "run" }
);
actions!(
    /// On a queue's whole dead set.
    DeadAction { Retry => "retry", Discard => "discard" }
);

/// Where an action comes from: the audit row says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Cli,
    Dashboard,
    /// The admin API writes one audit row per request (method, route, status) in its
    /// middleware; actions taken through it add none of their own.
    Api,
}

/// Who acts, and how it is recorded.
#[derive(Debug, Clone)]
pub struct Actor {
    name: String,
    via: Via,
}

impl Actor {
    /// The operator at a shell: `cli:$USER`.
    pub fn cli() -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
        Actor {
            name: format!("cli:{user}"),
            via: Via::Cli,
        }
    }

    pub fn dashboard(name: String) -> Self {
        Actor {
            name,
            via: Via::Dashboard,
        }
    }

    pub fn api(subject: &str) -> Self {
        Actor {
            name: subject.to_string(),
            via: Via::Api,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs an action and records it with its outcome, refused or failed ones included. A
    /// lost audit row is loud in the logs but does not undo what happened.
    pub async fn audited<T, E: fmt::Display>(
        &self,
        db: &PgPool,
        action: &str,
        target: &str,
        run: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.audited_with(db, action, target, run, |_| json!({})).await
    }

    /// As [`Self::audited`], with what a success adds to the row (the job it made, say).
    async fn audited_with<T, E: fmt::Display>(
        &self,
        db: &PgPool,
        action: &str,
        target: &str,
        run: impl Future<Output = Result<T, E>>,
        detail: impl FnOnce(&T) -> Value,
    ) -> Result<T, E> {
        let result = run.await;
        let row = match &result {
            Ok(done) => {
                let mut row = detail(done);
                row["outcome"] = json!("ok");
                row
            }
            Err(e) => json!({ "outcome": "refused", "reason": e.to_string() }),
        };
        self.record(db, action, target, row).await;
        result
    }

    /// Records something that happened (or was refused) without running it here.
    pub async fn record(&self, db: &PgPool, action: &str, target: &str, mut detail: Value) {
        let via = match self.via {
            Via::Api => return,
            Via::Cli => "cli",
            Via::Dashboard => "dashboard",
        };
        detail["via"] = json!(via);
        if let Err(e) = audit::record(db, &self.name, action, target, detail).await {
            tracing::error!(error = %e, action, target, "audit log write failed");
        }
    }

    /// Retries, cancels or discards one job; returns its state after the action.
    pub async fn job(&self, db: &PgPool, queue: &Queue, id: &str, action: JobAction) -> Result<String, OpError> {
        let run = async {
            let state = match action {
                JobAction::Retry => Some(queue.retry(id).await?),
                JobAction::Cancel => Some(queue.cancel(id).await?),
                JobAction::Discard => queue.discard(id).await.map(|()| None)?,
            };
            // Cancelled, or queued again: no worker will report it (a running job's cancel
            // is reported by its worker when it stops).
            if let Some(s @ (JobState::Cancelled | JobState::Queued)) = state
                && let Ok(uuid) = uuid::Uuid::parse_str(id)
            {
                record_in_history(db, &[uuid], s).await;
            }
            let state = state.map_or_else(|| "discarded".to_string(), |s| s.to_string());
            tracing::info!(job.id = %id, queue = queue.name(), %action, by = %self.name, "operator job action");
            Ok(state)
        };
        self.audited_with(
            db,
            &format!("job.{action}"),
            id,
            run,
            |_| json!({ "queue": queue.name() }),
        )
        .await
    }

    pub async fn queue(&self, db: &PgPool, queue: &Queue, action: QueueAction) -> Result<(), OpError> {
        self.audited(db, &format!("queue.{action}"), queue.name(), async {
            match action {
                QueueAction::Pause => queue.pause().await?,
                QueueAction::Resume => queue.resume().await?,
            }
            tracing::info!(queue = queue.name(), %action, by = %self.name, "operator queue action");
            Ok(())
        })
        .await
    }

    /// Pauses, resumes or runs a schedule now; a run returns the job's id.
    pub async fn schedule(
        &self,
        db: &PgPool,
        queues: &Queues,
        schedule: &Schedule,
        action: ScheduleAction,
    ) -> Result<Option<String>, OpError> {
        let run = async {
            let job = match action {
                ScheduleAction::Run => Some(nightshift_catalog::schedules::run_now(queues, schedule).await?),
                ScheduleAction::Pause | ScheduleAction::Resume => {
                    ledger::set_paused(db, &schedule.name, action == ScheduleAction::Pause, &self.name).await?;
                    None
                }
            };
            tracing::info!(schedule = %schedule.name, %action, job.id = ?job, by = %self.name, "operator schedule action");
            Ok(job)
        };
        let action_name = format!("schedule.{action}");
        self.audited_with(db, &action_name, &schedule.name, run, |job| match job {
            Some(id) => json!({ "job_id": id }),
            None => json!({}),
        })
        .await
    }

    /// Retries or discards a queue's dead set: at most `expected` jobs (the count the operator
    /// confirmed), so jobs that die again meanwhile are not retried in a loop. Returns how
    /// many moved.
    pub async fn dead(&self, db: &PgPool, queue: &Queue, action: DeadAction, expected: u64) -> Result<u64, OpError> {
        const BATCH: usize = 500;
        let target = format!("{}/dead", queue.name());
        let run = async {
            // Bounded by the jobs looked at, not the jobs moved: a job that cannot be moved
            // stays at the head of the dead set and must not make this loop spin.
            let (mut seen, mut done) = (0u64, 0u64);
            while seen < expected {
                let take = BATCH.min((expected - seen) as usize);
                let batch = queue.list(JobState::Dead, 0, take).await?;
                if batch.is_empty() {
                    break;
                }
                let mut retried = Vec::new();
                for job in &batch {
                    seen += 1;
                    // A job another operator just moved is no reason to stop the rest.
                    let moved = match action {
                        DeadAction::Retry => queue.retry(&job.id).await.map(drop),
                        DeadAction::Discard => queue.discard(&job.id).await,
                    };
                    match moved {
                        Ok(()) => {
                            done += 1;
                            if action == DeadAction::Retry
                                && let Ok(id) = uuid::Uuid::parse_str(&job.id)
                            {
                                retried.push(id);
                            }
                        }
                        Err(QueueError::NotFound(_) | QueueError::InvalidTransition { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                // Queued again, as `job` records one retry.
                record_in_history(db, &retried, JobState::Queued).await;
            }
            tracing::info!(queue = queue.name(), %action, jobs = done, by = %self.name, "operator action on the dead set");
            Ok(done)
        };
        self.audited_with(
            db,
            &format!("dead.{action}_all"),
            &target,
            run,
            |n| json!({ "jobs": n }),
        )
        .await
    }
}

/// An operator's action on jobs no worker holds, written to their history. The action itself
/// is done by then: a failed write is logged, not answered as the action's failure.
async fn record_in_history(db: &PgPool, ids: &[uuid::Uuid], state: JobState) {
    if let Err(e) = history::record_operator_state(db, ids, state).await {
        tracing::error!(error = %e, jobs = ids.len(), %state, "an operator's action was not written to the job history");
    }
}

impl From<OpError> for crate::ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::UnknownAction(_) => crate::ApiError::NotFound("action"),
            OpError::Queue(q) | OpError::Schedule(ScheduleError::Redis(q)) => q.into(),
            OpError::Database(d) => d.into(),
            OpError::Schedule(other) => crate::ApiError::Internal(Box::new(other)),
        }
    }
}
