//! `nightshift bench-history`: job history at scale, in a private database. The batched writer's
//! rows/s on an empty table and again with `--rows` (10 M by default, one million a day)
//! already in it; the plans and times of the reads the API and the dashboard make; and
//! retention: one day dropped as a partition, against the same day deleted row by row from a
//! single table as before partitioning.
use std::{sync::Arc, time::Instant};

use chrono::{Days, Utc};
use nightshift_common::{history, job_ids::first_uuid_v7_at};
use nightshift_queue::{AttemptReport, JobState};
use sqlx::PgPool;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct HistoryBenchArgs {
    /// Rows loaded before the second writer run and the reads.
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: u64,
    /// Rows a day (the loaded rows cover rows / per_day days up to yesterday).
    #[arg(long, default_value_t = 1_000_000)]
    pub per_day: u64,
    /// Reports each writer run writes.
    #[arg(long, default_value_t = 200_000)]
    pub writes: usize,
}

pub async fn run(config: &nightshift_common::Config, args: HistoryBenchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let result = bench(&ctx, &args).await;
    ctx.remove().await?;
    result
}

async fn bench(ctx: &Ctx, args: &HistoryBenchArgs) -> anyhow::Result<()> {
    let pool = nightshift_common::db::connect(&ctx.bench_db_url, 4).await?;
    let empty = write(&pool, args.writes).await?;
    println!(
        "writer, empty table     : {empty:>9.0} rows/s ({} reports, batches of 2000)",
        args.writes
    );

    let days = args.rows.div_ceil(args.per_day).max(1);
    let today = Utc::now().date_naive();
    let first_day = today - Days::new(days);
    history::partitions::ensure(&pool, first_day, today).await?;
    let t = Instant::now();
    for d in 0..days {
        load_day(
            &pool,
            first_day + Days::new(d),
            args.per_day.min(args.rows - d * args.per_day),
        )
        .await?;
    }
    // Settled as a day-old table would be: vacuumed, analyzed, checkpointed. Otherwise the
    // writer would be measured against autovacuum's first pass over the load.
    sqlx::query("VACUUM ANALYZE job_history").execute(&pool).await?;
    sqlx::query("CHECKPOINT").execute(&pool).await?;
    println!(
        "loaded {} rows over {days} days in {:.0} s",
        args.rows,
        t.elapsed().as_secs_f64()
    );

    let full = write(&pool, args.writes).await?;
    println!(
        "writer, {:>4.1} M rows    : {full:>9.0} rows/s ({:.2}x the empty table)",
        args.rows as f64 / 1e6,
        full / empty
    );

    explain(&pool).await?;
    retention(&pool, first_day).await?;
    Ok(())
}

