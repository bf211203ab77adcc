//! SubscribeToShard (enhanced fan-out): a registered consumer's push subscription to one shard.
//! Records are delivered as they become durable (the shard's committed-end watch wakes the
//! subscription; nothing polls), in events of at most 1 MiB, paced to the consumer's own
//! `read_bytes_per_sec` (2 MiB/s, as AWS; none with `throughput_limits` off) without sharing
//! the shard's GetRecords budget. An idle
//! subscription sends an empty event every 5 s (a heartbeat with a fresh
//! `ContinuationSequenceNumber`). It lasts `subscription_secs` (5 minutes, as AWS), then ends;
//! a drained closed shard ends it with `ChildShards`.
//!
//! One subscription per consumer and shard: a second call within 5 s of the last successful one
//! is `ResourceInUseException`; a later one takes over, and the older ends with that exception.
//! The HTTP framing (AWS event streams) is the wire layer's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::read::{IteratorStart, ShardReader, children};
use super::{
    ChildShard, DataRecord, DataStream, DataStreams, DsError, SequenceNumber, Shard, ShardId, lock,
    read_lock,
};
use crate::clock::Timestamp;
use crate::log::Offset;

/// The most payload one event carries.
const EVENT_BYTES: usize = 1024 * 1024;
/// The most records one event carries (GetRecords' limit).
const EVENT_RECORDS: usize = 10_000;
/// An idle subscription's heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A second subscription of the same consumer and shard within this of the last one is refused.
const TAKEOVER_AFTER: Duration = Duration::from_secs(5);

/// The current subscription of each consumer and shard.
#[derive(Default)]
pub(super) struct Subscriptions {
    slots: Mutex<HashMap<(String, u32), Slot>>,
    generations: std::sync::atomic::AtomicU64,
}

#[derive(Clone, Copy)]
struct Slot {
    started: Timestamp,
    generation: u64,
}

/// One event: the records after the previous one's, and where the consumer stands.
#[derive(Debug)]
pub struct SubscribeEvent {
    pub records: Vec<DataRecord>,
    /// Resume with `AFTER_SEQUENCE_NUMBER` of this to continue where this event ended.
    pub continuation_sequence_number: SequenceNumber,
    pub millis_behind_latest: i64,
    /// Set on the last event of a closed shard read to its end.
    pub child_shards: Option<Vec<ChildShard>>,
}

/// A live subscription; [`Subscription::next`] yields its events.
pub struct Subscription {
    owner: Arc<DataStreams>,
    stream: Arc<DataStream>,
    shard: Arc<Shard>,
    reader: ShardReader,
    consumer: String,
    consumer_arn: String,
    generation: u64,
    cursor: Offset,
    deadline: Instant,
    /// When the pace allows the next event (bytes sent / rate).
    next_allowed: Instant,
    last_event: Option<Instant>,
    done: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("consumer", &self.consumer_arn)
            .field("shard", &self.shard.id())
            .field("cursor", &self.cursor)
            .finish()
    }
}

impl DataStreams {
    /// SubscribeToShard: checks the consumer, the shard and the starting position, and takes
    /// the consumer's slot on the shard.
    pub fn subscribe_to_shard(
        self: &Arc<Self>,
        consumer_arn: &str,
        shard_id: &str,
        start: IteratorStart,
    ) -> Result<Subscription, DsError> {
        let (stream, consumer) = self.find_consumer(None, None, Some(consumer_arn))?;
        self.require_created(&stream)?;
        let id = ShardId::parse(shard_id, "shardId")?;
        let shard = stream.shard(id)?;
        let reader = ShardReader { shard: shard.clone() };
        let cursor = match start {
            IteratorStart::TrimHorizon => reader.start(),
            IteratorStart::Latest => reader.committed_end(),
            IteratorStart::AtSequenceNumber(q) => reader.offset_of(q)?,
            IteratorStart::AfterSequenceNumber(q) => reader.offset_of(q)?.next(),
            IteratorStart::AtTimestamp(t) => reader.lower_bound_arrival(t)?,
        };
        let now = self.now();
        let generation = {
            let mut slots = lock(&self.subscriptions.slots);
            let key = (consumer_arn.to_owned(), id.0);
            if let Some(s) = slots.get(&key)
                && now.micros_since(s.started) < TAKEOVER_AFTER.as_micros() as i64
            {
                return Err(DsError::ResourceInUse(format!(
                    "Another active subscription exists for this consumer: {consumer_arn} on shard {id}. Retry after 5 seconds."
                )));
            }
            let lifetime = self.config.subscription_secs.as_micros() as i64;
            slots.retain(|_, s| now.micros_since(s.started) < lifetime);
            let generation =
                self.subscriptions.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let replaced = slots.insert(key, Slot { started: now, generation }).is_some();
            if replaced {
                // The subscription taken over learns it now, not at its next heartbeat.
                shard.log.wake();
            }
            generation
        };
        let started = Instant::now();
        Ok(Subscription {
            owner: self.clone(),
            stream,
            shard,
            reader,
            consumer: consumer.name,
            consumer_arn: consumer_arn.to_owned(),
            generation,
            cursor,
            deadline: started + self.config.subscription_secs,
            next_allowed: started,
            last_event: None,
            done: false,
        })
    }
}

