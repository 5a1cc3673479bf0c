//! The chaos suite's short run: workers SIGKILLed, SIGTERMed and SIGSTOPed past their lease,
//! Redis SIGKILLed and restarted, SIGSTOPped past two leases and failed over to its replica
//! while that was still resyncing, the link to it slow and lossy
//! for three leases, workers and the API with
//! clocks 90 s off, a job that aborts its worker every time, all under load, with
//! concurrency-keyed and debounced jobs in the mix. Counts only: nothing lost, no effect applied
//! twice, no concurrency slot leaked, the aborting job dead. Timings are the full
//! run's business (scripts/chaos.sh).
use std::process::Stdio;

use crate::support::{heavy, pg_admin_url};

#[tokio::test]
async fn a_short_chaos_run_loses_no_job_and_duplicates_no_effect() {
    // A fleet of processes with a 2 s lease and a 60 s drain: alone in its binary until the
    // tests were one, now kept from overlapping the other heavy tests (support::serial).
    let _heavy = heavy().await;
    let admin = pg_admin_url();
    // The runner starts its own redis-server and creates (and drops) its own database.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args(["chaos", "--workers", "3", "--concurrency", "8"])
        .args([
            "--kill-cycles",
            "10",
            "--term-cycles",
            "3",
            "--stop-cycles",
            "1",
            "--redis-restarts",
            "1",
            "--redis-stalls",
            "1",
            // Right after the Redis restart and stall: the replica is still resyncing, so the
            // promoted one lacks seconds of writes, new jobs and final states alike.
            "--failovers",
            "1",
            "--slow-links",
            "1",
        ])
        .args(["--interval-ms", "700", "--redis-down-ms", "1500", "--rate", "30"])
        .args(["--abort-jobs", "1", "--lease-secs", "2", "--drain-secs", "60"])
        .env("DATABASE_URL", &admin)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{all}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line:\n{all}"))
            .to_string()
    };
    assert_eq!(line("lost "), "lost                  0", "{all}");
    assert_eq!(line("duplicate effects "), "duplicate effects     0", "{all}");
    // Its mix holds concurrency-keyed and debounced jobs: no slot outlives its job.
    assert_eq!(line("leaked slots "), "leaked slots          0", "{all}");
    assert!(
        line("aborting jobs ").starts_with("aborting jobs         dead 1 of 1"),
        "{all}"
    );
    assert!(line("faults ").contains("SIGKILL 10, SIGTERM 3"), "{all}");
    // Redis stopped past two leases, and clocks 90 s off beside the fleet (a worker each way and
    // the API), in the same mix.
    assert!(
        line("faults ").contains("Redis stalls 1, failovers 1, slow links 1"),
        "{all}"
    );
    assert!(
        line("faults ").contains("clocks off: [worker +90s, worker -90s, API -90s]"),
        "{all}"
    );
    // A job the promoted replica never heard of is re-derived unless the history says it
    // finished: none may be missing from both.
    assert!(
        line("jobs accepted ").ends_with("(0 without a final state in the history either)"),
        "{all}"
    );
}
