//! `nightshift bench-cashflow`: seed users, run the nightly fan-out with one worker process,
//! and print users/s with the split between PostgreSQL time and compute time.
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::{Timelike, Utc};
use nightshift_common::{Config, db};
use nightshift_queue::{Queue, connect_redis};

use nightshift_catalog::{Kind, cashflow};

use super::{Ctx, mib, rss_kib, stop_child};

#[derive(Debug, clap::Args)]
pub struct CashflowBenchArgs {
    #[arg(long, default_value_t = 100_000)]
    pub users: i64,
    /// Worker concurrency (projection jobs in flight).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Single-user `refresh?wait=5` requests a second, after the nightly run.
    #[arg(long, default_value_t = 100)]
    pub refresh_rate: u64,
    /// Seconds of the refresh run (0 skips it).
    #[arg(long, default_value_t = 10)]
    pub refresh_seconds: u64,
}

const SEED: &str = "
INSERT INTO users (id, email, time_zone, low_balance_threshold)
SELECT g, 'user' || g || '@example.com',
       (ARRAY['Europe/Paris','Europe/London','America/New_York','America/Los_Angeles','Asia/Tokyo','Australia/Sydney'])[1 + g % 6],
       (g % 5) * 10000
FROM generate_series(1, $1) g;
INSERT INTO accounts (user_id, name, balance) SELECT id, 'current', 50000 + (id * 7919) % 500000 FROM users;
INSERT INTO recurring_items (user_id, name, amount, cadence, anchor_date, interval_weeks, days_of_month, business_day)
SELECT u.id, 'item ' || i,
       CASE WHEN i = 1 THEN 180000 + (u.id % 50) * 1000 ELSE -(1000 + (u.id * i * 104729) % 90000) END,
       (ARRAY['biweekly','monthly','monthly','weekly','semi_monthly','monthly_last_day','yearly','every_n_weeks'])[1 + (u.id + i) % 8],
       DATE '2025-01-01' + ((u.id * 31 + i * 17) % 365)::int,
       4, ARRAY[1, 15], (ARRAY['none','previous','next'])[1 + (u.id + i) % 3]
FROM users u CROSS JOIN LATERAL generate_series(1, 3 + (u.id % 10)::int) i;
";

/// `users` users with an account and 4 to 13 recurring items each.
pub(crate) async fn seed(pool: &sqlx::PgPool, users: i64) -> Result<(), sqlx::Error> {
    for statement in SEED.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let q = sqlx::query(statement);
        if statement.contains("$1") { q.bind(users) } else { q }
            .execute(pool)
            .await?;
    }
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

pub async fn run(config: &Config, args: CashflowBenchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let result = bench(&ctx, &args).await;
    ctx.remove().await?;
    result
}

