//! Video streams: the registry of streams, each stream's fragment store on the log engine, its
//! single writer ([`writer`]), playback queries ([`playback`]), what playback surfaces are
//! served through ([`serve`]: segments, the wait for new media; [`playlist`]: which entries an
//! HLS playlist lists), [`retention`] and the free-disk floor, and the registry of per-stream
//! tasks ([`tasks`]).
//!
//! On disk a stream with catalog id N lives in `<data_dir>/video/N/`: `fragments/` is the log of
//! fragments (one record = one moof+mdat, indexed by producer and server timestamps, with
//! [`fragment::FragmentMeta`] in the index) and `inits/` is the log of init segments
//! (ftyp+moov), whose offsets are the init ids fragments refer to.

pub mod cache;
pub mod fragment;
pub mod playback;
pub mod playlist;
pub mod retention;
pub mod serve;
pub mod tasks;
pub mod timeline;
pub mod variant;
pub mod writer;

pub use retention::{DiskSpace, FilesystemSpace};

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, VideoStreamId, VideoStreamRow};
use crate::clock::{SharedClock, Timestamp};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::EventDetails;
use crate::events::sink::Emitter;
use crate::log::{Log, LogConfig, NewRecord, Offset};
use crate::media::fmp4::{Fmp4Reader, InitSegment, Item, Limits};
use crate::metrics::Metrics;
use crate::name::StreamName;

use fragment::{FragmentInfo, FragmentNumber};
use writer::{ProducerInfo, ProducerSession, TimestampMode, WriterState};

pub use crate::config::MAX_VIDEO_RETENTION_HOURS as MAX_RETENTION_HOURS;

/// One video stream: its configuration, its logs and its live state.
pub struct VideoStream {
    pub id: VideoStreamId,
    pub name: StreamName,
    dir: PathBuf,
    /// The catalog row; std `RwLock` because reads are frequent and no `.await` is held inside.
    row: RwLock<VideoStreamRow>,
    fragments: Log,
    inits: Log,
    /// Parsed init segments by id; they never change once written.
    init_cache: Mutex<HashMap<u32, Arc<InitSegment>>>,
    /// Init segments as served (`serve::served_init`), once decided.
    served_inits: Mutex<HashMap<u32, Bytes>>,
    /// Held only by the producer session while it appends (uncontended; a `Mutex` for `Sync`).
    writer: Mutex<WriterState>,
    /// The current producer, if any: the "one producer at a time" slot.
    producer: Mutex<Option<ProducerInfo>>,
    /// Cancelled when the stream is deleted or the server shuts down: producers and live readers
    /// of this stream stop.
    closed: CancellationToken,
    metrics: Arc<Metrics>,
    events: Arc<Emitter>,
    /// The epoch of the served media timeline (`media::timeline`): the producer timestamp of the
    /// stream's first fragment, kept in the catalog. `None` until the first fragment. std
    /// `RwLock`: read on every served fragment, written once, never held across `.await`.
    epoch: RwLock<Option<Timestamp>>,
    catalog: Arc<Catalog>,
    /// What live playlists have announced as target durations (they may only rise).
    live_targets: playback::LiveTargets,
    /// Recently served segments, shared by every stream (see [`serve`]).
    cache: Arc<cache::SegmentCache>,
}

