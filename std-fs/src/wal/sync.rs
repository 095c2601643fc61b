//! The concurrency primitives of the engine: std's, or, with the `shuttle`
//! feature (tests only), shuttle's, so that its randomized scheduler
//! explores the interleavings of group commit.

#[cfg(not(feature = "shuttle"))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(not(feature = "shuttle"))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(feature = "shuttle"))]
pub(crate) use std::thread::{JoinHandle, Thread, current, park, sleep};

#[cfg(feature = "shuttle")]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(feature = "shuttle")]
pub(crate) use shuttle::sync::{Condvar, Mutex, MutexGuard};
#[cfg(feature = "shuttle")]
pub(crate) use shuttle::thread::{JoinHandle, Thread, current, park, sleep};

/// Starts the background thread.
pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    #[cfg(not(feature = "shuttle"))]
    return std::thread::Builder::new().name(name.into()).spawn(f);
    #[cfg(feature = "shuttle")]
    {
        let _ = name;
        Ok(shuttle::thread::spawn(f))
    }
}
