//! Plumbing between the dump, age and the store: bounded chunks, temp files, capped stderr.
use std::io::Write;

use bytes::Bytes;
use tokio::{io::AsyncReadExt, process::ChildStderr, sync::mpsc};

/// A tool's stderr, at most 16 KiB of it: enough to say what went wrong.
pub(super) async fn read_capped(stderr: Option<ChildStderr>) -> String {
    let mut out = Vec::new();
    if let Some(s) = stderr {
        let _ = s.take(16 * 1024).read_to_end(&mut out).await;
    }
    String::from_utf8_lossy(&out).trim().to_string()
}

/// A download removed whatever happens.
pub(super) struct TempFile(pub(super) std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A `Write` that hands 1 MiB chunks to the async upload.
pub(super) struct ChunkSender {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

impl ChunkSender {
    pub(super) fn new(tx: mpsc::Sender<Bytes>) -> Self {
        ChunkSender {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}
