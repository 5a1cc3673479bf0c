//! Tests that must not run beside one another, now that every test shares one process.
//!
//! While each file under tests/ was its own binary, cargo ran the binaries one after another:
//! `chaos` and `scale` (one test each) had the machine to themselves, and the 100,000-job burst
//! of `processes` met only the other `processes` tests. In one binary libtest runs any two tests
//! side by side. These tests each load the machine with `nightshift` processes of their own (a
//! chaos fleet, the scale-out benchmark's fleet, a worker at concurrency 256): each takes
//! `heavy()` first, so at most one of them runs at a time and none eats the others' lease and
//! drain budgets. Lighter tests still run beside them, as they always ran beside each other.

use tokio::sync::{Mutex, MutexGuard};

static HEAVY: Mutex<()> = Mutex::const_new(());

/// Waits for the other heavy tests and holds the lock until the guard drops at the test's end,
/// even when the test panics (a tokio mutex is not poisoned, so one failure fails only itself).
pub async fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().await
}
