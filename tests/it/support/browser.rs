//! The dashboard's browser: chromedriver and one headless Chromium session, driven over WebDriver,
//! and `setup`, the dashboard tests' fixture (the platform in this process and a signed-in
//! browser).

use std::{path::PathBuf, process::Stdio, time::Duration};

use base64::Engine;
use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use super::{App, PrivateRedis, TestDb, config, free_port, poll_until, token, wait_for};

pub const WAIT: Duration = Duration::from_secs(20);
/// The W3C WebDriver key under which an element reference is returned.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver on a free port and one headless chromium session, both ended on drop. The
/// WebDriver protocol is a dozen JSON calls here, made with reqwest: a WebDriver crate would
/// add a second TLS stack (aws-lc) and ICU to the build for them.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    chromedriver: std::process::Child,
}

impl Browser {
    async fn start() -> Self {
        let binary = std::env::var("NIGHTSHIFT_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port();
        let chromedriver = std::process::Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary} (scripts/test.sh installs chromium-driver): {e}"));
        wait_for_port(port).await;
        let http = reqwest::Client::new();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                             "--disable-dev-shm-usage", "--window-size=1400,1000"] },
            // Every console message of every page, read back through chromedriver's log endpoint.
            "goog:loggingPrefs": { "browser": "ALL" },
        } } });
        let resp: Value = http
            .post(format!("http://127.0.0.1:{port}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium session: {resp}"))
            .to_string();
        Browser {
            http,
            session: format!("http://127.0.0.1:{port}/session/{session}"),
            chromedriver,
        }
    }

    /// One WebDriver command; a WebDriver error (no such element, no alert) is `Err`.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp: Value = req
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match resp["value"].get("error") {
            Some(e) => Err(format!("{e}: {}", resp["value"]["message"])),
            None => Ok(resp["value"].clone()),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.cmd(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await.unwrap();
    }

    pub async fn url(&self) -> String {
        self.get("/url").await.unwrap().as_str().unwrap().to_string()
    }

    pub async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await?;
        Ok(v[ELEMENT].as_str().ok_or("no element id")?.to_string())
    }

    /// Waits for an element to be on the page.
    pub async fn element(&self, css: &str) -> String {
        let found = poll_until(WAIT, || async { self.find(css).await.ok() }).await;
        found.unwrap_or_else(|| panic!("no element {css} within {WAIT:?}"))
    }

    /// The text of an element, found again if the page replaced it between the two calls.
    pub async fn text(&self, css: &str) -> String {
        let found = poll_until(WAIT, || async {
            let e = self.find(css).await.ok()?;
            let v = self.get(&format!("/element/{e}/text")).await.ok()?;
            v.as_str().map(String::from)
        })
        .await;
        found.unwrap_or_else(|| panic!("no text for {css} within {WAIT:?}"))
    }

    /// The text of an element once it satisfies `ok`: after a click that loads a page with the
    /// same element, the old page can still be there when the text is first read.
    pub async fn text_until(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let found = poll_until(WAIT, || async {
            let e = self.find(css).await.ok()?;
            let t = self.get(&format!("/element/{e}/text")).await.ok()?;
            t.as_str().filter(|t| ok(t)).map(String::from)
        })
        .await;
        match found {
            Some(t) => t,
            None => panic!("{css} stayed {:?}", self.text(css).await),
        }
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.element(css).await;
        self.get(&format!("/element/{e}/attribute/{name}"))
            .await
            .unwrap()
            .as_str()
            .map(String::from)
    }

    pub async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.post(&format!("/element/{e}/click"), json!({})).await.unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.post(&format!("/element/{e}/value"), json!({ "text": text }))
            .await
            .unwrap();
    }

    pub async fn execute(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
            .unwrap()
    }

    pub async fn source(&self) -> String {
        self.get("/source").await.unwrap().as_str().unwrap().to_string()
    }

    /// The text of an open alert, if a page opened one.
    pub async fn alert(&self) -> Option<String> {
        self.get("/alert/text")
            .await
            .ok()
            .map(|v| v.as_str().unwrap_or("").to_string())
    }

    /// The console messages logged since the last call, as (level, message).
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self.post("/se/log", json!({ "type": "browser" })).await.unwrap();
        v.as_array()
            .unwrap_or_else(|| panic!("chromedriver log answer: {v}"))
            .iter()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    pub async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let b64 = self.get("/screenshot").await.unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Signs in through the login form with a token of the given scopes.
    pub async fn sign_in(&self, base: &str, scopes: &[Scope]) {
        self.goto(&format!("{base}/dashboard/login")).await;
        self.type_into("#token", &token(scopes)).await;
        self.click("#login button[type=submit]").await;
    }

    pub async fn session_cookie(&self) -> String {
        let c = self.get("/cookie/nightshift_session").await.expect("signed in");
        c["value"].as_str().unwrap().to_string()
    }

    /// Reloads the current page until `css`'s text satisfies `ok`.
    pub async fn reload_until(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let found = poll_until(WAIT, || async {
            self.post("/refresh", json!({})).await.ok()?;
            let e = self.find(css).await.ok()?;
            let t = self
                .get(&format!("/element/{e}/text"))
                .await
                .ok()?
                .as_str()?
                .to_string();
            ok(&t).then_some(t)
        })
        .await;
        match found {
            Some(t) => t,
            None => panic!("{css} stayed {:?}", self.text(css).await),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes chromium; killing chromedriver then leaves nothing behind.
        let url = self.session.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { reqwest::Client::new().delete(url).send().await.map(drop) })
        })
        .join();
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

async fn wait_for_port(port: u16) {
    wait_for("chromedriver to listen", WAIT, || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(drop)
    })
    .await;
}

/// Private Redis and database, the API and workers in this process, and a signed-in browser.
pub struct Setup {
    pub app: App,
    pub browser: Browser,
    pub db: sqlx::PgPool,
    _test_db: TestDb,
    pub redis: PrivateRedis,
}

pub async fn setup() -> Setup {
    let redis = PrivateRedis::start();
    let test_db = TestDb::create().await;
    let config = config(&redis, &test_db);
    let app = App::start(&config, true).await;
    let browser = Browser::start().await;
    browser.sign_in(&app.base, &[Scope::Admin]).await;
    // The sign-in posts a form: read the page it lands on, not the one it leaves.
    let left = poll_until(WAIT, || async {
        (!browser.url().await.ends_with("/dashboard/login")).then_some(())
    })
    .await;
    assert!(left.is_some(), "still on the sign-in page: {}", browser.source().await);
    let h1 = browser.text("main h1").await;
    assert_eq!(
        h1,
        "Queues",
        "signed in lands on the overview: {}",
        browser.source().await
    );
    Setup {
        db: test_db.pool().await,
        app,
        browser,
        _test_db: test_db,
        redis,
    }
}
