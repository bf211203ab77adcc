//! Resharding with lineage (SplitShard, MergeShards, UpdateShardCount) and ListShards with its
//! filters.
//!
//! A reshard closes its parents and opens its children in one step, under the stream's state
//! lock and the parents' writer locks: the parents are synced, their `EndingSequenceNumber` is
//! set to the sequence number of the last record written to them (or their
//! `StartingSequenceNumber` if they got none), the children's logs are created, and only then is
//! one catalog transaction committed. Writes racing with it are routed again to the children.
//! Records in closed parents stay readable until retention drops them.
//!
//! UpdateShardCount (UNIFORM_SCALING) closes every open shard and opens `target` children with
//! uniform ranges. A child's `ParentShardId` is the old shard covering the child's starting hash
//! key, its `AdjacentParentShardId` the next old shard its range overlaps, if any (Kinesis names
//! at most two parents; with non-uniform old ranges a child may overlap a third, which it does
//! not name).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::store::{DataStreamId, ShardRow};
use super::{
    DataStream, DataStreams, DsError, HashKey, HashKeyRange, SequenceNumber, Shard,
    ShardDescription, ShardId, StreamSel, hashkey, lock, read_lock, token, validate, write_lock,
};
use crate::clock::Timestamp;
use crate::log::Offset;

/// ListShards' `ShardFilter`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ShardFilter {
    AfterShardId(u32),
    AtTrimHorizon,
    FromTrimHorizon,
    AtLatest,
    /// Epoch microseconds.
    AtTimestamp(i64),
    FromTimestamp(i64),
}

impl ShardFilter {
    /// From the wire members `Type`, `ShardId` and `Timestamp`.
    pub fn from_wire(
        kind: &str,
        shard_id: Option<&str>,
        timestamp: Option<Timestamp>,
    ) -> Result<ShardFilter, DsError> {
        let ts = || {
            timestamp.map(Timestamp::as_micros).ok_or_else(|| {
                DsError::InvalidArgument(format!(
                    "Timestamp is required for ShardFilter type {kind}."
                ))
            })
        };
        match kind {
            "AFTER_SHARD_ID" => {
                let id = shard_id.ok_or_else(|| {
                    DsError::InvalidArgument(
                        "ShardId is required for ShardFilter type AFTER_SHARD_ID.".to_owned(),
                    )
                })?;
                Ok(ShardFilter::AfterShardId(ShardId::parse(id, "shardFilter.shardId")?.0))
            }
            "AT_TRIM_HORIZON" => Ok(ShardFilter::AtTrimHorizon),
            "FROM_TRIM_HORIZON" => Ok(ShardFilter::FromTrimHorizon),
            "AT_LATEST" => Ok(ShardFilter::AtLatest),
            "AT_TIMESTAMP" => Ok(ShardFilter::AtTimestamp(ts()?)),
            "FROM_TIMESTAMP" => Ok(ShardFilter::FromTimestamp(ts()?)),
            other => Err(validate::violation(
                other,
                "shardFilter.type",
                "Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]",
            )),
        }
    }
}

/// What a ListShards NextToken remembers.
#[derive(Serialize, Deserialize)]
struct ListShardsToken {
    stream: DataStreamId,
    created: i64,
    after: u32,
    filter: Option<ShardFilter>,
    issued_ms: i64,
}

/// ListShards' request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListShardsRequest<'a> {
    pub stream: StreamSel<'a>,
    pub next_token: Option<&'a str>,
    pub exclusive_start_shard_id: Option<&'a str>,
    pub max_results: Option<i64>,
    pub filter: Option<ShardFilter>,
}

/// A child shard to create.
struct NewChild {
    range: HashKeyRange,
    parent: u32,
    adjacent_parent: Option<u32>,
}

