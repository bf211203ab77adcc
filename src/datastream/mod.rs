//! Data streams: Kinesis Data Streams semantics on the log engine. A stream is a set of shards;
//! each shard is one [`Log`] owning a contiguous range of the 128-bit hash-key space
//! ([`hashkey`]). Records are routed by the MD5 of their partition key (or an explicit hash
//! key), numbered by [`SequenceNumber`]s that decode to (shard, offset) ([`seqno`]), read through
//! MAC'd, expiring shard iterators ([`token`]), throttled per shard ([`throttle`]), and resharded
//! with lineage ([`reshard`]). The catalog rows are in [`store`]; the AWS wire protocol that
//! fronts all this is `crate::api::kinesis`.
//!
//! On disk: `<data_dir>/datastreams/<stream id>/<shard ordinal>/` is a shard's log, and
//! `<data_dir>/datastreams/iterator.key` the MAC key (mode 0600). A shard's directory is created
//! before its catalog row and removed after it, and directories the catalog does not name are
//! removed at start-up, so a crash never leaves a listed shard without its log.
//!
//! # Layout
//!
//! - [`error`]: `DsError`, one variant per Kinesis exception.
//! - [`hashkey`], [`seqno`], [`token`], [`throttle`], [`record`], [`validate`]: pure pieces.
//! - [`store`]: the catalog tables.
//! - this file: the registry of streams, shards and their routing, sync.
//! - `retention`: retention and the object tier over the shards' logs.
//! - `admin`: the stream-level operations (create, delete, describe, list, tags, retention
//!   period, mode, limits).
//! - [`heat`] (pure) and `autoscale`: ON_DEMAND capacity — hot shards split, warm throughput,
//!   the account's settings.
//! - `consumers`: Register/Deregister/Describe/ListStreamConsumer(s).
//! - [`write`]: PutRecord(s) and the internal `append`; [`read`]: iterators, GetRecords and
//!   [`ShardReader`]; [`reshard`]: SplitShard, MergeShards, UpdateShardCount.
//!
//! # Concurrency
//!
//! `admin` (a std `Mutex`) serialises every operation that changes the set of streams or
//! shards. Each stream's `state` is a std `RwLock` (never held across an `.await`): writers route
//! under its read lock. Each shard's `writer` is a std `Mutex` held across the log append (a
//! `write(2)`, no `.await`) so arrival times and offsets are assigned in order, and taken by
//! resharding to close the shard. Lock order: `admin` → `streams` → stream `state` → shard
//! `writer` → shard `buckets`.

mod admin;
mod autoscale;
mod consumers;
pub mod error;
pub mod hashkey;
pub mod heat;
pub mod read;
pub mod record;
pub mod reshard;
mod retention;
pub mod seqno;
pub mod settings;
pub mod store;
pub mod subscribe;
pub mod throttle;
pub mod token;
pub mod validate;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::catalog::Catalog;
use crate::clock::{SharedClock, Timestamp};
use crate::config::{Config, DataStreamsConfig};
use crate::log::{DeletedRange, Log, LogConfig, Offset, Retention};
use crate::memory::MemoryBudget;
use crate::name::StreamName;

pub use autoscale::{Scaled, WarmThroughput};
pub use error::DsError;
pub use hashkey::{HashKey, HashKeyRange};
pub use read::{GetRecordsOutput, IteratorStart, ShardReader};
pub use reshard::ShardFilter;
pub use seqno::SequenceNumber;
pub use store::StreamMode;
pub use subscribe::{SubscribeEvent, Subscription};
pub use write::{PutEntry, PutOutcome};

pub use store::DataStreamId;
use store::{ConsumerRow, ShardRow, StreamRow};
use throttle::{Rates, ShardBuckets};
use token::Signer;

/// Kinesis's largest retention, in hours (365 days).
pub const MAX_RETENTION_HOURS: u32 = 8760;
/// Kinesis's default and minimum retention, in hours.
pub const DEFAULT_RETENTION_HOURS: u32 = 24;
/// `MaxRecordSizeInKiB` bounds (1 MiB, the default, to 10 MiB).
pub const MIN_RECORD_KIB: i64 = 1024;
pub const MAX_RECORD_KIB: i64 = 10240;
/// Consumers (enhanced fan-out) per stream.
pub const MAX_CONSUMERS: usize = 20;
/// Tags per stream.
pub const MAX_TAGS: usize = 50;
/// Longest data-stream name (Kinesis allows 128, video streams 256).
pub const MAX_NAME_LEN: usize = 128;

