//! On-demand capacity: the scaler's pass over ON_DEMAND streams (hot shards split where their
//! load divides, see [`heat`]), warm throughput (`WarmThroughputMiBps` on CreateStream,
//! UpdateStreamWarmThroughput), and the account's settings (Describe/UpdateAccountSettings).
//!
//! An ON_DEMAND stream starts with `on_demand_shard_count` shards (4 MiB/s and 4,000 records/s
//! of writes with the default limits); its shards have the per-shard limits of provisioned
//! shards, as in Kinesis. Every `on_demand_scale_secs` the scaler takes each open shard's window
//! and splits the shards whose busiest second used half their limit or throttled, up to
//! `on_demand_max_shards` and the account's shard limit. The splits are ordinary reshards:
//! parents close, children name them, ListShards shows the lineage, and readers go from parent
//! to children as after SplitShard. Sluice does not merge shards back by itself (Kinesis scales
//! an idle on-demand stream down over a day); capacity once opened stays until UpdateStreamMode
//! or UpdateShardCount changes it.

use super::heat::{self, ShardLoad};
use super::store::CommitmentRow;
use super::*;

const MIB: u64 = 1024 * 1024;
/// How long a minimum throughput billing commitment lasts at least, as in Kinesis.
const COMMITMENT_MIN: Duration = Duration::from_secs(24 * 3600);

/// One scaling step the scaler took.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaled {
    pub stream: StreamName,
    pub closed: Vec<ShardId>,
    pub opened: Vec<ShardId>,
}

/// `WarmThroughput` of an ON_DEMAND stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmThroughput {
    pub target_mibps: u32,
    /// The write capacity its open shards give now.
    pub current_mibps: u32,
}

impl DataStreams {
    /// The open shards an ON_DEMAND stream needs for `warm` MiB/s of writes, at least the
    /// on-demand start; `LimitExceededException` past `on_demand_max_shards`.
    pub(super) fn on_demand_shards(&self, warm: Option<u32>) -> Result<u32, DsError> {
        let base = self.config.on_demand_shard_count;
        let Some(mibps) = warm else { return Ok(base) };
        let need = (u64::from(mibps) * MIB).div_ceil(self.config.write_bytes_per_sec);
        let max = u64::from(self.config.on_demand_max_shards);
        if need > max {
            return Err(DsError::LimitExceeded(format!(
                "WarmThroughputMiBps {mibps} exceeds the most an on-demand stream can scale to \
                 ({} MiB/s).",
                max * self.config.write_bytes_per_sec / MIB
            )));
        }
        Ok((need as u32).max(base))
    }

    /// The write capacity of `open` shards, in whole MiB/s.
    pub(super) fn capacity_mibps(&self, open: usize) -> u32 {
        u32::try_from(open as u64 * self.config.write_bytes_per_sec / MIB).unwrap_or(u32::MAX)
    }

    /// The most open shards stream `s` may have: `on_demand_max_shards`, and what the account's
    /// shard limit leaves.
    fn on_demand_cap(&self, s: &DataStream) -> usize {
        let others = self.user_open_shards(Some(s.id));
        (self.config.on_demand_max_shards as usize)
            .min((self.config.shard_limit as usize).saturating_sub(others))
    }

