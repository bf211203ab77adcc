//! The stream-level operations of data streams: CreateStream, DeleteStream, DescribeStream(Summary),
//! ListStreams, retention periods, UpdateStreamMode, tags, DescribeLimits. Each takes `admin`
//! when it changes the set of streams or shards (see the lock order in the parent module).

use super::*;

impl DataStreams {
    // ---- streams ----------------------------------------------------------------------------

    /// CreateStream. Kinesis limits: the shard limit across open shards
    /// (`LimitExceededException`), the on-demand stream limit, 50 tags; `MaxRecordSizeInKiB`
    /// 1024–10240 (default 1024).
    pub fn create_stream(
        &self,
        name: &str,
        capacity: Capacity,
        tags: BTreeMap<String, String>,
        max_record_kib: Option<i64>,
    ) -> Result<(), DsError> {
        validate::name(name, "streamName", MAX_NAME_LEN)?;
        if let Some(k) = max_record_kib {
            validate::range(k, "maxRecordSizeInKiB", MIN_RECORD_KIB, MAX_RECORD_KIB)?;
        }
        let max_record_kib = max_record_kib.map_or(MIN_RECORD_KIB as u32, |k| k as u32);
        validate_tags(&tags)?;
        if tags.len() > MAX_TAGS {
            return Err(DsError::InvalidArgument(format!(
                "Failed to create stream {name} under account {} because a given stream cannot have more than {MAX_TAGS} tags associated with it.",
                self.config.account_id
            )));
        }
        tag_characters(&format!("create stream {name}"), &self.config.account_id, &tags)?;
        let stream_name = StreamName::new(name).map_err(|e| DsError::Validation(e.to_string()))?;
        let (mode, shard_count) = match capacity {
            Capacity::Provisioned { shard_count } => {
                validate::range(i64::from(shard_count), "shardCount", 1, i64::from(i32::MAX))?;
                (StreamMode::Provisioned, shard_count)
            }
            Capacity::OnDemand { warm_mibps } => {
                (StreamMode::OnDemand, self.on_demand_shards(warm_mibps)?)
            }
        };
        let _admin = lock(&self.admin);
        self.finish_deletions_locked();
        if read_lock(&self.streams).by_name.contains_key(&stream_name) {
            return Err(DsError::ResourceInUse(format!(
                "Stream {name} under account {} already exists.",
                self.config.account_id
            )));
        }
        if mode == StreamMode::OnDemand
            && self.on_demand_count() >= self.config.on_demand_stream_limit
        {
            return Err(DsError::LimitExceeded(format!(
                "This request would exceed the on-demand stream limit of {}.",
                self.config.on_demand_stream_limit
            )));
        }
        let open = self.user_open_shards(None);
        if open as u64 + u64::from(shard_count) > u64::from(self.config.shard_limit) {
            return Err(self.shard_limit_exceeded(open, shard_count as usize));
        }
        let warm = match capacity {
            Capacity::OnDemand { warm_mibps } => warm_mibps.unwrap_or(0),
            Capacity::Provisioned { .. } => 0,
        };
        self.insert_stream(stream_name, mode, shard_count, tags, max_record_kib, warm)
    }

    /// UpdateMaxRecordSize: the largest record (data + partition key) the stream takes, in KiB
    /// (1024–10240).
    pub fn update_max_record_size(&self, sel: StreamSel<'_>, kib: i64) -> Result<(), DsError> {
        validate::range(kib, "maxRecordSizeInKiB", MIN_RECORD_KIB, MAX_RECORD_KIB)?;
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        self.require_active(&s)?;
        store::set_max_record_kib(&self.catalog, s.id, kib as u32)?;
        let mut st = write_lock(&s.state);
        st.max_record_kib = kib as u32;
        self.updated(&mut st);
        Ok(())
    }

    fn on_demand_count(&self) -> u32 {
        read_lock(&self.streams)
            .by_id
            .values()
            .filter(|s| read_lock(&s.state).mode == StreamMode::OnDemand)
            .count() as u32
    }

