//! Operator commands: what the dashboard does, from a shell.
use clap::Subcommand;
use nightshift_common::{Config, audit};
use nightshift_queue::{Queue, connect_redis, known_queues};
use nightshift_scheduler::ledger;
use serde_json::json;

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
    let conn = connect_redis(&config.redis_url).await?;
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
            cli_audit(config, "queue.pause", &q, json!({})).await?;
            println!("{q} paused");
        }
        OperatorCommand::Resume { queue: q } => {
            queue(&q).resume().await?;
            cli_audit(config, "queue.resume", &q, json!({})).await?;
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
            let by = cli_actor();
            match action.as_str() {
                "pause" | "resume" => {
                    ledger::set_paused(&db, &s.name, action == "pause", &by).await?;
                    audit::record(
                        &db,
                        &by,
                        &format!("schedule.{action}"),
                        &s.name,
                        json!({ "via": "cli" }),
                    )
                    .await?;
                    println!("{name}: {action}d");
                }
                "run" => {
                    let queues = nightshift_catalog::Queues::new(conn.clone(), &config.queue);
                    let id = nightshift_scheduler::run_now(&queues, s).await?;
                    audit::record(&db, &by, "schedule.run", &s.name, json!({ "via": "cli", "job_id": id })).await?;
                    println!("{name}: enqueued {id}");
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
                "retry" | "cancel" | "discard" => {
                    let outcome = match action.as_str() {
                        "retry" => q.retry(&id).await?.to_string(),
                        "cancel" => q.cancel(&id).await?.to_string(),
                        _ => q.discard(&id).await.map(|()| "discarded".to_string())?,
                    };
                    cli_audit(config, &format!("job.{action}"), &id, json!({ "queue": q.name() })).await?;
                    println!("{id}: {outcome}");
                }
                _ => unreachable!("clap restricts the action"),
            }
        }
    }
    Ok(())
}

fn cli_actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into()))
}

/// Records an operator action taken from the shell in the audit log.
async fn cli_audit(config: &Config, action: &str, target: &str, mut detail: serde_json::Value) -> anyhow::Result<()> {
    let db = nightshift_common::db::connect(&config.database_url, 1).await?;
    detail["via"] = json!("cli");
    audit::record(&db, &cli_actor(), action, target, detail).await?;
    Ok(())
}
