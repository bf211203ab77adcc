//! Fragment notifications, as Kinesis Video Streams has them (`UpdateNotificationConfiguration`):
//! a stream's notification configuration (enabled or not, and a destination URI), and the
//! fragments producers tag for notice — a PutMedia `Tags` element before a Cluster with a
//! `SimpleTag` named `AWS_KINESISVIDEO_NOTIFICATION`, whose nested `SimpleTag`s are the payload.
//!
//! When such a fragment is on stable storage and the stream's configuration is enabled, Sluice
//! writes a `FragmentNotification` event into the events data stream (`sluice-events`: durable,
//! ordered per stream, readable by any Kinesis client) and, when the URI is `http(s)://`, POSTs
//! KVS's notification message (the `Message` of the SNS notification KVS sends) to it as JSON.
//! Webhooks share image generation's client, limits and retry policy
//! (`crate::imagegen::destination::WebhookShared`): bounded attempts with jittered backoff, a cap
//! on requests in flight, no redirects, destinations resolved through the outbound policy. Any
//! other URI (an SNS topic ARN as KVS takes) gets the event only.
//!
//! Configurations live in the catalog's `kvs_notification` table, deleted with their stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use rusqlite::params;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::catalog::{Catalog, VideoStreamId};
use crate::config::DataStreamsConfig;
use crate::error::{Error, Result};
use crate::events::EventDetails;
use crate::events::sink::Emitter;
use crate::imagegen::destination::WebhookShared;
use crate::ingest::http_fmp4::TaggedFragments;
use crate::media::mkv::SimpleTag;
use crate::metrics::Metrics;
use crate::video::writer::Appended;
use crate::video::{VideoStream, VideoStreams};

/// The tag that asks for a notification.
pub const NOTIFICATION_TAG: &str = "AWS_KINESISVIDEO_NOTIFICATION";
/// Payload pairs per notification, at most (KVS's limit); the rest are left out.
pub const MAX_PAYLOAD_PAIRS: usize = 10;
/// Bytes of a payload key and of a payload value, at most (KVS's limits).
pub const MAX_KEY_BYTES: usize = 128;
pub const MAX_VALUE_BYTES: usize = 256;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kvs_notification (
    stream_id   INTEGER PRIMARY KEY,
    created_ms  INTEGER NOT NULL,
    enabled     INTEGER NOT NULL,
    uri         TEXT NOT NULL
);
";

/// A stream's notification configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationConfig {
    pub enabled: bool,
    /// Where notifications go: `http(s)://…` is a webhook; anything else gets the event only.
    pub uri: String,
}

impl NotificationConfig {
    pub fn webhook(&self) -> Option<&str> {
        let u = self.uri.as_str();
        (u.starts_with("http://") || u.starts_with("https://")).then_some(u)
    }
}

/// KVS's notification message, as the webhook receives it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    pub stream_arn: String,
    pub fragment_number: String,
    /// Epoch milliseconds.
    pub fragment_start_producer_timestamp: i64,
    pub fragment_start_server_timestamp: i64,
    pub notification_type: &'static str,
    pub notification_payload: BTreeMap<String, String>,
}

pub struct Notifications {
    catalog: Arc<Catalog>,
    /// Stream id → (the stream's creation in epoch ms, its configuration). The creation time
    /// tells a reused id apart.
    configs: RwLock<HashMap<VideoStreamId, (i64, NotificationConfig)>>,
    events: Arc<Emitter>,
    webhook: Arc<WebhookShared>,
    /// Deliveries queued or in flight, at most `webhook_queue`; past it a notification's webhook
    /// is dropped (its event is still written).
    queue: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    data_streams: DataStreamsConfig,
}

/// A video stream's KVS ARN: `arn:aws:kinesisvideo:<region>:<account>:stream/<name>/<creation
/// epoch ms>` (the region and account of `[data_streams]`).
pub fn stream_arn(config: &DataStreamsConfig, s: &VideoStream) -> String {
    format!(
        "arn:aws:kinesisvideo:{}:{}:stream/{}/{}",
        config.region,
        config.account_id,
        s.name,
        s.row().created_at.as_millis()
    )
}

