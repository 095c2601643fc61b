//! How often an executor runs other tasks while a future runs: shared by
//! the test binaries that check an append never stalls the executor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Runs `op`, with a task beside it that counts every millisecond; returns
/// `op`'s output and the count made while `op` ran (the ticker has started
/// before `op` does).
pub(crate) async fn ticks_during<T>(op: impl std::future::Future<Output = T>) -> (T, u64) {
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    while ticks.load(Ordering::Relaxed) == 0 {
        tokio::task::yield_now().await;
    }
    let before = ticks.load(Ordering::Relaxed);
    let out = op.await;
    let during = ticks.load(Ordering::Relaxed) - before;
    ticker.abort();
    (out, during)
}