impl VideoStream {
    #[allow(clippy::too_many_arguments)]
    fn open(
        catalog: Arc<Catalog>,
        row: VideoStreamRow,
        dir: PathBuf,
        log_config: &LogConfig,
        clock: &SharedClock,
        closed: CancellationToken,
        metrics: Arc<Metrics>,
        events: Arc<Emitter>,
        cache: Arc<cache::SegmentCache>,
    ) -> Result<VideoStream> {
        let fragments = Log::open(&dir.join("fragments"), log_config.clone(), clock.clone())?;
        let inits = Log::open(&dir.join("inits"), log_config.clone(), clock.clone())?;
        let last = fragments.stats().last.map(|e| FragmentInfo::from_entry(&e));
        let last_init = match inits.stats().last {
            Some(e) => inits.read(e.offset)?.map(|r| (offset_u32(e.offset), r.payload)),
            None => None,
        };
        let first = fragments.stats().first.map(|e| FragmentInfo::from_entry(&e));
        let epoch = match (catalog.timeline_epoch(row.id)?, first) {
            (Some(e), _) => Some(e),
            // Streams written before the epoch was kept: their first stored fragment.
            (None, Some(f)) => {
                catalog.set_timeline_epoch(row.id, f.producer_ts)?;
                Some(f.producer_ts)
            }
            (None, None) => None,
        };
        let stream = VideoStream {
            id: row.id,
            name: row.name.clone(),
            dir,
            row: RwLock::new(row),
            fragments,
            inits,
            init_cache: Mutex::new(HashMap::new()),
            served_inits: Mutex::new(HashMap::new()),
            writer: Mutex::new(WriterState { last, last_init }),
            producer: Mutex::new(None),
            closed,
            metrics,
            events,
            epoch: RwLock::new(epoch),
            catalog,
            live_targets: playback::LiveTargets::default(),
            cache,
        };
        stream.update_stored_gauges();
        // Series start at zero rather than appearing on the first deletion.
        let label = Metrics::stream(stream.name.as_str());
        stream.metrics.retention_deleted_fragments.get_or_create(&label).inc_by(0);
        stream.metrics.retention_deleted_bytes.get_or_create(&label).inc_by(0);
        stream.metrics.ingest_fragments.get_or_create(&label).inc_by(0);
        stream.metrics.ingest_bytes.get_or_create(&label).inc_by(0);
        Ok(stream)
    }

    pub fn row(&self) -> VideoStreamRow {
        self.row.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Claims the stream for a producer. A second producer gets `Conflict` naming the first.
    pub fn claim_producer(
        self: &Arc<Self>,
        info: ProducerInfo,
        mode: TimestampMode,
    ) -> Result<ProducerSession> {
        if self.closed.is_cancelled() {
            return Err(Error::not_found(format!("stream {} is being deleted", self.name)));
        }
        let mut slot = self.producer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = slot.as_ref() {
            return Err(Error::conflict(format!(
                "stream {} already has a producer ({} from {}, connected at {}); one producer at a time",
                self.name,
                current.protocol,
                current.remote_addr.as_deref().unwrap_or("unknown address"),
                current.connected_at
            )));
        }
        let connected_at = info.connected_at;
        self.events.emit(
            self.name.as_str(),
            EventDetails::ProducerConnected {
                protocol: info.protocol,
                remote_addr: info.remote_addr.clone(),
            },
        );
        *slot = Some(info);
        self.metrics.active_producers.inc();
        Ok(ProducerSession::new(self.clone(), mode, connected_at, self.closed.child_token()))
    }

    fn release_producer(&self, reason: String, fragments: u64) {
        let mut slot = self.producer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(info) = slot.take() {
            self.metrics.active_producers.dec();
            self.events.emit(
                self.name.as_str(),
                EventDetails::ProducerDisconnected { protocol: info.protocol, reason, fragments },
            );
        }
    }

    /// Counts a fragment made durable and reports it (metrics, FragmentPersisted event). Every
    /// ingest protocol calls this once per fragment after [`VideoStream::wait_durable`].
    pub fn fragment_persisted(&self, f: &FragmentInfo) {
        let label = Metrics::stream(self.name.as_str());
        self.metrics.ingest_fragments.get_or_create(&label).inc();
        self.metrics.ingest_bytes.get_or_create(&label).inc_by(u64::from(f.size));
        self.events.emit(
            self.name.as_str(),
            EventDetails::FragmentPersisted {
                fragment_number: f.number.0.to_string(),
                producer_timestamp: f.producer_ts,
                server_timestamp: f.server_ts,
                size_bytes: f.size,
                duration_ms: f64::from(f.meta.duration_us) / 1000.0,
                keyframe: f.meta.keyframe(),
            },
        );
    }

    /// Counts and reports an ingest error (metrics, IngestError event).
    pub fn ingest_error(&self, e: &writer::IngestError) {
        self.metrics.ingest_error(self.name.as_str(), e.code.code());
        self.events.emit(
            self.name.as_str(),
            EventDetails::IngestError {
                code: e.code.code(),
                name: e.code.name(),
                message: e.message.clone(),
            },
        );
    }

    pub fn producer(&self) -> Option<ProducerInfo> {
        self.producer.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_live(&self) -> bool {
        self.producer().is_some()
    }

    /// Cancelled when the stream is deleted or the server shuts down.
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// Stores an init segment, reusing the last id when the bytes are identical.
    fn store_init(&self, bytes: &Bytes, now: Timestamp) -> Result<u32> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((id, last)) = &w.last_init
            && last == bytes
        {
            return Ok(*id);
        }
        let end = self.inits.committed_end();
        if end.0 > u64::from(u32::MAX) {
            return Err(Error::internal("too many init segments"));
        }
        let offset = self.inits.append(NewRecord {
            time: now.max(self.inits.stats().last.map_or(Timestamp::MIN, |e| e.time)),
            arrival: now,
            meta: [0; crate::log::META_LEN],
            payload: bytes.clone(),
        })?;
        // Init segments are small and rare: make them durable before any fragment refers to them.
        self.inits.sync()?;
        let id = offset_u32(offset);
        w.last_init = Some((id, bytes.clone()));
        Ok(id)
    }

    /// The raw init segment (ftyp+moov) with this id.
    pub fn init_bytes(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self.inits.read(Offset(u64::from(id)))?.map(|r| r.payload))
    }

