//! Operator commands: what the dashboard does, from a shell. The actions themselves, and their
//! audit rows, are `nightshift_api::operations`'.
use clap::{Subcommand, builder::PossibleValuesParser};
use nightshift_api::operations::{Actor, JobAction, QueueAction, ScheduleAction};
use nightshift_catalog::Queues;
use nightshift_catalog::schedules::ledger;
use nightshift_common::Config;
use nightshift_queue::{Queue, connect_redis, known_queues};

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Counts per state for every queue.
    Queues,
    /// Stop leasing jobs from a queue (running jobs finish).
    Pause { queue: String },
    /// Resume a paused queue.
    Resume { queue: String },
    /// Every schedule with its next fire time, paused flag and last tick.
    Schedules,
    /// Pause, resume or run now one schedule.
    Schedule {
        #[arg(value_parser = PossibleValuesParser::new(ScheduleAction::NAMES))]
        action: String,
        name: String,
    },
    /// A queue's jobs in one state, with their priority and dedupe key (queued jobs in the
    /// order they will be leased).
    Jobs {
        queue: String,
        #[arg(long, default_value = "queued", value_parser = PossibleValuesParser::new(["scheduled", "queued", "running", "retrying", "dead", "succeeded", "cancelled"]))]
        state: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// What flow control holds back in a queue: busy concurrency keys with their waiting
    /// jobs, groups with their backlog, and jobs a rate key delays with their start.
    Flow {
        queue: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Act on one job.
    Job {
        #[arg(value_parser = PossibleValuesParser::new(["inspect"].iter().chain(JobAction::NAMES)))]
        action: String,
        id: String,
        #[arg(long, default_value = "default")]
        queue: String,
    },
}

pub async fn run(config: &Config, cmd: OperatorCommand) -> anyhow::Result<()> {
    let conn = connect_redis(&config.redis_url).await?;
    let queues = Queues::new(conn.clone(), &config.queue);
    let queue = |name: &str| -> anyhow::Result<&Queue> {
        queues.get(name).ok_or_else(|| {
            anyhow::anyhow!(
                "no queue named {name} (known: {})",
                nightshift_catalog::queue_names().join(", ")
            )
        })
    };
    let db = || nightshift_common::db::connect(&config.database_url, 1);
    let actor = Actor::cli();
    match cmd {
        OperatorCommand::Queues => {
            let mut c = conn.clone();
            for name in known_queues(&mut c, &config.queue.prefix).await? {
                let counts = Queue::with_connection(conn.clone(), &name, config.queue.clone())
                    .counts()
                    .await?;
                println!("{name}: {}", serde_json::to_string(&counts)?);
            }
        }
        OperatorCommand::Pause { queue: q } => {
            actor.queue(&db().await?, queue(&q)?, QueueAction::Pause).await?;
            println!("{q} paused");
        }
        OperatorCommand::Resume { queue: q } => {
            actor.queue(&db().await?, queue(&q)?, QueueAction::Resume).await?;
            println!("{q} resumed");
        }
        OperatorCommand::Schedules => {
            let db = db().await?;
            for s in nightshift_catalog::schedules::load()? {
                let paused = ledger::is_paused(&db, &s.name).await?;
                let last = ledger::latest(&db, &s.name).await?;
                let next = s
                    .next_tick(chrono::Utc::now())
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                let last = last
                    .map(|(t, o, _)| format!("{} {o}", t.to_rfc3339()))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<20} {:<8} next {next}  last {last}",
                    s.name,
                    if paused { "paused" } else { "active" }
                );
            }
        }
        OperatorCommand::Schedule { action, name } => {
            let schedules = nightshift_catalog::schedules::load()?;
            let Some(s) = schedules.iter().find(|s| s.name == name) else {
                anyhow::bail!("no schedule named {name}");
            };
            let action: ScheduleAction = action.parse()?;
            match actor.schedule(&db().await?, &queues, s, action).await? {
                Some(id) => println!("{name}: enqueued {id}"),
                None => println!("{name}: {action}d"),
            }
        }
        OperatorCommand::Jobs { queue: q, state, limit } => {
            let q = queue(&q)?;
            let state: nightshift_queue::JobState = state.parse()?;
            println!("{:<36}  {:<24} {:>4}  {:<9}  dedupe key", "id", "kind", "prio", "state");
            for r in q.list(state, 0, limit).await? {
                println!(
                    "{:<36}  {:<24} {:>4}  {:<9}  {}",
                    r.id,
                    r.kind,
                    r.priority,
                    r.state.as_str(),
                    nightshift_common::telemetry::untrusted(r.dedupe_key.as_deref().unwrap_or("-"))
                );
            }
        }
        OperatorCommand::Flow { queue: q, limit } => {
            let view = queue(&q)?.flow_view(limit).await?;
            let shown = |s: &str| nightshift_common::telemetry::untrusted(s).to_string();
            println!("concurrency keys (running / waiting):");
            for k in &view.keys {
                println!("  {:<48} {:>6} {:>8}", shown(&k.key), k.running, k.waiting);
            }
            println!("groups (queued):");
            for g in &view.groups {
                println!("  {:<48} {:>8}", shown(&g.group), g.queued);
            }
            println!("held back by a rate key (starts at):");
            for j in &view.rate_delayed {
                let at = j
                    .run_at_ms
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map_or_else(|| "-".to_string(), |t| t.to_rfc3339());
                println!(
                    "  {:<36}  {:<40} {at}",
                    j.id,
                    shown(j.rate_key.as_deref().unwrap_or("-"))
                );
            }
        }
        OperatorCommand::Job { action, id, queue: q } => {
            let q = queue(&q)?;
            if action == "inspect" {
                match q.inspect(&id).await? {
                    Some(rec) => println!("{}", serde_json::to_string_pretty(&rec)?),
                    None => anyhow::bail!("job {id} not found in queue {}", q.name()),
                }
            } else {
                let state = actor.job(&db().await?, q, &id, action.parse()?).await?;
                println!("{id}: {state}");
            }
        }
    }
    Ok(())
}
