//! The crate graph is a design, checked against `cargo metadata`: the three programs' crates
//! (api, scheduler, workers) are siblings that share catalog, common and queue, and the shared
//! crates never reach up into a program's.
use std::{collections::BTreeMap, process::Command};

use serde_json::Value;

/// Each workspace crate's dependencies on other workspace crates.
fn workspace_edges() -> BTreeMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: Vec<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap())
                .filter(|d| names.contains(d))
                .map(str::to_string)
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

#[test]
fn api_scheduler_and_workers_are_siblings_over_catalog_common_and_queue() {
    let edges = workspace_edges();
    let uses = |from: &str, to: &str| edges[from].iter().any(|d| d == to);
    let programs = ["nightshift-api", "nightshift-scheduler", "nightshift-workers"];
    for a in programs {
        for b in programs {
            assert!(
                !uses(a, b),
                "{a} depends on {b}: the programs' crates must stay siblings"
            );
        }
        for shared in ["nightshift-catalog", "nightshift-common"] {
            assert!(uses(a, shared), "{a} makes jobs and reads config through {shared}");
        }
    }
    // The shared crates sit below the programs, queue at the bottom.
    for shared in ["nightshift-catalog", "nightshift-common", "nightshift-queue"] {
        for program in programs.iter().chain(&["nightshift-tools", "nightshift"]) {
            assert!(!uses(shared, program), "{shared} depends on {program}");
        }
    }
    assert!(
        !uses("nightshift-common", "nightshift-catalog"),
        "common depends on catalog"
    );
    assert!(
        edges["nightshift-queue"].is_empty(),
        "queue depends on {:?}",
        edges["nightshift-queue"]
    );
    // Only the binary and the tools (bench, chaos, doctor) link the handlers.
    for (name, deps) in &edges {
        if deps.iter().any(|d| d == "nightshift-workers") {
            assert!(
                ["nightshift", "nightshift-tools"].contains(&name.as_str()),
                "{name} links the handlers"
            );
        }
    }
}
