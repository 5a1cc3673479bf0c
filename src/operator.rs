//! Operator commands: what the dashboard does, from a shell.
use clap::Subcommand;
use nightshift_common::Config;
use nightshift_queue::{Queue, connect_manager, known_queues};
use nightshift_scheduler::ledger;

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
        #[arg(value_parser = ["pause", "resume", "run"])]
        action: String,
        name: String,
    },
    /// Act on one job.
    Job {
        #[arg(value_parser = ["inspect", "retry", "cancel", "discard"])]
        action: String,
        id: String,
        #[arg(long, default_value = "default")]
        queue: String,
    },
}

pub async fn run(config: &Config, cmd: OperatorCommand) -> anyhow::Result<()> {
    let conn = connect_manager(&config.redis_url).await?;
    let queue = |name: &str| Queue::with_connection(conn.clone(), name, config.queue.clone());
    match cmd {
        OperatorCommand::Queues => {
            let mut c = conn.clone();
            for name in known_queues(&mut c, &config.queue.prefix).await? {
                let counts = queue(&name).counts().await?;
                println!("{name}: {}", serde_json::to_string(&counts)?);
            }
        }
        OperatorCommand::Pause { queue: q } => {
            queue(&q).pause().await?;
            println!("{q} paused");
        }
        OperatorCommand::Resume { queue: q } => {
            queue(&q).resume().await?;
            println!("{q} resumed");
        }
        OperatorCommand::Schedules => {
            let db = nightshift_common::db::connect(&config.database_url, 1).await?;
            for s in nightshift_scheduler::load()? {
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
            let db = nightshift_common::db::connect(&config.database_url, 1).await?;
            let schedules = nightshift_scheduler::load()?;
            let Some(s) = schedules.iter().find(|s| s.name == name) else {
                anyhow::bail!("no schedule named {name}");
            };
            let by = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into()));
            match action.as_str() {
                "pause" | "resume" => {
                    ledger::set_paused(&db, &s.name, action == "pause", &by).await?;
                    println!("{name}: {action}d");
                }
                "run" => {
                    let queues = nightshift_workers::Queues::new(conn.clone(), &config.queue);
                    println!("{name}: enqueued {}", nightshift_scheduler::run_now(&queues, s).await?);
                }
                _ => unreachable!("clap restricts the action"),
            }
        }
        OperatorCommand::Job { action, id, queue: q } => {
            let q = queue(&q);
            match action.as_str() {
                "inspect" => match q.inspect(&id).await? {
                    Some(rec) => println!("{}", serde_json::to_string_pretty(&rec)?),
                    None => anyhow::bail!("job {id} not found in queue {}", q.name()),
                },
                "retry" => println!("{id}: {}", q.retry(&id).await?),
                "cancel" => println!("{id}: {}", q.cancel(&id).await?),
                "discard" => {
                    q.discard(&id).await?;
                    println!("{id}: discarded");
                }
                _ => unreachable!("clap restricts the action"),
            }
        }
    }
    Ok(())
}
