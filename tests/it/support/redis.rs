//! Redis for a test alone: a `redis-server` on a free port (killed and restarted at will), or a
//! three-master Redis Cluster.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{free_port, wait_for_port};

/// A `redis-server` on `port`, without persistence, with `extra` arguments on top.
fn redis_server(port: u16, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be on PATH (scripts/test.sh installs it)")
}

pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
    /// Its data directory, removed with it.
    dir: Option<std::path::PathBuf>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server with `extra` arguments, in a data directory of its own: a replica's copy of
    /// its primary, or anything else it writes, never lands where the next server would load it.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("ns-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = vec!["--dir".to_string(), dir.to_string_lossy().into_owned()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut r = PrivateRedis {
            port: free_port(),
            child: None,
            extra: args,
            dir: Some(dir),
        };
        r.spawn();
        r
    }

    /// A server that writes every command to its append-only file before answering: a
    /// `restart` (even after a kill) comes back with all it answered.
    pub fn start_durable() -> Self {
        Self::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    fn spawn(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let child = redis_server(self.port, &extra);
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10), "redis-server");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends `sig` (STOP, CONT) to the server: a Redis that stops answering without going away.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} failed");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A local three-master Redis Cluster made of `redis-server` processes on free ports.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    dir: std::path::PathBuf,
    children: Vec<Child>,
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("nightshift-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let children = ports
            .iter()
            .map(|p| {
                let config_file = format!("nodes-{p}.conf");
                let dir = dir.to_string_lossy();
                redis_server(
                    *p,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &config_file,
                        "--dir",
                        &dir,
                    ],
                )
            })
            .collect();
        for p in &ports {
            wait_for_port(*p, Duration::from_secs(10), "a cluster node");
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (scripts/test.sh installs redis-tools)");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { ports, dir, children };
        // Every node must agree the cluster is up before clients use it.
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in &cluster.ports {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                // Each check is a redis-cli process: that paces the loop.
                assert!(Instant::now() < deadline, "the cluster did not come up");
            }
        }
        cluster
    }

    /// REDIS_URL for the cluster: every node, comma-separated.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the node serving `key`'s slot: the one that does not answer MOVED.
    pub fn node_of(&self, key: &str) -> u16 {
        *self
            .ports
            .iter()
            .find(|p| {
                let out = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "exists", key])
                    .output()
                    .unwrap();
                !String::from_utf8_lossy(&out.stdout).contains("MOVED")
            })
            .expect("some node serves every slot")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