/// The batched writer's rate: `n` first-attempt successes, as a worker reports them.
async fn write(pool: &PgPool, n: usize) -> anyhow::Result<f64> {
    let queue: Arc<str> = Arc::from("default");
    let payload: Arc<str> = Arc::from(r#"{"user_id":42}"#);
    let now = Utc::now().timestamp_millis();
    let reports: Vec<AttemptReport> = (0..n)
        .map(|_| AttemptReport {
            id: uuid::Uuid::now_v7().to_string(),
            queue: queue.clone(),
            kind: "noop".into(),
            payload: Some(payload.clone()),
            state: JobState::Succeeded,
            attempt: 1,
            max_attempts: Some(3),
            created_at_ms: Some(now),
            started_at_ms: Some(now),
            finished_at_ms: now,
            error: None,
            result: None,
            worker: "bench".into(),
        })
        .collect();
    let t = Instant::now();
    for chunk in reports.chunks(2000) {
        history::write_batch(pool, chunk).await?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// `n` finished jobs spread over the UTC day `day`, ids UUIDv7 of their creation instant.
async fn load_day(pool: &PgPool, day: chrono::NaiveDate, n: u64) -> anyhow::Result<()> {
    let start = day.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    sqlx::query(
        r#"
        INSERT INTO job_history (id, queue, kind, payload, state, attempts, max_attempts, created_at,
            started_at, finished_at, worker)
        SELECT (lpad(to_hex(ms), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
            (ARRAY['default', 'emails', 'cashflow'])[1 + g % 3], 'noop', '{"user_id": 42}',
            CASE WHEN g % 100 = 0 THEN 'dead' ELSE 'succeeded' END, 1, 3,
            to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0 + 0.002), 'bench'
        FROM generate_series(0, $2 - 1) g,
            LATERAL (SELECT $1 + g * 86400000 / $2 AS ms, md5(g::text) AS h) x
        "#,
    )
    .bind(start)
    .bind(n as i64)
    .execute(pool)
    .await?;
    Ok(())
}

async fn explain(pool: &PgPool) -> anyhow::Result<()> {
    let some_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM job_history ORDER BY id DESC LIMIT 1 OFFSET 5000000")
        .fetch_optional(pool)
        .await?
        .unwrap_or_else(uuid::Uuid::now_v7);
    let hour_ago = first_uuid_v7_at(Utc::now() - chrono::Duration::minutes(65));
    let reads: [(&str, String); 5] = [
        (
            "status by id (GET /v1/jobs/{id})",
            format!("SELECT * FROM job_history WHERE id = '{some_id}'"),
        ),
        (
            "dashboard: newest jobs, first page",
            "SELECT id, queue, kind, state FROM job_history ORDER BY id DESC LIMIT 50".into(),
        ),
        (
            "dashboard: dead jobs of a queue",
            "SELECT id, queue, kind, state FROM job_history WHERE queue = 'emails' AND state = 'dead'
             ORDER BY id DESC LIMIT 50"
                .into(),
        ),
        (
            "dashboard: the last hour's chart",
            format!(
                "SELECT date_trunc('minute', finished_at), count(*) FROM job_history
                 WHERE id >= '{hour_ago}' AND finished_at >= now() - interval '1 hour' GROUP BY 1"
            ),
        ),
        (
            "idempotency keys of the last day",
            format!(
                "SELECT idempotency_key, queue FROM job_history WHERE idempotency_key = ANY('{{a,b}}')
                 AND id >= '{}'",
                first_uuid_v7_at(Utc::now() - chrono::Duration::hours(24))
            ),
        ),
    ];
    for (what, sql) in reads {
        // Once to warm the cache, as a lookup on a running system finds it.
        sqlx::query(&sql).execute(pool).await?;
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"))
            .fetch_all(pool)
            .await?;
        println!("\n{what}:");
        for line in plan {
            println!("    {line}");
        }
    }
    Ok(())
}

/// One day dropped as a partition, against the same rows deleted in batches of 5,000 from a
/// single table with the same indexes, as retention did before partitioning.
async fn retention(pool: &PgPool, first_day: chrono::NaiveDate) -> anyhow::Result<()> {
    let part = format!("job_history_p{}", first_day.format("%Y%m%d"));
    sqlx::raw_sql(&format!(
        "CREATE TABLE single_table AS SELECT * FROM {part};
         ALTER TABLE single_table ADD PRIMARY KEY (id);
         CREATE INDEX ON single_table (queue, state, created_at DESC)"
    ))
    .execute(pool)
    .await?;
    sqlx::query("VACUUM ANALYZE single_table").execute(pool).await?;
    sqlx::query("CHECKPOINT").execute(pool).await?;
    let cutoff = first_uuid_v7_at((first_day + Days::new(1)).and_hms_opt(0, 0, 0).unwrap().and_utc());
    let t = Instant::now();
    let mut deleted = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM single_table WHERE id IN (SELECT id FROM single_table
                WHERE id < $1 AND state IN ('succeeded', 'dead', 'cancelled') LIMIT 5000)",
        )
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected();
        deleted += n;
        if n < 5000 {
            break;
        }
    }
    let by_row = t.elapsed();
    let t = Instant::now();
    let dropped =
        history::partitions::drop_before(pool, (first_day + Days::new(1)).and_hms_opt(0, 0, 0).unwrap().and_utc())
            .await?;
    let by_partition = t.elapsed();
    println!(
        "\nretention of one day: partition dropped {dropped} rows in {:.3} s; \
         deleting the same {deleted} rows by row (before) took {:.1} s ({:.0}x)",
        by_partition.as_secs_f64(),
        by_row.as_secs_f64(),
        by_row.as_secs_f64() / by_partition.as_secs_f64()
    );
    Ok(())
}
