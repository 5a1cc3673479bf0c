//! The job catalog. Each kind lives in one module: payload, policy, handler and tests. This
//! list is the one registration point; an unknown kind is an error, never a skip.
use std::{collections::BTreeMap, sync::Arc, time::Duration};

use nightshift_common::Config;
use nightshift_queue::RedisConn;
use nightshift_queue::{Backoff, Job, NewJob, Outcome};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::PgPool;

use crate::runtime::Queues;

pub mod backup;
pub mod cashflow;
pub mod diag;
pub mod email;
pub mod maintenance;
pub mod reminders;
pub mod secrets;
pub mod webhook;

/// What a job kind declares next to its handler, as Oban workers do.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub queue: &'static str,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub backoff: Backoff,
}

/// Who may enqueue a kind through the API. Declared by every kind, beside its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    /// Any token with `jobs:write` (a user-confined one only for its own user).
    Client,
    /// Tokens with the `admin` scope; every request is audited.
    Operator,
    /// Never through the API: the scheduler and other jobs make them.
    Internal,
}

/// A job kind. `NAME` is the stable wire name: renaming the Rust type must not rename it.
pub trait JobKind {
    const NAME: &'static str;
    const POLICY: Policy;
    const EXPOSURE: Exposure;
    /// A test and benchmark kind: it exists for the API only when diagnostics are switched on
    /// (`NIGHTSHIFT_DIAGNOSTICS=1`).
    const DIAGNOSTIC: bool = false;
    /// The payload field naming the user a job acts on: a user-confined token may enqueue
    /// the kind only for its own user. Kinds without one are refused to such tokens.
    const USER_FIELD: Option<&'static str> = None;
    type Payload: DeserializeOwned + Serialize + Send;
    /// Payload fields the dashboard masks (at any depth), beyond those named like secrets.
    const SENSITIVE: &'static [&'static str] = &[];
    fn run(env: &JobEnv, job: &Job, payload: Self::Payload) -> impl Future<Output = Outcome> + Send;
}

/// The environment built once per process and handed to every job.
#[derive(Clone)]
pub struct JobEnv {
    pub db: PgPool,
    pub queues: Queues,
    pub redis: RedisConn,
    pub mailer: Arc<email::Mailer>,
    /// The domain of Message-IDs, from the sender address.
    pub mail_domain: Arc<str>,
    /// The webhook client: public addresses only unless NIGHTSHIFT_WEBHOOK_ALLOW_PRIVATE.
    pub http: reqwest::Client,
    pub webhook_allow_private: bool,
    /// Signing-key rotation, when the keyring is configured.
    pub rotation: Option<Arc<secrets::Rotation>>,
    pub backups: Arc<backup::Backups>,
    /// Who is told when a backup or a restore drill fails.
    pub operator_emails: Arc<[String]>,
}

impl JobEnv {
    pub fn new(config: &Config, db: PgPool, redis: RedisConn) -> anyhow::Result<Self> {
        Ok(JobEnv {
            rotation: secrets::Rotation::from_config(config)?,
            queues: Queues::new(redis.clone(), &config.queue),
            mailer: Arc::new(email::Mailer::new(&config.mail, &config.queue.prefix)?),
            mail_domain: email::message_id_domain(&config.mail.from).into(),
            http: webhook::http_client(config.webhook_allow_private),
            webhook_allow_private: config.webhook_allow_private,
            backups: Arc::new(backup::Backups::from_config(config)),
            operator_emails: config.operator_emails.clone().into(),
            db,
            redis,
        })
    }
}

/// A kind's catalog entry: its policy and how to check a payload without running it.
#[derive(Clone, Copy)]
pub struct KindSpec {
    pub name: &'static str,
    pub policy: Policy,
    pub exposure: Exposure,
    pub diagnostic: bool,
    pub user_field: Option<&'static str>,
    pub sensitive: &'static [&'static str],
    validate: fn(&serde_json::Value) -> Result<(), (String, String)>,
    run: for<'a> fn(&'a JobEnv, &'a Job) -> futures::future::BoxFuture<'a, Outcome>,
}

