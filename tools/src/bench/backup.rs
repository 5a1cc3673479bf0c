//! `nightshift bench-backup`: seed users (as bench-cashflow does, plus a 90-day projection
//! each), then time a backup, its restore drill, and print sizes and memory.
use std::time::Instant;

use nightshift_common::{Config, config::BackupStore, db};
use nightshift_workers::jobs::backup::{self, Backups};
use secrecy::SecretString;

use super::{Ctx, cashflow, mib, rss_kib};

#[derive(Debug, clap::Args)]
pub struct BackupBenchArgs {
    #[arg(long, default_value_t = 100_000)]
    pub users: i64,
}

const PROJECTIONS: &str = "
INSERT INTO cashflow_projections (user_id, as_of, opening, inflows, outflows, closing, lowest_balance, lowest_date, threshold)
SELECT id, current_date, 100000,
       array(SELECT (id * d * 7919) % 200000 FROM generate_series(1, 90) d),
       array(SELECT -((id * d * 104729) % 150000) FROM generate_series(1, 90) d),
       array(SELECT 100000 + (id * d * 31) % 900000 FROM generate_series(1, 90) d),
       0, current_date, 0
FROM users";

pub async fn run(config: &Config, args: BackupBenchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let dir = std::env::temp_dir().join(format!("nightshift-bench-backups-{}", ctx.prefix));
    let result = bench(&ctx, &args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    ctx.remove().await?;
    result
}

async fn bench(ctx: &Ctx, args: &BackupBenchArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    let pool = db::connect(&ctx.bench_db_url, 4).await?;
    let t = Instant::now();
    cashflow::seed(&pool, args.users).await?;
    sqlx::query(PROJECTIONS).execute(&pool).await?;
    let db_bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&pool)
        .await?;
    println!(
        "seeded {} users (accounts, recurring items, 90-day projections) in {:.1}s: database {:.1} MiB",
        args.users,
        t.elapsed().as_secs_f64(),
        db_bytes as f64 / 1048576.0
    );
    let mut config = ctx.config.clone();
    config.database_url = ctx.bench_db_url.clone();
    config.backup.store = BackupStore::Local(dir.to_path_buf());
    config.backup.key = Some(SecretString::from(backup::keygen().0));
    let backups = Backups::from_config(&config);
    let pid = std::process::id();

    let t = Instant::now();
    let m = backups.take(&pool).await?;
    let took = t.elapsed().as_secs_f64();
    let size = m.size_bytes.unwrap_or(0) as f64;
    println!(
        "backup: {:.1}s, {:.1} MiB stored (encrypted, pg_dump's compression), {:.1} MiB/s of database",
        took,
        size / 1048576.0,
        db_bytes as f64 / 1048576.0 / took
    );
    let t = Instant::now();
    let (_, restored) = backups.verify(&pool, Some(m.id)).await?;
    let restored = restored?;
    println!(
        "restore drill: {:.1}s (checksum, decrypt, pg_restore into a scratch database, fingerprint {} tables, {} rows)",
        t.elapsed().as_secs_f64(),
        restored.tables,
        restored.rows
    );
    println!(
        "this process (the job's code, not pg_dump): RSS peak {:.1} MiB",
        mib(rss_kib(pid).1)
    );
    Ok(())
}