    /// Creates the stream's rows and logs; the caller holds `admin`.
    fn insert_stream(
        &self,
        name: StreamName,
        mode: StreamMode,
        shard_count: u32,
        tags: BTreeMap<String, String>,
        max_record_kib: u32,
        warm_mibps: u32,
    ) -> Result<(), DsError> {
        let now = self.now();
        let rows: Vec<ShardRow> = hashkey::uniform_ranges(shard_count)
            .into_iter()
            .enumerate()
            .map(|(i, range)| ShardRow {
                ordinal: i as u32,
                range,
                parent: None,
                adjacent_parent: None,
                created_at: now,
                starting: SequenceNumber::encode(now, i as u32, Offset(0)),
                closed: None,
            })
            .collect();
        let row = StreamRow {
            id: DataStreamId(0),
            name: name.to_string(),
            created_at: now,
            retention_hours: DEFAULT_RETENTION_HOURS,
            mode,
            next_ordinal: shard_count,
            max_record_kib,
            encryption_key: None,
            shard_metrics: String::new(),
            warm_mibps,
        };
        let id = store::insert_stream(&self.catalog, &row, &rows, &tags)?;
        let dir = self.root.join(id.to_string());
        let opened: Result<BTreeMap<u32, Arc<Shard>>, DsError> = rows
            .iter()
            .map(|r| {
                let s = Shard::open(
                    r,
                    dir.join(r.ordinal.to_string()),
                    &self.log_config,
                    &self.clock,
                    self.rates(),
                )?;
                Ok((r.ordinal, Arc::new(s)))
            })
            .collect();
        let shards = match opened {
            Ok(s) => s,
            Err(e) => {
                // Leave no listed-but-unreadable stream behind.
                let _ = store::delete_stream(&self.catalog, id);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut state = StreamState {
            retention_hours: DEFAULT_RETENTION_HOURS,
            max_record_kib,
            updating_until: Timestamp::MIN,
            encryption_key: None,
            shard_metrics: Default::default(),
            mode,
            warm_mibps,
            scaled_at: now,
            deleting_until: None,
            next_ordinal: shard_count,
            shards,
            open: Vec::new(),
            tags,
            consumers: Vec::new(),
        };
        state.rebuild_open();
        let stream = Arc::new(DataStream {
            id,
            name: name.clone(),
            created_at: now,
            dir,
            account: Arc::from(self.config.account_id.as_str()),
            state: RwLock::new(state),
        });
        let mut reg = write_lock(&self.streams);
        reg.by_id.insert(id, stream.clone());
        reg.by_name.insert(name.clone(), stream);
        tracing::info!(stream = %name, %id, shards = shard_count, mode = mode.as_str(), "data stream created");
        Ok(())
    }

    /// Creates the stream with `shard_count` shards (provisioned, 24 h retention) if it does not
    /// exist; for the server's own system streams. Not subject to the shard limit. From then on
    /// the stream cannot be deleted (Sluice writes its events there).
    pub fn ensure_stream(&self, name: &StreamName, shard_count: u32) -> Result<(), DsError> {
        let _admin = lock(&self.admin);
        lock(&self.system).insert(name.to_string());
        if read_lock(&self.streams).by_name.contains_key(name) {
            return Ok(());
        }
        validate::name(name.as_str(), "streamName", MAX_NAME_LEN)?;
        self.insert_stream(
            name.clone(),
            StreamMode::Provisioned,
            shard_count.max(1),
            BTreeMap::new(),
            MIN_RECORD_KIB as u32,
            0,
        )
    }

    /// Deletes a system stream the server made for its own use (a DirectPut delivery stream's
    /// records), which DeleteStream refuses; a stream that does not exist is no error.
    pub fn delete_system_stream(&self, name: &StreamName) -> Result<(), DsError> {
        lock(&self.system).remove(name.as_str());
        match self.delete_stream(StreamSel::name(name.as_str()), true) {
            Err(DsError::ResourceNotFound(_)) => Ok(()),
            other => other,
        }
    }

    /// DeleteStream. A stream with registered consumers needs `enforce_consumer_deletion`.
    pub fn delete_stream(
        &self,
        sel: StreamSel<'_>,
        enforce_consumer_deletion: bool,
    ) -> Result<(), DsError> {
        let _admin = lock(&self.admin);
        let stream = self.resolve(sel)?;
        if lock(&self.system).contains(stream.name.as_str()) {
            return Err(DsError::ResourceInUse(format!(
                "Stream {} is a Sluice system stream (its lifecycle events or producers' metadata are written there); it cannot be deleted.",
                stream.name
            )));
        }
        if !enforce_consumer_deletion && !read_lock(&stream.state).consumers.is_empty() {
            return Err(DsError::ResourceInUse(format!(
                "Stream {} has registered consumers; set EnforceConsumerDeletion to delete it.",
                stream.name
            )));
        }
        self.require_not_deleting(&stream)?;
        // The catalog forgets the stream now, so a restart during DELETING finishes the job.
        store::delete_stream(&self.catalog, stream.id)?;
        let ms = self.config.delete_stream_ms;
        if ms.is_zero() {
            self.remove_stream(&stream);
        } else {
            write_lock(&stream.state).deleting_until = Some(self.now().saturating_add(ms));
            tracing::info!(stream = %stream.name, id = %stream.id, "data stream DELETING");
        }
        Ok(())
    }

    /// Takes a deleted stream out of the registry and removes its files.
    fn remove_stream(&self, stream: &DataStream) {
        {
            let mut reg = write_lock(&self.streams);
            if reg.by_id.get(&stream.id).is_some_and(|s| std::ptr::eq(&**s, stream)) {
                reg.by_id.remove(&stream.id);
                reg.by_name.remove(&stream.name);
            }
        }
        // Readers holding segment files finish their reads; the files go with the directory,
        // the tiered segments' objects with their shards.
        for shard in read_lock(&stream.state).shards.values() {
            shard.log.delete_remote();
        }
        if let Err(e) = std::fs::remove_dir_all(&stream.dir) {
            tracing::warn!(dir = %stream.dir.display(), error = %e, "could not remove a deleted data stream's directory; it is removed at the next start");
        }
        tracing::info!(stream = %stream.name, id = %stream.id, "data stream deleted");
    }

    /// Removes the streams whose `DELETING` time has run out (the housekeeping pass; lookups
    /// already treat them as gone).
    pub fn finish_deletions(&self) {
        let _admin = lock(&self.admin);
        self.finish_deletions_locked();
    }

    pub(super) fn finish_deletions_locked(&self) {
        let now = self.now();
        let done: Vec<Arc<DataStream>> = read_lock(&self.streams)
            .by_id
            .values()
            .filter(|s| read_lock(&s.state).deleting_until.is_some_and(|t| now >= t))
            .cloned()
            .collect();
        for s in done {
            self.remove_stream(&s);
        }
    }

    /// `ResourceInUseException` for a stream being deleted.
    fn require_not_deleting(&self, s: &DataStream) -> Result<(), DsError> {
        if read_lock(&s.state).deleting_until.is_some() {
            return Err(DsError::ResourceInUse(format!(
                "Stream {} under account {} not ACTIVE, instead in state DELETING",
                s.name, self.config.account_id
            )));
        }
        Ok(())
    }

    /// `DELETING` for `delete_stream_ms` after DeleteStream, `CREATING` for `create_stream_ms`
    /// after creation, `UPDATING` for `update_stream_ms` after a change, else `ACTIVE`.
    pub(super) fn status(&self, s: &DataStream, st: &StreamState) -> &'static str {
        let now = self.now();
        if st.deleting_until.is_some() {
            "DELETING"
        } else if now < s.created_at.saturating_add(self.config.create_stream_ms) {
            "CREATING"
        } else if now < st.updating_until {
            "UPDATING"
        } else {
            "ACTIVE"
        }
    }

    /// Reads and writes need a created stream: `ResourceNotFoundException` while `CREATING`, as
    /// in Kinesis.
    pub(super) fn require_created(&self, s: &DataStream) -> Result<(), DsError> {
        if self.status(s, &read_lock(&s.state)) == "CREATING" {
            return Err(DsError::ResourceNotFound(format!(
                "Stream {} under account {} not found.",
                s.name, self.config.account_id
            )));
        }
        Ok(())
    }

    /// Changes need an `ACTIVE` stream: `ResourceInUseException` otherwise.
    pub(super) fn require_active(&self, s: &DataStream) -> Result<(), DsError> {
        let status = self.status(s, &read_lock(&s.state));
        if status != "ACTIVE" {
            return Err(DsError::ResourceInUse(format!(
                "Stream {} under account {} not ACTIVE, instead in state {status}",
                s.name, self.config.account_id
            )));
        }
        Ok(())
    }

    /// A change went through: the stream is `UPDATING` for `update_stream_ms`.
    pub(super) fn updated(&self, st: &mut StreamState) {
        st.updating_until = self.now().saturating_add(self.config.update_stream_ms);
    }

    fn description(&self, s: &DataStream) -> StreamDescription {
        let st = read_lock(&s.state);
        StreamDescription {
            name: s.name.to_string(),
            arn: self.stream_arn(s.name.as_str()),
            status: self.status(s, &st),
            mode: st.mode,
            retention_hours: st.retention_hours,
            max_record_kib: st.max_record_kib,
            encryption_key: st.encryption_key.clone(),
            shard_metrics: settings::SHARD_METRICS
                .iter()
                .filter(|m| st.shard_metrics.contains(**m))
                .map(|m| m.to_string())
                .collect(),
            created_at: s.created_at,
            open_shard_count: st.open.len() as u32,
            consumer_count: st.consumers.len() as u32,
            warm_throughput: (st.mode == StreamMode::OnDemand).then(|| autoscale::WarmThroughput {
                target_mibps: st.warm_mibps,
                current_mibps: self.capacity_mibps(st.open.len()),
            }),
        }
    }

    /// DescribeStreamSummary.
    pub fn describe_stream_summary(
        &self,
        sel: StreamSel<'_>,
    ) -> Result<StreamDescription, DsError> {
        let s = self.resolve(sel)?;
        Ok(self.description(&s))
    }

    /// DescribeStream: the stream and at most `limit` (1–10,000, default 100) of its shards
    /// after `exclusive_start_shard_id`, and whether there are more.
    pub fn describe_stream(
        &self,
        sel: StreamSel<'_>,
        limit: Option<i64>,
        exclusive_start_shard_id: Option<&str>,
    ) -> Result<(StreamDescription, Vec<ShardDescription>, bool), DsError> {
        if let Some(l) = limit {
            validate::range(l, "limit", 1, 10_000)?;
        }
        let after = match exclusive_start_shard_id {
            Some(s) => {
                validate::name(s, "exclusiveStartShardId", 128)?;
                Some(s.to_owned())
            }
            None => None,
        };
        let s = self.resolve(sel)?;
        let limit = limit.unwrap_or(100) as usize;
        let shards: Vec<ShardDescription> = read_lock(&s.state)
            .shards
            .values()
            .map(|sh| sh.describe())
            .filter(|d| after.as_deref().is_none_or(|a| d.shard_id.to_string().as_str() > a))
            .collect();
        let more = shards.len() > limit;
        Ok((self.description(&s), shards.into_iter().take(limit).collect(), more))
    }

    /// ListStreams: names in order after `exclusive_start` (or the `next_token`'s position), at
    /// most `limit` (1–10,000, default 100).
    pub fn list_streams(
        &self,
        limit: Option<i64>,
        exclusive_start: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<(Vec<StreamDescription>, bool, Option<String>), DsError> {
        if let Some(l) = limit {
            validate::range(l, "limit", 1, 10_000)?;
        }
        if let Some(s) = exclusive_start {
            validate::name(s, "exclusiveStartStreamName", MAX_NAME_LEN)?;
        }
        let now = self.now();
        let after: Option<String> = match next_token {
            Some(t) => {
                let (after, issued): (String, i64) = self.signer.verify_next_token(t)?;
                token::check_token_age(issued, now)?;
                Some(after)
            }
            None => exclusive_start.map(str::to_owned),
        };
        let limit = limit.unwrap_or(100) as usize;
        let streams: Vec<Arc<DataStream>> = read_lock(&self.streams)
            .by_name
            .values()
            .filter(|s| after.as_deref().is_none_or(|a| s.name.as_str() > a))
            .filter(|s| read_lock(&s.state).deleting_until.is_none_or(|t| now < t))
            .cloned()
            .collect();
        let more = streams.len() > limit;
        let page: Vec<StreamDescription> =
            streams.iter().take(limit).map(|s| self.description(s)).collect();
        let token = match page.last() {
            Some(last) if more => {
                Some(self.signer.next_token(&(last.name.clone(), now.as_millis())))
            }
            _ => None,
        };
        Ok((page, more, token))
    }

    /// DescribeLimits.
    pub fn describe_limits(&self) -> Limits {
        Limits {
            shard_limit: self.config.shard_limit,
            open_shard_count: self.user_open_shards(None) as u32,
            on_demand_stream_count: self.on_demand_count(),
            on_demand_stream_count_limit: self.config.on_demand_stream_limit,
        }
    }

    // ---- retention, mode, tags --------------------------------------------------------------

    /// IncreaseStreamRetentionPeriod (`increase`) or DecreaseStreamRetentionPeriod.
    pub fn set_retention_period(
        &self,
        sel: StreamSel<'_>,
        hours: i64,
        increase: bool,
    ) -> Result<(), DsError> {
        validate::range(hours, "retentionPeriodHours", 1, i64::from(i32::MAX))?;
        if hours > i64::from(MAX_RETENTION_HOURS) {
            return Err(DsError::InvalidArgument(format!(
                "Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested retention period ({hours} hours) is too long."
            )));
        }
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        self.require_active(&s)?;
        let hours = hours as u32;
        let min = self.config.min_retention_hours;
        if hours < min {
            return Err(DsError::InvalidArgument(format!(
                "Minimum allowed retention period is {min} hours. Requested retention period ({hours} hours) is too short."
            )));
        }
        let current = read_lock(&s.state).retention_hours;
        if increase && hours < current {
            return Err(DsError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API.",
                s.name
            )));
        }
        if !increase && hours > current {
            return Err(DsError::InvalidArgument(format!(
                "Requested retention period ({hours} hours) for stream {} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API.",
                s.name
            )));
        }
        store::set_retention(&self.catalog, s.id, hours)?;
        write_lock(&s.state).retention_hours = hours;
        Ok(())
    }

