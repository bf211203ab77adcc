//! Where image-generation configurations and cursors live: the `image_generation` table of the
//! catalog (`crate::catalog`), one row per configured stream. The cursor is what lets a restart
//! resume where generation was instead of starting over or skipping ahead.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::spec::ImageGenerationSpec;
use crate::catalog::Catalog;
use crate::catalog::VideoStreamId;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::video::fragment::FragmentNumber;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS image_generation (
    stream_id        INTEGER PRIMARY KEY,
    config           TEXT NOT NULL,
    next_instant_us  INTEGER,
    from_fragment    INTEGER
);
";

/// Where a stream's generation continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The first instant inside (or after) this fragment: set when generation is configured, so
    /// it covers media from then on (the fragment is the log's end at that moment).
    FromFragment(FragmentNumber),
    /// The next instant to generate (a multiple of the interval, on the configured clock).
    At(Timestamp),
}

/// One stored row.
#[derive(Debug, Clone)]
pub struct Row {
    pub stream_id: VideoStreamId,
    pub spec: ImageGenerationSpec,
    pub cursor: Cursor,
}

/// The table, over the shared catalog connection. Every call is a short synchronous statement.
pub struct Store {
    catalog: Arc<Catalog>,
}

impl Store {
    pub fn open(catalog: Arc<Catalog>) -> Result<Store> {
        catalog.ensure_stream_table(SCHEMA, "image_generation")?;
        Ok(Store { catalog })
    }

    pub fn all(&self) -> Result<Vec<Row>> {
        self.catalog.transaction(|tx| {
            let mut stmt = tx.prepare(
                "SELECT stream_id, config, next_instant_us, from_fragment FROM image_generation",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, VideoStreamId>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (stream_id, config, next, from) = row?;
                let spec: ImageGenerationSpec = serde_json::from_str(&config).map_err(|e| {
                    Error::internal(format!(
                        "catalog: image_generation row of stream id {stream_id}: {e}"
                    ))
                })?;
                out.push(Row { stream_id, spec, cursor: cursor_from(next, from) });
            }
            Ok(out)
        })
    }

    /// Inserts or replaces a stream's configuration and cursor.
    pub fn put(
        &self,
        stream_id: VideoStreamId,
        spec: &ImageGenerationSpec,
        cursor: Cursor,
    ) -> Result<()> {
        let config = serde_json::to_string(spec).map_err(|e| Error::internal(e.to_string()))?;
        let (next, from) = cursor_to(cursor);
        self.catalog.transaction(|tx| {
            tx.execute(
                "INSERT INTO image_generation (stream_id, config, next_instant_us, from_fragment)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(stream_id) DO UPDATE SET config = ?2, next_instant_us = ?3,
                     from_fragment = ?4",
                params![stream_id, config, next, from],
            )?;
            Ok(())
        })
    }

    /// Moves a stream's cursor (a no-op if generation was removed meanwhile).
    pub fn set_cursor(&self, stream_id: VideoStreamId, cursor: Cursor) -> Result<()> {
        let (next, from) = cursor_to(cursor);
        self.catalog.transaction(|tx| {
            tx.execute(
                "UPDATE image_generation SET next_instant_us = ?2, from_fragment = ?3
                 WHERE stream_id = ?1",
                params![stream_id, next, from],
            )?;
            Ok(())
        })
    }

    pub fn cursor(&self, stream_id: VideoStreamId) -> Result<Option<Cursor>> {
        self.catalog.transaction(|tx| {
            let row = tx
                .query_row(
                    "SELECT next_instant_us, from_fragment FROM image_generation
                     WHERE stream_id = ?1",
                    [stream_id],
                    |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
                )
                .optional()?;
            Ok(row.map(|(n, f)| cursor_from(n, f)))
        })
    }

    pub fn delete(&self, stream_id: VideoStreamId) -> Result<()> {
        self.catalog.transaction(|tx| {
            tx.execute("DELETE FROM image_generation WHERE stream_id = ?1", [stream_id])?;
            Ok(())
        })
    }
}

fn cursor_to(c: Cursor) -> (Option<i64>, Option<i64>) {
    match c {
        Cursor::At(t) => (Some(t.as_micros()), None),
        Cursor::FromFragment(o) => (None, Some(i64::try_from(o.0).unwrap_or(i64::MAX))),
    }
}

fn cursor_from(next: Option<i64>, from: Option<i64>) -> Cursor {
    match (next, from) {
        (Some(us), _) => Cursor::At(Timestamp::from_micros(us)),
        (None, f) => {
            Cursor::FromFragment(FragmentNumber(f.and_then(|f| u64::try_from(f).ok()).unwrap_or(0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imagegen::spec::{Destination, OutputFormat};

    #[test]
    fn rows_round_trip_and_cursors_move() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Arc::new(Catalog::open(&dir.path().join("c.sqlite")).unwrap());
        let store = Store::open(cat.clone()).unwrap();
        let spec = ImageGenerationSpec {
            interval_ms: 1000,
            format: OutputFormat::Png,
            width: Some(320),
            height: None,
            quality: 80,
            timestamps: crate::clock::TimestampKind::Server,
            destination: Destination::Directory { path: "/tmp/x".into() },
        };
        store.put(VideoStreamId(7), &spec, Cursor::FromFragment(FragmentNumber(3))).unwrap();
        let rows = store.all().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].spec, spec);
        assert_eq!(rows[0].cursor, Cursor::FromFragment(FragmentNumber(3)));
        store.set_cursor(VideoStreamId(7), Cursor::At(Timestamp::from_millis(5000))).unwrap();
        assert_eq!(
            store.cursor(VideoStreamId(7)).unwrap(),
            Some(Cursor::At(Timestamp::from_millis(5000)))
        );
        // Reopening (a restart) keeps both.
        let again = Store::open(cat).unwrap();
        assert_eq!(again.all().unwrap()[0].cursor, Cursor::At(Timestamp::from_millis(5000)));
        again.delete(VideoStreamId(7)).unwrap();
        assert!(again.all().unwrap().is_empty());
        assert_eq!(again.cursor(VideoStreamId(7)).unwrap(), None);
    }
}