impl Notifications {
    /// Opens the table and loads every configuration of a stream that still exists.
    pub fn open(
        catalog: Arc<Catalog>,
        video: &VideoStreams,
        webhook: Arc<WebhookShared>,
        metrics: Arc<Metrics>,
        data_streams: &DataStreamsConfig,
    ) -> Result<Arc<Notifications>> {
        catalog.ensure_stream_table(SCHEMA, "kvs_notification")?;
        let rows = catalog.transaction(|tx| {
            let mut stmt =
                tx.prepare("SELECT stream_id, created_ms, enabled, uri FROM kvs_notification")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, VideoStreamId>(0)?,
                    r.get::<_, i64>(1)?,
                    NotificationConfig { enabled: r.get::<_, bool>(2)?, uri: r.get(3)? },
                ))
            })?;
            rows.collect::<std::result::Result<Vec<_>, _>>().map_err(Error::from)
        })?;
        let live: HashMap<VideoStreamId, i64> =
            video.all().iter().map(|s| (s.id, s.row().created_at.as_millis())).collect();
        let configs = rows
            .into_iter()
            .filter(|(id, created, _)| live.get(id) == Some(created))
            .map(|(id, created, c)| (id, (created, c)))
            .collect();
        let queue = Arc::new(Semaphore::new(webhook.config.webhook_queue));
        Ok(Arc::new(Notifications {
            catalog,
            configs: RwLock::new(configs),
            events: video.events().clone(),
            webhook,
            queue,
            metrics,
            data_streams: data_streams.clone(),
        }))
    }

    /// A stream's configuration, if it has one.
    pub fn get(&self, stream: &VideoStream) -> Option<NotificationConfig> {
        let created = stream.row().created_at.as_millis();
        let configs = self.configs.read().unwrap_or_else(|p| p.into_inner());
        configs.get(&stream.id).filter(|(c, _)| *c == created).map(|(_, c)| c.clone())
    }

    /// Sets (`Some`) or removes (`None`) a stream's configuration, in the catalog first.
    pub async fn set(
        &self,
        stream: &VideoStream,
        config: Option<NotificationConfig>,
    ) -> Result<()> {
        let (catalog, id, c) = (self.catalog.clone(), stream.id, config.clone());
        let created = stream.row().created_at.as_millis();
        tokio::task::spawn_blocking(move || {
            catalog.transaction(|tx| {
                match &c {
                    Some(c) => tx.execute(
                        "INSERT OR REPLACE INTO kvs_notification (stream_id, created_ms, enabled, uri) VALUES (?1, ?2, ?3, ?4)",
                        params![id, created, c.enabled, c.uri],
                    )?,
                    None => tx.execute("DELETE FROM kvs_notification WHERE stream_id = ?1", params![id])?,
                };
                Ok(())
            })
        })
        .await
        .map_err(|e| Error::internal(format!("catalog task: {e}")))??;
        let mut configs = self.configs.write().unwrap_or_else(|p| p.into_inner());
        match config {
            Some(c) => configs.insert(id, (created, c)),
            None => configs.remove(&id),
        };
        tracing::info!(stream = %stream.name, "notification configuration changed");
        Ok(())
    }

    fn deliver(&self, stream: &str, url: &str, message: &Message) {
        let label = Metrics::stream(stream);
        let m = &self.metrics.notifications;
        let Ok(permit) = self.queue.clone().try_acquire_owned() else {
            m.dropped.get_or_create(&label).inc();
            tracing::warn!(stream, fragment = %message.fragment_number, "notification webhook queue full; webhook dropped");
            return;
        };
        let body = match serde_json::to_vec(message) {
            Ok(b) => b,
            Err(_) => return,
        };
        let (shared, metrics, url) = (self.webhook.clone(), self.metrics.clone(), url.to_owned());
        let fragment = message.fragment_number.clone();
        let stream = stream.to_owned();
        tokio::spawn(async move {
            let _permit = permit;
            let m = &metrics.notifications;
            let attempts = shared.config.webhook_max_attempts.max(1);
            for attempt in 1..=attempts {
                if attempt > 1 {
                    tokio::time::sleep(shared.backoff(attempt - 1)).await;
                }
                let result = {
                    let Ok(_in_flight) = shared.permits.acquire().await else { return };
                    post(&shared.client, &url, &stream, body.clone()).await
                };
                match result {
                    Ok(()) => {
                        m.delivered.get_or_create(&label).inc();
                        return;
                    }
                    Err(e) => {
                        m.webhook_failures.get_or_create(&label).inc();
                        tracing::debug!(stream, %fragment, attempt, error = %e, "notification webhook failed");
                    }
                }
            }
            m.dropped.get_or_create(&label).inc();
            tracing::warn!(stream, %fragment, attempts, "notification webhook gave up");
        });
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    stream: &str,
    body: Vec<u8>,
) -> std::result::Result<(), String> {
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("x-sluice-stream", stream)
        .body(body)
        .send()
        .await
        .map_err(|e| crate::error::error_chain(&e))?;
    let st = resp.status();
    let _ = resp.bytes().await;
    if st.is_success() { Ok(()) } else { Err(format!("answered {st}")) }
}

