//! Sluice: a self-hosted video stream ingestion and playback server, with a Kinesis-compatible
//! data-stream core beside it.
//!
//! # Layout
//!
//! The direction of dependencies runs down this list: a module uses only modules listed below it.
//!
//! - [`frames_cli`]: `sluice frames export`, a client of the images endpoint that writes an ML
//!   dataset (images + `manifest.jsonl`), resumable.
//! - [`app`]: wiring: builds the services from the config (`build` → `Server`), the router, and
//!   `run(listener, server)` with the ordered shutdown; the HTTP server loop with its timeouts and
//!   connection limits (`app::http`).
//! - [`web`]: the browser UI (`web/`, embedded), served at `/`.
//! - [`api`]: the HTTP surfaces (native REST `/v1/…`, HLS, media tail, the HTTP ingests, Kinesis
//!   Data Streams, the Kinesis Video Streams control plane, metrics); thin adapters over the
//!   services, with one place that maps errors to statuses.
//! - [`services`]: the services one server runs, in one struct every surface shares, and the
//!   stream lifecycle across them (a stream described with its attachments, changed together).
//! - [`firehose`]: delivery streams (Amazon Data Firehose): records put directly or read from a
//!   data stream, delivered in buffered, compressed objects to buckets (directories or an
//!   S3-compatible store through `object_store`), a checkpoint advanced only after each object.
//! - [`notify`]: fragment notifications (KVS `UpdateNotificationConfiguration`): per-stream
//!   configurations, and for fragments producers tag for notice, `FragmentNotification` events
//!   and webhook messages once the fragment is durable.
//! - [`ingest`]: one module per ingest protocol, no HTTP framework in it; each turns bytes from a
//!   producer into fragments
//!   handed to the stream's writer (HTTP fMP4 push and KVS PutMedia's Matroska, one session
//!   `ingest::http_fmp4`; RTSP pull from cameras, `ingest::pull`;
//!   WebRTC/WHIP, `ingest::whip`; RTSP publish, `ingest::rtsp`), the RTP ones through the shared
//!   RTP → fMP4 path `ingest::rtp`.
//! - [`imagegen`]: continuous image generation per stream (`imageGeneration`): a generator task
//!   per stream following its log, directory and webhook destinations, `ImageGenerated` events.
//! - [`frames`]: the GStreamer decode pool: exact frames at an instant and image sets, on
//!   dedicated worker threads with a bounded queue.
//! - [`video`]: video streams: the registry, the single writer per stream, the fragment store on
//!   the log, retention, live notification.
//! - [`events`]: Sluice's lifecycle events (schema, the non-blocking sink into the event data
//!   stream) and producers' metadata on the video timeline.
//! - [`datastream`]: Kinesis data streams on the log: shards and hash ranges, sequence numbers,
//!   MAC'd shard iterators, throttling, resharding with lineage, on-demand scaling (hot shards
//!   split), retention, SubscribeToShard subscriptions.
//! - [`auth`]: who may do what: users and access keys with grants (from the config and the admin
//!   API), credentials (Basic, Bearer, SigV4), secrets sealed at rest.
//! - [`catalog`]: the embedded SQLite catalog of streams and their configuration.
//! - [`tiering`]: the object tier's bucket (`[tiering]`): the log engine's `Tier` over
//!   `object_store`, with a runtime of its own so the synchronous log can call it from any thread.
//! - [`buckets`]: bucket name → object store (`object_store`): directories under the data dir, or
//!   an S3-compatible store; for delivery streams and the object tier.
//! - [`memory`]: the memory budget (`[server] memory_limit`): reservations the large, variable
//!   buffers take before they allocate, refused past the limit.
//! - [`metrics`]: the Prometheus registry and the counters every layer reports into.
//! - [`config`]: the strict TOML configuration, every field with its unit and default.
//! - [`error`]: the crate error (a kind and context), mapped to HTTP in `api`.
//! - [`log`]: the storage engine: segmented, indexed, CRC-checked, group-committed append-only logs,
//!   generic over the record payload (used by video streams and data streams alike).
//! - [`media`]: pure media code, no I/O: incremental fMP4 parsing, codec strings, HLS playlists,
//!   retiming onto the stream timeline, RTP depacketizers, parameter sets and the fMP4 muxer
//!   for RTP sources, Matroska in and out (`media::mkv`: KVS PutMedia and GetMedia).
//! - [`clock`]: `Timestamp`, `TimestampKind` (which clock) and the injectable `Clock`.
//! - [`name`]: `StreamName`, validated as Kinesis does.
//!
//! # Blocking work
//!
//! Async code (request handlers, ingest sessions, per-stream tasks) runs on a few worker threads
//! that every client shares, so it never waits on the disk or the catalog for more than one
//! small step. The rule:
//!
//! - **Inline** (on the async worker): in-memory lookups, and reading *one* fragment or record
//!   (a few `pread`s, normally from the page cache), as the live tail, parts and SSE followers
//!   do, one at a time between awaits.
//! - **Blocking pool** (`spawn_blocking`, through the facades that own the resource:
//!   `VideoStream::segment` / `VideoStream::read`, `ProducerSession::append` / `set_init`,
//!   `Services::create_stream` / `delete_stream` / `update_stream`, `DataStreams::put_record(s)`
//!   / `append_all`, the Kinesis operations in `api::kinesis`): anything that appends (an append
//!   may roll a segment, which syncs), syncs, writes the catalog, deletes files, or reads many
//!   index entries or records (segments, ranges, replays, clips, timelines, metadata queries).
//! - **Dedicated threads**: each log's syncer (fdatasync rounds) and the decode pool (`frames`).
//! - **Awaited, never waited on**: durability. A handler awaits `wait_durable`, which parks the
//!   task, not the thread.
//!
//! `tests/stalled_disk.rs` holds the rule to account: with every sync of two streams blocked, a
//! third stream's HLS is still served.

pub mod api;
pub mod app;
pub mod auth;
pub mod buckets;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod datastream;
pub mod error;
pub mod events;
pub mod firehose;
pub mod frames;
pub mod frames_cli;
pub mod imagegen;
pub mod ingest;
pub mod log;
pub mod media;
pub mod memory;
pub mod metrics;
pub mod name;
pub mod notify;
pub mod services;
pub mod tiering;
pub mod video;
pub mod web;