/// A shard's id: `shardId-` and its ordinal in 12 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The shard an id names, in the forms Kinesis resolves: the ordinal is the digits after the
    /// last `-` (`shardId-000000000007`, `shard-7`, `anything-0007`, `-7`) or the whole id when
    /// it has no `-` (`7`), at most 2147483647. `None` for anything else (`ABC`, `2.1E4`,
    /// `shardId-002147483648`).
    pub fn resolve(s: &str) -> Option<ShardId> {
        let digits = s.rsplit_once('-').map_or(s, |(_, d)| d);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u32>().ok().filter(|o| *o <= i32::MAX as u32).map(ShardId)
    }

    /// Checks the schema (`ValidationException`) and resolves the id; an id that names no shard
    /// is `ResourceNotFoundException` "Could not find shard …".
    pub fn parse(s: &str, member: &str) -> Result<ShardId, DsError> {
        validate::name(s, member, 128)?;
        ShardId::resolve(s)
            .ok_or_else(|| DsError::ResourceNotFound(format!("Could not find shard {s}.")))
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shardId-{:012}", self.0)
    }
}

/// Which stream an operation targets: `StreamName`, `StreamARN`, or both (they must agree).
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamSel<'a> {
    pub name: Option<&'a str>,
    pub arn: Option<&'a str>,
}

impl<'a> StreamSel<'a> {
    /// The stream's name as given (from `StreamName`, else from `StreamARN`), for messages.
    pub fn given_name(&self) -> &'a str {
        self.name
            .or_else(|| self.arn.and_then(|a| a.split_once(":stream/")).map(|(_, n)| n))
            .unwrap_or("")
    }

    pub fn name(name: &'a str) -> StreamSel<'a> {
        StreamSel { name: Some(name), arn: None }
    }
    pub fn arn(arn: &'a str) -> StreamSel<'a> {
        StreamSel { name: None, arn: Some(arn) }
    }
}

/// A write made by [`DataStreams::append`]; pass it to [`DataStreams::wait_durable`].
#[derive(Clone)]
pub struct Appended {
    pub shard_id: ShardId,
    pub offset: Offset,
    pub sequence_number: SequenceNumber,
    pub arrival: Timestamp,
    /// The shard written to, so the durability wait needs no lookup (and cannot find a shard of
    /// a re-created stream).
    shard: Arc<Shard>,
}

impl fmt::Debug for Appended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Appended")
            .field("shard_id", &self.shard_id)
            .field("offset", &self.offset)
            .field("sequence_number", &self.sequence_number)
            .field("arrival", &self.arrival)
            .finish()
    }
}

/// A record read back.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRecord {
    pub sequence_number: SequenceNumber,
    pub partition_key: String,
    pub data: bytes::Bytes,
    pub arrival: Timestamp,
    pub offset: Offset,
}

/// One shard as DescribeStream / ListShards show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardDescription {
    pub shard_id: ShardId,
    pub parent: Option<ShardId>,
    pub adjacent_parent: Option<ShardId>,
    pub range: HashKeyRange,
    pub starting: SequenceNumber,
    pub ending: Option<SequenceNumber>,
}

/// A child of a closed shard, as GetRecords lists it at the shard's end.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildShard {
    pub shard_id: ShardId,
    pub parents: Vec<ShardId>,
    pub range: HashKeyRange,
}

/// DescribeStream / DescribeStreamSummary / ListStreams' view of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamDescription {
    pub name: String,
    pub arn: String,
    /// Always `ACTIVE` once created: creation and resharding complete within the call.
    pub status: &'static str,
    pub mode: StreamMode,
    pub retention_hours: u32,
    /// `MaxRecordSizeInKiB`: the largest data + partition key of one record.
    pub max_record_kib: u32,
    /// The KMS key id while encryption is recorded as on.
    pub encryption_key: Option<String>,
    /// Enhanced monitoring's shard-level metrics, in AWS's order.
    pub shard_metrics: Vec<String>,
    pub created_at: Timestamp,
    pub open_shard_count: u32,
    pub consumer_count: u32,
    /// `WarmThroughput` of an ON_DEMAND stream.
    pub warm_throughput: Option<WarmThroughput>,
}

