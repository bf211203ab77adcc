//! [`PerStream`]: the one registry of tasks that belong to a video stream — a pulled source's
//! supervisor, an image generator, a WHIP session — so every such task starts, stops and is
//! described the same way.
//!
//! # The cancellation rule
//!
//! - Every task runs under a token that is a child of its stream's [`VideoStream::closed`] token,
//!   which is itself a child of the server's shutdown token. Deleting the stream or shutting the
//!   server down therefore stops every task of the stream without anyone having to find them.
//! - Replacing or removing an entry ([`PerStream::replace`], [`PerStream::remove`]) cancels the old
//!   task and waits for it (bounded by [`STOP_WAIT`]): when the call returns, the old task has
//!   flushed what it holds and released its stream.
//! - [`PerStream::stop_all`] (shutdown) cancels every task first, then waits for each, so they
//!   wind down in parallel.
//! - A task that ends by itself (its stream deleted, its peer gone) removes its own entry.
//!
//! The map is a std `Mutex`, held only to insert, look up or take entries, never across an
//! `.await`.

use crate::catalog::VideoStreamId;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::VideoStream;

/// How long stopping one task may take before the caller goes on without it.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// Tasks keyed by `K`, each with a shared `T` that describes it (its configuration and status).
pub struct PerStream<K, T> {
    entries: Arc<Mutex<HashMap<K, Entry<T>>>>,
    /// Distinguishes an entry from the one that replaced it under the same key.
    generation: AtomicU64,
}

struct Entry<T> {
    /// The stream the task belongs to.
    stream_id: VideoStreamId,
    info: Arc<T>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    generation: u64,
}

impl<K, T> Default for PerStream<K, T> {
    fn default() -> Self {
        PerStream { entries: Arc::new(Mutex::new(HashMap::new())), generation: AtomicU64::new(0) }
    }
}

impl<K, T> PerStream<K, T>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Send + Sync + 'static,
{
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<T>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `run(stop)` for `stream` under `key`, first stopping (and awaiting) whatever ran
    /// there. `stop` is a child of the stream's `closed()` token.
    pub async fn replace<F, Fut>(&self, key: K, stream: &VideoStream, info: Arc<T>, run: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.remove(&key).await;
        self.insert(key, stream, info, run);
    }

    /// Starts `run(stop)` under a key known to be free (a fresh id, or at start-up). An entry
    /// already there is stopped without being awaited.
    pub fn insert<F, Fut>(&self, key: K, stream: &VideoStream, info: Arc<T>, run: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = stream.closed().child_token();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let fut = run(stop.clone());
        let entries = Arc::downgrade(&self.entries);
        let own_key = key.clone();
        // Holding the map lock while spawning means the task's self-removal below cannot run
        // before its entry is in the map.
        let mut map = self.lock();
        // The task ends when `stop` is cancelled (replaced, removed, stream deleted, shutdown)
        // or by itself; either way it takes its own entry out unless a newer one replaced it.
        let task = tokio::spawn(async move {
            fut.await;
            if let Some(entries) = entries.upgrade() {
                let mut map = entries.lock().unwrap_or_else(|p| p.into_inner());
                if map.get(&own_key).is_some_and(|e| e.generation == generation) {
                    map.remove(&own_key);
                }
            }
        });
        let entry = Entry { stream_id: stream.id, info, stop, task, generation };
        if let Some(old) = map.insert(key, entry) {
            old.stop.cancel();
        }
    }

    /// Stops the task under `key` and waits for it (bounded); returns its description.
    pub async fn remove(&self, key: &K) -> Option<Arc<T>> {
        let entry = self.lock().remove(key)?;
        entry.stop.cancel();
        let info = entry.info.clone();
        finish(entry).await;
        Some(info)
    }

    /// The description of the task under `key`.
    pub fn get(&self, key: &K) -> Option<Arc<T>> {
        self.lock().get(key).map(|e| e.info.clone())
    }

    /// The descriptions of `stream_id`'s tasks.
    pub fn of_stream(&self, stream_id: VideoStreamId) -> Vec<(K, Arc<T>)> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.stream_id == stream_id)
            .map(|(k, e)| (k.clone(), e.info.clone()))
            .collect()
    }

    /// The key's stream, when it has a task.
    pub fn stream_of(&self, key: &K) -> Option<VideoStreamId> {
        self.lock().get(key).map(|e| e.stream_id)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cancels every task, then waits for each (bounded): at shutdown, so what they hold is
    /// flushed before the stores are synced.
    pub async fn stop_all(&self) {
        let all: Vec<Entry<T>> = self.lock().drain().map(|(_, e)| e).collect();
        for e in &all {
            e.stop.cancel();
        }
        for e in all {
            finish(e).await;
        }
    }
}

async fn finish<T>(entry: Entry<T>) {
    let mut task = entry.task;
    if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
        tracing::warn!(stream_id = %entry.stream_id, "a stream task did not stop in time");
    }
}
