//! The handlers: one per kind of the catalog (`nightshift-catalog`), in a module named after
//! the kind's, beside the code it needs. `handlers!` below is the one registration point; a
//! worker refuses to start while a catalog kind has no handler.
use std::{collections::BTreeMap, sync::Arc};

use nightshift_catalog::{Kind, Queues, catalog};
use nightshift_common::Config;
use nightshift_queue::RedisConn;
use nightshift_queue::{Job, Outcome};
use sqlx::PgPool;

pub mod backup;
pub mod cashflow;
pub mod diag;
pub mod email;
pub mod maintenance;
pub mod progress;
pub mod reminders;
pub mod secrets;
pub mod webhook;

/// Runs jobs of a catalog kind. A failure without its own delay gets the kind's backoff.
pub trait Handler: Kind {
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
    /// Where progress reports go to be kept in the history.
    pub progress: progress::ProgressHistory,
}

impl JobEnv {
    pub fn new(config: &Config, db: PgPool, redis: RedisConn) -> anyhow::Result<Self> {
        Ok(JobEnv {
            rotation: secrets::Rotation::from_config(config)?,
            queues: Queues::new(redis.clone(), &config.queue),
            mailer: Arc::new(email::Mailer::new(&config.mail)?),
            mail_domain: nightshift_catalog::email::message_id_domain(&config.mail.from).into(),
            http: webhook::http_client(config.webhook_allow_private),
            webhook_allow_private: config.webhook_allow_private,
            backups: Arc::new(backup::Backups::from_config(config)),
            operator_emails: config.operator_emails.clone().into(),
            progress: progress::ProgressHistory::spawn(db.clone()),
            db,
            redis,
        })
    }
}

type RunFn = for<'a> fn(&'a JobEnv, &'a Job) -> futures::future::BoxFuture<'a, Outcome>;

fn entry<K: Handler>() -> (&'static str, RunFn) {
    (K::NAME, |env, job| {
        Box::pin(async move {
            match serde_json::from_str::<K::Payload>(&job.payload) {
                // Queued before the API checked it (an older release): refused here, not run.
                Ok(p) if let Err((field, message)) = K::check(&p) => {
                    Outcome::Dead(format!("payload.{field} {message}"))
                }
                // A retry without a delay gets the kind's backoff where panics and timeouts
                // get it (`runtime::kind_backoff`).
                Ok(p) => K::run(env, job, p).await,
                Err(e) => Outcome::Dead(format!("payload does not match `{}`: {e}", K::NAME)),
            }
        })
    })
}

/// Every handler, by kind name: one per kind of the catalog's list.
fn handlers() -> &'static BTreeMap<&'static str, RunFn> {
    use std::sync::OnceLock;
    macro_rules! table {
        ($($kind:ty),* $(,)?) => {
            [$(entry::<$kind>()),*]
        };
    }
    static HANDLERS: OnceLock<BTreeMap<&'static str, RunFn>> = OnceLock::new();
    HANDLERS.get_or_init(|| nightshift_catalog::with_every_kind!(table).into_iter().collect())
}

/// Catalog kinds this build cannot run: a worker must not start while there is one, or it
/// would lease such jobs and fail them.
pub fn missing_handlers() -> Vec<&'static str> {
    catalog()
        .keys()
        .copied()
        .filter(|k| !handlers().contains_key(k))
        .collect()
}

/// Runs a leased job with its kind's handler.
pub async fn dispatch(env: Arc<JobEnv>, job: &Job) -> Outcome {
    match handlers().get(job.kind.as_str()) {
        Some(run) => run(&env, job).await,
        None => Outcome::Dead(format!("unknown job kind `{}`", job.kind)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_catalog_kind_has_a_handler() {
        assert_eq!(super::missing_handlers(), Vec::<&str>::new());
    }
}