    /// UpdateStreamMode (by ARN, as in Kinesis). Switching to the current mode is
    /// `ResourceInUseException`.
    pub fn update_stream_mode(&self, arn: &str, mode: StreamMode) -> Result<(), DsError> {
        let _admin = lock(&self.admin);
        let s = self.resolve(StreamSel::arn(arn))?;
        self.require_active(&s)?;
        if read_lock(&s.state).mode == mode {
            return Err(DsError::ResourceInUse(format!(
                "Stream {} is already in {} mode.",
                s.name,
                mode.as_str()
            )));
        }
        if mode == StreamMode::OnDemand
            && self.on_demand_count() >= self.config.on_demand_stream_limit
        {
            return Err(DsError::LimitExceeded(format!(
                "This request would exceed the on-demand stream limit of {}.",
                self.config.on_demand_stream_limit
            )));
        }
        store::set_mode(&self.catalog, s.id, mode)?;
        let mut st = write_lock(&s.state);
        st.mode = mode;
        self.updated(&mut st);
        Ok(())
    }

    /// AddTagsToStream: 1–50 tags per call, keys 1–128 and values 0–256 characters, at most 50
    /// per stream.
    pub fn add_tags(
        &self,
        sel: StreamSel<'_>,
        tags: BTreeMap<String, String>,
    ) -> Result<(), DsError> {
        let mut v = validate::Violations::default();
        if tags.is_empty() {
            v.push("{}", "tags", "Member must have length greater than or equal to 1");
        }
        v.check(validate_tags(&tags))?;
        v.name("streamName", sel.name, false, MAX_NAME_LEN);
        v.finish()?;
        validate::count(tags.len(), "tags", 1, 200)?;
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        self.require_active(&s)?;
        tag_characters(&format!("add tags to stream {}", s.name), &s.account, &tags)?;
        let mut merged = read_lock(&s.state).tags.clone();
        merged.extend(tags);
        if merged.len() > MAX_TAGS {
            return Err(DsError::InvalidArgument(format!(
                "Failed to add tags to stream {} under account {} because a given stream cannot have more than {MAX_TAGS} tags associated with it.",
                s.name, s.account
            )));
        }
        store::set_tags(&self.catalog, s.id, &merged)?;
        write_lock(&s.state).tags = merged;
        Ok(())
    }

