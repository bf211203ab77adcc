//! The data streams' rows in the shared SQLite catalog: streams, shards (hash ranges, lineage,
//! sequence ranges), tags and consumers. Every change that must be atomic is one transaction.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Transaction, params};

use super::error::DsError;
use super::hashkey::{HashKey, HashKeyRange};
use super::seqno::SequenceNumber;
use crate::catalog::Catalog;
use crate::clock::Timestamp;
use crate::error::Error;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS data_streams (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    created_at_us   INTEGER NOT NULL,
    retention_hours INTEGER NOT NULL,
    mode            TEXT NOT NULL,
    next_ordinal    INTEGER NOT NULL,
    max_record_kib  INTEGER NOT NULL DEFAULT 1024,
    encryption_key  TEXT,
    shard_metrics   TEXT NOT NULL DEFAULT '',
    warm_mibps      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS data_stream_account (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    commitment         TEXT NOT NULL,
    started_at_us      INTEGER,
    ended_at_us        INTEGER,
    earliest_end_at_us INTEGER
);
CREATE TABLE IF NOT EXISTS data_stream_policies (
    resource_arn TEXT PRIMARY KEY,
    stream_id    INTEGER NOT NULL,
    policy       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS data_stream_shards (
    stream_id       INTEGER NOT NULL,
    ordinal         INTEGER NOT NULL,
    hash_start      TEXT NOT NULL,
    hash_end        TEXT NOT NULL,
    parent          INTEGER,
    adjacent_parent INTEGER,
    created_at_us   INTEGER NOT NULL,
    starting_seq    TEXT NOT NULL,
    ending_seq      TEXT,
    closed_at_us    INTEGER,
    PRIMARY KEY (stream_id, ordinal)
);
CREATE TABLE IF NOT EXISTS data_stream_tags (
    stream_id INTEGER NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (stream_id, key)
);
CREATE TABLE IF NOT EXISTS data_stream_consumers (
    stream_id     INTEGER NOT NULL,
    name          TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (stream_id, name)
);
";

/// Capacity mode of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }

    pub fn parse(s: &str) -> Option<StreamMode> {
        match s {
            "PROVISIONED" => Some(StreamMode::Provisioned),
            "ON_DEMAND" => Some(StreamMode::OnDemand),
            _ => None,
        }
    }
}

crate::catalog::catalog_id!(
    /// A data stream's catalog id: it names the stream's directory and is bound into its shard
    /// iterators and pagination tokens.
    DataStreamId
);

#[derive(Debug, Clone, PartialEq)]
pub struct StreamRow {
    pub id: DataStreamId,
    pub name: String,
    pub created_at: Timestamp,
    pub retention_hours: u32,
    pub mode: StreamMode,
    pub next_ordinal: u32,
    /// `MaxRecordSizeInKiB`: the largest data + partition key of one record (1024–10240).
    pub max_record_kib: u32,
    /// The KMS key id of StartStreamEncryption, while encryption is on.
    pub encryption_key: Option<String>,
    /// The enabled shard-level metrics, comma-separated.
    pub shard_metrics: String,
    /// `WarmThroughputMiBps` of an ON_DEMAND stream (0: none).
    pub warm_mibps: u32,
}

/// Adds what later versions added to `data_streams` to a catalog made before them.
pub fn migrate(cat: &Catalog) -> Result<(), DsError> {
    Ok(cat.transaction(|tx| {
        for (column, ddl) in [
            ("max_record_kib", "max_record_kib INTEGER NOT NULL DEFAULT 1024"),
            ("encryption_key", "encryption_key TEXT"),
            ("shard_metrics", "shard_metrics TEXT NOT NULL DEFAULT ''"),
            ("warm_mibps", "warm_mibps INTEGER NOT NULL DEFAULT 0"),
        ] {
            let has: bool = tx.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('data_streams') WHERE name = ?1",
                [column],
                |r| r.get(0),
            )?;
            if !has {
                tx.execute_batch(&format!("ALTER TABLE data_streams ADD COLUMN {ddl}"))?;
            }
        }
        Ok(())
    })?)
}

