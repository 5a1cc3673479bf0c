//! An S3-compatible object store for a test alone (moto).

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::{free_port, test_python, wait_for_port};

/// The S3-compatible store of the backup tests: moto's server on a free port, with one bucket.
/// It keeps objects in memory, so each test's is gone with it.
pub struct S3Server {
    pub port: u16,
    child: Child,
}

impl S3Server {
    pub async fn start(bucket: &str) -> Self {
        let port = free_port();
        let child = Command::new(test_python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python with moto (scripts/test.sh installs it)");
        let server = S3Server { port, child };
        wait_for_port(port, Duration::from_secs(30), "the S3 server (moto)");
        reqwest::Client::new()
            .put(format!("{}/{bucket}", server.endpoint()))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("creating the test bucket");
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
