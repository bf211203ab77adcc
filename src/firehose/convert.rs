//! Record format conversion: JSON records into Parquet objects (`DataFormatConversionConfiguration`
//! with `ParquetSerDe`). Firehose takes the schema from a Glue table; Sluice has none, so the
//! schema is given inline (`SchemaConfiguration.Columns`, a Sluice extension shaped as Glue's
//! columns: `Name` and a Hive type). Records are decoded with Arrow's JSON reader in chunks and
//! written with Arrow's Parquet writer (timestamps as microseconds since the epoch, UTC); a chunk
//! that fails is decoded record by record, so exactly the records that do not fit the schema are
//! refused (and go to the error prefix as `format-conversion-failed`).

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PageCompression, GzipLevel, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Records decoded together, at most.
const CHUNK: usize = 4096;

/// Parquet page compression (`ParquetSerDe.Compression`; ZSTD is a Sluice extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageCodec {
    Uncompressed,
    Snappy,
    Gzip,
    Zstd,
}

impl PageCodec {
    pub fn wire(self) -> &'static str {
        match self {
            PageCodec::Uncompressed => "UNCOMPRESSED",
            PageCodec::Snappy => "SNAPPY",
            PageCodec::Gzip => "GZIP",
            PageCodec::Zstd => "ZSTD",
        }
    }

    pub fn parse(s: &str) -> Option<PageCodec> {
        Some(match s {
            "UNCOMPRESSED" => PageCodec::Uncompressed,
            "SNAPPY" => PageCodec::Snappy,
            "GZIP" => PageCodec::Gzip,
            "ZSTD" => PageCodec::Zstd,
            _ => return None,
        })
    }
}

/// What a delivery stream converts records to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// Column name and Hive type, in order.
    pub columns: Vec<(String, String)>,
    /// `OpenXJsonSerDe` (keys matched case-insensitively, as its default) or `HiveJsonSerDe`.
    pub deserializer: String,
    pub codec: PageCodec,
    pub page_bytes: u32,
    pub block_bytes: u64,
    pub dictionary: bool,
    pub writer_v2: bool,
}

fn invalid(m: String) -> crate::datastream::DsError {
    crate::datastream::DsError::InvalidArgument(m)
}