/// Records encryption (`Some(key)`: the KMS key id, or `Some(None)`: off) and/or the enabled
/// shard-level metrics (comma-separated); `None` leaves a setting as it is.
pub fn set_settings(
    cat: &Catalog,
    stream_id: DataStreamId,
    encryption_key: Option<Option<&str>>,
    shard_metrics: Option<&str>,
) -> Result<(), DsError> {
    cat.transaction(|tx| {
        if let Some(key) = encryption_key {
            tx.execute(
                "UPDATE data_streams SET encryption_key = ?2 WHERE id = ?1",
                params![stream_id, key],
            )?;
        }
        if let Some(m) = shard_metrics {
            tx.execute(
                "UPDATE data_streams SET shard_metrics = ?2 WHERE id = ?1",
                params![stream_id, m],
            )?;
        }
        Ok(())
    })
    .map_err(DsError::from)
}

/// Attaches (`Some`) or removes (`None`) the resource policy of a stream or consumer ARN.
pub fn put_policy(
    cat: &Catalog,
    stream_id: DataStreamId,
    arn: &str,
    policy: Option<&str>,
) -> Result<(), DsError> {
    cat.transaction(|tx| {
        match policy {
            Some(p) => tx.execute(
                "INSERT INTO data_stream_policies (resource_arn, stream_id, policy) VALUES (?1, ?2, ?3)
                 ON CONFLICT (resource_arn) DO UPDATE SET policy = excluded.policy",
                params![arn, stream_id, p],
            )?,
            None => tx.execute("DELETE FROM data_stream_policies WHERE resource_arn = ?1", [arn])?,
        };
        Ok(())
    })
    .map_err(DsError::from)
}

pub fn get_policy(cat: &Catalog, arn: &str) -> Result<Option<String>, DsError> {
    cat.transaction(|tx| {
        Ok(tx
            .query_row(
                "SELECT policy FROM data_stream_policies WHERE resource_arn = ?1",
                [arn],
                |r| r.get(0),
            )
            .optional()?)
    })
    .map_err(DsError::from)
}

pub fn set_max_record_kib(cat: &Catalog, stream_id: DataStreamId, kib: u32) -> Result<(), DsError> {
    cat.transaction(|tx| {
        tx.execute(
            "UPDATE data_streams SET max_record_kib = ?2 WHERE id = ?1",
            params![stream_id, kib],
        )?;
        Ok(())
    })
    .map_err(DsError::from)
}

/// Records an ON_DEMAND stream's warm throughput.
pub fn set_warm_mibps(cat: &Catalog, stream_id: DataStreamId, mibps: u32) -> Result<(), DsError> {
    cat.transaction(|tx| {
        tx.execute(
            "UPDATE data_streams SET warm_mibps = ?2 WHERE id = ?1",
            params![stream_id, mibps],
        )?;
        Ok(())
    })
    .map_err(DsError::from)
}

/// The account's minimum throughput billing commitment as recorded: `ENABLED` or `DISABLED`,
/// and the times UpdateAccountSettings set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitmentRow {
    /// `ENABLED`, `DISABLED` or `ENABLED_UNTIL_EARLIEST_ALLOWED_END` (a disable requested
    /// before the earliest end).
    pub status: String,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub earliest_end_at: Option<Timestamp>,
}

pub fn get_commitment(cat: &Catalog) -> Result<Option<CommitmentRow>, DsError> {
    let ts = |v: Option<i64>| v.map(Timestamp::from_micros);
    cat.transaction(|tx| {
        Ok(tx
            .query_row(
                "SELECT commitment, started_at_us, ended_at_us, earliest_end_at_us
                 FROM data_stream_account WHERE id = 1",
                [],
                |r| {
                    Ok(CommitmentRow {
                        status: r.get(0)?,
                        started_at: ts(r.get(1)?),
                        ended_at: ts(r.get(2)?),
                        earliest_end_at: ts(r.get(3)?),
                    })
                },
            )
            .optional()?)
    })
    .map_err(DsError::from)
}

