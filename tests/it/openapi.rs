//! The OpenAPI document is generated from the handlers and covers every route; schemathesis
//! (PyPI) fuzzes the running API against it and finds no 5xx and no response the document
//! does not allow.
use std::collections::BTreeSet;

use nightshift_common::auth::Scope;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_its_scope() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let resp = app
        .http
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: BTreeSet<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "/v1/jobs",
        "/v1/jobs/batch",
        "/v1/jobs/{id}",
        "/v1/users/{id}/cashflow",
        "/v1/users/{id}/cashflow/refresh",
        "/v1/users/{id}/cashflow/projections",
        "/v1/users/{id}",
        "/v1/users/{id}/finance",
        "/v1/users/{id}/accounts",
        "/v1/users/{id}/accounts/{item_id}",
        "/v1/users/{id}/recurring",
        "/v1/users/{id}/recurring/{item_id}",
        "/v1/users/{id}/scheduled",
        "/v1/users/{id}/scheduled/{item_id}",
        "/v1/users/{id}/reminders",
        "/v1/users/{id}/reminders/{rid}",
        "/v1/users/{id}/webhooks",
        "/v1/users/{id}/webhooks/{wid}",
        "/v1/users/{id}/webhooks/{wid}/rotate",
        "/v1/batches",
        "/v1/batches/{id}",
        "/v1/batches/{id}/jobs",
        "/v1/batches/{id}/seal",
        "/v1/emails",
        "/v1/emails/{key}",
        "/v1/admin/keys",
        "/v1/admin/keys/rotate",
        "/v1/schedules",
        "/v1/schedules/{name}/pause",
        "/v1/schedules/{name}/resume",
        "/v1/schedules/{name}/run",
        "/health/live",
        "/health/ready",
    ]
    .into();
    assert_eq!(paths, expected);
    // Every /v1 operation names the bearer scheme and its scope; the probes need none.
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let security = &op["security"];
            if path.starts_with("/v1/") {
                let scopes = security[0]["bearer"].as_array();
                assert!(
                    scopes.is_some_and(|s| s.len() == 1),
                    "{method} {path} must name one scope: {security}"
                );
            } else {
                assert!(security.is_null(), "{method} {path} needs no token");
            }
        }
    }
    assert_eq!(operations, 51);
    app.stop().await;
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_outside_the_document() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    // A user the generated requests can hit, so success paths are exercised as well as errors.
    sqlx::query("INSERT INTO users (id, email, time_zone) VALUES (1, 'one@example.com', 'Europe/Paris')")
        .execute(&pool)
        .await
        .unwrap();
    let app = App::start(&config(&redis, &db), false).await;
    let python = test_python();
    let schemathesis = std::path::Path::new(&python).with_file_name("schemathesis");
    // Fixed by default so CI is repeatable; NIGHTSHIFT_FUZZ_SEED explores further.
    let seed = std::env::var("NIGHTSHIFT_FUZZ_SEED").unwrap_or_else(|_| "20261123".into());
    let report = std::env::temp_dir().join(format!("nightshift-schemathesis-{}", uuid::Uuid::new_v4().simple()));
    let out = tokio::process::Command::new(&schemathesis)
        .arg("run")
        .arg(format!("{}/v1/openapi.json", app.base))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            "--seed",
            &seed,
            // One worker: with two, hypothesis describes lambdas from two threads at once, and
            // CPython 3.11's ast module keeps its recursion depth in shared state, so it now and
            // then fails with "AST constructor recursion depth mismatch" (an error of the fuzzer,
            // not of the API; seen once in this suite).
            "--workers",
            "1",
            "--no-color",
            "--header",
            &format!("Authorization: Bearer {}", token(&Scope::ALL)),
            "--report-dir",
        ])
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .expect("schemathesis (scripts/test.sh installs it in the tests' venv)");
    let _ = std::fs::remove_dir_all(&report);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems (seed {seed}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really ran: every operation was tested.
    assert!(stdout.contains("51 selected"), "{stdout}");
    app.stop().await;
}
