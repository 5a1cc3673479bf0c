//! The batch-event protocol: the scripts that finish a batch's job append `batch|job|state` to
//! the queue's `batchdone` list in the same step (`lua/ready.lua`); one pump at a time, under a
//! lock, reads them, records them in PostgreSQL and trims what it recorded.
use std::sync::LazyLock;

use redis::{AsyncCommands, Script};

use crate::{Queue, QueueError, job::BatchEvent};

/// Trims the batch events a pump has recorded, only while it still holds the pump lock.
static TRIM_BATCH_EVENTS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/trim_batch_events.lua")));

/// Batch events read under the pump lock: `read` entries, of which `events` parsed.
#[derive(Debug, Default)]
pub struct BatchEvents {
    pub events: Vec<BatchEvent>,
    pub read: usize,
}

impl Queue {
    /// Takes the pump lock of this queue's batch events and reads up to `limit` of them, oldest
    /// first; `None` when another pump holds the lock. When some were read (`read > 0`), call
    /// [`Queue::batch_events_recorded`] once they are recorded.
    pub async fn batch_events(
        &self,
        owner: &str,
        limit: usize,
        lock: std::time::Duration,
    ) -> Result<Option<BatchEvents>, QueueError> {
        let mut conn = self.conn.clone();
        // Most ticks find nothing: one LLEN, no lock.
        let waiting: usize = conn.llen(self.keys.batch_events()).await?;
        if waiting == 0 {
            return Ok(Some(BatchEvents::default()));
        }
        let took: Option<String> = redis::cmd("SET")
            .arg(self.keys.batch_pump())
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(lock.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        if took.is_none() {
            return Ok(None);
        }
        let raw: Vec<String> = conn
            .lrange(self.keys.batch_events(), 0, limit.max(1) as isize - 1)
            .await?;
        // An entry that does not parse is trimmed with the rest: `read` counts what was read.
        let events = raw
            .iter()
            .filter_map(|e| {
                let mut parts = e.splitn(3, '|');
                let (batch, job, state) = (parts.next()?, parts.next()?, parts.next()?);
                Some(BatchEvent {
                    batch: batch.to_string(),
                    job: job.to_string(),
                    state: state.parse().ok()?,
                })
            })
            .collect();
        Ok(Some(BatchEvents {
            events,
            read: raw.len(),
        }))
    }

    /// Drops the `read` events just recorded and the pump lock, if `owner` still holds it.
    /// Returns false when the lock was lost: the events stay for the pump that took over.
    pub async fn batch_events_recorded(&self, owner: &str, read: usize) -> Result<bool, QueueError> {
        let trimmed: i64 = TRIM_BATCH_EVENTS
            .key(self.keys.batch_events())
            .key(self.keys.batch_pump())
            .arg(owner)
            .arg(read)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(trimmed == 1)
    }
}