/// A registered (enhanced fan-out) consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerDescription {
    pub name: String,
    pub arn: String,
    pub status: &'static str,
    pub created_at: Timestamp,
    pub stream_arn: String,
}

/// DescribeLimits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub shard_limit: u32,
    pub open_shard_count: u32,
    pub on_demand_stream_count: u32,
    pub on_demand_stream_count_limit: u32,
}

/// Capacity requested at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    Provisioned {
        shard_count: u32,
    },
    /// `warm_mibps`: `WarmThroughputMiBps`, the write capacity to open with (beyond the
    /// on-demand start).
    OnDemand {
        warm_mibps: Option<u32>,
    },
}

/// What one retention pass deleted from one shard.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionDeleted {
    pub stream: StreamName,
    pub shard_id: ShardId,
    /// `None` when a whole closed shard past retention was removed (its records were gone).
    pub range: Option<DeletedRange>,
}

/// One shard: its place in the hash-key space and lineage, and its log.
pub(crate) struct Shard {
    ordinal: u32,
    range: HashKeyRange,
    parent: Option<u32>,
    adjacent_parent: Option<u32>,
    created_at: Timestamp,
    starting: SequenceNumber,
    log: Log,
    /// std `Mutex` held across the log append (no `.await`) so arrivals and offsets are assigned
    /// in order; resharding takes it to close the shard. Lives as long as the shard.
    writer: Mutex<ShardWriter>,
    /// std `Mutex`: short in-memory updates of the token buckets.
    buckets: Mutex<ShardBuckets>,
    /// Running totals for enhanced monitoring (`settings`).
    counters: settings::ShardCounters,
}

struct ShardWriter {
    /// The arrival time of the last record; the next one gets at least this.
    last_arrival: Timestamp,
    /// Set when the shard is closed by resharding: (ending sequence number, when).
    closed: Option<(SequenceNumber, Timestamp)>,
    /// The load offered in the current scaling window (ON_DEMAND streams).
    heat: heat::Heat,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are a few assignments around I/O; a panic cannot leave them half done.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_lock<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

impl Shard {
    fn open(
        row: &ShardRow,
        dir: PathBuf,
        log_config: &LogConfig,
        clock: &SharedClock,
        rates: Rates,
    ) -> Result<Shard, DsError> {
        let log = Log::open(&dir, log_config.clone(), clock.clone())?;
        let last_arrival = log.stats().last.map_or(Timestamp::MIN, |e| e.arrival);
        Ok(Shard {
            ordinal: row.ordinal,
            range: row.range,
            parent: row.parent,
            adjacent_parent: row.adjacent_parent,
            created_at: row.created_at,
            starting: row.starting,
            log,
            writer: Mutex::new(ShardWriter {
                last_arrival,
                closed: row.closed,
                heat: Default::default(),
            }),
            buckets: Mutex::new(ShardBuckets::new(rates, clock.now())),
            counters: Default::default(),
        })
    }

    pub(crate) fn id(&self) -> ShardId {
        ShardId(self.ordinal)
    }

    fn closed(&self) -> Option<(SequenceNumber, Timestamp)> {
        lock(&self.writer).closed
    }

    fn describe(&self) -> ShardDescription {
        ShardDescription {
            shard_id: self.id(),
            parent: self.parent.map(ShardId),
            adjacent_parent: self.adjacent_parent.map(ShardId),
            range: self.range,
            starting: self.starting,
            ending: self.closed().map(|c| c.0),
        }
    }
}

/// Mutable facts of a stream, under its `state` lock.
struct StreamState {
    retention_hours: u32,
    /// `MaxRecordSizeInKiB`.
    max_record_kib: u32,
    /// The KMS key of StartStreamEncryption, while on (recorded, not applied).
    encryption_key: Option<String>,
    /// Enhanced monitoring: the shard-level metrics `/metrics` shows.
    shard_metrics: std::collections::BTreeSet<String>,
    /// `UPDATING` until then (`data_streams.update_stream_ms` after a change).
    updating_until: Timestamp,
    mode: StreamMode,
    /// Warm throughput (`WarmThroughputMiBps`) of an ON_DEMAND stream: the scaler keeps at least
    /// this many MiB/s of write capacity open.
    warm_mibps: u32,
    /// When the scaler last looked at this stream (the start of its current window).
    scaled_at: Timestamp,
    /// Set by DeleteStream with `delete_stream_ms`: `DELETING` until then, gone after.
    deleting_until: Option<Timestamp>,
    next_ordinal: u32,
    /// Every shard still kept (open and closed), by ordinal.
    shards: BTreeMap<u32, Arc<Shard>>,
    /// The open shards, by the start of their hash-key range (routing).
    open: Vec<Arc<Shard>>,
    tags: BTreeMap<String, String>,
    consumers: Vec<ConsumerRow>,
}

impl StreamState {
    fn rebuild_open(&mut self) {
        let mut open: Vec<Arc<Shard>> =
            self.shards.values().filter(|s| s.closed().is_none()).cloned().collect();
        open.sort_by_key(|s| s.range.start);
        self.open = open;
    }