    /// One scaling pass at the clock's now: every ON_DEMAND stream whose window has run
    /// `on_demand_scale_secs` is looked at (its shards' windows restart) and its hot shards
    /// split. Returns what was split; failures are logged and retried at the next window.
    pub fn autoscale(&self) -> Vec<Scaled> {
        let now = self.now();
        let streams: Vec<Arc<DataStream>> =
            read_lock(&self.streams).by_id.values().cloned().collect();
        let mut out = Vec::new();
        for s in streams {
            {
                let mut st = write_lock(&s.state);
                if st.mode != StreamMode::OnDemand
                    || now < st.scaled_at.saturating_add(self.config.on_demand_scale_secs)
                {
                    continue;
                }
                st.scaled_at = now;
            }
            match self.scale_stream(&s) {
                Ok(Some(step)) => out.push(step),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(stream = %s.name, error = %e, "on-demand scaling failed; retried at the next window")
                }
            }
        }
        out
    }

    fn scale_stream(&self, s: &DataStream) -> Result<Option<Scaled>, DsError> {
        let _admin = lock(&self.admin);
        let now = self.now();
        let (open, warm) = {
            let st = read_lock(&s.state);
            (st.open.clone(), st.warm_mibps)
        };
        let loads: Vec<ShardLoad> = open
            .iter()
            .map(|sh| ShardLoad {
                ordinal: sh.ordinal,
                range: sh.range,
                heat: lock(&sh.writer).heat.take(now),
            })
            .collect();
        if self.status(s, &read_lock(&s.state)) != "ACTIVE" {
            return Ok(None);
        }
        let cap = self.on_demand_cap(s);
        let floor = self.on_demand_shards(Some(warm)).map_or(cap, |n| n as usize);
        let splits = heat::plan(&loads, &self.rates(), floor, cap);
        if splits.is_empty() {
            for l in &loads {
                if l.heat.utilization(&self.rates()) >= heat::SPLIT_AT {
                    tracing::debug!(stream = %s.name, shard = %ShardId(l.ordinal), "hot shard not split: its load is one partition key, or the stream is at its most shards");
                }
            }
            return Ok(None);
        }
        let at: Vec<(Arc<Shard>, HashKey)> = splits
            .iter()
            .filter_map(|sp| {
                open.iter().find(|o| o.ordinal == sp.ordinal).map(|o| (o.clone(), sp.at))
            })
            .collect();
        let opened = self.split_at(s, &at)?;
        let closed: Vec<ShardId> = at.iter().map(|(p, _)| p.id()).collect();
        tracing::info!(stream = %s.name, closed = ?closed.iter().map(ToString::to_string).collect::<Vec<_>>(), opened = opened.len(), "on-demand stream scaled up");
        Ok(Some(Scaled { stream: s.name.clone(), closed, opened }))
    }

    /// UpdateStreamWarmThroughput: the write capacity an ON_DEMAND stream keeps open, opened at
    /// once (the widest shards split at their middles, round by round). A lower target is
    /// recorded; open shards stay (see the module docs).
    pub fn update_warm_throughput(
        &self,
        sel: StreamSel<'_>,
        mibps: i64,
    ) -> Result<(String, String, WarmThroughput), DsError> {
        validate::range(mibps, "warmThroughputMiBps", 0, i64::from(i32::MAX))?;
        let mibps = mibps as u32;
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        if read_lock(&s.state).mode != StreamMode::OnDemand {
            return Err(DsError::InvalidArgument(format!(
                "Stream {} under account {} is in PROVISIONED mode; warm throughput applies to \
                 ON_DEMAND streams.",
                s.name, self.config.account_id
            )));
        }
        self.require_active(&s)?;
        let floor = self.on_demand_shards(Some(mibps))? as usize;
        store::set_warm_mibps(&self.catalog, s.id, mibps)?;
        write_lock(&s.state).warm_mibps = mibps;
        let cap = self.on_demand_cap(&s);
        loop {
            let open = read_lock(&s.state).open.clone();
            let loads: Vec<ShardLoad> = open
                .iter()
                .map(|sh| ShardLoad {
                    ordinal: sh.ordinal,
                    range: sh.range,
                    heat: Default::default(),
                })
                .collect();
            let splits = heat::plan(&loads, &self.rates(), floor, cap);
            if splits.is_empty() {
                break;
            }
            let at: Vec<(Arc<Shard>, HashKey)> = splits
                .iter()
                .filter_map(|sp| {
                    open.iter().find(|o| o.ordinal == sp.ordinal).map(|o| (o.clone(), sp.at))
                })
                .collect();
            self.split_at(&s, &at)?;
        }
        self.updated(&mut write_lock(&s.state));
        Ok((s.name.to_string(), self.stream_arn(s.name.as_str()), self.warm_throughput(&s)))
    }

    /// An ON_DEMAND stream's warm throughput (`None` for a provisioned one).
    pub(super) fn warm_throughput(&self, s: &DataStream) -> WarmThroughput {
        let st = read_lock(&s.state);
        WarmThroughput {
            target_mibps: st.warm_mibps,
            current_mibps: self.capacity_mibps(st.open.len()),
        }
    }

    // ---- account settings -------------------------------------------------------------------

    /// DescribeAccountSettings: the minimum throughput billing commitment as recorded (Sluice
    /// bills nothing; the commitment is kept and reported so tools that set it work). A disable
    /// asked for before the earliest end takes effect then.
    pub fn account_settings(&self) -> Result<CommitmentRow, DsError> {
        let now = self.now();
        let mut c = store::get_commitment(&self.catalog)?
            .unwrap_or(CommitmentRow { status: "DISABLED".to_owned(), ..Default::default() });
        if c.status == "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
            && let Some(end) = c.earliest_end_at
            && now >= end
        {
            c.status = "DISABLED".to_owned();
            c.ended_at = Some(end);
        }
        Ok(c)
    }

    /// UpdateAccountSettings: `ENABLED` starts a commitment (at least 24 hours) or cancels a
    /// pending disable; `DISABLED` ends it, or, before its earliest end, schedules the end then.
    pub fn update_account_settings(&self, status: &str) -> Result<CommitmentRow, DsError> {
        if status != "ENABLED" && status != "DISABLED" {
            return Err(validate::violation(
                status,
                "minimumThroughputBillingCommitment.status",
                "Member must satisfy enum value set: [ENABLED, DISABLED]",
            ));
        }
        let _admin = lock(&self.admin);
        let now = self.now();
        let mut c = self.account_settings()?;
        match (c.status.as_str(), status) {
            ("DISABLED", "ENABLED") => {
                c = CommitmentRow {
                    status: "ENABLED".to_owned(),
                    started_at: Some(now),
                    ended_at: None,
                    earliest_end_at: Some(now.saturating_add(COMMITMENT_MIN)),
                };
            }
            ("ENABLED_UNTIL_EARLIEST_ALLOWED_END", "ENABLED") => c.status = "ENABLED".to_owned(),
            ("ENABLED", "DISABLED") => {
                if c.earliest_end_at.is_some_and(|end| now < end) {
                    c.status = "ENABLED_UNTIL_EARLIEST_ALLOWED_END".to_owned();
                } else {
                    c.status = "DISABLED".to_owned();
                    c.ended_at = Some(now);
                }
            }
            _ => return Ok(c),
        }
        store::set_commitment(&self.catalog, &c)?;
        Ok(c)
    }
}
