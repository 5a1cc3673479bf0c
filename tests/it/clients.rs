//! The Python and TypeScript clients (clients/) against a real `nightshift all --demo`: their
//! own test suites, the README's "Call it from ..." snippets run as written, and a check that
//! the generated code is what the served OpenAPI document generates today.
use std::{path::Path, process::Command, time::Duration};

use nightshift_common::auth::Scope;

use crate::support::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A platform with demo data, a real SMTP sink, and a client rate of 10 requests/s (burst 20)
/// for the clients' 429 tests; the environment the clients read (URL and two tokens).
struct Platform {
    _all: Proc,
    sink: SmtpSink,
    _redis: PrivateRedis,
    _db: TestDb,
    env: Vec<(&'static str, String)>,
}

impl Platform {
    async fn start() -> Self {
        let (redis, db, sink) = (PrivateRedis::start(), TestDb::create().await, SmtpSink::start());
        let config = config(&redis, &db);
        let smtp = sink.url();
        let env = [
            ("NIGHTSHIFT_SMTP_URL", smtp.as_str()),
            ("NIGHTSHIFT_API_RATE_PER_MINUTE", "600"),
            ("NIGHTSHIFT_API_RATE_BURST", "20"),
        ];
        let (all, addr) = Proc::spawn_serving(&["all", "--demo"], &config, &env).await;
        let scopes = [Scope::JobsRead, Scope::JobsWrite, Scope::EmailsSend, Scope::FinanceRead];
        let issue = |sub: &str| keys().issue(sub, &scopes, Duration::from_secs(600)).unwrap();
        Platform {
            _all: all,
            sink,
            _redis: redis,
            _db: db,
            env: vec![
                ("NIGHTSHIFT_URL", format!("http://{addr}")),
                ("NIGHTSHIFT_TOKEN", issue("client-tests")),
                ("NIGHTSHIFT_SLOW_TOKEN", issue("client-tests-rate")),
            ],
        }
    }

    /// Runs `program args` in `dir` with the platform's environment: success and its output.
    fn run(&self, dir: &str, program: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(program)
            .args(args)
            .current_dir(Path::new(ROOT).join(dir))
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e} (scripts/test.sh installs the clients' tools)"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

fn clients_python() -> String {
    std::env::var("NIGHTSHIFT_CLIENTS_PYTHON").unwrap_or_else(|_| format!("{ROOT}/.nightshift/venv-clients/bin/python"))
}

/// The fenced block of `lang` under the README heading `heading`.
fn readme_snippet(heading: &str, lang: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let section = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no `{heading}`"))
        .1;
    let block = section
        .split_once(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("`{heading}` has no {lang} block"))
        .1;
    block.split_once("\n```").unwrap().0.to_string() + "\n"
}

/// The README shows the example file itself, and the example does what it says.
fn assert_readme_shows(heading: &str, lang: &str, example: &str) {
    let file = std::fs::read_to_string(Path::new(ROOT).join(example)).unwrap();
    assert_eq!(
        readme_snippet(heading, lang),
        file,
        "README's `{heading}` must show {example} as it is"
    );
}

/// What the README's example prints, and the one e-mail it sends, received by SMTP.
fn assert_quickstart_ran(platform: &Platform, out: &str) {
    for line in ["e-mail sent", "projection job succeeded", "lowest balance"] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
    let resets = platform
        .sink
        .messages()
        .iter()
        .filter(|m| m.to_string().contains("reset/abc123"))
        .count();
    assert_eq!(resets, 1, "the example's password reset, received once");
}

#[tokio::test]
async fn the_python_client_and_its_readme_example_work_against_a_running_platform() {
    let platform = Platform::start().await;
    let python = clients_python();
    let (ok, out) = platform.run(
        "clients/python",
        &python,
        &["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
    );
    assert!(ok, "the Python client's tests failed:\n{out}");
    assert!(out.contains("passed"), "{out}");

    assert_readme_shows(
        "### Call it from Python",
        "python",
        "clients/python/examples/quickstart.py",
    );
    let (ok, out) = platform.run("clients/python", &python, &["examples/quickstart.py"]);
    assert!(ok, "{out}");
    assert_quickstart_ran(&platform, &out);
}

#[tokio::test]
async fn the_typescript_client_and_its_readme_example_work_against_a_running_platform() {
    let platform = Platform::start().await;
    // Builds the package, then its tests and examples against the built package, and runs the tests.
    let (ok, out) = platform.run("clients/typescript", "npm", &["test", "--silent"]);
    assert!(ok, "the TypeScript client's tests failed:\n{out}");
    assert!(out.contains("# fail 0"), "{out}");

    assert_readme_shows(
        "### Call it from TypeScript",
        "ts",
        "clients/typescript/examples/quickstart.ts",
    );
    let (ok, out) = platform.run("clients/typescript", "node", &["build/examples/quickstart.js"]);
    assert!(ok, "{out}");
    assert_quickstart_ran(&platform, &out);
}

#[tokio::test]
async fn the_generated_clients_match_the_served_openapi_document() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let served = app
        .http
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let file = std::env::temp_dir().join(format!("nightshift-openapi-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, served).unwrap();
    let out = Command::new("bash")
        .args([
            &format!("{ROOT}/clients/generate.sh"),
            "--check",
            "--from",
            &file.to_string_lossy(),
        ])
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("the clients match"), "{text}");
    app.stop().await;
}
