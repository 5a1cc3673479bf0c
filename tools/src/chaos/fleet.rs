//! The worker processes under test: started, signalled, stopped, and what each one holds.
use std::{os::unix::process::ExitStatusExt, path::PathBuf, process::Stdio};

use anyhow::Context;
use nightshift_queue::{JobState, Queue};
use tokio::process::Child;

use super::report::Faults;
use crate::bench::Ctx;
/// The API and workers, as child processes on the private Redis and database.
pub(super) struct Fleet<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) env: Vec<(String, String)>,
    pub(super) log: PathBuf,
    pub(super) target: usize,
    pub(super) workers: Vec<Child>,
    /// SIGTERMed workers finishing their jobs; replacements already run.
    pub(super) draining: Vec<Child>,
    /// Workers whose clocks run off (libfaketime), with their offsets: beside the fleet, never
    /// a fault's victim, started again should they die.
    pub(super) skewed: Vec<(String, Option<Child>)>,
    pub(super) faults: Faults,
}

/// The environment that runs a process with its wall clock `offset` off ("+90", "-90"):
/// Debian's libfaketime preloaded, monotonic timers left real.
pub(super) fn skewed_env(offset: &str) -> anyhow::Result<Vec<(String, String)>> {
    let lib = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]
        .iter()
        .map(|d| std::path::Path::new(d).join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists())
        .context("libfaketime is not installed (apt-get install faketime), or run with --skew-secs 0")?;
    Ok(vec![
        ("LD_PRELOAD".into(), lib.to_string_lossy().into_owned()),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ])
}

impl Fleet<'_> {
    pub(super) fn spawn(&self, role: &str, extra: &[(&str, &str)]) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        // Finished jobs stay in Redis for the whole run: the final check reads them there.
        let mut env: Vec<(&str, &str)> = vec![("NIGHTSHIFT_FINISHED_TTL_SECS", "86400")];
        env.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        env.extend(extra.iter().copied());
        let mut cmd = self.ctx.command(role, &env)?;
        cmd.stderr(Stdio::from(log));
        cmd.spawn().with_context(|| format!("starting nightshift {role}"))
    }

    /// Notes workers that died on their own (a job aborted them) and brings the fleet back to
    /// its size; a worker refuses to start without Redis, so none is started while it is down.
    pub(super) fn supervise(&mut self, redis_up: bool) -> anyhow::Result<()> {
        let mut i = 0;
        while i < self.workers.len() {
            match self.workers[i].try_wait()? {
                None => i += 1,
                Some(status) => {
                    if status.signal() == Some(6) {
                        self.faults.aborted += 1;
                    } else {
                        self.faults.other_exits += 1;
                    }
                    self.workers.swap_remove(i);
                }
            }
        }
        let mut i = 0;
        while i < self.draining.len() {
            match self.draining[i].try_wait()? {
                None => i += 1,
                Some(status) => {
                    if !status.success() {
                        self.faults.unclean_terms += 1;
                    }
                    self.draining.swap_remove(i);
                }
            }
        }
        while redis_up && self.workers.len() < self.target {
            let w = self.spawn("worker", &[])?;
            self.workers.push(w);
        }
        for i in 0..self.skewed.len() {
            let dead = match &mut self.skewed[i].1 {
                Some(c) => c.try_wait()?.is_some(),
                None => true,
            };
            if dead && redis_up {
                let env = skewed_env(&self.skewed[i].0)?;
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                self.skewed[i].1 = Some(self.spawn("worker", &env)?);
            }
        }
        Ok(())
    }

    pub(super) fn random_worker(&mut self) -> Option<Child> {
        if self.workers.is_empty() {
            return None;
        }
        let i = rand::random_range(0..self.workers.len());
        Some(self.workers.swap_remove(i))
    }
}

pub(super) fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// The jobs a worker process holds, by the worker identity each lease names.
pub(super) async fn held_by(queue: &Queue, pid: u32) -> Vec<(String, String)> {
    let tag = format!(":{pid}:");
    let running = queue.list(JobState::Running, 0, 100_000).await.unwrap_or_default();
    running
        .into_iter()
        .filter_map(|r| Some((r.id, r.worker.filter(|w| w.contains(&tag))?)))
        .collect()
}
