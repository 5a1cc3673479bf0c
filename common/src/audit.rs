//! The audit log: one row per operator action (pause, resume, run now, ...) and per
//! state-changing API request, written in the same request as the action, after it happened.
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::PgPool;

use crate::group::Rows;

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

/// One audit row, for a [`crate::group::GroupWriter`]: the API's requests that end together
/// share one insert.
#[derive(Debug, Clone)]
pub struct Entry {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Value,
}

impl Rows for Entry {
    fn write<'a>(pool: &'a PgPool, rows: Vec<&'a Self>) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let (mut actors, mut actions, mut targets, mut details) = (vec![], vec![], vec![], vec![]);
            for e in rows {
                actors.push(e.actor.as_str());
                actions.push(e.action.as_str());
                targets.push(e.target.as_str());
                details.push(&e.detail);
            }
            // In the order given, so ids follow the order requests finished.
            sqlx::query(
                "INSERT INTO audit_log (actor, action, target, detail)
                 SELECT actor, action, target, detail
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY
                     AS u (actor, action, target, detail, n)
                 ORDER BY n",
            )
            .bind(&actors)
            .bind(&actions)
            .bind(&targets)
            .bind(&details)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
