//! Finding jobs in the history: the job list's filter and its checks, the rows it shows, and
//! one job's detail with its payload masked. Time bounds become ranges of the UUIDv7 primary
//! key, so a million-row history is read through its primary key, not scanned.
use chrono::{DateTime, Utc};
use nightshift_common::job_ids::first_uuid_v7_at;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::data::PAGE;
use crate::ApiError;

/// The job list's filters, as the form sends them: empty fields are no filter.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct JobFilter {
    #[serde(default)]
    pub queue: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub state: String,
    /// `YYYY-MM-DDTHH:MM`, UTC (an HTML datetime-local input).
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    /// A job id, or `field=value` matched against the payload (`a.b=value` for nested fields).
    #[serde(default)]
    pub q: String,
    /// Keyset cursor: list jobs older than this id.
    #[serde(default)]
    pub before: String,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// The longest filter value: longer ones cannot name a queue, kind or payload value we store.
const MAX_FILTER: usize = 500;

impl JobFilter {
    /// PostgreSQL refuses a NUL in any text parameter: refused here by name, not as a 500.
    fn check(&self) -> Result<(), ApiError> {
        let fields = [
            ("queue", &self.queue),
            ("kind", &self.kind),
            ("state", &self.state),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
            ("before", &self.before),
        ];
        for (field, value) in fields {
            if value.contains('\0') {
                return Err(ApiError::invalid(field, "must not contain the NUL character"));
            }
            if value.len() > MAX_FILTER {
                return Err(ApiError::invalid(field, format!("must be at most {MAX_FILTER} bytes")));
            }
        }
        Ok(())
    }
}

fn parse_time(field: &'static str, s: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    if s.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| Some(t.and_utc()))
        .map_err(|_| ApiError::invalid(field, "must be a date and time, YYYY-MM-DDTHH:MM (UTC)"))
}

/// The newest jobs matching the filter, a page at a time (keyset on the id, newest first).
pub async fn search_jobs(db: &PgPool, f: &JobFilter) -> Result<Vec<JobRow>, ApiError> {
    f.check()?;
    let from = parse_time("from", &f.from)?;
    let to = parse_time("to", &f.to)?;
    let before = match f.before.as_str() {
        "" => None,
        s => Some(Uuid::parse_str(s).map_err(|_| ApiError::invalid("before", "is not a job id"))?),
    };
    let mut qb: QueryBuilder<'_, Postgres> = QueryBuilder::new(
        "SELECT id, queue, kind, state, attempts, created_at, finished_at, error FROM job_history WHERE true",
    );
    for (column, value) in [("queue", &f.queue), ("kind", &f.kind), ("state", &f.state)] {
        if !value.is_empty() {
            qb.push(format_args!(" AND {column} = ")).push_bind(value.clone());
        }
    }
    if let Some(t) = from {
        qb.push(" AND id >= ").push_bind(first_uuid_v7_at(t));
    }
    if let Some(t) = to {
        qb.push(" AND id < ").push_bind(first_uuid_v7_at(t));
    }
    if let Some(b) = before {
        qb.push(" AND id < ").push_bind(b);
    }
    let q = f.q.trim();
    if !q.is_empty() {
        if let Ok(id) = Uuid::parse_str(q) {
            qb.push(" AND id = ").push_bind(id);
        } else if let Some((field, value)) = q.split_once('=') {
            let path: Vec<String> = field.trim().split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(ApiError::invalid(
                    "q",
                    "a payload search is field=value, e.g. user_id=42 or to.address=a@b.c",
                ));
            }
            qb.push(" AND payload #>> ")
                .push_bind(path)
                .push(" = ")
                .push_bind(value.trim().to_string());
        } else {
            return Err(ApiError::invalid(
                "q",
                "is neither a job id nor a payload search (field=value)",
            ));
        }
    }
    qb.push(" ORDER BY id DESC LIMIT ").push_bind(PAGE);
    Ok(qb.build_query_as::<JobRow>().fetch_all(db).await?)
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct JobDetail {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub payload: Option<Value>,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub result: Option<Value>,
    pub worker: Option<String>,
    pub submitted_by: Option<String>,
    pub events: Value,
}

pub async fn job(db: &PgPool, id: Uuid) -> Result<Option<JobDetail>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, queue, kind, payload, state, attempts, max_attempts, created_at, started_at, finished_at,
                error, result, worker, submitted_by, events
         FROM job_history WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Field names whose values are never shown, whatever the kind: the usual names of secrets.
const SECRET_NAMES: [&str; 8] = [
    "password",
    "secret",
    "token",
    "api_key",
    "authorization",
    "iban",
    "card_number",
    "cvv",
];

/// Replaces the values of sensitive fields, at any depth: those the kind declares and those
/// named like secrets.
pub fn mask(value: &mut Value, declared: &[&str]) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let lower = k.to_ascii_lowercase();
                if declared.contains(&k.as_str()) || SECRET_NAMES.iter().any(|s| lower.contains(s)) {
                    *v = Value::String("••••••".into());
                } else {
                    mask(v, declared);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask(v, declared)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn declared_and_secret_looking_fields_are_masked_at_any_depth() {
        let mut v = json!({
            "user_id": 7,
            "account": {"iban": "DE89370400440532013000", "label": "rent"},
            "items": [{"api_key": "k"}, {"note": "n"}],
            "pin": "1234",
            "Password": "p",
        });
        mask(&mut v, &["pin"]);
        assert_eq!(
            v,
            json!({
                "user_id": 7,
                "account": {"iban": "••••••", "label": "rent"},
                "items": [{"api_key": "••••••"}, {"note": "n"}],
                "pin": "••••••",
                "Password": "••••••",
            })
        );
    }

    #[test]
    fn bad_times_name_their_field() {
        assert!(matches!(parse_time("from", "yesterday"), Err(ApiError::Invalid { field, .. }) if field == "from"));
        assert!(parse_time("to", "2026-11-30T10:15").unwrap().is_some());
        assert!(parse_time("to", "").unwrap().is_none());
    }

    #[test]
    fn a_nul_in_any_filter_is_refused_by_its_name() {
        let kind = JobFilter {
            kind: "a\0".into(),
            ..Default::default()
        };
        assert!(matches!(kind.check(), Err(ApiError::Invalid { field, .. }) if field == "kind"));
        let q = JobFilter {
            q: "user_id=\0".into(),
            ..Default::default()
        };
        assert!(matches!(q.check(), Err(ApiError::Invalid { field, .. }) if field == "q"));
        assert!(
            JobFilter {
                kind: "diag.noop".into(),
                ..Default::default()
            }
            .check()
            .is_ok()
        );
    }
}