    /// RemoveTagsFromStream: 1–50 keys; unknown keys are ignored.
    pub fn remove_tags(&self, sel: StreamSel<'_>, keys: &[String]) -> Result<(), DsError> {
        validate::count(keys.len(), "tagKeys", 1, MAX_TAGS)?;
        for k in keys {
            validate::length(k, "tagKeys.member", 1, 128)?;
        }
        let _admin = lock(&self.admin);
        let s = self.resolve(sel)?;
        self.require_active(&s)?;
        let mut tags = read_lock(&s.state).tags.clone();
        for k in keys {
            tags.remove(k);
        }
        store::set_tags(&self.catalog, s.id, &tags)?;
        write_lock(&s.state).tags = tags;
        Ok(())
    }

    /// ListTagsForStream: tags in key order after `exclusive_start_key`, at most `limit` (1–50,
    /// default 50), and whether there are more.
    pub fn list_tags(
        &self,
        sel: StreamSel<'_>,
        exclusive_start_key: Option<&str>,
        limit: Option<i64>,
    ) -> Result<(Vec<(String, String)>, bool), DsError> {
        if let Some(l) = limit {
            validate::range(l, "limit", 1, MAX_TAGS as i64)?;
        }
        if let Some(k) = exclusive_start_key {
            validate::length(k, "exclusiveStartTagKey", 1, 128)?;
        }
        let s = self.resolve(sel)?;
        let limit = limit.unwrap_or(MAX_TAGS as i64) as usize;
        let tags: Vec<(String, String)> = read_lock(&s.state)
            .tags
            .iter()
            .filter(|(k, _)| exclusive_start_key.is_none_or(|a| k.as_str() > a))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let more = tags.len() > limit;
        Ok((tags.into_iter().take(limit).collect(), more))
    }
}

