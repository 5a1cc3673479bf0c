//! The deployment files are checked, not just written: the Kubernetes manifests render with
//! kustomize and validate against the Kubernetes schemas (kubernetes-validate, strict), and the
//! systemd units pass `systemd-analyze verify`.
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::support::test_python;

fn venv_tool(name: &str) -> PathBuf {
    Path::new(&test_python()).with_file_name(name)
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test.sh installs the tools)"))
}

fn render(dir: &str) -> String {
    let out = run(Command::new(venv_tool("kubectl")).arg("kustomize").arg(repo(dir)));
    assert!(
        out.status.success(),
        "kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Validates rendered manifests; returns (passed, what the validator said).
fn validate(yaml: &str) -> (bool, String) {
    let file = std::env::temp_dir().join(format!("nightshift-k8s-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, yaml).unwrap();
    let out = run(Command::new(venv_tool("kubernetes-validate"))
        .arg("--strict")
        .arg(&file));
    let _ = std::fs::remove_file(&file);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !said.contains("ERROR"), said)
}

fn kinds(yaml: &str) -> Vec<String> {
    let mut kinds: Vec<String> = yaml
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .map(str::to_string)
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn the_kubernetes_manifests_render_and_validate_against_the_kubernetes_schemas() {
    for dir in ["deploy/k8s/base", "deploy/k8s/overlays/production"] {
        let yaml = render(dir);
        let (ok, said) = validate(&yaml);
        assert!(ok, "{dir}:\n{said}");
        // Every resource was checked against its schema, except KEDA's custom resource, for
        // which the validator has none.
        let passed = said.matches(" passed for resource ").count();
        let mut expected = kinds(&yaml);
        expected.retain(|k| k != "ScaledObject");
        assert_eq!(passed, expected.len(), "{dir}:\n{said}");
        assert!(yaml.contains("kind: ScaledObject"));
    }
    let prod = render("deploy/k8s/overlays/production");
    let mut expected = vec![
        "ConfigMap",
        "Deployment",
        "Deployment",
        "Deployment",
        "Job",
        "Namespace",
        "PodDisruptionBudget",
        "PodDisruptionBudget",
        "PodDisruptionBudget",
        "ScaledObject",
        "Service",
    ];
    expected.sort();
    assert_eq!(kinds(&prod), expected);
    assert!(
        prod.contains("image: ghcr.io/example/nightshift:0.1.0"),
        "the overlay pins the image"
    );
}

#[test]
fn the_validator_rejects_a_broken_manifest() {
    // The check above is only worth something if a mistake fails it.
    let broken = render("deploy/k8s/base").replacen("replicas: 2", "replicas: two", 1);
    let (ok, said) = validate(&broken);
    assert!(!ok, "a string replica count must not validate:\n{said}");
    let unknown = render("deploy/k8s/base").replacen("terminationGracePeriodSeconds: 45", "graceSeconds: 45", 1);
    assert!(!validate(&unknown).0, "strict validation refuses an unknown field");
}

#[test]
fn the_systemd_units_verify() {
    let dir = std::env::temp_dir().join(format!("nightshift-units-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // The units name the installed binary; point them at the one just built.
    let mut units = Vec::new();
    for (file, as_name) in [
        ("nightshift-api.service", "nightshift-api.service"),
        ("nightshift-scheduler.service", "nightshift-scheduler.service"),
        ("nightshift-worker@.service", "nightshift-worker@1.service"),
    ] {
        let text = std::fs::read_to_string(repo("deploy/systemd").join(file))
            .unwrap()
            .replace("/usr/local/bin/nightshift", env!("CARGO_BIN_EXE_nightshift"));
        std::fs::write(dir.join(as_name), text).unwrap();
        units.push(dir.join(as_name));
    }
    let out = run(Command::new("systemd-analyze").arg("verify").args(&units));
    let _ = std::fs::remove_dir_all(&dir);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}
