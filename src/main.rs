//! The `nightshift` binary: parses the command line and hands over to the library crates.
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nightshift_common::{
    Config,
    auth::{self, TokenKeys},
    db, keyring, telemetry,
};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

mod backup;
mod demo;
mod operator;

#[derive(Parser)]
#[command(name = "nightshift", version, about = "Background jobs for the finance backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Api,
    /// Run workers for every queue.
    Worker,
    /// Fire periodic jobs.
    Scheduler,
    /// API, workers and scheduler in one process (local use); applies migrations first.
    All {
        /// Seed demo data and enqueue a few jobs.
        #[arg(long)]
        demo: bool,
    },
    /// Create the database if needed and apply migrations.
    Migrate,
    /// Print the API's OpenAPI document (as served at /v1/openapi.json), for the clients'
    /// generators (clients/generate.sh).
    Openapi,
    /// Check the set-up: Redis, PostgreSQL, SMTP, keys and clocks, each ok, warn or fail with
    /// its fix; exits 1 when a check fails.
    Doctor,
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The token signing keyring (with NIGHTSHIFT_MASTER_KEY): list keys, rotate now.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Database backups: run, list, verify (restore drill), restore, keygen.
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Measure the queue: push rates, processing rates, latency, memory.
    Bench(nightshift_tools::bench::BenchArgs),
    /// The front door with wrk against a real API process: the health ceiling, single and batch
    /// enqueue, the API's memory (scripts/bench-api.sh installs wrk).
    BenchApi(nightshift_tools::bench::api::ApiBenchArgs),
    /// Job history at 10 M rows: the writer's rate, the reads' plans, retention by partition.
    BenchHistory(nightshift_tools::bench::history::HistoryBenchArgs),
    /// Flow control: priority-0 latency through a backlog, debounced pushes and their runs
    BenchFlow(nightshift_tools::bench::flow::FlowBenchArgs),
    /// Batches: the same jobs drained with and without a batch, and the callback's delay.
    BenchBatch(nightshift_tools::bench::batch::BatchBenchArgs),
    /// Traces: no-op jobs drained by a worker exporting every run's span to an OTLP/HTTP
    /// receiver in this process, against one exporting nothing.
    BenchTracing(nightshift_tools::bench::traces::TracingBenchArgs),
    /// Progress reports: jobs reporting ten times a second against the same jobs quiet.
    BenchProgress(nightshift_tools::bench::progress::ProgressBenchArgs),
    /// Seed users and measure the nightly cashflow fan-out with one worker process.
    BenchCashflow(nightshift_tools::bench::cashflow::CashflowBenchArgs),
    /// Seed users and measure a backup and its restore drill.
    BenchBackup(nightshift_tools::bench::backup::BackupBenchArgs),
    /// Two APIs, two schedulers and 1, 2, 3 workers on one machine: throughput per worker count,
    /// lost and duplicated effects.
    BenchScale(nightshift_tools::bench::scale::ScaleBenchArgs),
    /// Faults under load: SIGKILL, SIGTERM and SIGSTOP workers, SIGKILL Redis; then every accepted
    /// job against its final state and the effect ledger (lost and duplicate effects must be 0).
    Chaos(nightshift_tools::chaos::ChaosArgs),
    /// A long run over and back under capacity: RSS, Redis memory, enqueue-to-start
    /// percentiles and backlog per minute, written as figures and an SVG chart.
    Soak(nightshift_tools::bench::soak::SoakArgs),
    /// Queue e-mails and measure sending them with one worker to NIGHTSHIFT_SMTP_URL (a sink).
    BenchEmail(nightshift_tools::bench::email::EmailBenchArgs),
    /// Operator commands: queue counts, pause and resume, job inspect, retry, cancel, discard.
    #[command(flatten)]
    Operator(operator::OperatorCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Every key's id, status, creation time and grace end (never the secret).
    List,
    /// Rotate now: a new signing key; the old one verifies for NIGHTSHIFT_KEY_GRACE_DAYS.
    Rotate,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a signed token accepted by the API.
    Issue {
        #[arg(long)]
        sub: String,
        /// Comma-separated scopes: jobs:read, jobs:write, reminders:read, reminders:write, emails:send, admin,
        /// finance:read, finance:write.
        #[arg(long)]
        scope: String,
        /// Lifetime, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Confine the token to this one user: it acts on no other (a user's app).
        #[arg(long)]
        user: Option<i64>,
    },
}

/// Resolves on SIGINT or SIGTERM; a second signal is left to the default handler.
fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown signal received");
        t.cancel();
    });
    token
}