pub fn set_commitment(cat: &Catalog, c: &CommitmentRow) -> Result<(), DsError> {
    let us = |t: Option<Timestamp>| t.map(Timestamp::as_micros);
    cat.transaction(|tx| {
        tx.execute(
            "INSERT INTO data_stream_account (id, commitment, started_at_us, ended_at_us,
                                              earliest_end_at_us)
             VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET commitment = ?1, started_at_us = ?2,
                 ended_at_us = ?3, earliest_end_at_us = ?4",
            params![c.status, us(c.started_at), us(c.ended_at), us(c.earliest_end_at)],
        )?;
        Ok(())
    })
    .map_err(DsError::from)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardRow {
    pub ordinal: u32,
    pub range: HashKeyRange,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    pub created_at: Timestamp,
    pub starting: SequenceNumber,
    pub closed: Option<(SequenceNumber, Timestamp)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerRow {
    pub name: String,
    pub created_at: Timestamp,
}

/// Everything the catalog knows about one stream.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub stream: StreamRow,
    pub shards: Vec<ShardRow>,
    pub tags: BTreeMap<String, String>,
    pub consumers: Vec<ConsumerRow>,
}

fn corrupt(what: &str) -> Error {
    Error::internal(format!("catalog: malformed data stream row ({what})"))
}

fn parse_u128(s: &str, what: &str) -> Result<u128, Error> {
    s.parse().map_err(|_| corrupt(what))
}

pub fn load_all(cat: &Catalog) -> Result<Vec<StreamRecord>, DsError> {
    Ok(cat.transaction(|tx| {
        let mut streams = Vec::new();
        {
            let mut stmt = tx.prepare(
                "SELECT id, name, created_at_us, retention_hours, mode, next_ordinal,
                        max_record_kib, encryption_key, shard_metrics, warm_mibps
                 FROM data_streams ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                let row = StreamRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: Timestamp::from_micros(r.get(2)?),
                    retention_hours: r.get(3)?,
                    // Parsed from column 4 below.
                    mode: StreamMode::Provisioned,
                    next_ordinal: r.get(5)?,
                    max_record_kib: r.get(6)?,
                    encryption_key: r.get(7)?,
                    shard_metrics: r.get(8)?,
                    warm_mibps: r.get(9)?,
                };
                Ok((row, r.get::<_, String>(4)?))
            })?;
            for row in rows {
                let (mut row, mode) = row?;
                row.mode = StreamMode::parse(&mode).ok_or_else(|| corrupt("mode"))?;
                streams.push(row);
            }
        }
        let mut out = Vec::new();
        for stream in streams {
            let shards = load_shards(tx, stream.id)?;
            let mut tags = BTreeMap::new();
            {
                let mut stmt =
                    tx.prepare("SELECT key, value FROM data_stream_tags WHERE stream_id = ?1")?;
                for r in stmt.query_map([stream.id], |r| Ok((r.get(0)?, r.get(1)?)))? {
                    let (k, v): (String, String) = r?;
                    tags.insert(k, v);
                }
            }
            let mut consumers = Vec::new();
            {
                let mut stmt = tx.prepare(
                    "SELECT name, created_at_us FROM data_stream_consumers WHERE stream_id = ?1
                     ORDER BY created_at_us, name",
                )?;
                for r in stmt.query_map([stream.id], |r| Ok((r.get(0)?, r.get(1)?)))? {
                    let (name, at): (String, i64) = r?;
                    consumers.push(ConsumerRow { name, created_at: Timestamp::from_micros(at) });
                }
            }
            out.push(StreamRecord { stream, shards, tags, consumers });
        }
        Ok(out)
    })?)
}

