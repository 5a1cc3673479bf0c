//! Real `nightshift scheduler` processes: one enqueue per tick across replicas, and misfire
//! policies applied and recorded after downtime.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::support::*;

type Tick = (String, DateTime<Utc>, String, Option<uuid::Uuid>);

async fn ticks(pool: &PgPool) -> Vec<Tick> {
    sqlx::query_as("SELECT schedule, tick, outcome, job_id FROM schedule_ticks ORDER BY schedule, tick")
        .fetch_all(pool)
        .await
        .unwrap()
}

fn schedules_file(body: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("schedules-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, body).unwrap();
    path
}

/// Asserts a schedule's ledger has one row per second from its first tick to its last.
fn assert_contiguous(rows: &[&Tick]) {
    let (first, last) = (rows[0].1, rows[rows.len() - 1].1);
    assert_eq!(
        rows.len() as i64,
        (last - first).num_seconds() + 1,
        "a tick is missing: {rows:?}"
    );
}

#[tokio::test]
async fn three_scheduler_replicas_with_skewed_clocks_enqueue_every_tick_exactly_once() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let file = schedules_file(
        "[[schedule]]\nname = \"every-second\"\ncron = \"* * * * * *\"\nkind = \"noop\"\nmisfire = \"run_once\"\nmisfire_grace_secs = 5\n",
    );
    let env = [("NIGHTSHIFT_SCHEDULES_FILE", file.to_str().unwrap())];
    // One replica on time, one 1.5 s ahead, one 1.5 s behind.
    let mut replicas = vec![
        Proc::spawn(&["scheduler"], &config, &env),
        Proc::spawn_skewed("+1.5", &["scheduler"], &config, &env),
        Proc::spawn_skewed("-1.5", &["scheduler"], &config, &env),
    ];
    let pool = db.pool().await;
    wait_for("eight ticks", Duration::from_secs(30), || async {
        (ticks(&pool).await.len() >= 8).then_some(())
    })
    .await;
    for r in &replicas {
        r.signal("TERM");
    }
    for r in &mut replicas {
        assert!(r.wait_output().0, "a scheduler did not stop cleanly");
    }
    let all = ticks(&pool).await;
    let rows: Vec<&Tick> = all.iter().collect();
    assert_contiguous(&rows);
    assert!(rows.iter().all(|t| t.2 == "fired" && t.3.is_some()), "{rows:?}");
    let mut jobs: Vec<_> = rows.iter().filter_map(|t| t.3).collect();
    jobs.dedup();
    assert_eq!(jobs.len(), rows.len(), "one job per tick");
    let queued = queue(&redis, "default").await.counts().await.unwrap().queued;
    assert_eq!(queued as usize, rows.len(), "the queue holds exactly one job per tick");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_restarted_scheduler_applies_each_misfire_policy_to_the_ticks_it_missed() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let file = schedules_file(
        "[[schedule]]\nname = \"skipper\"\ncron = \"* * * * * *\"\nkind = \"noop\"\nmisfire = \"skip\"\nmisfire_grace_secs = 1\n\n\
         [[schedule]]\nname = \"catcher\"\ncron = \"* * * * * *\"\nkind = \"noop\"\nmisfire = \"run_once\"\nmisfire_grace_secs = 1\n",
    );
    let env = [("NIGHTSHIFT_SCHEDULES_FILE", file.to_str().unwrap())];
    let pool = db.pool().await;
    let mut first = Proc::spawn(&["scheduler"], &config, &env);
    wait_for("ticks before the stop", Duration::from_secs(30), || async {
        (ticks(&pool).await.len() >= 4).then_some(())
    })
    .await;
    first.signal("TERM");
    assert!(first.wait_output().0);
    let stopped_at = ticks(&pool).await.iter().map(|t| t.1).max().unwrap();
    // Stay down for several ticks.
    wait_for("five seconds of downtime", Duration::from_secs(10), || async {
        (Utc::now() - stopped_at > chrono::Duration::seconds(5)).then_some(())
    })
    .await;
    let mut second = Proc::spawn(&["scheduler"], &config, &env);
    wait_for("ticks after the restart", Duration::from_secs(30), || async {
        let after = ticks(&pool)
            .await
            .into_iter()
            .filter(|t| t.1 > stopped_at + chrono::Duration::seconds(6))
            .count();
        (after >= 4).then_some(())
    })
    .await;
    second.signal("TERM");
    assert!(second.wait_output().0);

    let all = ticks(&pool).await;
    for name in ["skipper", "catcher"] {
        let rows: Vec<&Tick> = all.iter().filter(|t| t.0 == name).collect();
        assert_contiguous(&rows);
        let gap: Vec<&str> = rows
            .iter()
            .filter(|t| t.1 > stopped_at && t.1 < stopped_at + chrono::Duration::seconds(4))
            .map(|t| t.2.as_str())
            .collect();
        let expected = if name == "skipper" { "skipped" } else { "coalesced" };
        assert!(!gap.is_empty() && gap.iter().all(|o| *o == expected), "{name}: {gap:?}");
        assert!(
            rows.iter()
                .all(|t| t.3.is_some() == (t.2 == "fired" || t.2 == "fired_late")),
            "{rows:?}"
        );
    }
    let fired = all.iter().filter(|t| t.3.is_some()).count();
    assert_eq!(
        queue(&redis, "default").await.counts().await.unwrap().queued as usize,
        fired
    );
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_paused_schedule_records_its_ticks_as_skipped_until_resumed() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let file = schedules_file(
        "[[schedule]]\nname = \"tick\"\ncron = \"* * * * * *\"\nkind = \"noop\"\nmisfire = \"skip\"\nmisfire_grace_secs = 5\n",
    );
    let pool = db.pool().await;
    nightshift_catalog::schedules::ledger::set_paused(&pool, "tick", true, "test")
        .await
        .unwrap();
    let mut scheduler = Proc::spawn(
        &["scheduler"],
        &config,
        &[("NIGHTSHIFT_SCHEDULES_FILE", file.to_str().unwrap())],
    );
    wait_for("three skipped ticks", Duration::from_secs(20), || async {
        (ticks(&pool).await.len() >= 3).then_some(())
    })
    .await;
    let q = queue(&redis, "default").await;
    assert_eq!(q.counts().await.unwrap().queued, 0, "a paused schedule enqueued a job");
    nightshift_catalog::schedules::ledger::set_paused(&pool, "tick", false, "test")
        .await
        .unwrap();
    wait_for("a fired tick after resuming", Duration::from_secs(20), || async {
        ticks(&pool).await.iter().any(|t| t.2 == "fired").then_some(())
    })
    .await;
    scheduler.signal("TERM");
    assert!(scheduler.wait_output().0);
    let all = ticks(&pool).await;
    let first_fired = all.iter().position(|t| t.2 == "fired").unwrap();
    assert!(
        first_fired >= 3 && all[..first_fired].iter().all(|t| t.2 == "skipped" && t.3.is_none()),
        "{all:?}"
    );
    assert_contiguous(&all.iter().collect::<Vec<_>>());
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn operators_list_pause_resume_and_run_schedules_through_the_api_with_the_admin_scope() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let admin = token(&[nightshift_common::auth::Scope::Admin]);
    let writer = token(&[
        nightshift_common::auth::Scope::JobsWrite,
        nightshift_common::auth::Scope::JobsRead,
    ]);
    let url = |p: &str| format!("{}/v1/schedules{p}", app.base);
    let status = |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status() };
    let listed: serde_json::Value = app
        .http
        .get(url(""))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let canary = listed["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "canary")
        .unwrap()
        .clone();
    assert_eq!(
        (canary["paused"].as_bool(), canary["kind"].as_str()),
        (Some(false), Some("noop"))
    );
    assert!(canary["next_fire"].is_string());

    assert_eq!(status(app.http.get(url("")).bearer_auth(&writer)).await, 403);
    assert_eq!(
        status(app.http.post(url("/canary/pause")).bearer_auth(&writer)).await,
        403
    );
    assert_eq!(status(app.http.post(url("/nope/pause")).bearer_auth(&admin)).await, 404);

    assert_eq!(
        status(app.http.post(url("/canary/pause")).bearer_auth(&admin)).await,
        200
    );
    let listed: serde_json::Value = app
        .http
        .get(url(""))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["schedules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "canary")
            .unwrap()["paused"],
        true
    );
    assert_eq!(
        status(app.http.post(url("/canary/resume")).bearer_auth(&admin)).await,
        200
    );

    let run = app
        .http
        .post(url("/canary/run"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), 202);
    let id = run.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = queue(&redis, "default").await.inspect(&id).await.unwrap().unwrap();
    assert_eq!(job.kind, "noop");
    // Each request that changes or tries to change something is in the audit log: who, what,
    // the outcome; the refused ones too.
    let audit: Vec<(String, String, String, Option<i64>)> =
        sqlx::query_as("SELECT actor, action, target, (detail->>'status')::bigint FROM audit_log ORDER BY id")
            .fetch_all(&db.pool().await)
            .await
            .unwrap();
    let entry = |actor: &str, verb: &str, status: i64| {
        let target = format!("/v1/schedules/{}/{verb}", if status == 404 { "nope" } else { "canary" });
        (
            actor.to_string(),
            format!("POST /v1/schedules/{{name}}/{verb}"),
            target,
            Some(status),
        )
    };
    assert_eq!(
        audit,
        vec![
            entry("test-client", "pause", 403),
            entry("test-client", "pause", 404),
            entry("test-client", "pause", 200),
            entry("test-client", "resume", 200),
            entry("test-client", "run", 202),
        ]
    );
    // Append-only: the table ignores changes.
    let pool = db.pool().await;
    sqlx::query("DELETE FROM audit_log").execute(&pool).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'someone-else'")
        .execute(&pool)
        .await
        .unwrap();
    let kept: Vec<String> = sqlx::query_scalar("SELECT DISTINCT actor FROM audit_log")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(kept, vec!["test-client"]);
    app.stop().await;
}

