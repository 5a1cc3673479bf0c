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
    /// Worker concurrency (projections in flight).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
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
        .push(cashflow::Nightly::job(&cashflow::NightlyPayload { at: Some(at) }).into_inner())
        .await?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut peak_rss = 0;
    loop {
        tick.tick().await;
        peak_rss = peak_rss.max(rss_kib(pid).0);
        let c = projections.counts().await?;
        if c.succeeded_total as i64 >= args.users {
            break;
        }
        if c.dead > 0 {
            bail!("{} projections died", c.dead);
        }
        if start.elapsed() > Duration::from_secs(1200) {
            bail!("stalled at {}/{} users", c.succeeded_total, args.users);
        }
    }
    let total = start.elapsed();
    let fan_out = default
        .inspect(&nightly)
        .await?
        .and_then(|r| Some(r.finished_at_ms? - r.started_at_ms?))
        .unwrap_or(0);
    stop_child(child).await;
    // The worker flushed its history on SIGTERM: each projection's result carries its timings.
    let (db_us, compute_us): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum((result->>'db_us')::bigint), 0)::bigint, COALESCE(sum((result->>'compute_us')::bigint), 0)::bigint
         FROM job_history WHERE kind = 'cashflow.project'",
    )
    .fetch_one(&pool)
    .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM cashflow_projections")
        .fetch_one(&pool)
        .await?;
    println!(
        "projected {rows} users in {:.1}s: {:.0} users/s (fan-out pushed them all in {:.1}s; concurrency {}; worker RSS peak {:.1} MiB)",
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
    Ok(())
}
