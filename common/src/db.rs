use std::time::Duration;

use sqlx::{
    Connection, PgPool,
    migrate::{MigrateDatabase, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// Migrations embedded in the binary; `nightshift migrate` and `all` apply them.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = database_url.parse()?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// Creates the database if it does not exist, applies pending migrations, and makes the job
/// history's partitions for the coming week (the maintenance job keeps them ahead after that;
/// this covers a platform that was stopped for longer).
pub async fn migrate(database_url: &str) -> Result<(), sqlx::Error> {
    if !sqlx::Postgres::database_exists(database_url).await? {
        sqlx::Postgres::create_database(database_url).await?;
        tracing::info!("created database");
    }
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let today = nightshift_queue::clock::now().date_naive();
    MIGRATOR.run(&mut conn).await?;
    crate::history::partitions::ensure_ahead(&mut conn, today).await?;
    Ok(())
}

/// The same server URL with another database name.
pub fn with_database(database_url: &str, name: &str) -> Result<String, sqlx::Error> {
    let mut url = url::Url::parse(database_url).map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Drops a database this process created (benchmarks, tests).
pub async fn drop_database(database_url: &str) -> Result<(), sqlx::Error> {
    sqlx::Postgres::force_drop_database(database_url).await
}