/// The `Tags` map's schema: its keys 1–128 and values 0–256 characters, each rule reported
/// once for the whole map as AWS does (`Value '{k=v, …}' at 'tags' … Map keys must satisfy
/// constraint: […]`).
fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), DsError> {
    let shown = || {
        let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{{{}}}", pairs.join(", "))
    };
    let mut v = validate::Violations::default();
    if tags.keys().any(|k| !(1..=128).contains(&k.chars().count())) {
        v.push(
            &shown(),
            "tags",
            "Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]",
        );
    }
    if tags.values().any(|t| t.chars().count() > 256) {
        v.push(
            &shown(),
            "tags",
            "Map value must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 0]",
        );
    }
    v.finish()
}

/// Tag characters, checked once the stream is known, with AWS's two messages: Unicode letters,
/// digits, white space and `_ . / = + - @ :` are allowed; `%` passes the first check and fails
/// the second.
/// `doing` names the refused change: `add tags to stream <name>`, `create stream <name>`.
fn tag_characters(
    doing: &str,
    account: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), DsError> {
    let all = || tags.iter().flat_map(|(k, v)| [k, v]);
    let allowed = |c: char| {
        c.is_alphanumeric()
            || c == ' '
            || matches!(c, '_' | '.' | '/' | '=' | '+' | '-' | '@' | '%' | ':')
    };
    if all().any(|s| !s.chars().all(allowed)) {
        return Err(DsError::InvalidArgument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :."
                .to_owned(),
        ));
    }
    if all().any(|s| s.contains('%')) {
        return Err(DsError::InvalidArgument(format!(
            "Failed to {doing} under account {account} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'."
        )));
    }
    Ok(())
}
