//! Fragmented MP4 pushed over HTTP: `PUT` (or `POST`) `/v1/streams/{name}/media`. The HTTP
//! adapter (query, `Expect: 100-continue`, the streamed response) is `crate::api::push`; this
//! module reads the body and acknowledges.
//!
//! The request body is an fMP4 byte stream (ftyp+moov, then moof+mdat pairs) of any length,
//! chunked or not, for as long as the producer likes. The response (200, `application/x-ndjson`)
//! streams acknowledgements while the upload goes on: BUFFERING when a fragment's first byte
//! arrives, RECEIVED when it is complete and written, PERSISTED once it is on stable storage,
//! IDLE while the producer is silent, ERROR with a Kinesis error code (see [`super::acks`]).
//!
//! A bad fragment (too long, decode time going backwards, unknown track) is rejected alone and
//! the session goes on; unparseable bytes end the session with ERROR 4006 at their byte offset.
//! A producer that disconnects mid-fragment loses only that partial fragment.
//!
//! The same session reads Matroska ([`Format::Matroska`]: KVS PutMedia, `crate::api::kvs`),
//! remuxed to fMP4 by `crate::media::mkv` as it arrives: each Cluster is a fragment, with the
//! same acknowledgements, error codes and limits.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::acks::{Ack, AckSender, EventType};
use crate::clock::{SharedClock, Timestamp};
use crate::config::IngestConfig;
use crate::error::Error;
use crate::media::fmp4::{Fmp4Error, Fmp4Reader, Item, Limits};
use crate::media::mkv::{MkvError, MkvLimits, MkvRemuxer, Refusal, RemuxError, Remuxed, SimpleTag};
use crate::memory::{MemoryBudget, Part};
use crate::video::VideoStream;
use crate::video::writer::{
    Appended, Durability, IngestError, IngestErrorCode, ProducerInfo, ProducerSession,
    TimestampMode,
};

/// Told when a stored fragment that carried producer tags (the Matroska `Tags` before a
/// PutMedia Cluster) is on stable storage; KVS notifications hang off it.
pub trait TaggedFragments: Send + Sync {
    fn persisted(&self, stream: &Arc<VideoStream>, fragment: &Appended, tags: Vec<SimpleTag>);
}

/// The body of a push: byte chunks, or the error that ended the connection.
pub type BodyStream = std::pin::Pin<
    Box<
        dyn futures_util::Stream<
                Item = Result<bytes::Bytes, Box<dyn std::error::Error + Send + Sync>>,
            > + Send,
    >,
>;

/// What the body of a push is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Fragmented MP4 (the native push).
    Fmp4,
    /// Matroska as Kinesis Video Streams producers send it (PutMedia); a timecode of 0 is
    /// `origin_ns` nanoseconds after the Unix epoch (0 for absolute timecodes).
    Matroska { origin_ns: i128 },
}

impl Format {
    fn protocol(self) -> &'static str {
        match self {
            Format::Fmp4 => "http-fmp4",
            Format::Matroska { .. } => "kvs-putmedia",
        }
    }
}

/// A push whose producer slot is claimed, before its body is read.
pub struct Push {
    ctx: SessionContext,
    session: ProducerSession,
}

impl Push {
    /// Claims `stream`'s single-writer slot for a producer at `remote_addr` (409 when taken).
    pub fn claim(
        stream: Arc<VideoStream>,
        clock: SharedClock,
        config: IngestConfig,
        memory: Arc<MemoryBudget>,
        (format, mode): (Format, TimestampMode),
        remote_addr: Option<String>,
    ) -> Result<Push, Error> {
        let connected_at = clock.now();
        let protocol = format.protocol();
        let session = stream.claim_producer(
            ProducerInfo { protocol, remote_addr: remote_addr.clone(), connected_at },
            mode,
        )?;
        tracing::info!(stream = %stream.name, protocol, remote = remote_addr.as_deref().unwrap_or("-"), "producer connected");
        let ctx = SessionContext { config, clock, stream, memory, format, tagged: None };
        Ok(Push { ctx, session })
    }

    /// Where fragments that carried producer tags are reported once durable.
    pub fn with_tagged(mut self, sink: Arc<dyn TaggedFragments>) -> Push {
        self.ctx.tagged = Some(sink);
        self
    }

    /// Reads `body` in a task of its own, sending acknowledgements into `acks`. The task ends when
    /// the body ends, the producer goes away, the stream is deleted or the server shuts down.
    pub fn start(self, body: BodyStream, acks: AckSender) -> tokio::task::JoinHandle<()> {
        tokio::spawn(run_session(self.ctx, self.session, body, acks))
    }
}

struct SessionContext {
    config: IngestConfig,
    clock: SharedClock,
    stream: Arc<VideoStream>,
    /// The fragment being received is held against it (`crate::memory`).
    memory: Arc<MemoryBudget>,
    format: Format,
    tagged: Option<Arc<dyn TaggedFragments>>,
}

