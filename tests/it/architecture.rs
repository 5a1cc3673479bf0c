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

/// A library file over 400 lines says why on its first line (`// Over 400 lines: …`): length is
/// a choice to defend, not an accident to find in review.
#[test]
fn every_source_file_over_400_lines_says_why_on_its_first_line() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = crate::docs::platform_rust_files();
    assert!(files.len() > 100, "found only {} source files", files.len());
    let unexplained: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let long = text.lines().count() > 400 && !text.starts_with("// Over 400 lines: ");
            long.then(|| {
                format!(
                    "{} ({} lines)",
                    f.strip_prefix(root).unwrap().display(),
                    text.lines().count()
                )
            })
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "over 400 lines without a first-line reason: {unexplained:?}"
    );
}

/// The cadence names are one list (`nightshift_catalog::cadence::NAMES`): the tables' CHECK
/// constraints and the OpenAPI patterns the clients are generated from say the same.
#[test]
fn every_copy_of_the_cadence_names_matches_the_catalogs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = nightshift_catalog::cadence::NAMES;
    let mut checks = 0;
    for file in [
        "migrations/0002_cashflow.sql",
        "migrations/0004_reminders_email_webhooks.sql",
    ] {
        let sql = std::fs::read_to_string(root.join(file)).unwrap();
        for (_, rest) in sql
            .match_indices("CHECK (cadence IN (")
            .map(|(i, _)| sql.split_at(i + 19))
        {
            let listed: Vec<&str> = rest[..rest.find(')').unwrap()]
                .split(',')
                .map(|n| n.trim().trim_matches('\''))
                .collect();
            assert_eq!(listed, names, "{file}");
            checks += 1;
        }
    }
    assert_eq!(checks, 2, "one CHECK per table with a cadence");
    let spec = std::fs::read_to_string(root.join("clients/openapi.json")).unwrap();
    let pattern = format!("^({})$", names.join("|"));
    assert_eq!(spec.matches("weekly|biweekly").count(), 2, "two patterns name cadences");
    assert_eq!(spec.matches(&pattern).count(), 2, "each is {pattern}");
}