/// Starts the health and metrics listener of any process, when configured.
/// The API's state, when given, adds its readiness there.
async fn serve_ops(
    config: &Config,
    stop: &CancellationToken,
    api: Option<&nightshift_api::AppState>,
) -> anyhow::Result<()> {
    let Some(addr) = config.ops_addr else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    // Install the recorder before the first job records anything.
    telemetry::metrics();
    tokio::spawn(nightshift_api::serve_ops(
        listener,
        api.cloned(),
        stop.clone().cancelled_owned(),
    ));
    Ok(())
}

/// The keys tokens are signed with: the keyring when NIGHTSHIFT_MASTER_KEY is set (making its
/// first key if needed), else NIGHTSHIFT_JWT_SECRET.
async fn token_keys(config: &Config) -> anyhow::Result<TokenKeys> {
    if let Some(hex) = &config.master_key {
        let master = keyring::MasterKey::from_hex(hex)?;
        let db = db::connect(&config.database_url, 1).await?;
        return Ok(keyring::token_keys(&db, &master).await?);
    }
    match &config.jwt_secret {
        Some(secret) => Ok(TokenKeys::from_secret(secret)),
        None => bail!(
            "neither NIGHTSHIFT_MASTER_KEY (keyring) nor NIGHTSHIFT_JWT_SECRET (at least {} bytes) is set",
            auth::MIN_SECRET_BYTES
        ),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        // Before logging starts: stdout carries the document alone.
        println!("{}", serde_json::to_string(&nightshift_api::openapi_document())?);
        return Ok(());
    }
    let _telemetry = telemetry::init();
    let config = Config::from_env()?;
    match cli.command {
        Command::Api => {
            let keys = token_keys(&config).await?;
            let stop = shutdown_on_signals();
            let state = nightshift_api::state(&config, keys).await?;
            let listener = tokio::net::TcpListener::bind(config.api_addr)
                .await
                .with_context(|| format!("binding {}", config.api_addr))?;
            serve_ops(&config, &stop, Some(&state)).await?;
            nightshift_api::serve(listener, state, stop.cancelled_owned()).await?;
        }
        Command::Worker => {
            let stop = shutdown_on_signals();
            serve_ops(&config, &stop, None).await?;
            nightshift_workers::run(config, stop.cancelled_owned()).await?;
        }
        Command::Scheduler => {
            let stop = shutdown_on_signals();
            serve_ops(&config, &stop, None).await?;
            nightshift_scheduler::run(&config, nightshift_catalog::schedules::load()?, stop.cancelled_owned()).await?;
        }
        Command::All { demo } => run_all(config, demo).await?,
        Command::Openapi => unreachable!("answered before the configuration is read"),
        Command::Doctor => {
            if nightshift_tools::doctor::run(&config).await? {
                std::process::exit(1);
            }
        }
        Command::Migrate => {
            db::migrate(&config.database_url).await.context("applying migrations")?;
            println!("migrations applied");
        }
        Command::Token {
            command: TokenCommand::Issue { sub, scope, ttl, user },
        } => {
            let keys = token_keys(&config).await?;
            let scopes = auth::parse_scopes(&scope)?;
            if ttl > config.token_max_ttl {
                bail!(
                    "--ttl is longer than NIGHTSHIFT_TOKEN_MAX_TTL_DAYS ({} days)",
                    config.token_max_ttl.as_secs() / 86_400
                );
            }
            println!("{}", keys.issue_for(&sub, user, &scopes, ttl)?);
        }
        Command::Keys { command } => {
            let Some(hex) = &config.master_key else {
                bail!("NIGHTSHIFT_MASTER_KEY is not set: tokens are signed with NIGHTSHIFT_JWT_SECRET, not a keyring");
            };
            let master = keyring::MasterKey::from_hex(hex)?;
            let db = db::connect(&config.database_url, 1).await?;
            keyring::ensure_active(&db, &master).await?;
            match command {
                KeysCommand::List => {
                    for (kid, status, created, retire_after) in keyring::list(&db).await? {
                        let until = retire_after
                            .map(|t| format!(" (verifies until {t})"))
                            .unwrap_or_default();
                        println!("{kid}  {status:<8}  created {created}{until}");
                    }
                }
                KeysCommand::Rotate => {
                    let kid = keyring::rotate(&db, &master, config.key_grace).await?;
                    let mut conn = nightshift_queue::connect_redis(&config.redis_url).await?;
                    keyring::announce(&mut conn, &config.queue.prefix).await?;
                    nightshift_api::operations::Actor::cli()
                        .record(&db, "keys.rotate", &kid, serde_json::json!({}))
                        .await;
                    println!(
                        "rotated: new signing key {kid}; the previous one verifies for {} more days",
                        config.key_grace.as_secs() / 86_400
                    );
                }
            }
        }
        Command::Backup { command } => backup::run(&config, command).await?,
        Command::Bench(args) => nightshift_tools::bench::run(&config, args).await?,
        Command::BenchApi(args) => nightshift_tools::bench::api::run(&config, args).await?,
        Command::BenchHistory(args) => nightshift_tools::bench::history::run(&config, args).await?,
        Command::BenchFlow(args) => nightshift_tools::bench::flow::run(&config, args).await?,
        Command::BenchBatch(args) => nightshift_tools::bench::batch::run(&config, args).await?,
        Command::BenchTracing(args) => nightshift_tools::bench::traces::run(&config, args).await?,
        Command::BenchProgress(args) => nightshift_tools::bench::progress::run(&config, args).await?,
        Command::BenchCashflow(args) => nightshift_tools::bench::cashflow::run(&config, args).await?,
        Command::BenchBackup(args) => nightshift_tools::bench::backup::run(&config, args).await?,
        Command::Soak(args) => nightshift_tools::bench::soak::run(&config, args).await?,
        Command::BenchScale(args) => nightshift_tools::bench::scale::run(&config, args).await?,
        Command::Chaos(args) => nightshift_tools::chaos::run(&config, args).await?,
        Command::BenchEmail(args) => nightshift_tools::bench::email::run(&config, args).await?,
        Command::Operator(cmd) => operator::run(&config, cmd).await?,
    }
    Ok(())
}

