//! The chaos runner's own `redis-server`: a free port, production persistence (AOF `everysec`,
//! `noeviction`) and a data directory that outlives a SIGKILL, so a restart on the same port
//! loads what the killed server had written; a second one as its replica, for failovers. Never
//! the shared Redis: it is killed on purpose.
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

pub(crate) struct PrivateRedis {
    pub(crate) port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// The primary it replicates, if it is a replica (kept across restarts).
    primary: Option<u16>,
}

impl PrivateRedis {
    /// A server of its own in `dir`, replicating `primary` if given.
    pub(crate) async fn start(dir: &Path, primary: Option<u16>) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        std::fs::create_dir_all(dir)?;
        let mut redis = PrivateRedis {
            port,
            dir: dir.to_path_buf(),
            child: None,
            primary,
        };
        redis.spawn().await?;
        Ok(redis)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new("redis-server");
        if let Some(primary) = self.primary {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = cmd
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--maxmemory-policy", "noeviction", "--save", ""])
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (it must be on PATH)")?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30)).await
    }

    /// Waits for PONG: a restarted server answers LOADING while it replays the append-only file.
    async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let client = redis::Client::open(self.url())?;
        let deadline = Instant::now() + within;
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "redis-server on port {} did not answer PING within {within:?}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown save, only what the append-only file already holds survives.
    pub(crate) async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Sends `sig` (STOP, CONT): a Redis that stops answering without going away.
    pub(crate) fn signal(&self, sig: &str) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            super::fleet::signal(pid, sig);
        }
    }

    /// Makes it a replica of `primary`, or a primary with `None` (`REPLICAOF`).
    pub(crate) async fn replicate(&mut self, primary: Option<u16>) -> anyhow::Result<()> {
        let mut conn = redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await?;
        let mut cmd = redis::cmd("REPLICAOF");
        match primary {
            Some(port) => cmd.arg("127.0.0.1").arg(port),
            None => cmd.arg("NO").arg("ONE"),
        };
        let _: () = cmd.query_async(&mut conn).await?;
        self.primary = primary;
        Ok(())
    }

    /// Starts it again on the same port and data directory; returns once it answers PING.
    pub(crate) async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        self.spawn().await
    }
}