impl KindSpec {
    /// Checks a payload against the kind's schema; the error is (field path, message).
    pub fn validate(&self, payload: &serde_json::Value) -> Result<(), (String, String)> {
        (self.validate)(payload)
    }

    /// The user a payload acts on, per the kind's `USER_FIELD`.
    pub fn user_of(&self, payload: &serde_json::Value) -> Option<i64> {
        self.user_field
            .and_then(|f| payload.get(f))
            .and_then(serde_json::Value::as_i64)
    }

    /// A job of this kind with its policy applied.
    pub fn new_job(&self, payload: &serde_json::Value) -> NewJob {
        NewJob::new(self.name, payload.to_string())
            .max_attempts(self.policy.max_attempts)
            .timeout(self.policy.timeout)
    }
}

fn spec<K: JobKind>() -> KindSpec {
    KindSpec {
        name: K::NAME,
        policy: K::POLICY,
        exposure: K::EXPOSURE,
        diagnostic: K::DIAGNOSTIC,
        user_field: K::USER_FIELD,
        sensitive: K::SENSITIVE,
        validate: |v| {
            serde_path_to_error::deserialize::<_, K::Payload>(v)
                .map(|_| ())
                .map_err(|e| {
                    let path = e.path().to_string();
                    let field = if path == "." {
                        "payload".to_string()
                    } else {
                        format!("payload.{path}")
                    };
                    (field, e.into_inner().to_string())
                })
        },
        run: |env, job| {
            Box::pin(async move {
                match serde_json::from_str::<K::Payload>(&job.payload) {
                    // A failure without its own delay gets the kind's backoff.
                    Ok(p) => match K::run(env, job, p).await {
                        Outcome::Retry { error, after: None } => Outcome::Retry {
                            error,
                            after: Some(K::POLICY.backoff.delay(job.attempt)),
                        },
                        other => other,
                    },
                    Err(e) => Outcome::Dead(format!("payload does not match `{}`: {e}", K::NAME)),
                }
            })
        },
    }
}

/// Every kind, by name.
pub fn catalog() -> &'static BTreeMap<&'static str, KindSpec> {
    use std::sync::OnceLock;
    static CATALOG: OnceLock<BTreeMap<&'static str, KindSpec>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        [
            spec::<diag::Noop>(),
            spec::<diag::Sleep>(),
            spec::<diag::Fail>(),
            spec::<diag::Snooze>(),
            spec::<diag::Effect>(),
            spec::<diag::Abort>(),
            spec::<cashflow::Project>(),
            spec::<cashflow::Nightly>(),
            spec::<email::SendEmail>(),
            spec::<reminders::Scan>(),
            spec::<reminders::Notify>(),
            spec::<webhook::SendWebhook>(),
            spec::<maintenance::Cleanup>(),
            spec::<secrets::Rotate>(),
            spec::<backup::Run>(),
            spec::<backup::Verify>(),
        ]
        .into_iter()
        .map(|s| (s.name, s))
        .collect()
    })
}

pub fn find(kind: &str) -> Option<&'static KindSpec> {
    catalog().get(kind)
}

/// The queues the catalog uses, each once.
pub fn queue_names() -> Vec<&'static str> {
    let mut names: Vec<_> = catalog().values().map(|s| s.policy.queue).collect();
    names.sort();
    names.dedup();
    names
}

/// Runs a leased job with its kind's handler.
pub async fn dispatch(env: Arc<JobEnv>, job: &Job) -> Outcome {
    match find(&job.kind) {
        Some(spec) => (spec.run)(&env, job).await,
        None => Outcome::Dead(format!("unknown job kind `{}`", job.kind)),
    }
}
