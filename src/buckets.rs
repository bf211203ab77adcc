//! Buckets: where a delivery stream's objects go, through the `object_store` crate so a directory
//! and an S3-compatible store are one code path. Without an S3 endpoint (`[object_store]
//! endpoint`, or the standard `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`) and without
//! `[object_store] s3 = true`, bucket `b` is the directory `<local_root>/b` (default
//! `<data_dir>/buckets/b`): Sluice runs with no external service. With one, buckets are S3 buckets
//! there, credentials and region from `[object_store]` or the standard AWS variables.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;

use crate::config::ObjectStoreConfig;

/// Opens (and caches) the store of each bucket.
pub struct Buckets {
    s3: Option<S3>,
    local_root: PathBuf,
    open: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

struct S3 {
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    path_style: bool,
}

impl Buckets {
    pub fn new(config: &ObjectStoreConfig, data_dir: &std::path::Path) -> Buckets {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        let s3 = (config.s3 || endpoint.is_some()).then(|| S3 {
            endpoint,
            region: config
                .region
                .clone()
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION")),
            access_key_id: env("AWS_ACCESS_KEY_ID"),
            secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
            path_style: config.path_style,
        });
        let local_root = config.local_root.clone().unwrap_or_else(|| data_dir.join("buckets"));
        Buckets { s3, local_root, open: Mutex::new(HashMap::new()) }
    }

    /// Where objects go: `s3://<endpoint>` or the local root, for logs and docs.
    pub fn describe(&self) -> String {
        match &self.s3 {
            Some(s) => format!("S3 at {}", s.endpoint.as_deref().unwrap_or("AWS")),
            None => format!("directories under {}", self.local_root.display()),
        }
    }

    pub fn bucket(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = open.get(bucket) {
            return Ok(s.clone());
        }
        let store: Arc<dyn ObjectStore> = match &self.s3 {
            None => {
                let dir = self.local_root.join(bucket);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                Arc::new(LocalFileSystem::new_with_prefix(&dir).map_err(|e| e.to_string())?)
            }
            Some(s) => {
                let mut b = AmazonS3Builder::new().with_bucket_name(bucket);
                if let Some(e) = &s.endpoint {
                    b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
                }
                b = b.with_region(s.region.clone().unwrap_or_else(|| "us-east-1".into()));
                if let (Some(k), Some(v)) = (&s.access_key_id, &s.secret_access_key) {
                    b = b.with_access_key_id(k).with_secret_access_key(v);
                }
                b = b.with_virtual_hosted_style_request(!s.path_style);
                Arc::new(b.build().map_err(|e| e.to_string())?)
            }
        };
        open.insert(bucket.to_owned(), store.clone());
        Ok(store)
    }
}
