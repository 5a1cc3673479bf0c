//! The API driven over HTTP, as a client would: enqueue, read a job's status, wait for a state.

use std::time::Duration;

use super::{App, wait_for};

impl App {
    pub async fn enqueue(
        &self,
        token: &str,
        body: serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/v1/jobs", self.base))
            .bearer_auth(token)
            .json(&body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.unwrap()
    }

    /// `POST path` with `token` and a JSON body: the status and the body (null when not JSON).
    pub async fn post(&self, token: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Enqueues and returns the new job's id, asserting the 202.
    pub async fn enqueue_id(&self, token: &str, body: serde_json::Value) -> String {
        let resp = self.enqueue(token, body, None).await;
        assert_eq!(resp.status(), 202);
        resp.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn status(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/jobs/{id}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Waits until the job reaches `state`; returns its status document.
    pub async fn wait_state(&self, token: &str, id: &str, state: &str, within: Duration) -> serde_json::Value {
        wait_for(&format!("job {id} to be {state}"), within, || async {
            let r = self.status(token, id).await;
            if !r.status().is_success() {
                return None;
            }
            let v: serde_json::Value = r.json().await.ok()?;
            (v["state"] == state).then_some(v)
        })
        .await
    }
}

/// Signs in to the dashboard; returns the session's `Cookie` header value.
pub async fn sign_in(app: &App, token: &str) -> String {
    let r = no_redirects()
        .post(format!("{}/dashboard/login", app.base))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "sign-in");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