    /// The open shard whose range holds `k`.
    fn route(&self, k: HashKey) -> Option<Arc<Shard>> {
        let i = self.open.partition_point(|s| s.range.start <= k);
        let s = self.open.get(i.checked_sub(1)?)?;
        s.range.contains(k).then(|| s.clone())
    }
}

/// One data stream.
pub(crate) struct DataStream {
    id: DataStreamId,
    name: StreamName,
    created_at: Timestamp,
    dir: PathBuf,
    /// The account id its messages name (`data_streams.account_id`).
    account: Arc<str>,
    /// std `RwLock`: read by every put and get, written by admin operations; never held across
    /// an `.await`.
    state: RwLock<StreamState>,
}

impl DataStream {
    fn shard(&self, id: ShardId) -> Result<Arc<Shard>, DsError> {
        read_lock(&self.state).shards.get(&id.0).cloned().ok_or_else(|| {
            DsError::ResourceNotFound(format!(
                "Could not find shard {id} in stream {} under account {}.",
                self.name, self.account
            ))
        })
    }

    /// `ProvisionedThroughputExceededException` for `shard`, worded as Kinesis words it.
    fn rate_exceeded(&self, shard: ShardId) -> DsError {
        DsError::ProvisionedThroughputExceeded(format!(
            "Rate exceeded for shard {shard} in stream {} under account {}.",
            self.name, self.account
        ))
    }

    fn retention(&self) -> Retention {
        let hours = read_lock(&self.state).retention_hours;
        Retention { max_age: Some(Duration::from_secs(u64::from(hours) * 3600)), max_bytes: None }
    }
}

/// Name and id → stream.
#[derive(Default)]
struct Registry {
    by_name: BTreeMap<StreamName, Arc<DataStream>>,
    by_id: HashMap<DataStreamId, Arc<DataStream>>,
}

/// All data streams of this server. `Send + Sync`; share it as `Arc<DataStreams>`.
pub struct DataStreams {
    catalog: Arc<Catalog>,
    root: PathBuf,
    log_config: LogConfig,
    clock: SharedClock,
    config: DataStreamsConfig,
    signer: Signer,
    /// std `RwLock`: looked up on every request, written on create/delete, never across an
    /// `.await`.
    streams: RwLock<Registry>,
    /// Serialises operations that change streams or shards, so the catalog, the directories and
    /// the in-memory registry change together.
    admin: Mutex<()>,
    /// GetRecords answers reserve from it (`crate::memory`).
    memory: Arc<MemoryBudget>,
    /// Sluice's own streams (`ensure_stream`), which cannot be deleted.
    system: Mutex<std::collections::HashSet<String>>,
    /// Each consumer's current SubscribeToShard per shard.
    subscriptions: subscribe::Subscriptions,
}

impl fmt::Debug for DataStreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataStreams").field("root", &self.root).finish_non_exhaustive()
    }
}

