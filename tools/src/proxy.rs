//! A TCP proxy between the platform and its Redis that makes the link bad on purpose, for the
//! tests and the chaos runner: every chunk is delivered half the round-trip delay after it was
//! read, each way (a round trip that much longer, without cutting throughput; set with
//! [`LatencyProxy::set_delay`]), and a chunk from a client cuts its connection with the
//! probability set by [`LatencyProxy::set_reset`] (none at first, so the platform can start).
//! New connections go to the server set by [`LatencyProxy::set_upstream`], as a proxy or a DNS
//! name in front of a Redis does after a failover; the ones already made stay where they were.
use std::{
    sync::{
        Arc,
        atomic::{AtomicU16, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    time::Instant,
};

pub struct LatencyProxy {
    pub port: u16,
    /// Connections it cut.
    pub resets: Arc<AtomicU64>,
    /// The probability a client's chunk cuts its connection, as f64 bits.
    reset: Arc<AtomicU64>,
    /// The added round trip, in microseconds.
    delay: Arc<AtomicU64>,
    upstream: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl LatencyProxy {
    pub async fn start(upstream: u16, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let resets = Arc::new(AtomicU64::new(0));
        let reset = Arc::new(AtomicU64::new(0f64.to_bits()));
        let upstream = Arc::new(AtomicU16::new(upstream));
        let delay = Arc::new(AtomicU64::new(delay.as_micros() as u64));
        let (counted, odds, to, lag) = (resets.clone(), reset.clone(), upstream.clone(), delay.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let port = to.load(Ordering::Relaxed);
                let Ok(server) = TcpStream::connect(("127.0.0.1", port)).await else {
                    continue;
                };
                let (counted, odds, lag) = (counted.clone(), odds.clone(), lag.clone());
                tokio::spawn(async move {
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    // Either direction ending (or a reset) ends both.
                    tokio::select! {
                        _ = pump(cr, sw, lag.clone(), Some((odds, counted))) => {}
                        _ = pump(sr, cw, lag, None) => {}
                    }
                });
            }
        });
        LatencyProxy {
            port,
            resets,
            reset,
            delay,
            upstream,
            task,
        }
    }

    /// From now on each round trip is `delay` longer.
    pub fn set_delay(&self, delay: Duration) {
        self.delay.store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    /// New connections go to the server on `port` from now on.
    pub fn set_upstream(&self, port: u16) {
        self.upstream.store(port, Ordering::Relaxed);
    }

    /// From now on a client's chunk cuts its connection with probability `p`.
    pub fn set_reset(&self, p: f64) {
        self.reset.store(p.to_bits(), Ordering::Relaxed);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Copies `from` to `to`, each chunk half the round-trip delay after it was read; with `cut`
/// (its odds, and the count of cuts) a chunk may end the connection instead.
async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin + Send + 'static,
    round_trip_us: Arc<AtomicU64>,
    cut: Option<(Arc<AtomicU64>, Arc<AtomicU64>)>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((odds, cuts)) = &cut
            && rand::random::<f64>() < f64::from_bits(odds.load(Ordering::Relaxed))
        {
            cuts.fetch_add(1, Ordering::Relaxed);
            break;
        }
        let half = Duration::from_micros(round_trip_us.load(Ordering::Relaxed) / 2);
        if tx.send((Instant::now() + half, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    writer.abort();
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
