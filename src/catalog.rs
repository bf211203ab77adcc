//! The catalog: which streams exist and how they are configured, in an embedded SQLite database
//! (`<data_dir>/catalog.sqlite`). Media and records live in the logs; the catalog holds only the
//! small, transactional facts about them. Each stream gets a numeric id that names its directory,
//! so a stream name never becomes a path.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::name::StreamName;

/// Declares a catalog id: a newtype over a table's `i64` row id, shown as the number, stored and
/// read by SQLite as one, and (de)serialized as one.
macro_rules! catalog_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(v).map($name)
            }
        }
    };
}
pub(crate) use catalog_id;

catalog_id!(
    /// A video stream's catalog id. It names the stream's directory (`video/<id>/`) and appears
    /// in its media URLs, so a re-created stream of the same name never serves the old one's
    /// media.
    VideoStreamId
);

/// A video stream's catalog row.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoStreamRow {
    pub id: VideoStreamId,
    pub name: StreamName,
    pub created_at: Timestamp,
    pub retention_hours: u32,
    pub retention_bytes: Option<u64>,
    pub media_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Bumped on every update; reported as the stream's version.
    pub version: i64,
    /// KVS's `DeviceName` (1–128 of `[a-zA-Z0-9_.-]`), if given.
    pub device_name: Option<String>,
    /// KVS's `KmsKeyId`, recorded (Sluice does not encrypt media at rest).
    pub kms_key_id: Option<String>,
}

/// The catalog database. A std `Mutex` serialises access to the one connection: every use is a
/// short synchronous transaction that never holds the lock across an `.await`.
pub struct Catalog {
    conn: Mutex<Connection>,
    /// Tables of other modules keyed by a video stream's id (`stream_id`): their rows go in the
    /// same transaction as the stream's own (see [`Catalog::ensure_stream_table`]).
    stream_tables: Mutex<Vec<&'static str>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS video_streams (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    created_at_us   INTEGER NOT NULL,
    retention_hours INTEGER NOT NULL,
    retention_bytes INTEGER,
    media_type      TEXT,
    tags            TEXT NOT NULL DEFAULT '{}',
    version         INTEGER NOT NULL DEFAULT 1,
    device_name     TEXT,
    kms_key_id      TEXT
);
-- The epoch of a video stream's served media timeline (see media::timeline): the producer
-- timestamp of its first fragment. Fixed once set, so served decode times never change.
CREATE TABLE IF NOT EXISTS video_timelines (
    stream_id       INTEGER PRIMARY KEY,
    epoch_us        INTEGER NOT NULL
);
";

