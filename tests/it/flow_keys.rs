//! Flow control that holds across workers: concurrency keys, fair groups and rate keys, on a
//! real Redis with real worker processes where the property is global.
use std::{collections::HashMap, time::Duration};

use nightshift_queue::{JobState, NewJob, Queue, Rate};
use serde_json::json;

use crate::support::*;

fn effect(key: &str, ms: u64) -> NewJob {
    NewJob::new("diag.effect", json!({"key": key, "ms": ms}).to_string()).max_attempts(5)
}

/// Waits until no job of `q` is scheduled, queued, running or retrying.
async fn drained(q: &Queue, within: Duration) {
    poll_until(within, || async {
        let c = q.counts().await.ok()?;
        (c.scheduled + c.queued + c.running + c.retrying == 0).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("queue not drained within {within:?}"));
}

/// The slot bookkeeping once a queue is idle: no key holds a slot without a running job, and no
/// key is left listed.
async fn assert_no_slot_leaked(q: &Queue) {
    assert_eq!(q.slot_leaks().await.unwrap(), Vec::<String>::new());
    let view = q.flow_view(100).await.unwrap();
    assert!(view.keys.is_empty(), "keys still listed: {:?}", view.keys);
}

/// The runs of diag.effect jobs: (job id, attempt, start, end) in microseconds.
async fn runs(db: &TestDb) -> Vec<(String, i32, i64, Option<i64>)> {
    sqlx::query_as(
        "SELECT job_id::text, attempt, (extract(epoch FROM at) * 1e6)::int8,
                (extract(epoch FROM ended_at) * 1e6)::int8
         FROM diag_effects",
    )
    .fetch_all(&db.pool().await)
    .await
    .unwrap()
}

/// The most spans open at one instant.
fn most_at_once(mut spans: Vec<(i64, i64)>) -> usize {
    spans.sort();
    let mut ends: Vec<i64> = Vec::new();
    let mut most = 0;
    for (start, end) in spans {
        ends.retain(|e| *e > start);
        ends.push(end);
        most = most.max(ends.len());
    }
    most
}

/// The process id in a worker id (`host:pid:suffix`).
fn pid_of(worker: &str) -> Option<u32> {
    worker.split(':').nth(1)?.parse().ok()
}

/// Three worker processes share two concurrency keys (limits 2 and 1); one is SIGKILLed and
/// one SIGSTOPped past its lease while each holds a slot. Runs whose lease held to their end
/// never overlap beyond their key's limit; the runs cut off by the kill and the stop are
/// counted apart; each effect happens once; no slot is left held.
#[tokio::test]
async fn a_concurrency_limit_holds_across_worker_processes_one_killed_and_one_stopped() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let q = queue(&redis, "default").await;
    let mut jobs = Vec::new();
    let mut limit_of = HashMap::new();
    for i in 0..24 {
        jobs.push(effect(&format!("wide-{i}"), 150).concurrency("wide", 2));
        jobs.push(effect(&format!("solo-{i}"), 150).concurrency("solo", 1));
    }
    for j in &jobs {
        let c = j.concurrency.as_ref().unwrap();
        limit_of.insert(j.id.clone(), (c.key.clone(), c.limit as usize));
    }
    q.push_bulk(&jobs).await.unwrap();
    let procs: Vec<Proc> = (0..3).map(|_| Proc::spawn(&["worker"], &config, &[])).collect();

    // Kill the first, then stop the second, each while it runs a keyed job whose run has
    // begun (its start is on record: a lease alone may not have reached the handler yet).
    let pool = db.pool().await;
    let holding = |pid: u32| {
        let (q, pool) = (q.clone(), pool.clone());
        async move {
            let running = q.list(JobState::Running, 0, 100).await.ok()?;
            let job = running
                .into_iter()
                .find(|j| j.worker.as_deref().and_then(pid_of) == Some(pid))?;
            let started: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM diag_effects WHERE job_id::text = $1 AND attempt = $2)",
            )
            .bind(&job.id)
            .bind(job.attempts as i32)
            .fetch_one(&pool)
            .await
            .ok()?;
            started.then_some(job)
        }
    };
    // A 150 ms job may finish between the look and the signal: the worker is stopped first and
    // the job looked at again, and only one still running counts (else the worker goes on and
    // the next job is tried).
    let catch = |p: usize| {
        let (q, procs, holding) = (&q, &procs, &holding);
        async move {
            loop {
                let job = poll_until(Duration::from_secs(30), || holding(procs[p].pid()))
                    .await
                    .expect("the worker runs a job");
                procs[p].signal("STOP");
                let now = q.inspect(&job.id).await.unwrap().unwrap();
                if now.state == JobState::Running && now.attempts == job.attempts {
                    return job;
                }
                procs[p].signal("CONT");
            }
        }
    };
    let killed = catch(0).await;
    procs[0].signal("KILL");
    let stopped = catch(1).await;
    // Past its lease: the reaper takes its job back, and another worker runs it.
    poll_until(Duration::from_secs(30), || async {
        let j = q.inspect(&stopped.id).await.ok()??;
        (j.attempts >= 2).then_some(())
    })
    .await
    .expect("the stopped worker's job is taken back and leased again");
    procs[1].signal("CONT");
    drained(&q, Duration::from_secs(60)).await;

    // Every job succeeded, on the attempt the queue accepted.
    let mut accepted = HashMap::new();
    for j in &jobs {
        let rec = q.inspect(&j.id).await.unwrap().unwrap();
        assert_eq!(rec.state, JobState::Succeeded, "{}", j.id);
        accepted.insert(j.id.clone(), rec.attempts as i32);
    }
    let runs = runs(&db).await;
    let mut spans: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    let mut stale = 0;
    for (id, attempt, start, end) in &runs {
        if accepted.get(id) == Some(attempt) {
            let end = end.expect("an accepted run recorded its end");
            spans.entry(limit_of[id].0.clone()).or_default().push((*start, end));
        } else {
            stale += 1;
        }
    }
    for (key, s) in spans {
        let limit = if key == "wide" { 2 } else { 1 };
        let most = most_at_once(s);
        assert!(most <= limit, "{key}: {most} runs at once, limit {limit}");
        assert_eq!(most, limit, "{key}: the slots were used");
    }
    assert!(
        stale >= 2,
        "the killed run of {} and the stopped run of {} count apart",
        killed.id,
        stopped.id
    );
    // Fenced effects: once per key however many runs there were.
    let effects: Vec<(String, i64)> = sqlx::query_as("SELECT business_key, count(*) FROM diag_ledger GROUP BY 1")
        .fetch_all(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(effects.len(), jobs.len());
    assert!(effects.iter().all(|(_, n)| *n == 1), "{effects:?}");
    assert_no_slot_leaked(&q).await;
}