impl DataStreams {
    /// Opens every data stream in the catalog (recovering each shard's log), removes directories
    /// the catalog does not name (a crash during create, reshard or delete), and loads or
    /// creates the iterator MAC key.
    pub fn open(
        catalog: Arc<Catalog>,
        config: &Config,
        clock: SharedClock,
        memory: Arc<MemoryBudget>,
    ) -> Result<DataStreams, DsError> {
        catalog.ensure_schema(store::SCHEMA)?;
        store::migrate(&catalog)?;
        let root = config.server.data_dir.join("datastreams");
        std::fs::create_dir_all(&root)?;
        let signer = Signer::load_or_create(&root.join("iterator.key"))?;
        let log_config = config.log_config();
        let ds_config = config.data_streams.clone();
        let rates = rates(&ds_config);
        let mut reg = Registry::default();
        for rec in store::load_all(&catalog)? {
            let name = StreamName::new(rec.stream.name.clone())
                .map_err(|e| DsError::Internal(format!("catalog: {e}")))?;
            let dir = root.join(rec.stream.id.to_string());
            let mut shards = BTreeMap::new();
            for row in &rec.shards {
                let shard = Shard::open(
                    row,
                    dir.join(row.ordinal.to_string()),
                    &log_config,
                    &clock,
                    rates,
                )?;
                shards.insert(row.ordinal, Arc::new(shard));
            }
            remove_unknown_dirs(&dir, &shards.keys().map(|o| o.to_string()).collect::<Vec<_>>())?;
            let mut state = StreamState {
                retention_hours: rec.stream.retention_hours,
                max_record_kib: rec.stream.max_record_kib,
                updating_until: Timestamp::MIN,
                encryption_key: rec.stream.encryption_key.clone(),
                shard_metrics: rec
                    .stream
                    .shard_metrics
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
                mode: rec.stream.mode,
                warm_mibps: rec.stream.warm_mibps,
                scaled_at: clock.now(),
                deleting_until: None,
                next_ordinal: rec.stream.next_ordinal,
                shards,
                open: Vec::new(),
                tags: rec.tags,
                consumers: rec.consumers,
            };
            state.rebuild_open();
            let stream = Arc::new(DataStream {
                id: rec.stream.id,
                name: name.clone(),
                created_at: rec.stream.created_at,
                dir,
                account: Arc::from(config.data_streams.account_id.as_str()),
                state: RwLock::new(state),
            });
            reg.by_id.insert(stream.id, stream.clone());
            reg.by_name.insert(name, stream);
        }
        let mut known: Vec<String> = reg.by_id.keys().map(|id| id.to_string()).collect();
        known.push("iterator.key".to_owned());
        remove_unknown_dirs(&root, &known)?;
        Ok(DataStreams {
            catalog,
            root,
            log_config,
            clock,
            config: ds_config,
            signer,
            streams: RwLock::new(reg),
            admin: Mutex::new(()),
            memory,
            system: Mutex::new(Default::default()),
            subscriptions: Default::default(),
        })
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn rates(&self) -> Rates {
        rates(&self.config)
    }

    /// `arn:aws:kinesis:<region>:<account>:stream/<name>`.
    pub fn stream_arn(&self, name: &str) -> String {
        format!("arn:aws:kinesis:{}:{}:stream/{name}", self.config.region, self.config.account_id)
    }

    /// Resolves `StreamName` / `StreamARN`.
    fn resolve(&self, sel: StreamSel<'_>) -> Result<Arc<DataStream>, DsError> {
        let from_arn = match sel.arn {
            Some(arn) => {
                let (region, account, rest) = validate::stream_arn(arn, "streamARN")?;
                validate::name(rest, "streamARN", MAX_NAME_LEN)?;
                if region != self.config.region || account != self.config.account_id {
                    return Err(DsError::ResourceNotFound(format!(
                        "Stream {rest} under account {account} not found."
                    )));
                }
                Some(rest)
            }
            None => None,
        };
        let name = match (sel.name, from_arn) {
            (Some(n), Some(a)) if n != a => {
                return Err(DsError::InvalidArgument(format!(
                    "StreamName {n} does not match the stream in StreamARN {a}."
                )));
            }
            (Some(n), _) => n,
            (None, Some(a)) => a,
            (None, None) => {
                return Err(DsError::Validation(
                    "Either StreamName or StreamARN should be provided.".to_owned(),
                ));
            }
        };
        validate::name(name, "streamName", MAX_NAME_LEN)?;
        self.lookup(name)
    }

    /// A shard id argument of an operation on `sel`'s stream, resolved before the stream is
    /// looked up, as Kinesis does: an id in no form Kinesis resolves is
    /// `ResourceNotFoundException` naming the id as given and the stream.
    fn shard_arg(&self, sel: &StreamSel<'_>, s: &str) -> Result<ShardId, DsError> {
        ShardId::resolve(s).ok_or_else(|| {
            DsError::ResourceNotFound(format!(
                "Could not find shard {s} in stream {} under account {}.",
                sel.given_name(),
                self.config.account_id
            ))
        })
    }

    fn lookup(&self, name: &str) -> Result<Arc<DataStream>, DsError> {
        let not_found = || {
            DsError::ResourceNotFound(format!(
                "Stream {name} under account {} not found.",
                self.config.account_id
            ))
        };
        let key = StreamName::new(name).map_err(|_| not_found())?;
        let s = read_lock(&self.streams).by_name.get(&key).cloned().ok_or_else(not_found)?;
        // A stream whose DELETING time has run out is gone, whether or not the housekeeping
        // pass has removed it yet.
        let now = self.now();
        if read_lock(&s.state).deleting_until.is_some_and(|t| now >= t) {
            return Err(not_found());
        }
        Ok(s)
    }

    fn by_id(&self, id: DataStreamId) -> Option<Arc<DataStream>> {
        read_lock(&self.streams).by_id.get(&id).cloned()
    }

    /// Open shards of the user's streams, which the account's shard limit bounds (Sluice's own
    /// system streams do not count), leaving out `except`.
    fn user_open_shards(&self, except: Option<DataStreamId>) -> usize {
        let system = lock(&self.system).clone();
        read_lock(&self.streams)
            .by_id
            .values()
            .filter(|s| Some(s.id) != except && !system.contains(s.name.as_str()))
            .map(|s| read_lock(&s.state).open.len())
            .sum()
    }

    fn is_system(&self, s: &DataStream) -> bool {
        lock(&self.system).contains(s.name.as_str())
    }

    /// `LimitExceededException` for a request that would open `more` shards beyond the
    /// account's `current`, worded as Kinesis words it.
    fn shard_limit_exceeded(&self, current: usize, more: usize) -> DsError {
        DsError::LimitExceeded(format!(
            "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {current}. Limit: {}. Number of additional shards that would have resulted from this request: {more}. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
            self.config.account_id, self.config.region, self.config.shard_limit
        ))
    }

    // ---- shutdown ------------------------------------------------------------------------------

    /// fdatasyncs every shard (shutdown).
    pub fn sync_all(&self) {
        let streams: Vec<Arc<DataStream>> =
            read_lock(&self.streams).by_id.values().cloned().collect();
        for s in streams {
            let shards: Vec<Arc<Shard>> = read_lock(&s.state).shards.values().cloned().collect();
            for shard in shards {
                if let Err(e) = shard.log.sync() {
                    tracing::error!(stream = %s.name, shard = %shard.id(), error = %e, "sync failed");
                }
            }
        }
    }

    /// The clock this service stamps arrivals with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

fn rates(c: &DataStreamsConfig) -> Rates {
    Rates {
        write_bytes: c.write_bytes_per_sec,
        write_records: c.write_records_per_sec,
        read_bytes: c.read_bytes_per_sec,
        read_calls: c.read_calls_per_sec,
    }
}

/// Removes entries of `dir` not in `known` (left by a crash between catalog and files).
fn remove_unknown_dirs(dir: &std::path::Path, known: &[String]) -> Result<(), DsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if known.contains(&name) || !entry.file_type()?.is_dir() {
            continue;
        }
        tracing::warn!(dir = %entry.path().display(), "removing data-stream files the catalog does not know");
        std::fs::remove_dir_all(entry.path())?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for this module's tests.
    use super::*;
    use crate::clock::ManualClock;

    pub const T0: i64 = 1_700_000_000_000_000;

    pub struct Fixture {
        pub dir: tempfile::TempDir,
        pub clock: Arc<ManualClock>,
        pub config: Config,
    }

    impl Fixture {
        pub fn new(limits: bool) -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let mut config = Config::default();
            config.server.data_dir = dir.path().to_path_buf();
            config.data_streams.throughput_limits = limits;
            let clock = Arc::new(ManualClock::new(Timestamp::from_micros(T0)));
            Fixture { dir, clock, config }
        }

        pub fn open(&self) -> Arc<DataStreams> {
            let cat = Arc::new(Catalog::open(&self.dir.path().join("catalog.sqlite")).unwrap());
            Arc::new(
                DataStreams::open(cat, &self.config, self.clock.clone(), MemoryBudget::unlimited())
                    .unwrap(),
            )
        }
    }
}

#[cfg(test)]
mod tests;
