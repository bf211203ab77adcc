//! The object tier's bucket (`[tiering]`): the log engine's [`Tier`] over `object_store`, the
//! same client delivery streams use (a directory under `<data_dir>/buckets/` by default, an
//! S3-compatible store with `[object_store]` or the standard AWS variables).
//!
//! The log engine's API is synchronous and runs on blocking threads; `object_store` is async. The
//! bridge is a small runtime of its own (two threads): a call is spawned there and the caller's
//! thread waits for its answer, so a call works from any thread (never `block_on` inside another
//! runtime) and a slow bucket ties up only the caller. Large `.log` files go up in 8 MiB parts
//! (multipart upload), read from the file as they go, so an upload does not hold a segment in
//! memory.
//!
//! Reads: a record is one ranged GET, and the first read of a segment also fetches the whole
//! object, in the background, into a bounded read cache on local disk (`<data_dir>/tier-cache`,
//! least recently used out first); later reads of that segment are local preads. The cache is
//! emptied at start.

use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::buckets::Buckets;
use crate::config::TieringConfig;
use crate::log::tier::{Tier, TierPolicy, TierTarget};

/// Parts of a multipart upload.
const PART: usize = 8 << 20;
/// Files up to this size go up in one PUT.
const SINGLE_PUT: u64 = 16 << 20;
/// One object call, at most (a stalled bucket fails the call; the pass retries later).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A bucket for the log engine.
pub struct ObjectTier {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    /// Taken on drop: shut down without waiting, as a drop may happen on an async thread.
    runtime: Option<tokio::runtime::Runtime>,
    cache: Option<Arc<ReadCache>>,
}

/// Whole segment objects kept on local disk for reads, at most `max_bytes` of them.
struct ReadCache {
    dir: std::path::PathBuf,
    max_bytes: u64,
    state: std::sync::Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Key → (file, length, last use).
    files: std::collections::HashMap<String, (Arc<std::fs::File>, u64, u64)>,
    total: u64,
    tick: u64,
    fetching: std::collections::HashSet<String>,
}

/// Whole objects fetched into the cache at once, at most.
const FETCHES: usize = 2;

impl ReadCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Option<Arc<std::fs::File>> {
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        let entry = st.files.get_mut(key)?;
        entry.2 = tick;
        Some(entry.0.clone())
    }

    fn path(&self, key: &str) -> std::path::PathBuf {
        use sha2::{Digest, Sha256};
        let h: String = Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(h)
    }

    /// Takes a fetched file in, dropping the least recently used files past the bound.
    fn insert(&self, key: String, path: &Path, len: u64) -> io::Result<()> {
        let file = Arc::new(std::fs::File::open(path)?);
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        if let Some((_, old, _)) = st.files.insert(key, (file, len, tick)) {
            st.total -= old;
        }
        st.total += len;
        while st.total > self.max_bytes && st.files.len() > 1 {
            let Some(oldest) = st.files.iter().min_by_key(|(_, e)| e.2).map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((_, n, _)) = st.files.remove(&oldest) {
                st.total -= n;
                // Readers holding the file finish through their descriptor.
                let _ = std::fs::remove_file(self.path(&oldest));
            }
        }
        Ok(())
    }

    fn forget(&self, key: &str) {
        let mut st = self.lock();
        if let Some((_, n, _)) = st.files.remove(key) {
            st.total -= n;
            let _ = std::fs::remove_file(self.path(key));
        }
    }
}

impl Drop for ObjectTier {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for ObjectTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectTier").field("bucket", &self.bucket).finish_non_exhaustive()
    }
}

impl ObjectTier {
    /// The tier on `bucket`; with `cache` (a directory, and its bound in bytes), a read cache.
    pub fn new(
        buckets: &Buckets,
        bucket: &str,
        cache: Option<(std::path::PathBuf, u64)>,
    ) -> Result<ObjectTier, String> {
        let store = buckets.bucket(bucket)?;
        let cache = match cache {
            Some((dir, max_bytes)) if max_bytes > 0 => {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                Some(Arc::new(ReadCache { dir, max_bytes, state: Default::default() }))
            }
            _ => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-tier")
            .enable_all()
            .build()
            .map_err(|e| format!("the tier's runtime: {e}"))?;
        Ok(ObjectTier { store, bucket: bucket.to_owned(), runtime: Some(runtime), cache })
    }

    /// Runs `f` on the tier's runtime and waits for it on this thread.
    fn call<T: Send + 'static>(
        &self,
        what: String,
        f: impl std::future::Future<Output = io::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let Some(runtime) = &self.runtime else {
            return Err(io::Error::other("the tier's runtime stopped"));
        };
        runtime.spawn(async move {
            let r = match tokio::time::timeout(CALL_TIMEOUT, f).await {
                Ok(r) => r,
                Err(_) => {
                    Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what}: no answer")))
                }
            };
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| Err(io::Error::other("the tier's runtime stopped")))
    }
}

