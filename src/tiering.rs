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
    pub fn new(buckets: &Buckets, bucket: &str) -> Result<ObjectTier, String> {
        let store = buckets.bucket(bucket)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-tier")
            .enable_all()
            .build()
            .map_err(|e| format!("the tier's runtime: {e}"))?;
        Ok(ObjectTier { store, bucket: bucket.to_owned(), runtime: Some(runtime) })
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

    fn delete(&self, key: &str) -> io::Result<()> {
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
    let tier = ObjectTier::new(buckets, &config.bucket)?;
    Ok(Some(TierTarget {
        tier: Arc::new(tier),
        root: data_dir.to_path_buf(),
        prefix: config.prefix.clone(),
    }))
}

/// The policy `[tiering]` sets.
pub fn policy(config: &TieringConfig) -> TierPolicy {
    TierPolicy {
        upload_after: config.upload_after_secs,
        local_max_age: config.local_retention_hours.map(|h| Duration::from_secs_f64(h * 3600.0)),
        local_max_bytes: config.local_max_bytes,
    }
}
