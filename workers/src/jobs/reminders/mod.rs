//! Reminders: `reminder.scan` finds the notifications whose time has come and fences each
//! (reminder, due date) with a row in `reminder_deliveries`; `reminder.notify` turns one of
//! them into an outbox message (e-mail or webhook) exactly once.
//!
//! Exactly once in effect, whatever runs twice: two scans insert the same fence row once
//! (primary key); a scan that died after inserting is repaired by the next one, which pushes
//! a notify job for every fenced row still `queued`, under an idempotency key, so a push that
//! happened is not repeated; the notify job writes its outbox row under a key derived from the
//! fence, so its retries reuse it; and the outbox's own claim makes the send once.
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use nightshift_catalog::{
    Kind,
    email::{self, EnqueueError, NewEmail},
    reminders::{DEFAULT_LOOKBACK_HOURS, Notify, NotifyPayload, Scan, ScanPayload},
    webhook,
};
use nightshift_queue::{Job, Outcome};
use serde_json::json;

use super::{
    Handler, JobEnv,
    cashflow::engine::{BusinessDay, Cadence, Recurring},
};

pub mod due;

use due::{DueRule, Reminder};

const PAGE: i64 = 2000;

type ReminderRow = (
    i64,
    NaiveDate,
    Option<String>,
    Option<i32>,
    Option<Vec<i32>>,
    Option<NaiveDate>,
    i32,
    NaiveTime,
    String,
);

fn reminder(row: &ReminderRow) -> Option<Reminder> {
    let (_, due, cadence, interval, days, end, lead, time, zone) = row;
    let rule = match cadence {
        None => DueRule::Once(*due),
        Some(name) => {
            let days: Option<Vec<u32>> = days
                .as_ref()
                .map(|d| d.iter().map(|x| u32::try_from(*x).unwrap_or(0)).collect());
            DueRule::Every(Recurring {
                amount: 0,
                cadence: Cadence::from_db(name, interval.and_then(|i| u32::try_from(i).ok()), days.as_deref())?,
                anchor: *due,
                end: *end,
                count: None,
                business_day: BusinessDay::None,
            })
        }
    };
    Some(Reminder {
        rule,
        lead_days: u32::try_from(*lead).unwrap_or(0),
        notify_time: *time,
        // An unknown zone name notifies in UTC rather than never.
        tz: zone.parse().unwrap_or(Tz::UTC),
    })
}