/// The body's reader: fMP4 as it is, or Matroska remuxed to fMP4.
enum Demux {
    Fmp4(Fmp4Reader),
    Matroska(Box<MkvRemuxer>),
}

fn bytes_limit(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// What the reader gave: an item to store (a fragment with the timecode its acknowledgements
/// carry, when the producer's own differs from the stored one, and the producer's tags), or a
/// fragment refused alone.
enum Demuxed {
    Item(Item, Option<i64>, Vec<SimpleTag>),
    Refused(IngestError),
}

impl Demux {
    fn new(ctx: &SessionContext) -> Demux {
        let (fragment, init) = (ctx.config.max_fragment_bytes, ctx.config.max_init_bytes);
        match ctx.format {
            Format::Fmp4 => Demux::Fmp4(Fmp4Reader::new(Limits {
                max_fragment_bytes: fragment,
                max_init_bytes: init,
            })),
            Format::Matroska { origin_ns } => {
                let (fragment, init) = (bytes_limit(fragment), bytes_limit(init));
                Demux::Matroska(Box::new(MkvRemuxer::new(
                    MkvLimits { max_header_bytes: init, max_block_bytes: fragment },
                    fragment,
                    origin_ns,
                )))
            }
        }
    }

    fn push(&mut self, chunk: bytes::Bytes) {
        match self {
            Demux::Fmp4(r) => r.push(chunk),
            Demux::Matroska(r) => r.push(chunk),
        }
    }

    fn buffered(&self) -> usize {
        match self {
            Demux::Fmp4(r) => r.buffered(),
            Demux::Matroska(r) => r.buffered(),
        }
    }

    fn next(&mut self) -> Result<Option<Demuxed>, IngestError> {
        match self {
            Demux::Fmp4(r) => r
                .next_item()
                .map(|i| i.map(|i| Demuxed::Item(i, None, Vec::new())))
                .map_err(fmp4_error),
            Demux::Matroska(r) => match r.next_remuxed().map_err(remux_error)? {
                None => Ok(None),
                Some(Remuxed::Item(i)) => Ok(Some(Demuxed::Item(i, None, Vec::new()))),
                Some(Remuxed::ClusterStarted { offset, timecode_ms }) => Ok(Some(Demuxed::Item(
                    Item::FragmentStarted { offset },
                    Some(timecode_ms),
                    Vec::new(),
                ))),
                Some(Remuxed::Cluster { fragment, timecode_ms, tags }) => {
                    Ok(Some(Demuxed::Item(Item::Fragment(fragment), Some(timecode_ms), tags)))
                }
                Some(Remuxed::Refused(why, message)) => {
                    let code = match why {
                        Refusal::Invalid => IngestErrorCode::InvalidMedia,
                        Refusal::UnknownTrack => IngestErrorCode::TrackNumberMismatch,
                        Refusal::TooLarge => IngestErrorCode::MaxFragmentSizeReached,
                    };
                    Ok(Some(Demuxed::Refused(IngestError::new(code, message))))
                }
            },
        }
    }

    /// The end of the body; an error names what was cut off.
    fn finish(&mut self) -> Result<(), String> {
        match self {
            Demux::Fmp4(r) => r.finish().map_err(|e| e.to_string()),
            Demux::Matroska(r) => r.finish().map_err(|e| e.to_string()),
        }
    }
}

/// How long a producer's reading waits for room in a busy memory budget before ERROR 5000.
const MEMORY_PATIENCE: Duration = Duration::from_secs(10);

/// How a session ended.
enum End {
    /// The body ended cleanly.
    Finished,
    /// The body ended inside a box: the partial fragment is dropped.
    Truncated(IngestError),
    /// The producer went away (connection error).
    Disconnected(String),
    /// Bytes that are not fMP4, or a limit that cannot be recovered from.
    Fatal(IngestError),
    /// The stream was deleted or the server is shutting down.
    Stopped,
    /// Storage failed (a full disk); the producer already has its ERROR 5001.
    StorageFailed(String),
}

async fn run_session(
    ctx: SessionContext,
    mut session: ProducerSession,
    body: BodyStream,
    acks: AckSender,
) {
    let name = ctx.stream.name.to_string();
    // PERSISTED acks follow the session's durability outcomes, in order; the reading loop sends
    // them, so each comes after its fragment's RECEIVED, and reading the body does not wait for
    // fsync (group commit covers the fragments queued meanwhile).
    let (durable_tx, mut durable) = mpsc::unbounded_channel();
    session.notify_durability(durable_tx);

    let mut body = body;
    let mut timecodes = Timecodes::default();
    let end = read_body(&ctx, &mut session, &mut body, &acks, (&mut durable, &mut timecodes)).await;

    let (reason, last_ack) = match &end {
        End::Finished => ("finished".to_owned(), None),
        End::Truncated(e) | End::Fatal(e) => {
            ctx.stream.ingest_error(e);
            (format!("{} ({})", e.code.name(), e.message), Some(Ack::error(e)))
        }
        End::Disconnected(why) => (format!("disconnected: {why}"), None),
        End::StorageFailed(why) => (format!("storage failed: {why}"), None),
        End::Stopped => {
            let e = IngestError::new(
                IngestErrorCode::StreamNotActive,
                "the stream was deleted or the server is shutting down; every fragment acknowledged PERSISTED is stored",
            );
            ("stopped by the server".to_owned(), Some(Ack::error(&e)))
        }
    };
    ctx.stream.update_stored_gauges();
    tracing::info!(stream = %name, %reason, "producer disconnected");
    session.set_end_reason(reason);
    // Every fragment's outcome is acknowledged before the last word.
    session.finish().await;
    while let Ok(d) = durable.try_recv() {
        acks.send(timecodes.persisted(d, &ctx));
    }
    let refused = matches!(end, End::Fatal(_) | End::StorageFailed(_));
    if let Some(ack) = last_ack {
        acks.send(ack);
    }
    if refused {
        // The producer is still sending: read the rest of its body (bounded) and drop it, so the
        // response ends after the request does and the connection stays usable. Ending it
        // earlier makes the client reuse a connection the server is about to close.
        drain(&mut body).await;
    }
}

/// Reads and drops what is left of a refused body: at most [`DRAIN_BYTES`], giving up after
/// [`DRAIN_IDLE`] without a byte.
async fn drain(body: &mut BodyStream) {
    let mut left = DRAIN_BYTES;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(DRAIN_IDLE, body.next()).await {
        left = left.saturating_sub(chunk.len());
        if left == 0 {
            return;
        }
    }
}

/// How much of a refused body is read before the connection is given up.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;
/// How long a refused body may pause before it is given up.
const DRAIN_IDLE: Duration = Duration::from_secs(2);

async fn read_body(
    ctx: &SessionContext,
    session: &mut ProducerSession,
    data: &mut BodyStream,
    acks: &AckSender,
    (durable, timecodes): (&mut mpsc::UnboundedReceiver<Durability>, &mut Timecodes),
) -> End {
    let mut reader = Demux::new(ctx);
    let idle = ctx.config.idle_ack_interval_ms.max(Duration::from_millis(1));
    let max_duration_us =
        u64::try_from(ctx.config.max_fragment_duration_ms.as_micros()).unwrap_or(u64::MAX);
    let cancel = session.cancelled().clone();
    let mut fragment_arrival: Option<Timestamp> = None;
    let mut memory = ctx.memory.empty(Part::Ingest);
    loop {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return End::Stopped,
            Some(d) = durable.recv() => {
                acks.send(timecodes.persisted(d, ctx));
                continue;
            }
            r = tokio::time::timeout(idle, data.next()) => r,
        };
        let chunk = match next {
            Err(_) => {
                acks.send(Ack::new(EventType::Idle));
                continue;
            }
            Ok(None) => {
                return match reader.finish() {
                    Ok(()) => {
                        // What the end completes (a Matroska Cluster of unknown size) is stored.
                        let now = ctx.clock.now();
                        let mut stored =
                            Stored { ctx, timecodes, session, acks, now, max_duration_us };
                        stored
                            .items(&mut reader, &mut fragment_arrival)
                            .await
                            .unwrap_or(End::Finished)
                    }
                    Err(e) => End::Truncated(IngestError::new(
                        IngestErrorCode::StreamReadError,
                        format!(
                            "the body ended inside an element; the partial fragment was dropped: \
                             {e}"
                        ),
                    )),
                };
            }
            Ok(Some(Err(e))) => {
                let cause = e.source().map(|s| format!(": {s:?}")).unwrap_or_default();
                return End::Disconnected(format!("{e}{cause}"));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        let now = ctx.clock.now();
        // The unparsed bytes (the fragment being received) count against the memory budget;
        // while it is in use the body is not read, which slows the producer through TCP.
        if let Err(e) = memory.resize_within(reader.buffered() + chunk.len(), MEMORY_PATIENCE).await
        {
            return End::Fatal(IngestError::new(IngestErrorCode::InternalError, e.to_string()));
        }
        reader.push(chunk);
        let mut stored = Stored { ctx, timecodes, session, acks, now, max_duration_us };
        if let Some(end) = stored.items(&mut reader, &mut fragment_arrival).await {
            return end;
        }
        let _ = memory.resize(reader.buffered());
    }
}

/// Stores what the reader has ready.
struct Stored<'a> {
    ctx: &'a SessionContext,
    timecodes: &'a mut Timecodes,
    session: &'a mut ProducerSession,
    acks: &'a AckSender,
    now: Timestamp,
    max_duration_us: u64,
}

impl Stored<'_> {
    /// Takes every ready item: init segments and fragments to the writer, acknowledged. `Some`
    /// ends the session.
    async fn items(
        &mut self,
        reader: &mut Demux,
        fragment_arrival: &mut Option<Timestamp>,
    ) -> Option<End> {
        loop {
            match reader.next() {
                Ok(None) => return None,
                Ok(Some(Demuxed::Refused(e))) => {
                    self.ctx.stream.ingest_error(&e);
                    tracing::warn!(stream = %self.ctx.stream.name, code = e.code.code(), error = %e, "fragment refused");
                    self.acks.send(Ack::error(&e));
                }
                Ok(Some(Demuxed::Item(Item::Init(init), _, _))) => {
                    if let Err(e) = self.session.set_init(&init).await {
                        return Some(End::Fatal(e));
                    }
                }
                Ok(Some(Demuxed::Item(Item::FragmentStarted { .. }, timecode, _))) => {
                    *fragment_arrival = Some(self.now);
                    let ack = Ack { fragment_timecode: timecode, ..Ack::new(EventType::Buffering) };
                    self.acks.send(ack);
                }
                Ok(Some(Demuxed::Item(Item::Fragment(fragment), timecode, tags))) => {
                    let arrival = fragment_arrival.take().unwrap_or(self.now);
                    match self.session.append(&fragment, arrival, self.max_duration_us).await {
                        Ok(a) => {
                            let timecode = timecode.unwrap_or(a.timecode_ms);
                            if timecode != a.timecode_ms {
                                self.timecodes.insert(a.number.0, timecode);
                            }
                            if !tags.is_empty() && self.ctx.tagged.is_some() {
                                self.timecodes.tags.insert(a.number.0, tags);
                            }
                            self.acks.send(Ack::fragment(
                                EventType::Received,
                                timecode,
                                a.number.0,
                            ));
                        }
                        Err(e) => {
                            self.ctx.stream.ingest_error(&e);
                            tracing::warn!(stream = %self.ctx.stream.name, code = e.code.code(), error = %e, "fragment rejected");
                            self.acks.send(Ack::error(&e));
                            if e.code == IngestErrorCode::ArchivalError {
                                // Storage failed (a full disk): stop taking data we cannot keep.
                                // The ERROR 5001 just sent says why; nothing more is sent.
                                return Some(End::StorageFailed(e.message.clone()));
                            }
                        }
                    }
                }
                Err(e) => return Some(End::Fatal(e)),
            }
        }
    }
}