impl Conversion {
    /// A `DataFormatConversionConfiguration` (`None` when disabled), checked: JSON in, Parquet
    /// out, the schema inline.
    pub fn parse(c: &Value) -> Result<Option<Conversion>, crate::datastream::DsError> {
        if c.get("Enabled") == Some(&Value::Bool(false)) {
            return Ok(None);
        }
        let schema = &c["SchemaConfiguration"];
        let Some(Value::Array(columns)) = schema.get("Columns") else {
            return Err(invalid(
                "DataFormatConversionConfiguration.SchemaConfiguration: Sluice has no Glue catalog; give the schema inline as Columns: [{\"Name\": …, \"Type\": <Hive type>}] (a Sluice extension).".into(),
            ));
        };
        let mut cols = Vec::new();
        for col in columns {
            let (Some(name), Some(ty)) = (col["Name"].as_str(), col["Type"].as_str()) else {
                return Err(invalid(
                    "SchemaConfiguration.Columns: every column needs Name and Type.".into(),
                ));
            };
            if name.is_empty()
                || cols.iter().any(|(n, _): &(String, String)| n.eq_ignore_ascii_case(name))
            {
                return Err(invalid(format!(
                    "SchemaConfiguration.Columns: column name {name:?} is empty or repeated."
                )));
            }
            hive_type(ty)
                .map_err(|e| invalid(format!("SchemaConfiguration.Columns: column {name}: {e}")))?;
            cols.push((name.to_owned(), ty.to_owned()));
        }
        if cols.is_empty() {
            return Err(invalid("SchemaConfiguration.Columns: at least one column.".into()));
        }
        let deserializer = match c["InputFormatConfiguration"]["Deserializer"].as_object() {
            None => "OpenXJsonSerDe".to_owned(),
            Some(d) if d.contains_key("HiveJsonSerDe") => "HiveJsonSerDe".to_owned(),
            Some(d) if d.contains_key("OpenXJsonSerDe") || d.is_empty() => {
                "OpenXJsonSerDe".to_owned()
            }
            Some(_) => return Err(invalid(
                "InputFormatConfiguration.Deserializer must be OpenXJsonSerDe or HiveJsonSerDe."
                    .into(),
            )),
        };
        let serializer = &c["OutputFormatConfiguration"]["Serializer"];
        if serializer.get("OrcSerDe").is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                "OutputFormatConfiguration: ORC is not supported by Sluice (ParquetSerDe is)."
                    .into(),
            ));
        }
        let p = &serializer["ParquetSerDe"];
        let codec = match p["Compression"].as_str() {
            None => PageCodec::Snappy,
            Some(s) => PageCodec::parse(s).ok_or_else(|| {
                invalid(format!(
                    "ParquetSerDe.Compression {s} is not UNCOMPRESSED, GZIP, SNAPPY or ZSTD."
                ))
            })?,
        };
        let number = |member: &str,
                      default: u64,
                      min: u64|
         -> Result<u64, crate::datastream::DsError> {
            match p.get(member) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v.as_u64().filter(|n| *n >= min).ok_or_else(|| {
                    invalid(format!("ParquetSerDe.{member} must be a number of at least {min}."))
                }),
            }
        };
        let writer_v2 = match p["WriterVersion"].as_str() {
            None | Some("V1") => false,
            Some("V2") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "ParquetSerDe.WriterVersion {other} is not V1 or V2."
                )));
            }
        };
        Ok(Some(Conversion {
            columns: cols,
            deserializer,
            codec,
            page_bytes: number("PageSizeBytes", 1 << 20, 64 << 10)?.min(u32::MAX as u64) as u32,
            block_bytes: number("BlockSizeBytes", 256 << 20, 64 << 20)?,
            dictionary: p["EnableDictionaryCompression"].as_bool().unwrap_or(true),
            writer_v2,
        }))
    }

    /// `DataFormatConversionConfiguration` as Describe shows it.
    pub fn describe(&self) -> Value {
        let columns: Vec<Value> =
            self.columns.iter().map(|(n, t)| serde_json::json!({ "Name": n, "Type": t })).collect();
        serde_json::json!({
            "Enabled": true,
            "SchemaConfiguration": { "Columns": columns },
            "InputFormatConfiguration": { "Deserializer": { self.deserializer.clone(): {} } },
            "OutputFormatConfiguration": { "Serializer": { "ParquetSerDe": {
                "BlockSizeBytes": self.block_bytes,
                "PageSizeBytes": self.page_bytes,
                "Compression": self.codec.wire(),
                "EnableDictionaryCompression": self.dictionary,
                "WriterVersion": if self.writer_v2 { "V2" } else { "V1" },
            } } },
        })
    }
}

/// A Hive column type as an Arrow type (`string`, `varchar(n)`, `char(n)`, `boolean`,
/// `tinyint`, `smallint`, `int`, `bigint`, `float`, `double`, `decimal(p,s)`, `timestamp`, `date`,
/// `array<T>`, `map<K,V>`, `struct<name:T,…>`).
pub fn hive_type(t: &str) -> Result<DataType, String> {
    let (ty, rest) = parse_type(t.trim())?;
    if !rest.trim().is_empty() {
        return Err(format!("unexpected {rest:?} after the type in {t:?}"));
    }
    Ok(ty)
}