impl DataStreams {
    /// ListShards: shards in ordinal order, at most `max_results` (1–10,000, default 1,000),
    /// and a `NextToken` (valid five minutes) when there are more. `NextToken` excludes
    /// `StreamName`/`StreamARN`, `ExclusiveStartShardId` and `ShardFilter`.
    pub fn list_shards(
        &self,
        req: ListShardsRequest<'_>,
    ) -> Result<(Vec<ShardDescription>, Option<String>), DsError> {
        if let Some(m) = req.max_results {
            validate::range(m, "maxResults", 1, 10_000)?;
        }
        let now = self.now();
        let (stream, after, filter) = match req.next_token {
            Some(t) => {
                if req.stream.name.is_some() || req.stream.arn.is_some() {
                    return Err(DsError::InvalidArgument(
                        "NextToken and StreamName or StreamARN cannot be provided together."
                            .to_owned(),
                    ));
                }
                if req.exclusive_start_shard_id.is_some() || req.filter.is_some() {
                    return Err(DsError::InvalidArgument(
                        "NextToken cannot be provided together with ExclusiveStartShardId or ShardFilter."
                            .to_owned(),
                    ));
                }
                let tok: ListShardsToken = self.signer.verify_next_token(t)?;
                token::check_token_age(tok.issued_ms, now)?;
                let s = self
                    .by_id(tok.stream)
                    .filter(|s| s.created_at.as_micros() == tok.created)
                    .ok_or_else(|| {
                        DsError::ResourceNotFound(
                            "The stream of this NextToken no longer exists.".to_owned(),
                        )
                    })?;
                (s, Some(tok.after), tok.filter)
            }
            None => {
                let s = self.resolve(req.stream)?;
                let after = match req.exclusive_start_shard_id {
                    Some(id) => {
                        validate::name(id, "exclusiveStartShardId", 128)?;
                        ShardId::parse(id, "exclusiveStartShardId").ok().map(|i| i.0)
                    }
                    None => None,
                };
                (s, after, req.filter)
            }
        };
        let max = req.max_results.unwrap_or(1000) as usize;
        let all = self.filtered_shards(&stream, filter, now);
        let rest: Vec<ShardDescription> =
            all.into_iter().filter(|d| after.is_none_or(|a| d.shard_id.0 > a)).collect();
        let more = rest.len() > max;
        let page: Vec<ShardDescription> = rest.into_iter().take(max).collect();
        let token = match page.last() {
            Some(last) if more => Some(self.signer.next_token(&ListShardsToken {
                stream: stream.id,
                created: stream.created_at.as_micros(),
                after: last.shard_id.0,
                filter,
                issued_ms: now.as_millis(),
            })),
            _ => None,
        };
        Ok((page, token))
    }

    fn filtered_shards(
        &self,
        s: &DataStream,
        filter: Option<ShardFilter>,
        _now: Timestamp,
    ) -> Vec<ShardDescription> {
        let shards: Vec<Arc<Shard>> = read_lock(&s.state).shards.values().cloned().collect();
        let closed_at = |sh: &Shard| sh.closed().map(|c| c.1);
        let alive_at =
            |sh: &Shard, t: Timestamp| sh.created_at <= t && closed_at(sh).is_none_or(|c| c > t);
        let keep: Vec<&Arc<Shard>> = match filter {
            None | Some(ShardFilter::FromTrimHorizon) => shards.iter().collect(),
            Some(ShardFilter::AfterShardId(o)) => {
                shards.iter().filter(|sh| sh.ordinal > o).collect()
            }
            Some(ShardFilter::AtLatest) => {
                shards.iter().filter(|sh| closed_at(sh).is_none()).collect()
            }
            Some(ShardFilter::AtTrimHorizon) => {
                // The oldest generation still kept: shards none of whose parents are kept.
                let kept =
                    |o: Option<u32>| o.is_some_and(|o| shards.iter().any(|x| x.ordinal == o));
                shards.iter().filter(|sh| !kept(sh.parent) && !kept(sh.adjacent_parent)).collect()
            }
            Some(ShardFilter::AtTimestamp(us)) => {
                let t = Timestamp::from_micros(us).max(s.created_at);
                shards.iter().filter(|sh| alive_at(sh, t)).collect()
            }
            Some(ShardFilter::FromTimestamp(us)) => {
                let t = Timestamp::from_micros(us);
                shards.iter().filter(|sh| closed_at(sh).is_none_or(|c| c >= t)).collect()
            }
        };
        keep.into_iter().map(|sh| sh.describe()).collect()
    }