/// A job waiting for a slot is not an attempt, starts as soon as a slot frees, and pause,
/// cancel, retry and dead jobs leave the slots consistent.
#[tokio::test]
async fn waiting_for_a_slot_costs_no_attempt_and_pause_cancel_retry_and_dead_leak_no_slot() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.concurrency = 8;
    let q = queue(&redis, "default").await;
    // One long holder, then jobs behind it: one to cancel while it waits, one that fails to
    // death, and plain ones.
    let holder = effect("holder", 1500).concurrency("k", 1);
    let cancelled = effect("cancelled", 10).concurrency("k", 1);
    let failing = NewJob::new("diag.fail", "{}").max_attempts(2).concurrency("k", 1);
    let rest: Vec<NewJob> = (0..5)
        .map(|i| effect(&format!("after-{i}"), 10).concurrency("k", 1))
        .collect();
    q.push(holder.clone()).await.unwrap();
    let app = App::start(&config, true).await;
    poll_until(Duration::from_secs(10), || async {
        (q.inspect(&holder.id).await.ok()??.state == JobState::Running).then_some(())
    })
    .await
    .expect("the holder runs");
    let mut behind = vec![cancelled.clone(), failing.clone()];
    behind.extend(rest.iter().cloned());
    q.push_bulk(&behind).await.unwrap();
    // They wait for the slot: queued, no attempt used.
    let view = poll_until(Duration::from_secs(10), || async {
        let v = q.flow_view(10).await.ok()?;
        v.keys
            .iter()
            .any(|k| k.key == "k" && k.waiting == behind.len() as u64)
            .then_some(v)
    })
    .await
    .expect("all wait on the key");
    assert_eq!((view.keys[0].running, view.keys[0].waiting), (1, behind.len() as u64));
    assert_eq!(q.counts().await.unwrap().queued, behind.len() as u64);
    let waiting = q.inspect(&cancelled.id).await.unwrap().unwrap();
    assert_eq!((waiting.state, waiting.attempts), (JobState::Queued, 0));
    q.cancel(&cancelled.id).await.unwrap();
    // Paused: the holder finishes and frees its slot; the next live waiter (the cancelled one is
    // dropped) goes back to the ready list and nothing is leased.
    q.pause().await.unwrap();
    poll_until(Duration::from_secs(10), || async {
        (q.inspect(&holder.id).await.ok()??.state == JobState::Succeeded).then_some(())
    })
    .await
    .expect("the holder finishes while the queue is paused");
    assert_eq!(q.slot_leaks().await.unwrap(), Vec::<String>::new());
    let c = q.counts().await.unwrap();
    assert_eq!((c.running, c.queued), (0, behind.len() as u64 - 1));
    // At least the next waiter was woken. The reaper may wake more: a woken job holds no slot
    // until it is leased, and one leased with the slot taken parks again.
    let key = q.flow_view(10).await.unwrap().keys;
    assert_eq!(key[0].running, 0);
    assert!(key[0].waiting <= behind.len() as u64 - 2, "{key:?}");
    q.resume().await.unwrap();

    drained(&q, Duration::from_secs(30)).await;
    assert_eq!(
        q.inspect(&cancelled.id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    let dead = q.inspect(&failing.id).await.unwrap().unwrap();
    assert_eq!((dead.state, dead.attempts), (JobState::Dead, 2));
    for j in &rest {
        let r = q.inspect(&j.id).await.unwrap().unwrap();
        assert_eq!(
            (r.state, r.attempts),
            (JobState::Succeeded, 1),
            "waiting used no attempt"
        );
    }
    assert_no_slot_leaked(&q).await;
    // Retried by an operator, the dead job takes the slot again and gives it back.
    q.retry(&failing.id).await.unwrap();
    drained(&q, Duration::from_secs(30)).await;
    assert_eq!(q.inspect(&failing.id).await.unwrap().unwrap().state, JobState::Dead);
    assert_no_slot_leaked(&q).await;
    // One at a time: the holder and the plain jobs never overlapped.
    let spans: Vec<(i64, i64)> = runs(&db)
        .await
        .into_iter()
        .filter_map(|(_, _, s, e)| Some((s, e?)))
        .collect();
    assert_eq!(most_at_once(spans), 1);
    app.stop().await;
}

/// Three groups with skewed backlogs, one worker taking one job at a time: each group gets a
/// turn in every round, so the small groups finish long before the big one.
#[tokio::test]
async fn groups_take_turns_so_a_backlog_does_not_hold_up_another_group() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.concurrency = 1;
    let q = queue(&redis, "default").await;
    let mut jobs = Vec::new();
    for (group, n) in [("big", 120), ("mid", 12), ("small", 3)] {
        for i in 0..n {
            let job = NewJob::new("diag.effect", json!({"key": format!("{group}-{i}")}).to_string());
            jobs.push(job.group(group));
        }
    }
    q.push_bulk(&jobs).await.unwrap();
    assert_eq!(q.counts().await.unwrap().queued, 135);
    let view = q.flow_view(10).await.unwrap();
    let backlog: Vec<(String, u64)> = view.groups.iter().map(|g| (g.group.clone(), g.queued)).collect();
    assert_eq!(
        backlog,
        [
            ("big".to_string(), 120),
            ("mid".to_string(), 12),
            ("small".to_string(), 3)
        ]
    );
    let app = App::start(&config, true).await;
    drained(&q, Duration::from_secs(60)).await;
    let order: Vec<String> = sqlx::query_scalar("SELECT business_key FROM diag_ledger ORDER BY id")
        .fetch_all(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(order.len(), 135);
    let last = |group: &str| order.iter().rposition(|k| k.starts_with(&format!("{group}-"))).unwrap();
    // Round-robin: small's 3 jobs within the first 3 rounds of 3, mid's 12 within 12 rounds
    // of at most 3 (FIFO would put them after all 120 of big).
    assert!(last("small") < 9, "{order:?}");
    assert!(last("mid") < 36, "{order:?}");
    // Within a group, in order.
    let mids: Vec<&String> = order.iter().filter(|k| k.starts_with("mid-")).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("mid-{i}")).collect();
    assert_eq!(mids, expected.iter().collect::<Vec<_>>());
    assert!(q.flow_view(10).await.unwrap().groups.is_empty());
    app.stop().await;
}

