//! A real HTTP endpoint for webhooks, in this process.

/// A real HTTP webhook receiver: records every request and answers with the status set.
pub struct WebhookReceiver {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    /// Statuses to answer with, first to last; the last one repeats.
    pub statuses: std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start(statuses: &[u16]) -> Self {
        use std::sync::{Arc, Mutex};
        let requests: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
        let statuses = Arc::new(Mutex::new(statuses.to_vec()));
        let (r, s) = (requests.clone(), statuses.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (r, s) = (r.clone(), s.clone());
                async move {
                    r.lock().unwrap().push((headers, body));
                    let mut s = s.lock().unwrap();
                    let code = if s.len() > 1 { s.remove(0) } else { s[0] };
                    axum::http::StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        WebhookReceiver {
            url,
            requests,
            statuses,
            task,
        }
    }

    pub fn received(&self) -> Vec<(axum::http::HeaderMap, String)> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