/// Fences every notification due in `(until - lookback, until]` and pushes a notify job for
/// each fenced one not yet handed off. Returns (fenced now, pushed).
pub async fn scan(env: &JobEnv, until: DateTime<Utc>, lookback: chrono::Duration) -> anyhow::Result<(u64, u64)> {
    let after = until - lookback;
    let (mut last_id, mut fenced, mut pushed) = (0i64, 0u64, 0u64);
    loop {
        let rows: Vec<ReminderRow> = sqlx::query_as(
            "SELECT r.id, r.due_date, r.cadence, r.interval_weeks, r.days_of_month, r.end_date, r.lead_days,
                    r.notify_time, u.time_zone
             FROM reminders r JOIN users u ON u.id = r.user_id
             WHERE r.active AND r.id > $1 ORDER BY r.id LIMIT $2",
        )
        .bind(last_id)
        .bind(PAGE)
        .fetch_all(&env.db)
        .await?;
        let Some(last) = rows.last() else { break };
        last_id = last.0;
        let (mut ids, mut dates, mut instants) = (Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            let Some(r) = reminder(row) else {
                tracing::warn!(reminder = row.0, "reminder has an unreadable cadence; skipped");
                continue;
            };
            for (d, t) in r.due_in(after, until) {
                ids.push(row.0);
                dates.push(d);
                instants.push(t);
            }
        }
        if ids.is_empty() {
            continue;
        }
        fenced += sqlx::query(
            "INSERT INTO reminder_deliveries (reminder_id, due_date, notify_at)
             SELECT * FROM UNNEST($1::bigint[], $2::date[], $3::timestamptz[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&ids)
        .bind(&dates)
        .bind(&instants)
        .execute(&env.db)
        .await?
        .rows_affected();
        let queued: Vec<(i64, NaiveDate)> = sqlx::query_as(
            "SELECT d.reminder_id, d.due_date FROM reminder_deliveries d
             JOIN UNNEST($1::bigint[], $2::date[]) AS c (id, due) ON d.reminder_id = c.id AND d.due_date = c.due
             WHERE d.state = 'queued'",
        )
        .bind(&ids)
        .bind(&dates)
        .fetch_all(&env.db)
        .await?;
        if !queued.is_empty() {
            let jobs = queued.iter().map(|&(reminder_id, due_date)| {
                Notify::job(&NotifyPayload { reminder_id, due_date })
                    .idempotency_key(format!("reminder:{reminder_id}:{due_date}"))
            });
            pushed += env.queues.push_bulk(jobs).await?.len() as u64;
        }
    }
    Ok((fenced, pushed))
}

impl Handler for Scan {
    async fn run(env: &JobEnv, _job: &Job, p: ScanPayload) -> Outcome {
        let hours = p.lookback_hours.unwrap_or(DEFAULT_LOOKBACK_HOURS);
        if !(1..=24 * 14).contains(&hours) {
            return Outcome::Dead(format!("lookback_hours must be 1..=336, got {hours}"));
        }
        let until = p.as_of.unwrap_or_else(Utc::now);
        match scan(env, until, chrono::Duration::hours(i64::from(hours))).await {
            Ok((fenced, pushed)) => Outcome::Succeeded(Some(
                json!({ "until": until, "new_deliveries": fenced, "notify_jobs": pushed }).to_string(),
            )),
            Err(e) => Outcome::retry(format!("scanning reminders: {e:#}")),
        }
    }
}

type NotifyRow = (
    String,
    i64,
    String,
    Option<i64>,
    String,
    Option<i64>,
    bool,
    String,
    String,
    String,
);

impl Handler for Notify {
    async fn run(env: &JobEnv, _job: &Job, p: NotifyPayload) -> Outcome {
        let row: Result<Option<NotifyRow>, _> = sqlx::query_as(
            "SELECT d.state, r.user_id, r.title, r.amount, r.channel, r.webhook_id, r.active, u.email,
                    coalesce(u.name, split_part(u.email, '@', 1)), u.currency
             FROM reminder_deliveries d JOIN reminders r ON r.id = d.reminder_id JOIN users u ON u.id = r.user_id
             WHERE d.reminder_id = $1 AND d.due_date = $2",
        )
        .bind(p.reminder_id)
        .bind(p.due_date)
        .fetch_optional(&env.db)
        .await;
        let (state, user_id, title, amount, channel, webhook_id, active, address, name, currency) = match row {
            Err(e) => return Outcome::retry(format!("reading the reminder: {e}")),
            Ok(None) => return Outcome::Cancelled("the reminder or its delivery no longer exists".into()),
            Ok(Some(r)) => r,
        };
        if state == "handed_off" {
            return Outcome::Succeeded(Some(json!({ "already": "handed_off" }).to_string()));
        }
        if !active {
            return Outcome::Cancelled("the reminder was deactivated".into());
        }
        let key = format!("reminder:{}:{}", p.reminder_id, p.due_date);
        let amount_text = amount.map(|a| crate::jobs::email::format_money(a.abs(), &currency));
        let handed = match (channel.as_str(), webhook_id) {
            ("webhook", Some(endpoint)) => {
                let data = json!({
                    "reminder_id": p.reminder_id, "user_id": user_id, "title": title,
                    "amount": amount, "currency": currency, "due_date": p.due_date,
                });
                webhook::enqueue(&env.db, &env.queues, &key, endpoint, "reminder.due", &data)
                    .await
                    .map(|_| ())
            }
            _ => {
                let vars = json!({ "name": name, "title": title, "due_date": p.due_date, "amount": amount_text });
                let email = NewEmail {
                    key: &key,
                    template: "bill_reminder",
                    to: &address,
                    vars: &vars,
                };
                email::enqueue(&env.db, &env.queues, email, &env.mail_domain)
                    .await
                    .map(|_| ())
            }
        };
        match handed {
            Ok(()) => {}
            Err(e @ (EnqueueError::Database(_) | EnqueueError::Queue(_))) => {
                return Outcome::retry(format!("queueing the notification: {e}"));
            }
            Err(e) => return Outcome::Dead(format!("the notification cannot be sent: {e}")),
        }
        let marked = sqlx::query(
            "UPDATE reminder_deliveries SET state = 'handed_off', outbox_key = $3, handed_off_at = now()
             WHERE reminder_id = $1 AND due_date = $2",
        )
        .bind(p.reminder_id)
        .bind(p.due_date)
        .bind(&key)
        .execute(&env.db)
        .await;
        match marked {
            Ok(_) => Outcome::Succeeded(Some(json!({ "outbox_key": key, "channel": channel }).to_string())),
            // The outbox row exists and its send job is queued; a retry finds both.
            Err(e) => Outcome::retry(format!("marking the delivery: {e}")),
        }
    }
}