/// A rate key shared by three workers: starts stay within the rate and its burst, and a job
/// held back by the rate is delayed without using an attempt.
#[tokio::test]
async fn a_rate_key_holds_across_three_workers_within_its_burst() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let q = queue(&redis, "default").await;
    let rate = Rate::per_second(20, 5);
    let jobs: Vec<NewJob> = (0..50)
        .map(|i| NewJob::new("diag.effect", json!({"key": format!("r-{i}")}).to_string()).rate("host", rate))
        .collect();
    let other: Vec<NewJob> = (0..10)
        .map(|i| NewJob::new("diag.effect", json!({"key": format!("o-{i}")}).to_string()).rate("other", rate))
        .collect();
    q.push_bulk(&jobs).await.unwrap();
    q.push_bulk(&other).await.unwrap();
    let apps = [
        App::start(&config, true).await,
        App::start(&config, true).await,
        App::start(&config, true).await,
    ];
    // While it drains, some jobs wait for their turn: shown with their start.
    let delayed = poll_until(Duration::from_secs(10), || async {
        let v = q.flow_view(20).await.ok()?;
        (!v.rate_delayed.is_empty()).then_some(v.rate_delayed)
    })
    .await
    .expect("jobs held back by the rate are listed");
    assert!(
        delayed
            .iter()
            .all(|j| j.rate_key.as_deref() == Some("host") || j.rate_key.as_deref() == Some("other"))
    );
    assert!(delayed.iter().all(|j| j.run_at_ms.is_some() && j.attempts == 0));
    drained(&q, Duration::from_secs(30)).await;

    for (set, key) in [(&jobs, "host"), (&other, "other")] {
        let mut starts = Vec::new();
        for j in set.iter() {
            let r = q.inspect(&j.id).await.unwrap().unwrap();
            assert_eq!(
                (r.state, r.attempts),
                (JobState::Succeeded, 1),
                "{key}: waiting is not an attempt"
            );
            starts.push(r.started_at_ms.unwrap());
        }
        starts.sort();
        // In any window of w ms from a start, at most burst + w * rate starts (one more for
        // the millisecond rounding of a start).
        for (i, s) in starts.iter().enumerate() {
            for w in [0i64, 100, 500, 1000] {
                let n = starts[i..].iter().take_while(|t| **t <= s + w).count() as i64;
                let allowed = 5 + w * 20 / 1000 + 1;
                assert!(
                    n <= allowed,
                    "{key}: {n} starts within {w} ms of {s}, allowed {allowed}"
                );
            }
        }
    }
    for app in apps {
        app.stop().await;
    }
}

