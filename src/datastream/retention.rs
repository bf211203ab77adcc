//! Housekeeping over the shards' logs: retention (whole segments older than a stream's
//! retention; closed shards whose records are all gone removed) and the object tier's passes.

use std::sync::Arc;

use super::*;

impl DataStreams {
    /// One object-tier pass over every shard's log (`crate::log::tier`).
    pub fn tier_pass(&self, policy: &crate::log::tier::TierPolicy) -> crate::log::tier::TierReport {
        let now = self.now();
        let streams: Vec<Arc<DataStream>> =
            read_lock(&self.streams).by_id.values().cloned().collect();
        let mut total = crate::log::tier::TierReport::default();
        let mut policy = policy.clone();
        for s in streams {
            let shards: Vec<Arc<Shard>> = read_lock(&s.state).shards.values().cloned().collect();
            for shard in shards {
                match shard.log.tier_pass(&policy, now) {
                    Ok(r) => {
                        if r.error.is_some() {
                            policy.uploads = false;
                        }
                        total.add(r)
                    }
                    Err(e) => {
                        tracing::error!(stream = %s.name, shard = %shard.id(), error = %e, "tier pass failed")
                    }
                }
            }
        }
        total
    }

    /// One retention pass at the clock's now: deletes whole segments older than each stream's
    /// retention, and removes closed shards whose records are all gone and that closed longer
    /// than the retention period ago (Kinesis stops listing them then too).
    pub fn enforce_retention(&self) -> Vec<RetentionDeleted> {
        let now = self.now();
        let streams: Vec<Arc<DataStream>> =
            read_lock(&self.streams).by_id.values().cloned().collect();
        let mut out = Vec::new();
        for s in streams {
            let retention = s.retention();
            let shards: Vec<Arc<Shard>> = read_lock(&s.state).shards.values().cloned().collect();
            for shard in shards {
                match shard.log.enforce_retention(&retention, now) {
                    Ok(deleted) => out.extend(deleted.into_iter().map(|d| RetentionDeleted {
                        stream: s.name.clone(),
                        shard_id: shard.id(),
                        range: Some(d),
                    })),
                    Err(e) => {
                        tracing::error!(stream = %s.name, shard = %shard.id(), error = %e, "data stream retention failed")
                    }
                }
                let expired = shard.closed().is_some_and(|(_, at)| {
                    retention.max_age.is_some_and(|a| at < now.saturating_sub(a))
                }) && shard.log.start() >= shard.log.committed_end();
                if expired && self.remove_shard(&s, &shard) {
                    out.push(RetentionDeleted {
                        stream: s.name.clone(),
                        shard_id: shard.id(),
                        range: None,
                    });
                }
            }
        }
        out
    }

    fn remove_shard(&self, s: &DataStream, shard: &Shard) -> bool {
        let _admin = lock(&self.admin);
        if let Err(e) = store::delete_shard(&self.catalog, s.id, shard.ordinal) {
            tracing::error!(stream = %s.name, shard = %shard.id(), error = %e, "could not remove an expired shard");
            return false;
        }
        write_lock(&s.state).shards.remove(&shard.ordinal);
        shard.log.delete_remote();
        if let Err(e) = std::fs::remove_dir_all(shard.log.dir()) {
            tracing::warn!(dir = %shard.log.dir().display(), error = %e, "could not remove an expired shard's directory; it is removed at the next start");
        }
        tracing::info!(stream = %s.name, shard = %shard.id(), "expired closed shard removed");
        true
    }
}
