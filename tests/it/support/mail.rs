//! A real SMTP server for a test alone (aiosmtpd, `smtp_sink.py` next to this file).

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::{free_port, test_python, wait_for_port};

/// The SMTP server of the e-mail tests: tests/it/support/smtp_sink.py (aiosmtpd) on a free port,
/// keeping each accepted message as JSON in its own directory. `reject*@` recipients get 550,
/// `busy*@` 451.
pub struct SmtpSink {
    pub port: u16,
    pub dir: std::path::PathBuf,
    child: Option<Child>,
}

impl SmtpSink {
    pub fn start() -> Self {
        let mut s = SmtpSink {
            port: free_port(),
            dir: std::env::temp_dir().join(format!("nightshift-smtp-{}", uuid::Uuid::new_v4().simple())),
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(test_python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/smtp_sink.py"))
            .arg(self.port.to_string())
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python with aiosmtpd (scripts/test.sh installs it)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(20), "the SMTP sink (aiosmtpd)");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
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

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