/// The flow fields through `POST /v1/jobs`: each key in its client's namespace, a kind's own
/// concurrency rule applied whoever enqueues it, bad values a 422 naming their field with
/// nothing pushed, and the queue's groups on the dashboard (escaped) and in the CLI.
#[tokio::test]
async fn flow_fields_through_the_api_are_the_callers_own_and_bad_ones_name_their_field() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    sqlx::query("INSERT INTO users (id, email, time_zone) VALUES (1, 'a@example.com', 'UTC')")
        .execute(&db.pool().await)
        .await
        .unwrap();
    let config = config(&redis, &db);
    let app = App::start(&config, false).await;
    let admin = token(&nightshift_common::auth::Scope::ALL);
    let other = keys()
        .issue(
            "other-client",
            &nightshift_common::auth::Scope::ALL,
            Duration::from_secs(600),
        )
        .unwrap();
    let attack = "<img src=x onerror=\"window.__ran=true\">";
    let q = queue(&redis, "default").await;
    let body = json!({"kind": "diag.effect", "payload": {"key": "a"}, "concurrency_key": "acct",
                      "concurrency_limit": 3, "group": attack, "rate_key": "partner"});
    let mine = app.enqueue_id(&admin, body.clone()).await;
    let theirs = app.enqueue_id(&other, body).await;
    let (mine, theirs) = (
        q.inspect(&mine).await.unwrap().unwrap(),
        q.inspect(&theirs).await.unwrap().unwrap(),
    );
    let c = mine.concurrency.clone().unwrap();
    assert_eq!((c.key.as_str(), c.limit), ("test-client:acct", 3));
    assert_eq!(mine.group.as_deref(), Some(format!("test-client:{attack}").as_str()));
    assert_eq!(mine.rate_key.as_deref(), Some("diag.effect:test-client:partner"));
    assert_eq!(
        theirs.concurrency.unwrap().key,
        "other-client:acct",
        "another client's key is its own"
    );
    assert_ne!(theirs.group, mine.group);
    // cashflow.project holds its user's key however it was asked for.
    let project = app
        .enqueue_id(&admin, json!({"kind": "cashflow.project", "payload": {"user_id": 1}}))
        .await;
    let project = queue(&redis, "cashflow")
        .await
        .inspect(&project)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(project.concurrency.unwrap().key, "~platform:cashflow:user:1");

    let before = q.counts().await.unwrap().queued;
    let effect = |extra: serde_json::Value| {
        let mut b = json!({"kind": "diag.effect", "payload": {"key": "z"}});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    for (extra, field) in [
        (json!({"concurrency_key": ""}), "concurrency_key"),
        (json!({"concurrency_key": "k".repeat(201)}), "concurrency_key"),
        (json!({"concurrency_key": "a\u{1f}b"}), "concurrency_key"),
        (json!({"concurrency_key": 7}), "concurrency_key"),
        (
            json!({"concurrency_key": "k", "concurrency_limit": 0}),
            "concurrency_limit",
        ),
        (
            json!({"concurrency_key": "k", "concurrency_limit": 1001}),
            "concurrency_limit",
        ),
        (
            json!({"concurrency_key": "k", "concurrency_limit": "2"}),
            "concurrency_limit",
        ),
        (json!({"concurrency_limit": 2}), "concurrency_limit"),
        (json!({"group": ""}), "group"),
        (json!({"group": "g\n"}), "group"),
        (json!({"concurrency_key": "acct\u{202e}"}), "concurrency_key"),
        (json!({"group": "\u{200b}g"}), "group"),
        (json!({"rate_key": "p\u{2066}"}), "rate_key"),
        (json!({"group": "g", "priority": 1}), "group"),
        (json!({"rate_key": ""}), "rate_key"),
        (json!({"rate_key": "r".repeat(201)}), "rate_key"),
    ] {
        let r = app.enqueue(&admin, effect(extra.clone()), None).await;
        let status = r.status().as_u16();
        let error: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (422, Some(field)),
            "{extra}: {error}"
        );
    }
    // A kind without a rate has no rate key to honour.
    let r = app
        .enqueue(
            &admin,
            json!({"kind": "cashflow.project", "payload": {"user_id": 1}, "rate_key": "x"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["field"],
        "rate_key"
    );
    assert_eq!(q.counts().await.unwrap().queued, before, "nothing refused was pushed");

    // The queue page lists the groups with their backlog, a client's group name as text.
    let cookie = sign_in(&app, &admin).await;
    let page = no_redirects()
        .get(format!("{}/dashboard/queues/default", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"flow-groups\""), "{page}");
    assert!(page.contains("test-client:&lt;img src=x onerror="), "escaped: {page}");
    assert!(!page.contains(attack), "unescaped group name on the page");
    // The CLI prints the same, its client text made harmless.
    let (ok, listing) = cli(&["flow", "default"], &config);
    assert!(ok, "{listing}");
    let groups: Vec<&str> = listing
        .lines()
        .skip_while(|l| !l.starts_with("groups"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(groups.len(), 2, "{listing}");
    assert!(groups.iter().all(|l| l.trim_end().ends_with(" 1")), "{listing}");
    app.stop().await;
}

/// A kind's own concurrency rule always holds: a client's `concurrency_key` on
/// `cashflow.project` used to replace `cashflow:user:<id>` (twelve keyed projections of one
/// user overlapped in 32 pairs); it is a 422 now. A debounce fold never moves a job to another
/// user while it holds the first user's slot, and a subject named like a platform prefix holds
/// only its own keys.
#[tokio::test]
async fn a_kinds_own_concurrency_key_cannot_be_replaced_or_folded_onto_another_user() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    for id in [1, 2] {
        sqlx::query("INSERT INTO users (id, email, time_zone) VALUES ($1, 'u' || $1 || '@example.com', 'UTC')")
            .bind(id)
            .execute(&db.pool().await)
            .await
            .unwrap();
    }
    let app = App::start(&config(&redis, &db), false).await;
    let admin = token(&nightshift_common::auth::Scope::ALL);
    let q = queue(&redis, "cashflow").await;
    for i in 0..12 {
        let body = json!({"kind": "cashflow.project", "payload": {"user_id": 1},
                          "concurrency_key": format!("mine-{i}"), "concurrency_limit": 5});
        let r = app.enqueue(&admin, body, None).await;
        let status = r.status().as_u16();
        let error: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (422, Some("concurrency_key")),
            "{error}"
        );
    }
    assert_eq!(
        q.counts().await.unwrap().queued + q.counts().await.unwrap().scheduled,
        0
    );
    // One debounce key, two users: two jobs, each holding its own user's slot.
    let debounced = |user: i64| {
        json!({"kind": "cashflow.project", "payload": {"user_id": user},
               "dedupe": {"key": "refresh", "mode": "debounce", "secs": 30}})
    };
    let first = app.enqueue_id(&admin, debounced(1)).await;
    let second = app.enqueue_id(&admin, debounced(2)).await;
    assert_ne!(first, second, "a fold moved user 1's job to user 2");
    for (id, user) in [(&first, 1), (&second, 2)] {
        let job = q.inspect(id).await.unwrap().unwrap();
        let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap();
        assert_eq!(payload["user_id"], user);
        assert_eq!(job.concurrency.unwrap().key, format!("~platform:cashflow:user:{user}"));
    }
    // A service named `cashflow` asking for `user:1` holds `cashflow:user:1`, not the platform's.
    let cashflow = keys()
        .issue(
            "cashflow",
            &nightshift_common::auth::Scope::ALL,
            Duration::from_secs(600),
        )
        .unwrap();
    let id = app
        .enqueue_id(
            &cashflow,
            json!({"kind": "diag.effect", "payload": {"key": "x"}, "concurrency_key": "user:1"}),
        )
        .await;
    let job = queue(&redis, "default").await.inspect(&id).await.unwrap().unwrap();
    assert_eq!(job.concurrency.unwrap().key, "cashflow:user:1");
    app.stop().await;
}

/// The e-mail rate an operator sets reaches every queue handle built from the configuration
/// (the scheduler's, the operator CLI's, recovery's), not only the API's and the workers' as
/// before, under the name the catalog gives the kind.
#[tokio::test]
async fn every_queue_handle_applies_the_configured_email_rate() {
    use nightshift_catalog::{Kind, Queues, email::SendEmail};
    let defaults = nightshift_common::Config::from_env().unwrap();
    assert!(
        defaults.queue.rates.contains_key(SendEmail::NAME),
        "the e-mail rate is configured under the kind's name: {:?}",
        defaults.queue.rates
    );
    let redis = PrivateRedis::start();
    let mut qc = queue_config();
    qc.rates = [(SendEmail::NAME.to_string(), Rate::per_second(2, 3))].into();
    let queues = Queues::new(nightshift_queue::connect_redis(&redis.url()).await.unwrap(), &qc);
    let payload = nightshift_catalog::email::SendPayload {
        message_key: "m-1".into(),
    };
    let id = queues
        .push(SendEmail::job(&payload).rate_key("example.com"))
        .await
        .unwrap();
    let mut conn = queues.of::<SendEmail>().connection();
    let (interval_us, burst): (String, String) = redis::cmd("HMGET")
        .arg(queues.of::<SendEmail>().job_key(&id))
        .arg("rint")
        .arg("rburst")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((interval_us.as_str(), burst.as_str()), ("500000", "3"), "2/s, burst 3");
}