async fn bench(ctx: &Ctx, args: &CashflowBenchArgs) -> anyhow::Result<()> {
    let pool = db::connect(&ctx.bench_db_url, 4).await?;
    let t = Instant::now();
    seed(&pool, args.users).await?;
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM recurring_items")
        .fetch_one(&pool)
        .await?;
    println!(
        "seeded {} users with {items} recurring items in {:.1}s",
        args.users,
        t.elapsed().as_secs_f64()
    );

    let conn = connect_redis(&ctx.config.redis_url).await?;
    let mut qc = ctx.config.queue.clone();
    qc.prefix = ctx.prefix.clone();
    let default = Queue::with_connection(conn.clone(), cashflow::Nightly::POLICY.queue, qc.clone());
    let projections = Queue::with_connection(conn, cashflow::Project::POLICY.queue, qc);
    // An instant at which every seeded zone is past 02:00 local.
    let at = Utc::now()
        .with_hour(18)
        .and_then(|t| t.with_minute(0))
        .expect("18:00 exists");
    let child = ctx.spawn_worker(args.concurrency, true)?;
    let pid = child.id().unwrap_or(0);
    let start = Instant::now();
    let nightly = default
        .push(
            cashflow::Nightly::job(&cashflow::NightlyPayload {
                at: Some(at),
                page_attempts: None,
            })
            .into_inner(),
        )
        .await?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut peak_rss = 0;
    loop {
        tick.tick().await;
        peak_rss = peak_rss.max(rss_kib(pid).0);
        let c = projections.counts().await?;
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM cashflow_projections")
            .fetch_one(&pool)
            .await?;
        // Every user stored, and the job that stored the last of them finished.
        if stored >= args.users && c.queued + c.running == 0 {
            break;
        }
        if c.dead > 0 {
            let dead = projections.list(nightshift_queue::JobState::Dead, 0, 1).await?;
            let error = dead.first().and_then(|r| r.error.clone()).unwrap_or_default();
            bail!("{} projection jobs died, the first with: {error}", c.dead);
        }
        if start.elapsed() > Duration::from_secs(1200) {
            bail!("stalled at {stored}/{} users", args.users);
        }
    }
    let total = start.elapsed();
    let fan_out = default
        .inspect(&nightly)
        .await?
        .and_then(|r| Some(r.finished_at_ms? - r.started_at_ms?))
        .unwrap_or(0);
    let refresh = if args.refresh_seconds > 0 {
        Some(refresh_latency(ctx, args).await?)
    } else {
        None
    };
    stop_child(child).await;
    // The worker flushed its history on SIGTERM: each projection's result carries its timings.
    let (jobs, db_us, compute_us, alerts, alerts_us): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), COALESCE(sum((result->>'db_us')::bigint), 0)::bigint,
            COALESCE(sum((result->>'compute_us')::bigint), 0)::bigint,
            COALESCE(sum((result->>'alerts')::bigint), 0)::bigint,
            COALESCE(sum((result->>'alerts_us')::bigint), 0)::bigint
         FROM job_history WHERE kind = 'cashflow.project_many'",
    )
    .fetch_one(&pool)
    .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM cashflow_projections")
        .fetch_one(&pool)
        .await?;
    println!(
        "projected {rows} users in {:.1}s: {:.0} users/s in {jobs} jobs (fan-out pushed them all in {:.1}s; concurrency {}; worker RSS peak {:.1} MiB)",
        total.as_secs_f64(),
        args.users as f64 / total.as_secs_f64(),
        fan_out as f64 / 1e3,
        args.concurrency,
        mib(peak_rss),
    );
    let per_user = |us: i64| us as f64 / args.users as f64;
    println!(
        "per user, inside the job: PostgreSQL {:.0} us (load + store), compute {:.0} us ({:.1}% of job time in PostgreSQL)",
        per_user(db_us),
        per_user(compute_us),
        100.0 * db_us as f64 / (db_us + compute_us).max(1) as f64
    );
    println!(
        "low-balance e-mails queued: {alerts} ({:.0} us per e-mail, queued in bulk per job)",
        alerts_us as f64 / alerts.max(1) as f64
    );
    if let Some((refresh, health)) = refresh {
        let line = |what: &str, r: &super::api::Measured| {
            println!(
                "{what:<40}: {:>5.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} not as expected)",
                r.rps,
                r.p50.as_secs_f64() * 1e3,
                r.p99.as_secs_f64() * 1e3,
                r.not_2xx
            )
        };
        line("POST …/cashflow/refresh?wait=5 (200)", &refresh);
        line("GET /health/live, same rate", &health);
    }
    Ok(())
}

/// One user's projection on demand, at a steady rate, while the worker of the nightly run is
/// idle: each request queues a projection and answers with it; `/health/live` at the same
/// rate in the same run is the floor to compare with.
async fn refresh_latency(
    ctx: &Ctx,
    args: &CashflowBenchArgs,
) -> anyhow::Result<(super::api::Measured, super::api::Measured)> {
    use nightshift_common::auth::Scope;
    let api = super::api::start_api(ctx).await?;
    let token = api
        .keys
        .issue("bench-cashflow", &[Scope::JobsWrite], Duration::from_secs(3600))?;
    let http = reqwest::Client::new();
    let (base, users) = (api.base.as_str(), args.users.max(1) as u64);
    let refresh = super::api::paced(args.refresh_rate, args.refresh_seconds, reqwest::StatusCode::OK, |i| {
        // Users spread over the table, a different one each time.
        let user = 1 + (i * 7919) % users;
        http.post(format!("{base}/v1/users/{user}/cashflow/refresh?wait=5"))
            .bearer_auth(&token)
    })
    .await;
    let health = super::api::paced(args.refresh_rate, args.refresh_seconds, reqwest::StatusCode::OK, |_| {
        http.get(format!("{base}/health/live"))
    })
    .await;
    stop_child(api.child).await;
    Ok((refresh?, health?))
}