async fn run_all(mut config: Config, demo: bool) -> anyhow::Result<()> {
    if config.jwt_secret.is_none() && config.master_key.is_none() {
        tracing::warn!("NIGHTSHIFT_JWT_SECRET is not set: generated one for this run (tokens die with the process)");
        let secret: SecretString = auth::generate_secret();
        config.jwt_secret = Some(secret);
    }
    // Migrations first: the keyring lives in the database.
    db::migrate(&config.database_url).await.context("applying migrations")?;
    let keys = token_keys(&config).await?;
    let stop = shutdown_on_signals();
    let api_state = nightshift_api::state(&config, keys.clone()).await?;
    let listener = tokio::net::TcpListener::bind(config.api_addr)
        .await
        .with_context(|| format!("binding {}", config.api_addr))?;
    let addr = listener.local_addr()?;
    if demo {
        demo::seed(&api_state).await.context("seeding demo data")?;
    }
    serve_ops(&config, &stop, Some(&api_state)).await?;
    println!("\nNightshift is running.\n");
    println!("  dashboard    http://{addr}/dashboard");
    println!("  API          http://{addr}/v1/jobs");
    println!("  readiness    http://{addr}/health/ready");
    if let Some(ops) = config.ops_addr {
        println!("  metrics      http://{ops}/metrics");
    }
    // A token is a credential: printed (never logged) for the demo only, which asked for one.
    if demo {
        let token = keys.issue("local-operator", &auth::Scope::ALL, Duration::from_secs(12 * 3600))?;
        let scopes: Vec<_> = auth::Scope::ALL.iter().map(|s| s.as_str()).collect();
        println!(
            "\n  token (12 h, scopes {}; sign in to the dashboard with it):\n  {token}\n",
            scopes.join(" ")
        );
        println!("  try:  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\");
        println!(
            "          -d '{{\"kind\":\"cashflow.project\",\"payload\":{{\"user_id\":1}}}}' http://{addr}/v1/jobs"
        );
        // The clients read both from the environment (README: "Call it from Python").
        println!("  clients:  export NIGHTSHIFT_URL=http://{addr} NIGHTSHIFT_TOKEN=$TOKEN");
        println!("            python clients/python/examples/quickstart.py\n");
    } else {
        println!("\n  tokens:      nightshift token issue --sub NAME --scope admin,jobs:read,jobs:write --ttl 8h\n");
    }

    let api = nightshift_api::serve(listener, api_state, stop.clone().cancelled_owned());
    let worker = nightshift_workers::run(config.clone(), stop.clone().cancelled_owned());
    let scheduler = nightshift_scheduler::run(
        &config,
        nightshift_catalog::schedules::load()?,
        stop.clone().cancelled_owned(),
    );
    let (a, w, s) = tokio::join!(
        async {
            let r = api.await;
            stop.cancel();
            r
        },
        async {
            let r = worker.await;
            stop.cancel();
            r
        },
        async {
            let r = scheduler.await;
            stop.cancel();
            r
        }
    );
    a.context("api")?;
    w.context("worker")?;
    s.context("scheduler")?;
    Ok(())
}