impl Catalog {
    pub fn open(path: &Path) -> Result<Catalog> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        // Columns later versions added to `video_streams`.
        for (column, ddl) in
            [("device_name", "device_name TEXT"), ("kms_key_id", "kms_key_id TEXT")]
        {
            let has: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('video_streams') WHERE name = ?1",
                [column],
                |r| r.get(0),
            )?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE video_streams ADD COLUMN {ddl}"))?;
            }
        }
        Ok(Catalog { conn: Mutex::new(conn), stream_tables: Mutex::new(Vec::new()) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (it rolls back the open
        // transaction), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates tables owned by another module (idempotent DDL: `CREATE TABLE IF NOT EXISTS`).
    pub fn ensure_schema(&self, ddl: &str) -> Result<()> {
        self.conn().execute_batch(ddl)?;
        Ok(())
    }

    /// Creates a table owned by another module whose rows belong to one video stream (a
    /// `stream_id INTEGER` column): deleting the stream deletes them in the same transaction, so
    /// a stream's configuration goes with it or not at all.
    pub fn ensure_stream_table(&self, ddl: &str, table: &'static str) -> Result<()> {
        self.ensure_schema(ddl)?;
        let mut tables = self.stream_tables.lock().unwrap_or_else(|p| p.into_inner());
        if !tables.contains(&table) {
            tables.push(table);
        }
        Ok(())
    }

    /// Runs `f` in one transaction, committed if it returns `Ok` and rolled back otherwise. For
    /// modules that own their tables (data streams), so related rows change together.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    pub fn insert_video_stream(&self, row: &VideoStreamRow) -> Result<VideoStreamId> {
        let conn = self.conn();
        let tags = serde_json::to_string(&row.tags).map_err(|e| Error::internal(e.to_string()))?;
        let res = conn.execute(
            "INSERT INTO video_streams (name, created_at_us, retention_hours, retention_bytes, media_type, tags,
                                        device_name, kms_key_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                row.name.as_str(),
                row.created_at.as_micros(),
                row.retention_hours,
                row.retention_bytes.map(|b| b as i64),
                row.media_type,
                tags,
                row.device_name,
                row.kms_key_id
            ],
        );
        match res {
            Ok(_) => Ok(VideoStreamId(conn.last_insert_rowid())),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::conflict(format!("stream {} already exists", row.name)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `row`'s configuration and bumps its version, if the stored version is `row.version`
    /// (`VersionMismatch` otherwise: a concurrent change went first). Returns the new version.
    pub fn update_video_stream(&self, row: &VideoStreamRow) -> Result<i64> {
        let conn = self.conn();
        let tags = serde_json::to_string(&row.tags).map_err(|e| Error::internal(e.to_string()))?;
        let n = conn.execute(
            "UPDATE video_streams SET retention_hours = ?2, retention_bytes = ?3, media_type = ?4,
                 tags = ?5, device_name = ?6, kms_key_id = ?7, version = version + 1
             WHERE id = ?1 AND version = ?8",
            params![
                row.id,
                row.retention_hours,
                row.retention_bytes.map(|b| b as i64),
                row.media_type,
                tags,
                row.device_name,
                row.kms_key_id,
                row.version
            ],
        )?;
        if n == 0 {
            let exists: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM video_streams WHERE id = ?1",
                [row.id],
                |r| r.get(0),
            )?;
            return Err(if exists {
                Error::conflict(format!(
                    "stream {} changed since version {}; read it again",
                    row.name, row.version
                ))
                .with_code("VersionMismatch")
            } else {
                Error::not_found(format!("stream {} not found", row.name))
            });
        }
        let version =
            conn.query_row("SELECT version FROM video_streams WHERE id = ?1", [row.id], |r| {
                r.get(0)
            })?;
        Ok(version)
    }

    /// Deletes a video stream's row and every row keyed by it, in one transaction.
    pub fn delete_video_stream(&self, id: VideoStreamId) -> Result<()> {
        let tables = self.stream_tables.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.transaction(|tx| {
            tx.execute("DELETE FROM video_timelines WHERE stream_id = ?1", [id])?;
            for table in tables {
                tx.execute(&format!("DELETE FROM {table} WHERE stream_id = ?1"), [id])?;
            }
            tx.execute("DELETE FROM video_streams WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// The epoch of a video stream's served timeline, if it has been set.
    pub fn timeline_epoch(&self, stream_id: VideoStreamId) -> Result<Option<Timestamp>> {
        let us: Option<i64> = self
            .conn()
            .query_row(
                "SELECT epoch_us FROM video_timelines WHERE stream_id = ?1",
                [stream_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(us.map(Timestamp::from_micros))
    }

    pub fn set_timeline_epoch(&self, stream_id: VideoStreamId, epoch: Timestamp) -> Result<()> {
        self.conn().execute(
            "INSERT INTO video_timelines (stream_id, epoch_us) VALUES (?1, ?2)
             ON CONFLICT (stream_id) DO UPDATE SET epoch_us = excluded.epoch_us",
            params![stream_id, epoch.as_micros()],
        )?;
        Ok(())
    }

    pub fn video_streams(&self) -> Result<Vec<VideoStreamRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, name, created_at_us, retention_hours, retention_bytes, media_type, tags, version,
                    device_name, kms_key_id
             FROM video_streams ORDER BY name",
        )?;
        let rows = stmt.query_map([], row_to_video_stream)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    pub fn video_stream(&self, name: &StreamName) -> Result<Option<VideoStreamRow>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT id, name, created_at_us, retention_hours, retention_bytes, media_type, tags, version,
                        device_name, kms_key_id
                 FROM video_streams WHERE name = ?1",
                [name.as_str()],
                row_to_video_stream,
            )
            .optional()?;
        row.transpose()
    }
}

fn row_to_video_stream(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<VideoStreamRow>> {
    let name: String = r.get(1)?;
    let tags: String = r.get(6)?;
    let retention_bytes: Option<i64> = r.get(4)?;
    Ok((|| {
        Ok(VideoStreamRow {
            id: r.get(0)?,
            name: StreamName::new(name)?,
            created_at: Timestamp::from_micros(r.get(2)?),
            retention_hours: r.get(3)?,
            retention_bytes: retention_bytes.map(|b| b as u64),
            media_type: r.get(5)?,
            tags: serde_json::from_str(&tags)
                .map_err(|e| Error::internal(format!("catalog: bad tags json: {e}")))?,
            version: r.get(7)?,
            device_name: r.get(8)?,
            kms_key_id: r.get(9)?,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> VideoStreamRow {
        VideoStreamRow {
            id: VideoStreamId(0),
            name: StreamName::new(name).unwrap(),
            created_at: Timestamp::from_millis(1),
            retention_hours: 24,
            retention_bytes: Some(1 << 30),
            media_type: Some("video/h264".into()),
            tags: BTreeMap::from([("site".into(), "north".into())]),
            version: 1,
            device_name: Some("dev-1".into()),
            kms_key_id: None,
        }
    }

    #[test]
    fn insert_list_update_delete() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        let id = cat.insert_video_stream(&row("a")).unwrap();
        assert_eq!(
            cat.insert_video_stream(&row("a")).unwrap_err().kind,
            crate::error::ErrorKind::Conflict
        );
        let mut got = cat.video_stream(&StreamName::new("a").unwrap()).unwrap().unwrap();
        assert_eq!(got.id, id);
        assert_eq!(got.tags["site"], "north");
        assert_eq!(got.device_name.as_deref(), Some("dev-1"));
        got.retention_hours = 1;
        assert_eq!(cat.update_video_stream(&got).unwrap(), 2);
        assert_eq!(cat.video_streams().unwrap()[0].retention_hours, 1);
        // A change made against version 1 after the stream reached 2 is refused.
        let stale = cat.update_video_stream(&got).unwrap_err();
        assert_eq!(stale.code, Some("VersionMismatch"));
        cat.delete_video_stream(id).unwrap();
        assert!(cat.video_streams().unwrap().is_empty());
    }

    #[test]
    fn a_catalog_from_before_the_kvs_columns_gains_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE video_streams (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
                 created_at_us INTEGER NOT NULL, retention_hours INTEGER NOT NULL, retention_bytes INTEGER,
                 media_type TEXT, tags TEXT NOT NULL DEFAULT '{}', version INTEGER NOT NULL DEFAULT 1);
                 INSERT INTO video_streams (name, created_at_us, retention_hours) VALUES ('old', 1, 24);",
            )
            .unwrap();
        let cat = Catalog::open(&path).unwrap();
        let old = cat.video_stream(&StreamName::new("old").unwrap()).unwrap().unwrap();
        assert_eq!((old.device_name, old.kms_key_id), (None, None));
        cat.insert_video_stream(&row("new")).unwrap();
    }

    #[test]
    fn transactions_commit_or_roll_back_together() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("c.sqlite")).unwrap();
        cat.ensure_schema("CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL)").unwrap();
        cat.ensure_schema("CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL)").unwrap();
        cat.transaction(|tx| {
            tx.execute("INSERT INTO t (v) VALUES (1)", [])?;
            Ok(())
        })
        .unwrap();
        let failed: Result<()> = cat.transaction(|tx| {
            tx.execute("INSERT INTO t (v) VALUES (2)", [])?;
            Err(crate::error::Error::invalid("no"))
        });
        assert!(failed.is_err());
        let n: i64 = cat
            .transaction(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 1, "the failed transaction left nothing behind");
    }
}
