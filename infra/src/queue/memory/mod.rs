//! In-process adapters for the embedded default: [`MemoryQueue`] (a FIFO with in-flight
//! tracking and a visibility timeout) and [`MemoryTokenStreams`] (a `Vec` of entries per
//! job with a wake-up channel). Both live as long as the process; share one instance
//! (`Arc`) between the API and the worker. Neither spawns tasks.

mod queue;
mod streams;

pub use queue::MemoryQueue;
pub use streams::MemoryTokenStreams;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex, ignoring poisoning: every critical section leaves its state consistent
/// before anything in it can panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