    /// The parsed init segment with this id (cached).
    pub fn init(&self, id: u32) -> Result<Option<Arc<InitSegment>>> {
        if let Some(i) = self.init_cache.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(Some(i.clone()));
        }
        let Some(bytes) = self.init_bytes(id)? else { return Ok(None) };
        let mut reader = Fmp4Reader::new(Limits::default());
        reader.push(bytes);
        let init = match reader.next_item() {
            Ok(Some(Item::Init(init))) => Arc::new(init),
            other => {
                return Err(Error::internal(format!(
                    "stream {}: stored init segment {id} does not parse: {other:?}",
                    self.name
                )));
            }
        };
        self.init_cache.lock().unwrap_or_else(|p| p.into_inner()).insert(id, init.clone());
        Ok(Some(init))
    }

    pub fn last_fragment(&self) -> Option<FragmentInfo> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).last
    }

    /// Resolves once fragment `n` is durable (per the storage sync policy).
    pub async fn wait_durable(&self, n: FragmentNumber) -> Result<()> {
        self.fragments.wait_durable(n.offset()).await?;
        Ok(())
    }

    /// The committed end of the fragment log: changes whenever fragments become visible.
    pub fn subscribe(&self) -> watch::Receiver<Offset> {
        self.fragments.subscribe()
    }

    /// Reads one fragment's bytes (CRC-checked). `None` if it does not exist (any more).
    pub fn read_fragment(&self, n: FragmentNumber) -> Result<Option<(FragmentInfo, Bytes)>> {
        Ok(self
            .fragments
            .read(n.offset())?
            .map(|r| (FragmentInfo::from_entry(&r.entry), r.payload)))
    }

    /// The live playlists' target duration (s) and part target (µs): at least these, and never
    /// lower than announced before.
    pub fn live_targets(&self, target_s: u64, part_target_us: u32) -> (u64, u32) {
        self.live_targets.raise(target_s, part_target_us)
    }

    /// The epoch of the served media timeline: media time 0 is this producer timestamp.
    pub fn timeline_epoch(&self) -> Option<Timestamp> {
        *self.epoch.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the writer for the stream's first fragment: fixes the timeline epoch. A stream
    /// with no fragment may take an earlier one (nothing served depends on it yet).
    fn start_timeline(&self, producer_ts: Timestamp) {
        let mut epoch = self.epoch.write().unwrap_or_else(|p| p.into_inner());
        if epoch.is_some_and(|e| e <= producer_ts) {
            return;
        }
        *epoch = Some(producer_ts);
        // Losing this write is recoverable: a restart takes the first stored fragment's timestamp,
        // which is the same value while that fragment is retained.
        if let Err(e) = self.catalog.set_timeline_epoch(self.id, producer_ts) {
            tracing::warn!(stream = %self.name, error = %e, "could not store the timeline epoch");
        }
    }

    pub fn fragment(&self, n: FragmentNumber) -> Result<Option<FragmentInfo>> {
        Ok(self.fragments.entry(n.offset())?.map(|e| FragmentInfo::from_entry(&e)))
    }

    pub fn describe(&self) -> StreamDescription {
        let row = self.row();
        let stats = self.fragments.stats();
        let first = stats.first.map(|e| FragmentInfo::from_entry(&e));
        let last = stats.last.map(|e| FragmentInfo::from_entry(&e));
        let producer = self.producer();
        StreamDescription {
            name: row.name.to_string(),
            status: "ACTIVE",
            created_at: row.created_at,
            version: row.version,
            retention_hours: row.retention_hours,
            retention_bytes: row.retention_bytes,
            media_type: row.media_type,
            tags: row.tags,
            live: producer.is_some(),
            producer,
            fragment_count: stats.records,
            bytes_stored: stats.bytes + self.inits.stats().bytes,
            first_fragment_number: first.map(|f| f.number.0.to_string()),
            last_fragment_number: last.map(|f| f.number.0.to_string()),
            earliest_producer_timestamp: first.map(|f| f.producer_ts),
            latest_producer_timestamp: last.map(|f| f.producer_ts),
            earliest_server_timestamp: first.map(|f| f.server_ts),
            latest_server_timestamp: last.map(|f| f.server_ts),
        }
    }

    pub(crate) fn update_stored_gauges(&self) {
        let stats = self.fragments.stats();
        let label = Metrics::stream(self.name.as_str());
        self.metrics
            .stored_bytes
            .get_or_create(&label)
            .set(i64::try_from(stats.bytes).unwrap_or(i64::MAX));
        self.metrics
            .stored_fragments
            .get_or_create(&label)
            .set(i64::try_from(stats.records).unwrap_or(i64::MAX));
    }

    fn sync(&self) -> Result<()> {
        self.fragments.sync()?;
        self.inits.sync()?;
        Ok(())
    }
}