impl ObjectTier {
    /// Fetches the whole object `key` into the cache in the background (if not already, and if
    /// fewer than `FETCHES` are under way).
    fn fetch_later(&self, cache: &Arc<ReadCache>, key: &str) {
        {
            let mut st = cache.lock();
            if st.fetching.len() >= FETCHES || !st.fetching.insert(key.to_owned()) {
                return;
            }
        }
        let Some(runtime) = &self.runtime else { return };
        let (store, cache, key) = (self.store.clone(), cache.clone(), key.to_owned());
        runtime.spawn(async move {
            let path = cache.path(&key);
            let fetched = fetch(&store, &key, &path).await;
            match fetched {
                Ok(len) => {
                    if let Err(e) = cache.insert(key.clone(), &path, len) {
                        tracing::warn!(key, error = %e, "tier read cache: cannot open a fetched object");
                    }
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(&path).await;
                    tracing::debug!(key, error = %e, "tier read cache: fetch failed");
                }
            }
            cache.lock().fetching.remove(&key);
        });
    }
}

/// Streams object `key` into the file `path` (through a temporary name); its length.
async fn fetch(store: &Arc<dyn ObjectStore>, key: &str, path: &Path) -> io::Result<u64> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let got = store.get(&ObjectPath::from(key)).await.map_err(|e| other(key, e))?;
    let tmp = path.with_extension("part");
    let mut file = tokio::fs::File::create(&tmp).await?;
    let mut stream = got.into_stream();
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| other(key, e))?;
        len += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    drop(file);
    tokio::fs::rename(&tmp, path).await?;
    Ok(len)
}

fn other(key: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{key}: {e}"))
}

impl Tier for ObjectTier {
    fn upload(&self, path: &Path, key: &str) -> io::Result<()> {
        let store = self.store.clone();
        let (path, key) = (path.to_path_buf(), key.to_owned());
        self.call(format!("uploading {key}"), async move {
            let len = tokio::fs::metadata(&path).await?.len();
            let location = ObjectPath::from(key.as_str());
            if len <= SINGLE_PUT {
                let data = tokio::fs::read(&path).await?;
                store.put(&location, PutPayload::from(data)).await.map_err(|e| other(&key, e))?;
                return Ok(());
            }
            use tokio::io::AsyncReadExt;
            let upload = store.put_multipart(&location).await.map_err(|e| other(&key, e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut file = tokio::fs::File::open(&path).await?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(4).await.map_err(|e| other(&key, e))?;
                w.write(&buf[..n]);
            }
            w.finish().await.map_err(|e| other(&key, e))?;
            Ok(())
        })
    }

    fn put(&self, key: &str, data: Vec<u8>) -> io::Result<()> {
        let store = self.store.clone();
        let key = key.to_owned();
        self.call(format!("putting {key}"), async move {
            store
                .put(&ObjectPath::from(key.as_str()), PutPayload::from(data))
                .await
                .map(|_| ())
                .map_err(|e| other(&key, e))
        })
    }

    fn read_range(&self, key: &str, range: Range<u64>) -> io::Result<bytes::Bytes> {
        if let Some(cache) = &self.cache {
            if let Some(file) = cache.get(key) {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; (range.end - range.start) as usize];
                if file.read_exact_at(&mut buf, range.start).is_ok() {
                    return Ok(bytes::Bytes::from(buf));
                }
                cache.forget(key);
            } else {
                self.fetch_later(cache, key);
            }
        }
        let store = self.store.clone();
        let key = key.to_owned();
        self.call(format!("reading {key}"), async move {
            store.get_range(&ObjectPath::from(key.as_str()), range).await.map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    io::Error::new(io::ErrorKind::NotFound, format!("{key}: not in the bucket"))
                }
                e => other(&key, e),
            })
        })
    }

    fn size(&self, key: &str) -> io::Result<u64> {
        let store = self.store.clone();
        let key = key.to_owned();
        self.call(format!("checking {key}"), async move {
            let meta =
                store.head(&ObjectPath::from(key.as_str())).await.map_err(|e| other(&key, e))?;
            Ok(meta.size)
        })
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        if let Some(cache) = &self.cache {
            cache.forget(key);
        }
        let store = self.store.clone();
        let key = key.to_owned();
        self.call(format!("deleting {key}"), async move {
            match store.delete(&ObjectPath::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(other(&key, e)),
            }
        })
    }
}

/// The log engine's target for every log of this server, if `[tiering]` is on.
pub fn target(
    config: &TieringConfig,
    buckets: &Buckets,
    data_dir: &Path,
) -> Result<Option<TierTarget>, String> {
    if !config.enabled {
        return Ok(None);
    }
    let cache = (data_dir.join("tier-cache"), config.read_cache_bytes);
    let tier = ObjectTier::new(buckets, &config.bucket, Some(cache))?;
    Ok(Some(TierTarget {
        tier: Arc::new(tier),
        root: data_dir.to_path_buf(),
        prefix: config.prefix.clone(),
    }))
}

/// The policy `[tiering]` sets.
pub fn policy(config: &TieringConfig) -> TierPolicy {
    TierPolicy {
        uploads: true,
        upload_after: config.upload_after_secs,
        local_max_age: config.local_retention_hours.map(|h| Duration::from_secs_f64(h * 3600.0)),
        local_max_bytes: config.local_max_bytes,
        verify: config.verify,
        concurrency: config.upload_concurrency.max(1),
    }
}