#[tokio::test]
async fn a_no_overlap_schedule_does_not_start_while_its_previous_run_is_unfinished() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    // Each run takes 2.5 s; ticks come every second.
    let file = schedules_file(
        "[[schedule]]\nname = \"slow\"\ncron = \"* * * * * *\"\nkind = \"diag.sleep\"\npayload = { ms = 2500 }\n\
         misfire = \"skip\"\nmisfire_grace_secs = 5\nallow_overlap = false\n",
    );
    let env = [("NIGHTSHIFT_SCHEDULES_FILE", file.to_str().unwrap())];
    let _worker = Proc::spawn(&["worker"], &config, &[]);
    let mut scheduler = Proc::spawn(&["scheduler"], &config, &env);
    let pool = db.pool().await;
    wait_for(
        "two runs and the overlaps between them",
        Duration::from_secs(30),
        || async {
            let t = ticks(&pool).await;
            (t.iter().filter(|t| t.2 == "fired").count() >= 2 && t.iter().any(|t| t.2 == "overlapped")).then_some(())
        },
    )
    .await;
    scheduler.signal("TERM");
    assert!(scheduler.wait_output().0);
    let all = ticks(&pool).await;
    assert_contiguous(&all.iter().collect::<Vec<_>>());
    // Between two fired ticks at least two seconds pass: the one in between was overlapped.
    let fired: Vec<_> = all.iter().filter(|t| t.2 == "fired").map(|t| t.1).collect();
    assert!(fired.windows(2).all(|w| (w[1] - w[0]).num_seconds() >= 2), "{all:?}");
    let _ = std::fs::remove_file(file);
}
