//! Operator commands: what the dashboard does, from a shell.
use clap::Subcommand;
use nightshift_common::Config;
use nightshift_queue::{Queue, connect_manager, known_queues};

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Counts per state for every queue.
    Queues,
    /// Stop leasing jobs from a queue (running jobs finish).
    Pause { queue: String },
    /// Resume a paused queue.
    Resume { queue: String },
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
