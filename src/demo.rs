//! Demo data for `nightshift all --demo`: a few realistic users and jobs, so the API shows
//! something real. Idempotent: running it again changes nothing.
use nightshift_api::AppState;
use nightshift_catalog::{
    Kind,
    cashflow::{Project, ProjectPayload},
};

pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let mut tx = state.db.begin().await?;
    let users: [(i64, &str, &str, i64); 3] = [
        (1, "ada@example.com", "Europe/Paris", 20_000),
        (2, "grace@example.com", "America/New_York", 10_000),
        (3, "alan@example.com", "Europe/London", 50_000),
    ];
    for (id, email, tz, threshold) in users {
        sqlx::query("INSERT INTO users (id, email, time_zone, low_balance_threshold) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(email)
            .bind(tz)
            .bind(threshold)
            .execute(&mut *tx)
            .await?;
        let has_account: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE user_id = $1)")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if has_account {
            continue;
        }
        sqlx::query("INSERT INTO accounts (user_id, name, balance) VALUES ($1, 'Current account', $2)")
            .bind(id)
            .bind(150_000 + id * 25_000)
            .execute(&mut *tx)
            .await?;
        // Salary every other Friday, rent on the 1st (a weekend moves it to Monday), a
        // subscription on the 31st, yearly insurance, and a one-off repair next week.
        let items: [(&str, i64, &str, &str, &str); 4] = [
            ("Salary", 210_000, "biweekly", "2026-01-02", "previous"),
            ("Rent", -120_000, "monthly", "2026-01-01", "next"),
            ("Streaming", -1_299, "monthly", "2026-01-31", "none"),
            ("Home insurance", -38_000, "yearly", "2026-02-28", "none"),
        ];
        for (name, amount, cadence, anchor, business_day) in items {
            sqlx::query(
                "INSERT INTO recurring_items (user_id, name, amount, cadence, anchor_date, business_day)
                 VALUES ($1, $2, $3, $4, $5::date, $6)",
            )
            .bind(id)
            .bind(name)
            .bind(amount)
            .bind(cadence)
            .bind(anchor)
            .bind(business_day)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO scheduled_transactions (user_id, name, amount, date) VALUES ($1, 'Car repair', -45000, CURRENT_DATE + 7)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // The rent reminder, three days ahead at 09:00 local, and one due today that the next
        // five-minute scan sends to the local mail sink.
        sqlx::query(
            "INSERT INTO reminders (user_id, title, amount, due_date, cadence, lead_days, notify_time, channel) VALUES
                ($1, 'Rent', -120000, '2026-01-01', 'monthly', 3, '09:00', 'email'),
                ($1, 'Gym membership', -2999, CURRENT_DATE, NULL, 0, '00:00', 'email')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let today = chrono::Utc::now().date_naive();
    for (user_id, ..) in users {
        let payload = ProjectPayload {
            user_id,
            as_of: None,
            horizon_days: None,
            include_as_of: false,
        };
        let job = Project::job(&payload).idempotency_key(format!("demo:cashflow:{user_id}:{today}"));
        state.queues.push(job).await?;
    }
    println!(
        "demo data: 3 users with accounts, recurring items and reminders; their cashflow projections are enqueued"
    );
    Ok(())
}