/// The notification payload of a fragment's tags: the pairs nested in its
/// `AWS_KINESISVIDEO_NOTIFICATION` tag (`None` without one), within KVS's limits, and how many
/// pairs were left out for breaking them.
pub fn payload(tags: &[SimpleTag]) -> Option<(BTreeMap<String, String>, usize)> {
    let tag = tags.iter().find(|t| t.name == NOTIFICATION_TAG)?;
    let mut out = BTreeMap::new();
    let mut left_out = 0;
    for c in &tag.children {
        let fits = !c.name.is_empty()
            && c.name.len() <= MAX_KEY_BYTES
            && c.value.len() <= MAX_VALUE_BYTES
            && out.len() < MAX_PAYLOAD_PAIRS;
        if fits {
            out.insert(c.name.clone(), c.value.clone());
        } else {
            left_out += 1;
        }
    }
    Some((out, left_out))
}

impl TaggedFragments for Notifications {
    fn persisted(&self, stream: &Arc<VideoStream>, fragment: &Appended, tags: Vec<SimpleTag>) {
        let Some(config) = self.get(stream).filter(|c| c.enabled) else { return };
        let Some((pairs, left_out)) = payload(&tags) else { return };
        if left_out > 0 {
            tracing::warn!(stream = %stream.name, left_out, "notification payload pairs past KVS's limits (10 pairs, keys 128 bytes, values 256 bytes) left out");
        }
        let f = &fragment.info;
        let message = Message {
            stream_arn: stream_arn(&self.data_streams, stream),
            fragment_number: f.number.0.to_string(),
            fragment_start_producer_timestamp: f.producer_ts.as_millis(),
            fragment_start_server_timestamp: f.server_ts.as_millis(),
            notification_type: "PERSISTED",
            notification_payload: pairs,
        };
        self.events.emit(
            stream.name.as_str(),
            EventDetails::FragmentNotification {
                fragment_number: message.fragment_number.clone(),
                producer_timestamp: f.producer_ts,
                server_timestamp: f.server_ts,
                notification_type: message.notification_type,
                payload: message.notification_payload.clone(),
                destination: config.uri.clone(),
            },
        );
        self.metrics
            .notifications
            .notified
            .get_or_create(&Metrics::stream(stream.name.as_str()))
            .inc();
        if let Some(url) = config.webhook() {
            self.deliver(stream.name.as_str(), url, &message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str, value: &str, children: Vec<SimpleTag>) -> SimpleTag {
        SimpleTag { name: name.into(), value: value.into(), children }
    }

    #[test]
    fn the_payload_is_the_nested_pairs_within_kvs_limits() {
        assert_eq!(payload(&[tag("OTHER", "x", vec![])]), None);
        let mut kids: Vec<SimpleTag> =
            (0..12).map(|i| tag(&format!("K{i:02}"), &format!("v{i}"), vec![])).collect();
        kids.insert(0, tag(&"k".repeat(129), "long key", vec![]));
        kids.insert(1, tag("LONG", &"v".repeat(257), vec![]));
        let (pairs, left_out) =
            payload(&[tag("Motion", "true", vec![]), tag(NOTIFICATION_TAG, "", kids)]).unwrap();
        assert_eq!(pairs.len(), 10);
        assert_eq!(pairs["K00"], "v0");
        assert!(!pairs.contains_key("K10"));
        assert_eq!(left_out, 4);
        let (empty, none) = payload(&[tag(NOTIFICATION_TAG, "", vec![])]).unwrap();
        assert!(empty.is_empty() && none == 0);
    }

    #[test]
    fn only_http_uris_are_webhooks() {
        let c = |uri: &str| NotificationConfig { enabled: true, uri: uri.into() };
        assert_eq!(c("https://h/x").webhook(), Some("https://h/x"));
        assert_eq!(c("http://h/x").webhook(), Some("http://h/x"));
        assert_eq!(c("arn:aws:sns:us-west-2:123456789012:topic").webhook(), None);
    }
}