fn load_shards(tx: &Transaction<'_>, stream_id: DataStreamId) -> Result<Vec<ShardRow>, Error> {
    let mut stmt = tx.prepare(
        "SELECT ordinal, hash_start, hash_end, parent, adjacent_parent, created_at_us,
                starting_seq, ending_seq, closed_at_us
         FROM data_stream_shards WHERE stream_id = ?1 ORDER BY ordinal",
    )?;
    let rows = stmt.query_map([stream_id], |r| {
        Ok((
            r.get::<_, u32>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<u32>>(3)?,
            r.get::<_, Option<u32>>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, Option<i64>>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (ordinal, hs, he, parent, adjacent_parent, created, starting, ending, closed_at) = row?;
        let closed = match (ending, closed_at) {
            (Some(e), Some(at)) => {
                Some((SequenceNumber(parse_u128(&e, "ending_seq")?), Timestamp::from_micros(at)))
            }
            _ => None,
        };
        out.push(ShardRow {
            ordinal,
            range: HashKeyRange {
                start: HashKey(parse_u128(&hs, "hash_start")?),
                end: HashKey(parse_u128(&he, "hash_end")?),
            },
            parent,
            adjacent_parent,
            created_at: Timestamp::from_micros(created),
            starting: SequenceNumber(parse_u128(&starting, "starting_seq")?),
            closed,
        });
    }
    Ok(out)
}

/// Inserts a stream with its first shards and tags; returns its id. A taken name is
/// `ResourceInUseException`.
pub fn insert_stream(
    cat: &Catalog,
    row: &StreamRow,
    shards: &[ShardRow],
    tags: &BTreeMap<String, String>,
) -> Result<DataStreamId, DsError> {
    cat.transaction(|tx| {
        let exists: Option<i64> = tx
            .query_row("SELECT id FROM data_streams WHERE name = ?1", [&row.name], |r| r.get(0))
            .optional()?;
        if exists.is_some() {
            return Err(Error::conflict(format!(
                "Stream {} under account already exists.",
                row.name
            )));
        }
        tx.execute(
            "INSERT INTO data_streams (name, created_at_us, retention_hours, mode, next_ordinal,
                                       max_record_kib, warm_mibps)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                row.name,
                row.created_at.as_micros(),
                row.retention_hours,
                row.mode.as_str(),
                row.next_ordinal,
                row.max_record_kib,
                row.warm_mibps
            ],
        )?;
        let id = DataStreamId(tx.last_insert_rowid());
        for s in shards {
            insert_shard(tx, id, s)?;
        }
        for (k, v) in tags {
            tx.execute(
                "INSERT INTO data_stream_tags (stream_id, key, value) VALUES (?1, ?2, ?3)",
                params![id, k, v],
            )?;
        }
        Ok(id)
    })
    .map_err(DsError::from)
}

fn insert_shard(tx: &Transaction<'_>, stream_id: DataStreamId, s: &ShardRow) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO data_stream_shards (stream_id, ordinal, hash_start, hash_end, parent,
             adjacent_parent, created_at_us, starting_seq, ending_seq, closed_at_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            stream_id,
            s.ordinal,
            s.range.start.to_string(),
            s.range.end.to_string(),
            s.parent,
            s.adjacent_parent,
            s.created_at.as_micros(),
            s.starting.to_string(),
            s.closed.map(|c| c.0.to_string()),
            s.closed.map(|c| c.1.as_micros()),
        ],
    )?;
    Ok(())
}

