//! The audit log: one row per operator action (pause, resume, run now, ...), written in the
//! same request as the action, after it succeeded.
use serde_json::Value;
use sqlx::PgPool;

pub async fn record(db: &PgPool, actor: &str, action: &str, target: &str, detail: Value) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4)")
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(db)
        .await?;
    Ok(())
}