impl Subscription {
    /// The next event; `Ok(None)` ends the subscription (its lifetime is over, a closed shard was
    /// delivered to its end, the stream is gone); an error ends it with that exception.
    pub async fn next(&mut self) -> Result<Option<SubscribeEvent>, DsError> {
        loop {
            if self.done || Instant::now() >= self.deadline {
                return Ok(None);
            }
            self.still_current()?;
            let mut watch = self.reader.subscribe();
            let end = *watch.borrow_and_update();
            if self.cursor < end {
                if Instant::now() < self.next_allowed {
                    tokio::time::sleep_until(self.next_allowed.min(self.deadline)).await;
                    continue;
                }
                return self.deliver(end).map(Some);
            }
            if self.reader.is_closed() {
                self.done = true;
                let mut event = self.event(Vec::new(), end)?;
                event.child_shards = Some(children(&self.stream, &self.shard));
                return Ok(Some(event));
            }
            let heartbeat = self.last_event.map_or_else(Instant::now, |t| t + HEARTBEAT);
            if Instant::now() >= heartbeat {
                self.last_event = Some(Instant::now());
                return self.event(Vec::new(), end).map(Some);
            }
            tokio::select! {
                r = watch.changed() => {
                    // The log stopped publishing: closed by resharding (delivered above on the
                    // next turn) or gone with its stream (the end).
                    if r.is_err() && !self.reader.is_closed() {
                        return Ok(None);
                    }
                }
                _ = tokio::time::sleep_until(heartbeat.min(self.deadline)) => {}
            }
        }
    }

    /// Records from the cursor, at most one event's worth; charges them to the pace.
    fn deliver(&mut self, end: Offset) -> Result<SubscribeEvent, DsError> {
        let records = self.reader.read(self.cursor, EVENT_RECORDS, EVENT_BYTES)?;
        if let Some(last) = records.last() {
            self.cursor = last.offset.next();
        }
        let now = Instant::now();
        if self.owner.config.throughput_limits {
            let bytes: usize = records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
            let rate = self.owner.config.read_bytes_per_sec.max(1) as f64;
            self.next_allowed =
                self.next_allowed.max(now) + Duration::from_secs_f64(bytes as f64 / rate);
        }
        self.last_event = Some(now);
        self.event(records, end)
    }

    fn event(&self, records: Vec<DataRecord>, end: Offset) -> Result<SubscribeEvent, DsError> {
        let log = &self.shard.log;
        let millis_behind_latest = if self.cursor >= end {
            0
        } else {
            match log.entry(self.cursor)? {
                Some(e) => self.owner.now().micros_since(e.arrival).max(0) / 1000,
                None => 0,
            }
        };
        self.shard.counters.read_out(&records, millis_behind_latest);
        // The last record delivered (or, before any, the one before the cursor): resuming
        // after it continues at the cursor.
        let continuation_sequence_number = match records.last() {
            Some(r) => r.sequence_number,
            None if self.cursor.0 == 0 => self.shard.starting,
            None => {
                let prev = Offset(self.cursor.0 - 1);
                // A record retention deleted is not checked against its arrival on resume.
                let arrival = log.entry(prev)?.map_or(self.shard.created_at, |e| e.arrival);
                SequenceNumber::encode(arrival, self.shard.ordinal, prev)
            }
        };
        Ok(SubscribeEvent {
            records,
            continuation_sequence_number,
            millis_behind_latest,
            child_shards: None,
        })
    }

    /// Fails once a newer subscription took this one's place or the consumer was deregistered.
    fn still_current(&mut self) -> Result<(), DsError> {
        let key = (self.consumer_arn.clone(), self.shard.ordinal);
        let current = lock(&self.owner.subscriptions.slots).get(&key).map(|s| s.generation);
        // (A slot pruned as older than any subscription's lifetime is not a takeover.)
        if current.is_some_and(|g| g != self.generation) {
            self.done = true;
            return Err(DsError::ResourceInUse(format!(
                "Another subscription of {} to shard {} took over this one.",
                self.consumer_arn,
                self.shard.id()
            )));
        }
        if !read_lock(&self.stream.state).consumers.iter().any(|c| c.name == self.consumer) {
            self.done = true;
            return Err(DsError::ResourceNotFound(format!(
                "Consumer {} was deregistered.",
                self.consumer_arn
            )));
        }
        Ok(())
    }
}