fn offset_u32(o: Offset) -> u32 {
    u32::try_from(o.0).unwrap_or(u32::MAX)
}

/// `GET /v1/streams/{name}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamDescription {
    pub name: String,
    pub status: &'static str,
    pub created_at: Timestamp,
    pub version: i64,
    pub retention_hours: u32,
    pub retention_bytes: Option<u64>,
    pub media_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub live: bool,
    pub producer: Option<ProducerInfo>,
    pub fragment_count: u64,
    pub bytes_stored: u64,
    pub first_fragment_number: Option<String>,
    pub last_fragment_number: Option<String>,
    pub earliest_producer_timestamp: Option<Timestamp>,
    pub latest_producer_timestamp: Option<Timestamp>,
    pub earliest_server_timestamp: Option<Timestamp>,
    pub latest_server_timestamp: Option<Timestamp>,
}

/// What a client may set at creation.
#[derive(Debug, Clone)]
pub struct NewStream {
    pub name: StreamName,
    pub retention_hours: Option<u32>,
    pub retention_bytes: Option<u64>,
    pub media_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// KVS's `DeviceName` and `KmsKeyId` (the KVS API sets them; recorded and described).
    pub device_name: Option<String>,
    pub kms_key_id: Option<String>,
}

/// What a client may change later (`None` = unchanged).
#[derive(Debug, Clone, Default)]
pub struct StreamUpdate {
    pub retention_hours: Option<u32>,
    pub retention_bytes: Option<Option<u64>>,
    pub tags: Option<BTreeMap<String, String>>,
    pub media_type: Option<Option<String>>,
    pub device_name: Option<Option<String>>,
    /// The version the change was made against: `VersionMismatch` if the stream has changed
    /// since (KVS's `CurrentVersion`).
    pub expected_version: Option<i64>,
}

/// `VersionMismatch` unless the stream is at `expected` (when given).
fn check_version(name: &StreamName, current: i64, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(v) if v != current => Err(Error::conflict(format!(
            "The version {v} of stream {name} is not its current version {current}."
        ))
        .with_code("VersionMismatch")),
        _ => Ok(()),
    }
}

/// All video streams of this server.
pub struct VideoStreams {
    catalog: Arc<Catalog>,
    root: PathBuf,
    log_config: LogConfig,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    default_retention_hours: u32,
    segment_cache: Arc<cache::SegmentCache>,
    events: Arc<Emitter>,
    /// `storage.min_free_bytes`; 0 disables the free-disk floor.
    min_free_bytes: u64,
    /// How free space is measured; replaced in tests. std `RwLock`, never held across I/O.
    disk: RwLock<Arc<dyn DiskSpace>>,
    /// Name → stream. std `RwLock`: lookups on every request, writes on create/delete, never
    /// held across an `.await`.
    streams: RwLock<BTreeMap<StreamName, Arc<VideoStream>>>,
    /// Serialises create/delete so the catalog and the map change together.
    admin: Mutex<()>,
    /// When the free-disk floor last said it could delete nothing (the line is rate-limited).
    floor_warned: Mutex<Option<std::time::Instant>>,
    /// Streams in the catalog that could not be opened at start-up (see `open`).
    unavailable: Vec<StreamName>,
    shutdown: CancellationToken,
}

