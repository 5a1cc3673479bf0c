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

/// A receiver that answers every request with one status and a body it streams in 64 KiB
/// chunks, counting what it handed to the connection: a client that stops reading stops the
/// count (hyper polls the body only while the socket takes bytes).
pub struct StreamingReceiver {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub streamed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamingReceiver {
    /// Answers `status` with `total` bytes: `head` first, then `fill` bytes.
    pub async fn start(status: u16, head: &'static [u8], total: u64, fill: u8) -> Self {
        use std::sync::{
            Arc,
            atomic::{AtomicU64, Ordering},
        };
        const CHUNK: usize = 64 * 1024;
        let requests = Arc::new(AtomicU64::new(0));
        let streamed = Arc::new(AtomicU64::new(0));
        let (r, s) = (requests.clone(), streamed.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (r, s) = (r.clone(), s.clone());
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    let chunks = futures::stream::unfold(0u64, move |sent| {
                        let s = s.clone();
                        async move {
                            if sent >= total {
                                return None;
                            }
                            let chunk: Vec<u8> = if sent == 0 {
                                head.to_vec()
                            } else {
                                vec![fill; CHUNK.min((total - sent) as usize)]
                            };
                            s.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                            let n = chunk.len() as u64;
                            Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk)), sent + n))
                        }
                    });
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        axum::body::Body::from_stream(chunks),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        StreamingReceiver {
            url,
            requests,
            streamed,
            task,
        }
    }
}

impl Drop for StreamingReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
