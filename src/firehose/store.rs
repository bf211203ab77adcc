//! Where delivery streams live: the catalog's `delivery_streams` table, one row per stream with
//! its configuration, version, tags and delivery checkpoint (the next offset to deliver of each
//! source shard), so a restart resumes where delivery was acknowledged.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::spec::DeliveryConfig;
use crate::catalog::Catalog;
use crate::error::{Error, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS delivery_streams (
    name        TEXT PRIMARY KEY,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    config      TEXT NOT NULL,
    tags        TEXT NOT NULL,
    checkpoint  TEXT NOT NULL
);
";

/// One stored delivery stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Firehose's `VersionId`: 1 at creation, one more with each destination update.
    pub version: u64,
    pub config: DeliveryConfig,
    pub tags: BTreeMap<String, String>,
    /// Source shard id → the next offset to deliver.
    pub checkpoint: BTreeMap<u32, u64>,
    /// Per object stream (a dynamic partition, the source backup) delivered past the checkpoint:
    /// shard id → the offset its records are delivered to (a restart skips them there).
    pub marks: Marks,
}

/// Object stream id → shard id → offset delivered to.
pub type Marks = BTreeMap<String, BTreeMap<u32, u64>>;

/// The `checkpoint` column: the plain shard map, or `{"at": …, "marks": …}`.
#[derive(serde::Serialize, serde::Deserialize)]
struct WithMarks {
    at: BTreeMap<u32, u64>,
    marks: Marks,
}

fn stored(at: &BTreeMap<u32, u64>, marks: &Marks) -> Result<String> {
    if marks.is_empty() {
        json(at)
    } else {
        json(&WithMarks { at: at.clone(), marks: marks.clone() })
    }
}

fn parse_checkpoint(text: &str) -> serde_json::Result<(BTreeMap<u32, u64>, Marks)> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    if v.get("at").is_some() {
        let w: WithMarks = serde_json::from_value(v)?;
        Ok((w.at, w.marks))
    } else {
        Ok((serde_json::from_value(v)?, Marks::new()))
    }
}

pub struct Store {
    catalog: Arc<Catalog>,
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v)
        .map_err(|e| Error::internal(format!("encoding a delivery stream: {e}")))
}

impl Store {
    pub fn open(catalog: Arc<Catalog>) -> Result<Store> {
        catalog.ensure_schema(SCHEMA)?;
        Ok(Store { catalog })
    }

    pub fn all(&self) -> Result<Vec<Row>> {
        self.catalog.transaction(|tx| {
            let mut stmt = tx.prepare(
                "SELECT name, created_ms, updated_ms, version, config, tags, checkpoint FROM delivery_streams ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (name, created_ms, updated_ms, version, config, tags, checkpoint) = row?;
                let bad = |what: &str, e: serde_json::Error| {
                    Error::internal(format!("catalog: delivery stream {name}: {what}: {e}"))
                };
                let (checkpoint, marks) =
                    parse_checkpoint(&checkpoint).map_err(|e| bad("checkpoint", e))?;
                out.push(Row {
                    config: serde_json::from_str(&config).map_err(|e| bad("config", e))?,
                    tags: serde_json::from_str(&tags).map_err(|e| bad("tags", e))?,
                    checkpoint,
                    marks,
                    name,
                    created_ms,
                    updated_ms,
                    version: version as u64,
                });
            }
            Ok(out)
        })
    }

    /// Inserts a new stream; `false` if the name is taken.
    pub fn insert(&self, row: &Row) -> Result<bool> {
        let (config, tags, checkpoint) =
            (json(&row.config)?, json(&row.tags)?, stored(&row.checkpoint, &row.marks)?);
        self.catalog.transaction(|tx| {
            let taken: Option<i64> = tx
                .query_row("SELECT 1 FROM delivery_streams WHERE name = ?1", [&row.name], |r| r.get(0))
                .optional()?;
            if taken.is_some() {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO delivery_streams (name, created_ms, updated_ms, version, config, tags, checkpoint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![row.name, row.created_ms, row.updated_ms, row.version as i64, config, tags, checkpoint],
            )?;
            Ok(true)
        })
    }

    /// Replaces a stream's configuration, version and tags (not its checkpoint).
    pub fn update(&self, row: &Row) -> Result<()> {
        let (config, tags) = (json(&row.config)?, json(&row.tags)?);
        self.catalog.transaction(|tx| {
            tx.execute(
                "UPDATE delivery_streams SET updated_ms = ?2, version = ?3, config = ?4, tags = ?5 WHERE name = ?1 AND created_ms = ?6",
                params![row.name, row.updated_ms, row.version as i64, config, tags, row.created_ms],
            )?;
            Ok(())
        })
    }

    /// Records what has been delivered.
    pub fn checkpoint(
        &self,
        name: &str,
        created_ms: i64,
        at: &BTreeMap<u32, u64>,
        marks: &Marks,
    ) -> Result<()> {
        let at = stored(at, marks)?;
        self.catalog.transaction(|tx| {
            tx.execute(
                "UPDATE delivery_streams SET checkpoint = ?2 WHERE name = ?1 AND created_ms = ?3",
                params![name, at, created_ms],
            )?;
            Ok(())
        })
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        self.catalog.transaction(|tx| {
            tx.execute("DELETE FROM delivery_streams WHERE name = ?1", [name])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_read_back_with_and_without_marks() {
        let at = BTreeMap::from([(0, 7), (3, 9)]);
        let marks = Marks::from([("{\"cam\":\"a\"}".to_owned(), BTreeMap::from([(0, 12)]))]);
        assert_eq!(
            parse_checkpoint(&stored(&at, &Marks::new()).unwrap()).unwrap(),
            (at.clone(), Marks::new())
        );
        assert_eq!(parse_checkpoint(&stored(&at, &marks).unwrap()).unwrap(), (at, marks));
    }
}
