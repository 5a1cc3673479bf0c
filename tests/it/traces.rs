//! Traces over OTLP/HTTP from a real `nightshift all` process to a receiver the test runs: a
//! request's `traceparent` continued by its `publish` span, each run a `process` span linking
//! to it with the messaging attributes, a retried job's three runs, a batch callback linking
//! to the batch's request, and log lines that carry their trace.
use std::time::Duration;

use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::*;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const BATCH_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

async fn post(http: &reqwest::Client, url: String, token: &str, tp: Option<String>, body: Value) -> Value {
    let mut req = http.post(url).bearer_auth(token).json(&body);
    if let Some(tp) = tp {
        req = req.header("traceparent", tp);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

fn process_spans<'a>(spans: &'a [ReceivedSpan], job: &str) -> Vec<&'a ReceivedSpan> {
    let mut runs: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.kind == 5 && s.attr("messaging.message.id") == Some(job))
        .collect();
    runs.sort_by_key(|s| s.attr("job.attempt").map(str::to_string));
    runs
}

#[tokio::test]
async fn a_request_its_publish_and_each_run_are_traced_and_runs_link_to_their_creation() {
    let receiver = OtlpReceiver::start().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "nightshift-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    let (mut all, addr) = Proc::spawn_all(&config, &env).await;
    let http = reqwest::Client::new();
    let token = token(&[Scope::JobsRead, Scope::JobsWrite]);
    let base = format!("http://{addr}");

    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let effect = post(
        &http,
        format!("{base}/v1/jobs"),
        &token,
        Some(caller.clone()),
        json!({"kind": "diag.effect", "payload": {"key": "traced"}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let retried = post(
        &http,
        format!("{base}/v1/jobs"),
        &token,
        Some(caller.clone()),
        json!({"kind": "diag.fail", "max_attempts": 3,
               "payload": {"succeed_from_attempt": 3, "retry_after_ms": 50}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let batch = post(
        &http,
        format!("{base}/v1/batches"),
        &token,
        Some(format!("00-{BATCH_TRACE}-{CALLER_SPAN}-01")),
        json!({"jobs": [{"kind": "noop"}], "on_complete": {"kind": "noop"}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let callback = wait_for("the batch's callback to run", Duration::from_secs(30), || async {
        let b: Value = http
            .get(format!("{base}/v1/batches/{batch}"))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let cb = &b["callbacks"][0];
        (cb["job_state"] == "succeeded").then(|| cb["job_id"].as_str().map(str::to_string))?
    })
    .await;

    // Everything exported: the effect's run, the three runs of the retried job, the callback's.
    let spans = wait_for("the spans to arrive", Duration::from_secs(30), || async {
        let spans = receiver.spans();
        let done = process_spans(&spans, &effect).len() == 1
            && process_spans(&spans, &retried).len() == 3
            && process_spans(&spans, &callback).len() == 1;
        done.then_some(spans)
    })
    .await;
    assert!(spans.iter().all(|s| s.service == "nightshift-under-test"));

    // The request continues the caller's trace; its publish span is a producer inside it.
    let request = spans
        .iter()
        .find(|s| s.kind == 2 && s.trace_id == CALLER_TRACE && s.parent_span_id == CALLER_SPAN)
        .expect("the request span, a child of the caller's");
    assert_eq!(request.name, "POST /v1/jobs", "named after its route");
    let publishes: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name == "publish default" && s.trace_id == CALLER_TRACE)
        .collect();
    assert_eq!(publishes.len(), 2, "one publish per enqueue: {publishes:?}");
    assert!(
        publishes
            .iter()
            .all(|p| p.kind == 4 && p.attr("messaging.destination.name") == Some("default"))
    );
    assert!(publishes.iter().any(|p| p.parent_span_id == request.span_id));

    // The effect's run: a consumer span of its own trace, linking to its publish span.
    let run = process_spans(&spans, &effect)[0];
    assert_eq!(run.name, "process default");
    for (key, value) in [
        ("messaging.system", "nightshift"),
        ("messaging.operation.name", "process"),
        ("messaging.destination.name", "default"),
        ("job.kind", "diag.effect"),
        ("job.attempt", "1"),
    ] {
        assert_eq!(run.attr(key), Some(value), "{key}: {run:?}");
    }
    assert_ne!(run.trace_id, CALLER_TRACE, "a run is its own trace");
    assert_eq!(run.links.len(), 1);
    assert_eq!(run.links[0].0, CALLER_TRACE);
    assert!(
        publishes.iter().any(|p| p.span_id == run.links[0].1),
        "linked to its publish span"
    );

    // The retried job: three runs, attempts 1 to 3, each linking to the same creation context.
    let runs = process_spans(&spans, &retried);
    let attempts: Vec<&str> = runs.iter().filter_map(|r| r.attr("job.attempt")).collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    assert!(
        runs.iter()
            .all(|r| r.links == runs[0].links && r.links[0].0 == CALLER_TRACE)
    );

    // The batch callback links to the request that made the batch.
    let cb = process_spans(&spans, &callback)[0];
    assert_eq!(cb.links.len(), 1);
    assert_eq!(cb.links[0].0, BATCH_TRACE);
    let mut listing: Vec<String> = spans
        .iter()
        .filter(|s| s.trace_id == CALLER_TRACE || s.links.iter().any(|l| l.0 == CALLER_TRACE))
        .map(|s| {
            format!(
                "{} kind={} trace={} links={:?}",
                s.name,
                s.kind,
                &s.trace_id[..8],
                s.links.iter().map(|l| &l.0[..8]).collect::<Vec<_>>()
            )
        })
        .collect();
    listing.sort();
    println!("captured spans:\n  {}", listing.join("\n  "));

    // Log lines written inside a run carry its trace: the first failure, with its run's ids.
    all.signal("TERM");
    let (_, log) = all.wait_output();
    let failed = log
        .lines()
        .find(|l| l.contains("job failed") && l.contains("(attempt 1)"))
        .expect("the first failing run logged");
    assert!(
        failed.contains(&runs[0].trace_id) && failed.contains(&runs[0].span_id),
        "{failed}"
    );
}