fn fmp4_error(e: Fmp4Error) -> IngestError {
    let code = if matches!(e, Fmp4Error::FragmentTooLarge { .. }) {
        IngestErrorCode::MaxFragmentSizeReached
    } else {
        IngestErrorCode::InvalidMedia
    };
    IngestError::new(code, e.to_string())
}

fn remux_error(e: RemuxError) -> IngestError {
    let code = if matches!(e, RemuxError::Mkv(MkvError::TooLarge { .. })) {
        IngestErrorCode::MaxFragmentSizeReached
    } else {
        IngestErrorCode::InvalidMedia
    };
    IngestError::new(code, e.to_string())
}

/// The producer's own timecodes of fragments acknowledged RECEIVED and not yet PERSISTED, where
/// they differ from the stored ones (PutMedia acknowledges a fragment by its Cluster timecode),
/// and the tags of those that carried some.
#[derive(Default)]
struct Timecodes {
    own: std::collections::BTreeMap<u64, i64>,
    tags: std::collections::BTreeMap<u64, Vec<SimpleTag>>,
}

impl Timecodes {
    fn insert(&mut self, number: u64, timecode: i64) {
        self.own.insert(number, timecode);
    }

    /// PERSISTED, or ERROR 5001 naming the fragment, as the session settled its durability; a
    /// durable fragment's tags go to the session's [`TaggedFragments`].
    fn persisted(&mut self, d: Durability, ctx: &SessionContext) -> Ack {
        let own = |t: &mut Self, n: u64, stored: i64| t.own.remove(&n).unwrap_or(stored);
        match d {
            Durability::Persisted(a) => {
                let tc = own(self, a.number.0, a.timecode_ms);
                if let (Some(tags), Some(sink)) = (self.tags.remove(&a.number.0), &ctx.tagged) {
                    sink.persisted(&ctx.stream, &a, tags);
                }
                Ack::fragment(EventType::Persisted, tc, a.number.0)
            }
            Durability::Failed(a, err) => {
                self.own.remove(&a.number.0);
                self.tags.remove(&a.number.0);
                Ack { fragment_number: Some(a.number.0.to_string()), ..Ack::error(&err) }
            }
        }
    }
}