/// Closes `parents` (with their ending sequence numbers) and adds `children`, atomically.
pub fn reshard(
    cat: &Catalog,
    stream_id: DataStreamId,
    parents: &[(u32, SequenceNumber)],
    closed_at: Timestamp,
    children: &[ShardRow],
    next_ordinal: u32,
) -> Result<(), DsError> {
    cat.transaction(|tx| {
        for (ord, ending) in parents {
            tx.execute(
                "UPDATE data_stream_shards SET ending_seq = ?3, closed_at_us = ?4
                 WHERE stream_id = ?1 AND ordinal = ?2",
                params![stream_id, ord, ending.to_string(), closed_at.as_micros()],
            )?;
        }
        for c in children {
            insert_shard(tx, stream_id, c)?;
        }
        tx.execute(
            "UPDATE data_streams SET next_ordinal = ?2 WHERE id = ?1",
            params![stream_id, next_ordinal],
        )?;
        Ok(())
    })
    .map_err(DsError::from)
}

pub fn delete_shard(cat: &Catalog, stream_id: DataStreamId, ordinal: u32) -> Result<(), DsError> {
    cat.transaction(|tx| {
        tx.execute(
            "DELETE FROM data_stream_shards WHERE stream_id = ?1 AND ordinal = ?2",
            params![stream_id, ordinal],
        )?;
        Ok(())
    })
    .map_err(DsError::from)
}

pub fn delete_stream(cat: &Catalog, stream_id: DataStreamId) -> Result<(), DsError> {
    cat.transaction(|tx| {
        for table in [
            "data_stream_shards",
            "data_stream_tags",
            "data_stream_consumers",
            "data_stream_policies",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE stream_id = ?1"), [stream_id])?;
        }
        tx.execute("DELETE FROM data_streams WHERE id = ?1", [stream_id])?;
        Ok(())
    })
    .map_err(DsError::from)
}

pub fn set_retention(cat: &Catalog, stream_id: DataStreamId, hours: u32) -> Result<(), DsError> {
    cat.transaction(|tx| {
        tx.execute(
            "UPDATE data_streams SET retention_hours = ?2 WHERE id = ?1",
            params![stream_id, hours],
        )?;
        Ok(())
    })
    .map_err(DsError::from)
}

pub fn set_mode(cat: &Catalog, stream_id: DataStreamId, mode: StreamMode) -> Result<(), DsError> {
    cat.transaction(|tx| {
        tx.execute(
            "UPDATE data_streams SET mode = ?2 WHERE id = ?1",
            params![stream_id, mode.as_str()],
        )?;
        Ok(())
    })
    .map_err(DsError::from)
}

/// Replaces the stream's tags with `tags`.
pub fn set_tags(
    cat: &Catalog,
    stream_id: DataStreamId,
    tags: &BTreeMap<String, String>,
) -> Result<(), DsError> {
    cat.transaction(|tx| {
        tx.execute("DELETE FROM data_stream_tags WHERE stream_id = ?1", [stream_id])?;
        for (k, v) in tags {
            tx.execute(
                "INSERT INTO data_stream_tags (stream_id, key, value) VALUES (?1, ?2, ?3)",
                params![stream_id, k, v],
            )?;
        }
        Ok(())
    })
    .map_err(DsError::from)
}

pub fn insert_consumer(
    cat: &Catalog,
    stream_id: DataStreamId,
    c: &ConsumerRow,
) -> Result<(), DsError> {
    cat.transaction(|tx| {
        tx.execute(
            "INSERT INTO data_stream_consumers (stream_id, name, created_at_us) VALUES (?1, ?2, ?3)",
            params![stream_id, c.name, c.created_at.as_micros()],
        )?;
        Ok(())
    })
    .map_err(DsError::from)
}

pub fn delete_consumer(cat: &Catalog, stream_id: DataStreamId, name: &str) -> Result<(), DsError> {
    cat.transaction(|tx| {
        tx.execute(
            "DELETE FROM data_stream_consumers WHERE stream_id = ?1 AND name = ?2",
            params![stream_id, name],
        )?;
        Ok(())
    })
    .map_err(DsError::from)
}