fn parse_type(s: &str) -> Result<(DataType, &str), String> {
    let s = s.trim_start();
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    let (word, rest) = (s[..end].to_ascii_lowercase(), &s[end..]);
    let params = |rest: &str| -> Result<(Vec<u32>, usize), String> {
        let Some(inner) = rest.strip_prefix('(') else { return Ok((Vec::new(), 0)) };
        let close = inner.find(')').ok_or_else(|| format!("'(' without ')' in {s:?}"))?;
        let nums = inner[..close]
            .split(',')
            .map(|n| n.trim().parse::<u32>().map_err(|_| format!("bad number in {s:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((nums, close + 2))
    };
    let simple = match word.as_str() {
        "string" => Some(DataType::Utf8),
        "boolean" => Some(DataType::Boolean),
        "tinyint" => Some(DataType::Int8),
        "smallint" => Some(DataType::Int16),
        "int" | "integer" => Some(DataType::Int32),
        "bigint" => Some(DataType::Int64),
        "float" => Some(DataType::Float32),
        "double" => Some(DataType::Float64),
        "timestamp" => Some(DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))),
        "date" => Some(DataType::Date32),
        _ => None,
    };
    if let Some(t) = simple {
        return Ok((t, rest));
    }
    match word.as_str() {
        "varchar" | "char" => {
            let (_, used) = params(rest)?;
            Ok((DataType::Utf8, &rest[used..]))
        }
        "decimal" => {
            let (n, used) = params(rest)?;
            let (p, sc) = match n[..] {
                [] => (10, 0),
                [p] => (p, 0),
                [p, sc] => (p, sc),
                _ => return Err(format!("decimal takes (precision, scale): {s:?}")),
            };
            if !(1..=38).contains(&p) || sc > p {
                return Err(format!(
                    "decimal({p},{sc}): precision 1-38, scale at most the precision"
                ));
            }
            Ok((DataType::Decimal128(p as u8, sc as i8), &rest[used..]))
        }
        "array" => {
            let inner = rest.trim_start().strip_prefix('<').ok_or("array needs <T>")?;
            let (t, rest) = parse_type(inner)?;
            let rest = rest.trim_start().strip_prefix('>').ok_or("array<T> is not closed")?;
            Ok((DataType::List(Arc::new(Field::new_list_field(t, true))), rest))
        }
        "map" => {
            let inner = rest.trim_start().strip_prefix('<').ok_or("map needs <K,V>")?;
            let (k, rest) = parse_type(inner)?;
            let rest = rest.trim_start().strip_prefix(',').ok_or("map needs <K,V>")?;
            let (v, rest) = parse_type(rest)?;
            let rest = rest.trim_start().strip_prefix('>').ok_or("map<K,V> is not closed")?;
            let entries =
                Fields::from(vec![Field::new("key", k, false), Field::new("value", v, true)]);
            let entries = Field::new("key_value", DataType::Struct(entries), false);
            Ok((DataType::Map(Arc::new(entries), false), rest))
        }
        "struct" => {
            let mut rest = rest.trim_start().strip_prefix('<').ok_or("struct needs <name:T,…>")?;
            let mut fields = Vec::new();
            loop {
                let colon = rest.find(':').ok_or("struct fields are name:type")?;
                let name = rest[..colon].trim();
                if name.is_empty() {
                    return Err("a struct field needs a name".into());
                }
                let (t, after) = parse_type(&rest[colon + 1..])?;
                fields.push(Field::new(name, t, true));
                let after = after.trim_start();
                if let Some(r) = after.strip_prefix(',') {
                    rest = r;
                } else if let Some(r) = after.strip_prefix('>') {
                    return Ok((DataType::Struct(Fields::from(fields)), r));
                } else {
                    return Err("struct<…> is not closed".into());
                }
            }
        }
        "binary" => {
            Err("binary columns are not supported (store bytes as base64 in a string)".into())
        }
        "" => Err(format!("a type is missing at {s:?}")),
        other => Err(format!("unknown type {other}")),
    }
}

impl Conversion {
    /// The Arrow schema of the columns (every column nullable).
    pub fn schema(&self) -> Result<SchemaRef, String> {
        let mut fields = Vec::new();
        for (name, t) in &self.columns {
            let ty = hive_type(t).map_err(|e| format!("column {name}: {e}"))?;
            fields.push(Field::new(name, ty, true));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    fn properties(&self) -> WriterProperties {
        let codec = match self.codec {
            PageCodec::Uncompressed => PageCompression::UNCOMPRESSED,
            PageCodec::Snappy => PageCompression::SNAPPY,
            PageCodec::Gzip => PageCompression::GZIP(GzipLevel::default()),
            PageCodec::Zstd => PageCompression::ZSTD(ZstdLevel::default()),
        };
        WriterProperties::builder()
            .set_compression(codec)
            .set_data_page_size_limit(self.page_bytes as usize)
            .set_max_row_group_bytes(Some(self.block_bytes as usize))
            .set_dictionary_enabled(self.dictionary)
            .set_writer_version(if self.writer_v2 {
                WriterVersion::PARQUET_2_0
            } else {
                WriterVersion::PARQUET_1_0
            })
            .set_created_by(concat!("sluice ", env!("CARGO_PKG_VERSION")).into())
            .build()
    }
}

/// A record the schema refused: its bytes, arrival (ms) and why.
pub struct Refused {
    pub data: bytes::Bytes,
    pub arrival_ms: i64,
    pub message: String,
}

/// One Parquet object as it is filled.
pub struct ParquetWriter {
    schema: SchemaRef,
    /// Top-level timestamp columns: numbers there are epoch seconds or milliseconds.
    timestamps: Vec<String>,
    lowercase: bool,
    pending: Vec<(bytes::Bytes, i64, Value)>,
    writer: Option<ArrowWriter<Vec<u8>>>,
    rows: u64,
    pub refused: Vec<Refused>,
}

/// Epoch seconds (integers below 10^11, or any fraction) and milliseconds (integers from 10^11)
/// as microseconds, as Firehose's JSON deserializers read numeric timestamps.
fn epoch_micros(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return if i.abs() >= 100_000_000_000 {
            i.checked_mul(1000)
        } else {
            i.checked_mul(1_000_000)
        };
    }
    n.as_f64().map(|f| (f * 1e6).round() as i64)
}

impl ParquetWriter {
    pub fn new(c: &Conversion) -> Result<ParquetWriter, String> {
        let schema = c.schema()?;
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(c.properties()))
            .map_err(|e| format!("the Parquet writer: {e}"))?;
        let timestamps = schema
            .fields()
            .iter()
            .filter(|f| matches!(f.data_type(), DataType::Timestamp(..)))
            .map(|f| f.name().clone())
            .collect();
        Ok(ParquetWriter {
            schema,
            timestamps,
            lowercase: c.deserializer != "HiveJsonSerDe",
            pending: Vec::new(),
            writer: Some(writer),
            rows: 0,
            refused: Vec::new(),
        })
    }

    /// Rows written so far (records refused are not rows).
    pub fn rows(&self) -> u64 {
        self.rows + self.pending.len() as u64
    }

    pub fn push(&mut self, data: &bytes::Bytes, arrival_ms: i64) {
        let mut value = match serde_json::from_slice::<Value>(data) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return self.refuse(data, arrival_ms, "the record is not a JSON object".into());
            }
            Err(e) => return self.refuse(data, arrival_ms, format!("the record is not JSON: {e}")),
        };
        if let Value::Object(m) = &mut value {
            if self.lowercase && m.keys().any(|k| k.bytes().any(|b| b.is_ascii_uppercase())) {
                *m = std::mem::take(m).into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect();
            }
            for column in &self.timestamps {
                if let Some(Value::Number(n)) = m.get(column) {
                    match epoch_micros(n) {
                        Some(us) => m.insert(column.clone(), Value::from(us)),
                        None => {
                            let message = format!("{column}: {n} is out of range for a timestamp");
                            return self.refuse(data, arrival_ms, message);
                        }
                    };
                }
            }
        }
        self.pending.push((data.clone(), arrival_ms, value));
        if self.pending.len() >= CHUNK {
            self.drain();
        }
    }

    fn refuse(&mut self, data: &bytes::Bytes, arrival_ms: i64, message: String) {
        self.refused.push(Refused { data: data.clone(), arrival_ms, message });
    }

    fn decode(&self, rows: &[&Value]) -> Result<Option<arrow_array::RecordBatch>, String> {
        let mut decoder = arrow_json::ReaderBuilder::new(self.schema.clone())
            .with_batch_size(rows.len().max(1))
            .with_coerce_primitive(true)
            .build_decoder()
            .map_err(|e| e.to_string())?;
        decoder.serialize(rows).map_err(|e| e.to_string())?;
        decoder.flush().map_err(|e| e.to_string())
    }

    fn write(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), String> {
        let Some(w) = self.writer.as_mut() else { return Err("the writer is closed".into()) };
        w.write(batch).map_err(|e| e.to_string())?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Decodes and writes what is pending; a chunk that fails is retried record by record.
    fn drain(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        let values: Vec<&Value> = pending.iter().map(|(_, _, v)| v).collect();
        if let Ok(Some(batch)) = self.decode(&values) {
            if let Err(e) = self.write(&batch) {
                for (data, arrival, _) in &pending {
                    self.refuse(data, *arrival, format!("writing Parquet: {e}"));
                }
            }
            return;
        }
        for (data, arrival, value) in &pending {
            let result = self.decode(&[value]).and_then(|b| match b {
                Some(batch) => self.write(&batch),
                None => Ok(()),
            });
            if let Err(e) = result {
                self.refuse(data, *arrival, e);
            }
        }
    }

    /// The finished object (empty when no record made a row) and the refused records.
    pub fn finish(mut self) -> (Vec<u8>, Vec<Refused>) {
        self.drain();
        let body = match self.writer.take() {
            Some(w) if self.rows > 0 => match w.into_inner() {
                Ok(v) => v,
                Err(e) => {
                    let message = format!("closing the Parquet object: {e}");
                    tracing::error!(%message);
                    return (Vec::new(), self.refused);
                }
            },
            _ => Vec::new(),
        };
        (body, self.refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn conversion(columns: &[(&str, &str)]) -> Conversion {
        Conversion {
            columns: columns.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect(),
            deserializer: "OpenXJsonSerDe".into(),
            codec: PageCodec::Snappy,
            page_bytes: 1 << 20,
            block_bytes: 256 << 20,
            dictionary: true,
            writer_v2: false,
        }
    }

    #[test]
    fn hive_types_map_to_arrow() {
        assert_eq!(hive_type("BIGINT").unwrap(), DataType::Int64);
        assert_eq!(hive_type("varchar(20)").unwrap(), DataType::Utf8);
        assert_eq!(hive_type("decimal(12, 3)").unwrap(), DataType::Decimal128(12, 3));
        assert!(matches!(
            hive_type("array<struct<a:int,b:map<string,double>>>").unwrap(),
            DataType::List(_)
        ));
        for bad in ["", "int2", "array<int", "struct<>", "decimal(40,1)", "binary", "int x"] {
            assert!(hive_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn records_become_rows_and_misfits_are_refused() {
        let c = conversion(&[
            ("camera", "string"),
            ("count", "int"),
            ("at", "timestamp"),
            ("tags", "array<string>"),
        ]);
        let mut w = ParquetWriter::new(&c).unwrap();
        let records = [
            r#"{"Camera":"door","count":3,"at":"2026-12-08T01:02:03.456Z","tags":["a"]}"#,
            r#"{"camera":"yard","count":4,"at":1765155723456}"#,
            r#"{"camera":"gate","count":"many"}"#,
            r#"not json"#,
            r#"{"camera":"roof","at":1765155723}"#,
        ];
        for r in records {
            w.push(&bytes::Bytes::from(r), 7);
        }
        let (body, refused) = w.finish();
        assert_eq!(
            refused.len(),
            2,
            "{:?}",
            refused.iter().map(|r| &r.message).collect::<Vec<_>>()
        );
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader.map(Result::unwrap).collect();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 3);
        let at = batches[0]
            .column(2)
            .as_any()
            .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(at.value(1), 1_765_155_723_456_000, "epoch milliseconds");
        assert_eq!(at.value(2), 1_765_155_723_000_000, "epoch seconds");
        let camera =
            batches[0].column(0).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        assert_eq!(camera.value(0), "door", "OpenX matches keys case-insensitively");
        assert!(batches[0].column(3).is_null(1));
    }
}