    /// Closes `parents` and opens `children`, atomically (see the module docs). The caller holds
    /// `admin`.
    fn reshard(
        &self,
        s: &DataStream,
        parents: &[Arc<Shard>],
        children: Vec<NewChild>,
    ) -> Result<Vec<ShardId>, DsError> {
        let mut st = write_lock(&s.state);
        let mut guards = Vec::with_capacity(parents.len());
        for p in parents {
            let g = lock(&p.writer);
            if g.closed.is_some() {
                return Err(not_eligible(s, p));
            }
            guards.push(g);
        }
        let open_after = st.open.len() - parents.len() + children.len();
        if !self.is_system(s) {
            let others = self.user_open_shards(Some(s.id));
            if (others + open_after) as u64 > u64::from(self.config.shard_limit) {
                let more = children.len().saturating_sub(parents.len());
                return Err(self.shard_limit_exceeded(others + st.open.len(), more));
            }
        }
        let now = self.now();
        let mut endings = Vec::with_capacity(parents.len());
        for p in parents {
            p.log.sync()?;
            let ending = p
                .log
                .stats()
                .last
                .map_or(p.starting, |e| SequenceNumber::encode(e.arrival, p.ordinal, e.offset));
            endings.push((p.ordinal, ending));
        }
        let first = st.next_ordinal;
        let rows: Vec<ShardRow> = children
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ordinal = first + i as u32;
                ShardRow {
                    ordinal,
                    range: c.range,
                    parent: Some(c.parent),
                    adjacent_parent: c.adjacent_parent,
                    created_at: now,
                    starting: SequenceNumber::encode(now, ordinal, Offset(0)),
                    closed: None,
                }
            })
            .collect();
        let next = first + rows.len() as u32;
        if next >= super::seqno::MAX_ORDINAL {
            return Err(DsError::LimitExceeded("This stream has used every shard id.".to_owned()));
        }
        // Children's logs first: a crash before the catalog commit leaves only directories the
        // next start removes; never a listed shard without its log.
        let mut opened = Vec::with_capacity(rows.len());
        for r in &rows {
            let dir = s.dir.join(r.ordinal.to_string());
            match Shard::open(r, dir, &self.log_config, &self.clock, self.rates()) {
                Ok(sh) => opened.push(Arc::new(sh)),
                Err(e) => {
                    remove_dirs(&opened);
                    return Err(e);
                }
            }
        }
        if let Err(e) = super::store::reshard(&self.catalog, s.id, &endings, now, &rows, next) {
            remove_dirs(&opened);
            return Err(e);
        }
        for (g, (_, ending)) in guards.iter_mut().zip(&endings) {
            g.closed = Some((*ending, now));
        }
        drop(guards);
        let ids = opened.iter().map(|c| c.id()).collect();
        for c in opened {
            st.shards.insert(c.ordinal, c);
        }
        st.next_ordinal = next;
        st.rebuild_open();
        self.updated(&mut st);
        // Followers of the closed shards (subscriptions, SSE) learn it now, not at their next
        // heartbeat.
        for p in parents {
            p.log.wake();
        }
        tracing::info!(stream = %s.name, closed = ?parents.iter().map(|p| p.id().to_string()).collect::<Vec<_>>(), opened = ?ids, "data stream resharded");
        Ok(ids)
    }

    /// Splits each shard of `at` at its key (children `[start, k-1]` and `[k, end]`) in one
    /// reshard: the on-demand scaler and warm throughput. The caller holds `admin`.
    pub(super) fn split_at(
        &self,
        s: &DataStream,
        at: &[(Arc<Shard>, HashKey)],
    ) -> Result<Vec<ShardId>, DsError> {
        let mut parents = Vec::with_capacity(at.len());
        let mut children = Vec::with_capacity(2 * at.len());
        for (p, k) in at {
            let r = p.range;
            if !(k.0 > r.start.0 && k.0 <= r.end.0) {
                return Err(DsError::Internal(format!(
                    "split of {} at {k} outside its range",
                    p.id()
                )));
            }
            children.push(NewChild {
                range: HashKeyRange { start: r.start, end: HashKey(k.0 - 1) },
                parent: p.ordinal,
                adjacent_parent: None,
            });
            children.push(NewChild {
                range: HashKeyRange { start: *k, end: r.end },
                parent: p.ordinal,
                adjacent_parent: None,
            });
            parents.push(p.clone());
        }
        self.reshard(s, &parents, children)
    }

    /// SplitShard: `new_starting_hash_key` must lie strictly inside the shard's range (above its
    /// start + 1 and below its end, as Kinesis requires). Children: `[start, k-1]` then `[k, end]`.
    pub fn split_shard(
        &self,
        sel: StreamSel<'_>,
        shard_to_split: &str,
        new_starting_hash_key: &str,
    ) -> Result<(), DsError> {
        let mut v = validate::Violations::default();
        v.decimal("newStartingHashKey", Some(new_starting_hash_key), true, 39);
        v.name("streamName", sel.name, false, super::MAX_NAME_LEN);
        v.name("shardToSplit", Some(shard_to_split), true, 128);
        v.finish()?;
        let id = self.shard_arg(&sel, shard_to_split)?;
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        self.require_active(&s)?;
        let shard = s.shard(id)?;
        if shard.closed().is_some() {
            return Err(not_eligible(&s, &shard));
        }
        let r = shard.range;
        // A key past 2^128-1 is outside every shard: the same answer as one past this shard's.
        let k = new_starting_hash_key.parse::<u128>().ok().map(HashKey);
        let Some(k) = k.filter(|k| k.0 > r.start.0.saturating_add(1) && k.0 < r.end.0) else {
            return Err(DsError::InvalidArgument(format!(
                "NewStartingHashKey {new_starting_hash_key} used in SplitShard() on shard {id} in stream {} under account {} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                s.name, s.account, r.start, r.end
            )));
        };
        let children = vec![
            NewChild {
                range: HashKeyRange { start: r.start, end: HashKey(k.0 - 1) },
                parent: id.0,
                adjacent_parent: None,
            },
            NewChild {
                range: HashKeyRange { start: k, end: r.end },
                parent: id.0,
                adjacent_parent: None,
            },
        ];
        self.reshard(&s, &[shard], children).map(|_| ())
    }

    /// MergeShards: two open shards with adjacent ranges; the child's `ParentShardId` is
    /// `shard_to_merge` and its `AdjacentParentShardId` is `adjacent_shard_to_merge`.
    pub fn merge_shards(
        &self,
        sel: StreamSel<'_>,
        shard_to_merge: &str,
        adjacent_shard_to_merge: &str,
    ) -> Result<(), DsError> {
        let mut v = validate::Violations::default();
        v.name("shardToMerge", Some(shard_to_merge), true, 128);
        v.name("adjacentShardToMerge", Some(adjacent_shard_to_merge), true, 128);
        v.name("streamName", sel.name, false, super::MAX_NAME_LEN);
        v.finish()?;
        let a_id = self.shard_arg(&sel, shard_to_merge)?;
        let b_id = self.shard_arg(&sel, adjacent_shard_to_merge)?;
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        self.require_active(&s)?;
        let a = s.shard(a_id)?;
        let b = s.shard(b_id)?;
        for sh in [&a, &b] {
            if sh.closed().is_some() {
                return Err(not_eligible(&s, sh));
            }
        }
        let range = if a.range.is_followed_by(&b.range) {
            HashKeyRange { start: a.range.start, end: b.range.end }
        } else if b.range.is_followed_by(&a.range) {
            HashKeyRange { start: b.range.start, end: a.range.end }
        } else {
            return Err(DsError::InvalidArgument(format!(
                "Shards {a_id} and {b_id} in stream {} under account {} are not an adjacent pair of shards eligible for merging",
                s.name, s.account
            )));
        };
        let mut parents = vec![a.clone(), b.clone()];
        parents.sort_by_key(|p| p.ordinal);
        let child = NewChild { range, parent: a_id.0, adjacent_parent: Some(b_id.0) };
        self.reshard(&s, &parents, vec![child]).map(|_| ())
    }

    /// UpdateShardCount with UNIFORM_SCALING: the target must lie within
    /// `[ceil(open / 2), 2 × open]` and within the shard limit (`LimitExceededException`
    /// otherwise). Returns (current open shard count, target). A target equal to the current
    /// count over already uniform ranges changes nothing.
    pub fn update_shard_count(
        &self,
        sel: StreamSel<'_>,
        target: i64,
        scaling_type: &str,
    ) -> Result<(u32, u32), DsError> {
        validate::range(target, "targetShardCount", 1, i64::from(i32::MAX))?;
        if scaling_type != "UNIFORM_SCALING" {
            return Err(validate::violation(
                scaling_type,
                "scalingType",
                "Member must satisfy enum value set: [UNIFORM_SCALING]",
            ));
        }
        let target = target as u32;
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        self.require_active(&s)?;
        let open: Vec<Arc<Shard>> = read_lock(&s.state).open.clone();
        let current = open.len() as u32;
        if u64::from(target) > 2 * u64::from(current) {
            return Err(DsError::LimitExceeded(format!(
                "UpdateShardCount cannot scale up over double the current open shard count ({current}); requested {target}."
            )));
        }
        if target < current.div_ceil(2) {
            return Err(DsError::LimitExceeded(format!(
                "UpdateShardCount cannot scale down below half the current open shard count ({current}); requested {target}."
            )));
        }
        let ranges = hashkey::uniform_ranges(target);
        let same =
            ranges.len() == open.len() && ranges.iter().zip(&open).all(|(r, o)| *r == o.range);
        if same {
            return Ok((current, target));
        }
        let children = ranges
            .into_iter()
            .map(|range| {
                // `open` is sorted by range start and covers the whole space.
                let covering = open.iter().position(|o| o.range.contains(range.start)).unwrap_or(0);
                let adjacent =
                    open.get(covering + 1).filter(|o| o.range.overlaps(&range)).map(|o| o.ordinal);
                NewChild { range, parent: open[covering].ordinal, adjacent_parent: adjacent }
            })
            .collect();
        let mut parents = open.clone();
        parents.sort_by_key(|p| p.ordinal);
        self.reshard(&s, &parents, children)?;
        Ok((current, target))
    }
}

fn not_eligible(s: &DataStream, sh: &Shard) -> DsError {
    DsError::ResourceInUse(format!(
        "Shard {} in stream {} under account {} has already been merged or split, and thus is not eligible for merging or splitting.",
        sh.id(),
        s.name,
        s.account
    ))
}

fn remove_dirs(shards: &[Arc<Shard>]) {
    for sh in shards {
        let _ = std::fs::remove_dir_all(sh.log.dir());
    }
}