impl VideoStreams {
    /// Opens every stream in the catalog (recovering its logs) and removes directories the
    /// catalog no longer knows (a crash during deletion).
    pub fn open(
        catalog: Arc<Catalog>,
        config: &Config,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<VideoStreams> {
        let log_config = config.log_config();
        let default_retention_hours = config.streams.default_retention_hours;
        let root = config.server.data_dir.join("video");
        std::fs::create_dir_all(&root)?;
        let events = Arc::new(Emitter::new(clock.clone()));
        let segment_cache = Arc::new(cache::SegmentCache::new(config.hls.segment_cache_bytes));
        let mut streams = BTreeMap::new();
        let mut known: Vec<String> = Vec::new();
        let mut unavailable = Vec::new();
        for row in catalog.video_streams()? {
            let dir = root.join(row.id.to_string());
            let name = row.name.clone();
            known.push(row.id.to_string());
            match VideoStream::open(
                catalog.clone(),
                row,
                dir,
                &log_config,
                &clock,
                shutdown.child_token(),
                metrics.clone(),
                events.clone(),
                segment_cache.clone(),
            ) {
                Ok(s) => {
                    streams.insert(name, Arc::new(s));
                }
                // One stream that cannot be opened (a full disk while it was being created, a
                // damaged file) does not keep the server, or the other streams, down. Its data
                // stays where it is; the next start tries again.
                Err(e) => {
                    tracing::error!(stream = %name, error = %e, "cannot open the stream; it is left out until the next start");
                    unavailable.push(name);
                }
            }
        }
        for entry in std::fs::read_dir(&root)? {
            let entry = entry?;
            let fname = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&fname) {
                tracing::warn!(dir = %entry.path().display(), "removing the data of a deleted stream");
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    // Removing frees space; failing to is no reason not to start.
                    tracing::warn!(dir = %entry.path().display(), error = %e, "could not remove it yet");
                }
            }
        }
        metrics.streams_unavailable.set(i64::try_from(unavailable.len()).unwrap_or(i64::MAX));
        Ok(VideoStreams {
            catalog,
            root,
            log_config,
            clock,
            metrics,
            default_retention_hours,
            segment_cache,
            events,
            min_free_bytes: config.storage.min_free_bytes,
            disk: RwLock::new(Arc::new(FilesystemSpace(config.server.data_dir.clone()))),
            streams: RwLock::new(streams),
            admin: Mutex::new(()),
            floor_warned: Mutex::new(None),
            unavailable,
            shutdown,
        })
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Streams that could not be opened at start-up: their data is kept, the next start retries.
    pub fn unavailable(&self) -> &[StreamName] {
        &self.unavailable
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The event emitter of every stream; `app` installs its sink.
    pub fn events(&self) -> &Arc<Emitter> {
        &self.events
    }

    pub fn get(&self, name: &StreamName) -> Result<Arc<VideoStream>> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("stream {name} not found")))
    }

    /// `by` is the principal asking, named in the `StreamCreated` event.
    pub fn create(&self, req: NewStream, by: &str) -> Result<Arc<VideoStream>> {
        let retention_hours = req.retention_hours.unwrap_or(self.default_retention_hours);
        validate_retention(retention_hours, req.retention_bytes)?;
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        if self.streams.read().unwrap_or_else(|p| p.into_inner()).contains_key(&req.name) {
            return Err(Error::conflict(format!("stream {} already exists", req.name)));
        }
        let mut row = VideoStreamRow {
            id: VideoStreamId(0),
            name: req.name.clone(),
            created_at: self.clock.now(),
            retention_hours,
            retention_bytes: req.retention_bytes,
            media_type: req.media_type,
            tags: req.tags,
            version: 1,
            device_name: req.device_name,
            kms_key_id: req.kms_key_id,
        };
        row.id = self.catalog.insert_video_stream(&row)?;
        let dir = self.root.join(row.id.to_string());
        let id = row.id;
        let stream = match VideoStream::open(
            self.catalog.clone(),
            row,
            dir,
            &self.log_config,
            &self.clock,
            self.shutdown.child_token(),
            self.metrics.clone(),
            self.events.clone(),
            self.segment_cache.clone(),
        ) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                // Leave no half-created stream behind.
                let _ = self.catalog.delete_video_stream(id);
                let _ = std::fs::remove_dir_all(self.root.join(id.to_string()));
                return Err(e);
            }
        };
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(req.name.clone(), stream.clone());
        let row = stream.row();
        self.events.emit(
            req.name.as_str(),
            EventDetails::StreamCreated {
                retention_hours: row.retention_hours,
                retention_bytes: row.retention_bytes,
                media_type: row.media_type,
                by: by.to_owned(),
            },
        );
        tracing::info!(stream = %req.name, %id, "stream created");
        Ok(stream)
    }

    /// Streams whose names start with `prefix`, in name order, after `after`, at most `limit`.
    pub fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Vec<Arc<VideoStream>> {
        let map = self.streams.read().unwrap_or_else(|p| p.into_inner());
        map.values()
            .filter(|s| s.name.as_str().starts_with(prefix))
            .filter(|s| after.is_none_or(|a| s.name.as_str() > a))
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Arc<VideoStream>> {
        self.streams.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    pub fn update(
        &self,
        name: &StreamName,
        update: StreamUpdate,
        by: &str,
    ) -> Result<Arc<VideoStream>> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let stream = self.get(name)?;
        let mut row = stream.row();
        check_version(name, row.version, update.expected_version)?;
        if let Some(m) = update.media_type {
            row.media_type = m;
        }
        if let Some(d) = update.device_name {
            row.device_name = d;
        }
        if let Some(h) = update.retention_hours {
            row.retention_hours = h;
        }
        if let Some(b) = update.retention_bytes {
            row.retention_bytes = b;
        }
        if let Some(t) = update.tags {
            row.tags = t;
        }
        validate_retention(row.retention_hours, row.retention_bytes)?;
        row.version = self.catalog.update_video_stream(&row)?;
        self.events.emit(
            name.as_str(),
            EventDetails::StreamUpdated {
                retention_hours: row.retention_hours,
                retention_bytes: row.retention_bytes,
                version: row.version,
                by: by.to_owned(),
            },
        );
        *stream.row.write().unwrap_or_else(|p| p.into_inner()) = row;
        Ok(stream)
    }

    /// Deletes a stream and its data. Its producer is cut off and live readers end; reads already
    /// in progress finish from the unlinked files. `by` is named in the `StreamDeleted` event.
    pub fn delete(&self, name: &StreamName, by: &str) -> Result<()> {
        self.delete_checked(name, None, by)
    }

    /// [`VideoStreams::delete`], if the stream is at `expected_version` (when given).
    pub fn delete_checked(
        &self,
        name: &StreamName,
        expected_version: Option<i64>,
        by: &str,
    ) -> Result<()> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let stream = self.get(name)?;
        check_version(name, stream.row().version, expected_version)?;
        self.catalog.delete_video_stream(stream.id)?;
        self.streams.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        stream.closed.cancel();
        stream.fragments.delete_remote();
        stream.inits.delete_remote();
        if let Err(e) = std::fs::remove_dir_all(&stream.dir) {
            // The catalog row is gone, so the next start-up removes the directory.
            tracing::warn!(stream = %name, error = %e, "could not remove the stream's data yet");
        }
        self.metrics.forget_stream(name.as_str());
        self.segment_cache.forget_stream(stream.id);
        self.events.emit(name.as_str(), EventDetails::StreamDeleted { by: by.to_owned() });
        tracing::info!(stream = %name, id = %stream.id, "stream deleted");
        Ok(())
    }

    /// Flushes every stream (shutdown).
    pub fn sync_all(&self) {
        for s in self.all() {
            if let Err(e) = s.sync() {
                tracing::error!(stream = %s.name, error = %e, "final sync failed");
            }
        }
    }
}

fn validate_retention(hours: u32, bytes: Option<u64>) -> Result<()> {
    if hours > MAX_RETENTION_HOURS {
        return Err(Error::invalid(format!(
            "retentionHours {hours} is out of range (0 to {MAX_RETENTION_HOURS}; 0 = no age limit)"
        )));
    }
    if bytes == Some(0) {
        return Err(Error::invalid("retentionBytes must be positive when given"));
    }
    Ok(())
}
