//! `nightshift bench-email`: queue e-mails through the outbox and send them with one worker
//! process to the SMTP server at NIGHTSHIFT_SMTP_URL (a sink: see the README); prints e-mails/s
//! and queue-to-sent latency percentiles.
use std::time::{Duration, Instant};

use anyhow::bail;
use nightshift_common::{Config, db};
use nightshift_queue::connect_redis;
use serde_json::json;

use nightshift_catalog::{
    Queues,
    email::{self, NewEmail, SendEmail},
};

use super::{Ctx, mib, rss_kib, stop_child};

#[derive(Debug, clap::Args)]
pub struct EmailBenchArgs {
    #[arg(long, default_value_t = 2000)]
    pub count: u32,
    /// Worker concurrency (sends in flight).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Recipient domains the messages are spread over (the rate limit is per domain).
    #[arg(long, default_value_t = 1000)]
    pub domains: u32,
}

pub async fn run(config: &Config, args: EmailBenchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let result = bench(&ctx, &args).await;
    ctx.remove().await?;
    result
}

async fn bench(ctx: &Ctx, args: &EmailBenchArgs) -> anyhow::Result<()> {
    let pool = db::connect(&ctx.bench_db_url, 4).await?;
    let conn = connect_redis(&ctx.config.redis_url).await?;
    let mut qc = ctx.config.queue.clone();
    qc.prefix = ctx.prefix.clone();
    let queues = Queues::new(conn, &qc);
    let t = Instant::now();
    for i in 0..args.count {
        let vars = json!({"name": format!("User {i}"), "reset_url": format!("https://app.example.com/reset/{i}"), "expires_minutes": 30});
        let to = format!("user{i}@d{}.example.com", i % args.domains.max(1));
        let mail = NewEmail {
            key: &format!("bench:{i}"),
            template: "password_reset",
            to: &to,
            vars: &vars,
        };
        email::enqueue(&pool, &queues, mail, "bench.example.com").await?;
    }
    let queued = t.elapsed();
    println!(
        "queued {} e-mails in {:.1}s ({:.0}/s: render, outbox row, push)",
        args.count,
        queued.as_secs_f64(),
        f64::from(args.count) / queued.as_secs_f64()
    );
    let queue = queues.of::<SendEmail>();
    let child = ctx.spawn_worker(args.concurrency, true)?;
    let pid = child.id().unwrap_or(0);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut peak_rss = 0;
    loop {
        tick.tick().await;
        peak_rss = peak_rss.max(rss_kib(pid).0);
        let c = queue.counts().await?;
        if c.succeeded_total >= u64::from(args.count) {
            break;
        }
        if c.dead > 0 {
            bail!(
                "{} e-mails died (is an SMTP server listening at NIGHTSHIFT_SMTP_URL?)",
                c.dead
            );
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("stalled at {}/{} e-mails", c.succeeded_total, args.count);
        }
    }
    let total = start.elapsed();
    stop_child(child).await;
    let (p50, p99): (f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at))
         FROM email_outbox WHERE state = 'sent'",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "sent {} e-mails in {:.1}s with one worker: {:.0} e-mails/s (concurrency {}; worker RSS peak {:.1} MiB; \
         queued-to-sent p50 {:.2}s p99 {:.2}s, the backlog included)",
        args.count,
        total.as_secs_f64(),
        f64::from(args.count) / total.as_secs_f64(),
        args.concurrency,
        mib(peak_rss),
        p50,
        p99,
    );
    Ok(())
}
