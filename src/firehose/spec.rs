//! A delivery stream's configuration, as Amazon Data Firehose's API shapes it (the botocore
//! `firehose` 2015-08-04 model): where records come from (`DirectPut`, or a Sluice data stream as
//! `KinesisStreamAsSource`) and the S3-style destination they are delivered to in buffered,
//! compressed objects, named as Firehose names them. Parsing and validation from the request's
//! JSON, the `Describe` shapes back, prefix evaluation and object names. Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::convert::Conversion;
use super::process::Processing;
use crate::clock::Timestamp;
use crate::datastream::DsError;
use crate::datastream::validate::Violations;

/// Delivery stream names: `[a-zA-Z0-9_.-]{1,64}`.
pub const MAX_NAME_LEN: usize = 64;
/// One record's data, at most (before base64).
pub const MAX_RECORD_BYTES: usize = 1_024_000;
/// PutRecordBatch: records and bytes per call, at most.
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// Where records come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Source {
    /// PutRecord / PutRecordBatch (kept in an internal data stream until delivered).
    DirectPut,
    /// A Sluice data stream, read from where it ended when the delivery stream was created.
    KinesisStream { stream: String, arn: String, role_arn: String },
}

impl Source {
    pub fn type_name(&self) -> &'static str {
        match self {
            Source::DirectPut => "DirectPut",
            Source::KinesisStream { .. } => "KinesisStreamAsSource",
        }
    }
}

/// How objects are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    Uncompressed,
    Gzip,
    /// Snappy's framing format (`.snappy`).
    Snappy,
    /// Hadoop's block format of Snappy (`.hsnappy`): per block of up to 256 KiB, its length, then
    /// the compressed block's length and bytes.
    HadoopSnappy,
    /// A ZIP archive of one deflated entry (`.zip`).
    Zip,
    /// Zstandard (`.zst`): a Sluice extension.
    Zstd,
}

impl Compression {
    pub fn wire(self) -> &'static str {
        match self {
            Compression::Uncompressed => "UNCOMPRESSED",
            Compression::Gzip => "GZIP",
            Compression::Snappy => "Snappy",
            Compression::HadoopSnappy => "HADOOP_SNAPPY",
            Compression::Zip => "ZIP",
            Compression::Zstd => "ZSTD",
        }
    }

    /// The object name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Uncompressed => "",
            Compression::Gzip => ".gz",
            Compression::Snappy => ".snappy",
            Compression::HadoopSnappy => ".hsnappy",
            Compression::Zip => ".zip",
            Compression::Zstd => ".zst",
        }
    }
}

/// The S3-style destination (`ExtendedS3DestinationConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Destination {
    pub role_arn: String,
    pub bucket: String,
    /// As configured (expressions unevaluated); empty for Firehose's default `YYYY/MM/dd/HH/`.
    pub prefix: String,
    pub error_output_prefix: String,
    pub size_mib: u32,
    pub interval_secs: u32,
    pub compression: Compression,
    pub file_extension: String,
    /// `ProcessingConfiguration` with the `AppendDelimiterToRecord` processor: `\n` after each
    /// record.
    pub append_delimiter: bool,
    /// `ProcessingConfiguration` whole (`append_delimiter` is its `AppendDelimiterToRecord`).
    #[serde(default)]
    pub processing: Processing,
    /// `DynamicPartitioningConfiguration` enabled, with its `RetryOptions.DurationInSeconds`.
    #[serde(default)]
    pub dynamic_partitioning: Option<u32>,
    /// `DataFormatConversionConfiguration`: records to Parquet.
    #[serde(default)]
    pub conversion: Option<Conversion>,
    /// `S3BackupMode` `Enabled`: every source record, before processing, to this destination too.
    #[serde(default)]
    pub backup: Option<Box<S3Destination>>,
}

impl S3Destination {
    pub fn buffer_bytes(&self) -> u64 {
        u64::from(self.size_mib) * MIB
    }

    /// The name's extension: `FileExtension`, else the format's.
    pub fn extension(&self) -> &str {
        if !self.file_extension.is_empty() {
            &self.file_extension
        } else if self.conversion.is_some() {
            ".parquet"
        } else {
            self.compression.extension()
        }
    }
}

/// Everything a delivery stream is configured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryConfig {
    pub source: Source,
    /// The S3 destination; the backup bucket when `http` is set.
    pub destination: S3Destination,
    #[serde(default)]
    pub http: Option<super::http_spec::HttpDestination>,
    /// `DeliveryStreamEncryptionConfigurationInput` (recorded, not applied).
    #[serde(default)]
    pub encryption: Option<String>,
}

pub(super) fn string<'v>(body: &'v Value, member: &str) -> Result<Option<&'v str>, DsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(serialization(member, "String")),
    }
}

pub(super) fn integer(body: &Value, member: &str) -> Result<Option<i64>, DsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| serialization(member, "Integer")),
    }
}

pub(super) fn boolean(body: &Value, member: &str) -> Result<Option<bool>, DsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(serialization(member, "Boolean")),
    }
}

pub fn structure<'v>(body: &'v Value, member: &str) -> Result<Option<&'v Value>, DsError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(serialization(member, "Structure")),
    }
}

pub fn serialization(member: &str, kind: &str) -> DsError {
    DsError::Serialization(format!(
        "Unexpected value type in payload for member {member}: expected {kind}"
    ))
}

/// `arn:aws:s3:::bucket` → the bucket (S3's naming rules: 3–63 of `[a-z0-9.-]`).
pub fn bucket_of(arn: &str) -> Result<String, DsError> {
    let bucket = arn.strip_prefix("arn:aws:s3:::").unwrap_or("");
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(DsError::InvalidArgument(format!(
            "BucketARN {arn} is not an S3 bucket ARN (arn:aws:s3:::bucket, 3-63 characters of a-z, 0-9, '.', '-')."
        )));
    }
    Ok(bucket.to_owned())
}

/// An `ExtendedS3DestinationConfiguration` (or `S3DestinationConfiguration`), whole.
pub fn s3_destination(c: &Value, member: &str) -> Result<S3Destination, DsError> {
    s3_update(c, member, None)
}

/// An `…DestinationUpdate` merged into `old` (or a whole configuration when `old` is `None`).
pub fn s3_update(
    c: &Value,
    member: &str,
    old: Option<&S3Destination>,
) -> Result<S3Destination, DsError> {
    let p = lower_first(member);
    let role = string(c, "RoleARN")?;
    let bucket_arn = string(c, "BucketARN")?;
    let prefix = string(c, "Prefix")?;
    let error_prefix = string(c, "ErrorOutputPrefix")?;
    let hints = structure(c, "BufferingHints")?;
    let (size, interval) = match hints {
        Some(h) => (integer(h, "SizeInMBs")?, integer(h, "IntervalInSeconds")?),
        None => (None, None),
    };
    let compression = string(c, "CompressionFormat")?;
    let extension = string(c, "FileExtension")?;
    let mut v = Violations::default();
    let required = old.is_none();
    v.length(&format!("{p}.roleARN"), role, required, (1, 512));
    v.length(&format!("{p}.bucketARN"), bucket_arn, required, (1, 2048));
    v.length(&format!("{p}.prefix"), prefix, false, (0, 1024));
    v.length(&format!("{p}.errorOutputPrefix"), error_prefix, false, (0, 1024));
    v.range(&format!("{p}.bufferingHints.sizeInMBs"), size, false, (1, 128));
    v.range(&format!("{p}.bufferingHints.intervalInSeconds"), interval, false, (0, 900));
    v.one_of(
        &format!("{p}.compressionFormat"),
        compression,
        false,
        &["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY", "ZSTD"],
        "UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY, ZSTD",
    );
    v.length(&format!("{p}.fileExtension"), extension, false, (0, 128));
    v.finish()?;
    let compression = match compression {
        None => old.map_or(Compression::Uncompressed, |o| o.compression),
        Some("UNCOMPRESSED") => Compression::Uncompressed,
        Some("GZIP") => Compression::Gzip,
        Some("Snappy") => Compression::Snappy,
        Some("HADOOP_SNAPPY") => Compression::HadoopSnappy,
        Some("ZIP") => Compression::Zip,
        _ => Compression::Zstd,
    };
    if let Some(e) = extension
        && !e.is_empty()
        && !(e.starts_with('.')
            && e[1..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!-_.*'()".contains(&b)))
    {
        return Err(DsError::InvalidArgument(format!(
            "FileExtension {e} must start with '.' and contain only 0-9, a-z and !-_.*'()."
        )));
    }
    let bucket = match bucket_arn {
        Some(arn) => bucket_of(arn)?,
        None => old.map(|o| o.bucket.clone()).unwrap_or_default(),
    };
    let processing = match structure(c, "ProcessingConfiguration")? {
        Some(p) => Processing::parse(p)?,
        None => old.map(|o| o.processing.clone()).unwrap_or_default(),
    };
    let append_delimiter = if c.get("ProcessingConfiguration").is_some() {
        processing.append_delimiter()
    } else {
        old.is_some_and(|o| o.append_delimiter)
    };
    let dynamic_partitioning = match structure(c, "DynamicPartitioningConfiguration")? {
        None => old.and_then(|o| o.dynamic_partitioning),
        Some(dp) => {
            let retry = match structure(dp, "RetryOptions")? {
                Some(r) => integer(r, "DurationInSeconds")?,
                None => None,
            };
            let mut v = Violations::default();
            v.range(
                &format!("{p}.dynamicPartitioningConfiguration.retryOptions.durationInSeconds"),
                retry,
                false,
                (0, 7200),
            );
            v.finish()?;
            (boolean(dp, "Enabled")? == Some(true)).then(|| retry.map_or(300, |r| r as u32))
        }
    };
    if let Some(o) = old
        && o.dynamic_partitioning.is_some() != dynamic_partitioning.is_some()
    {
        return Err(DsError::InvalidArgument(
            "Dynamic partitioning is chosen when a delivery stream is created; it cannot be turned on or off by an update.".into(),
        ));
    }
    let conversion = match structure(c, "DataFormatConversionConfiguration")? {
        Some(dc) => Conversion::parse(dc)?,
        None => old.and_then(|o| o.conversion.clone()),
    };
    let backup_mode = string(c, "S3BackupMode")?;
    let backup = match backup_mode {
        None => old.and_then(|o| o.backup.clone()),
        Some("Disabled") => None,
        Some("Enabled") => {
            let given = structure(c, "S3BackupConfiguration")?.or(structure(c, "S3BackupUpdate")?);
            let old_backup = old.and_then(|o| o.backup.as_deref());
            match (given, old_backup) {
                (Some(b), prev) => Some(Box::new(s3_update(b, "S3BackupConfiguration", prev)?)),
                (None, Some(prev)) => Some(Box::new(prev.clone())),
                (None, None) => {
                    return Err(DsError::InvalidArgument(
                        "S3BackupMode Enabled needs S3BackupConfiguration: where source records are backed up.".into(),
                    ));
                }
            }
        }
        Some(other) => {
            return Err(DsError::InvalidArgument(format!(
                "S3BackupMode {other} is not Disabled or Enabled."
            )));
        }
    };
    if backup.as_ref().is_some_and(|b| b.backup.is_some() || b.conversion.is_some()) {
        return Err(DsError::InvalidArgument(
            "S3BackupConfiguration cannot have a backup or a format conversion of its own.".into(),
        ));
    }
    let pick = |new: Option<&str>, f: fn(&S3Destination) -> String| -> String {
        new.map(str::to_owned).unwrap_or_else(|| old.map(f).unwrap_or_default())
    };
    let mut d = S3Destination {
        role_arn: pick(role, |o| o.role_arn.clone()),
        bucket,
        prefix: pick(prefix, |o| o.prefix.clone()),
        error_output_prefix: pick(error_prefix, |o| o.error_output_prefix.clone()),
        size_mib: size.map_or_else(|| old.map_or(5, |o| o.size_mib), |s| s as u32),
        interval_secs: interval.map_or_else(|| old.map_or(300, |o| o.interval_secs), |s| s as u32),
        compression,
        file_extension: pick(extension, |o| o.file_extension.clone()),
        append_delimiter,
        processing,
        dynamic_partitioning,
        conversion,
        backup,
    };
    if d.conversion.is_some() && old.is_none() && size.is_none() {
        // Firehose's default buffer with format conversion: Parquet wants large row groups.
        d.size_mib = 128;
    }
    if d.conversion.is_some() && d.compression != Compression::Uncompressed {
        return Err(DsError::InvalidArgument(
            "CompressionFormat must be UNCOMPRESSED when DataFormatConversionConfiguration is enabled (Parquet compresses its pages: ParquetSerDe.Compression).".into(),
        ));
    }
    check_prefixes(&d)?;
    Ok(d)
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
}

/// One `!{namespace:value}` expression of a prefix, or literal text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Timestamp(&'a str),
    RandomString,
    ErrorOutputType,
    /// `partitionKeyFromQuery:` (`false`) or `partitionKeyFromLambda:` (`true`).
    PartitionKey(bool, &'a str),
}

fn pieces<'a>(prefix: &'a str, member: &str) -> Result<Vec<Piece<'a>>, DsError> {
    let mut out = Vec::new();
    let mut rest = prefix;
    while let Some(at) = rest.find("!{") {
        if at > 0 {
            out.push(Piece::Text(&rest[..at]));
        }
        let end = rest[at..].find('}').ok_or_else(|| {
            DsError::InvalidArgument(format!(
                "{member} {prefix:?}: an expression '!{{' is not closed by '}}'."
            ))
        })?;
        let expr = &rest[at + 2..at + end];
        out.push(match expr.split_once(':') {
            Some(("timestamp", f)) if !f.is_empty() => Piece::Timestamp(f),
            Some(("firehose", "random-string")) => Piece::RandomString,
            Some(("firehose", "error-output-type")) => Piece::ErrorOutputType,
            Some(("partitionKeyFromQuery", k)) if !k.is_empty() => Piece::PartitionKey(false, k),
            Some(("partitionKeyFromLambda", k)) if !k.is_empty() => Piece::PartitionKey(true, k),
            _ => {
                return Err(DsError::InvalidArgument(format!(
                    "{member} {prefix:?}: unknown expression !{{{expr}}} (timestamp:…, firehose:random-string and firehose:error-output-type are known)."
                )));
            }
        });
        rest = &rest[at + end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Firehose's prefix rules: expressions well formed; `error-output-type` only in the error
/// prefix; a prefix with expressions needs an error prefix with `error-output-type`.
fn check_prefixes(d: &S3Destination) -> Result<(), DsError> {
    let main = pieces(&d.prefix, "Prefix")?;
    let error = pieces(&d.error_output_prefix, "ErrorOutputPrefix")?;
    if main.contains(&Piece::ErrorOutputType) {
        return Err(DsError::InvalidArgument(
            "The expression !{firehose:error-output-type} is allowed only in ErrorOutputPrefix."
                .into(),
        ));
    }
    let partitioned = |p: &[Piece<'_>]| p.iter().any(|x| matches!(x, Piece::PartitionKey(..)));
    if partitioned(&error) {
        return Err(DsError::InvalidArgument(
            "ErrorOutputPrefix cannot contain partitionKeyFromQuery or partitionKeyFromLambda expressions.".into(),
        ));
    }
    if d.dynamic_partitioning.is_some() {
        if !partitioned(&main) {
            return Err(DsError::InvalidArgument(
                "With dynamic partitioning, Prefix must contain at least one !{partitionKeyFromQuery:…} or !{partitionKeyFromLambda:…} expression.".into(),
            ));
        }
        if d.error_output_prefix.is_empty() {
            return Err(DsError::InvalidArgument(
                "With dynamic partitioning, ErrorOutputPrefix is required.".into(),
            ));
        }
    } else if partitioned(&main) {
        return Err(DsError::InvalidArgument(
            "Prefix has partition key expressions but DynamicPartitioningConfiguration is not enabled.".into(),
        ));
    }
    let has_expr = |p: &[Piece<'_>]| p.iter().any(|x| !matches!(x, Piece::Text(_)));
    if has_expr(&main) && !error.contains(&Piece::ErrorOutputType) {
        return Err(DsError::InvalidArgument(
            "ErrorOutputPrefix must contain !{firehose:error-output-type} when Prefix contains expressions.".into(),
        ));
    }
    Ok(())
}

/// A Java `DateTimeFormatter` pattern of the common letters (`yyyy`, `yy`, `MM`, `dd`, `HH`,
/// `mm`, `ss`, `SSS`; `'quoted'` text literal), at `t` in UTC.
pub fn format_time(pattern: &str, t: Timestamp) -> String {
    use chrono::{Datelike, Timelike};
    let dt = chrono::DateTime::from_timestamp_micros(t.as_micros()).unwrap_or_default();
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end =
                chars[i + 1..].iter().position(|&x| x == '\'').map_or(chars.len(), |p| i + 1 + p);
            out.extend(&chars[i + 1..end]);
            i = end + 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let n = |v: u32, w: usize| format!("{v:0w$}");
        match c {
            'y' if run == 2 => out.push_str(&n(dt.year().rem_euclid(100) as u32, 2)),
            'y' | 'u' => out.push_str(&n(dt.year() as u32, run.max(4))),
            'M' => out.push_str(&n(dt.month(), run)),
            'd' => out.push_str(&n(dt.day(), run)),
            'H' => out.push_str(&n(dt.hour(), run)),
            'm' => out.push_str(&n(dt.minute(), run)),
            's' => out.push_str(&n(dt.second(), run)),
            'S' => out.push_str(&n(dt.timestamp_subsec_millis(), 3)[..run.min(3)]),
            other => out.extend(std::iter::repeat_n(other, run)),
        }
        i += run;
    }
    out
}

/// Eleven characters of `[a-zA-Z0-9]` from `seed` (deterministic, so a retried object keeps its
/// name).
fn random_string(seed: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    Sha256::digest(seed)
        .iter()
        .take(11)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A prefix evaluated for an object whose oldest record arrived at `oldest`: every timestamp
/// expression at that instant (UTC), random strings drawn from `seed`; `error_type` fills
/// `!{firehose:error-output-type}`. A prefix without any expression gets Firehose's
/// `yyyy/MM/dd/HH/` appended (the empty prefix is just that).
pub fn evaluate_prefix(prefix: &str, oldest: Timestamp, seed: &[u8], error_type: &str) -> String {
    evaluate_with_keys(prefix, oldest, seed, error_type, &BTreeMap::new())
}

/// `evaluate_prefix` with a dynamic partition's keys for its `partitionKeyFrom…` expressions.
pub fn evaluate_with_keys(
    prefix: &str,
    oldest: Timestamp,
    seed: &[u8],
    error_type: &str,
    keys: &BTreeMap<String, String>,
) -> String {
    let Ok(parts) = pieces(prefix, "Prefix") else { return prefix.to_owned() };
    let mut out = String::new();
    let mut uses = 0u8;
    for p in &parts {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Timestamp(f) => out.push_str(&format_time(f, oldest)),
            Piece::RandomString => {
                uses += 1;
                out.push_str(&random_string(&[seed, &[uses]].concat()));
            }
            Piece::ErrorOutputType => out.push_str(error_type),
            Piece::PartitionKey(_, k) => out.push_str(keys.get(*k).map_or("", String::as_str)),
        }
    }
    if parts.iter().all(|p| matches!(p, Piece::Text(_))) {
        out.push_str(&format_time("yyyy/MM/dd/HH/", oldest));
    }
    out
}

/// The first partition key `prefix` uses that `keys` lacks.
pub fn missing_key<'p>(prefix: &'p str, keys: &BTreeMap<String, String>) -> Option<&'p str> {
    pieces(prefix, "Prefix").ok()?.into_iter().find_map(|p| match p {
        Piece::PartitionKey(_, k) if !keys.contains_key(k) => Some(k),
        _ => None,
    })
}

/// A deterministic UUID (version 4 layout) from `seed`.
pub fn uuid_of(seed: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut b: [u8; 16] = Sha256::digest(seed)[..16].try_into().unwrap_or_default();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The object key Firehose forms: `<prefix><stream>-<version>-<yyyy>-<MM>-<dd>-<HH>-<mm>-<ss>-<uuid><ext>`;
/// `keys` are the object's partition keys (dynamic partitioning).
pub fn object_key(
    d: &S3Destination,
    stream: &str,
    version: u64,
    oldest: Timestamp,
    seed: &[u8],
    keys: &BTreeMap<String, String>,
) -> String {
    let prefix = evaluate_with_keys(&d.prefix, oldest, seed, "", keys);
    object_name(&prefix, d.extension(), stream, version, oldest, seed)
}

/// The key of an object under an already evaluated `prefix`.
pub fn object_name(
    prefix: &str,
    extension: &str,
    stream: &str,
    version: u64,
    oldest: Timestamp,
    seed: &[u8],
) -> String {
    format!(
        "{prefix}{stream}-{version}-{}-{}{extension}",
        format_time("yyyy-MM-dd-HH-mm-ss", oldest),
        uuid_of(seed),
    )
}

/// `ExtendedS3DestinationDescription` (and the `S3DestinationDescription` AWS shows beside it).
pub fn describe_s3(d: &S3Destination) -> (Value, Value) {
    let common = json!({
        "RoleARN": d.role_arn,
        "BucketARN": format!("arn:aws:s3:::{}", d.bucket),
        "Prefix": d.prefix,
        "ErrorOutputPrefix": d.error_output_prefix,
        "BufferingHints": { "SizeInMBs": d.size_mib, "IntervalInSeconds": d.interval_secs },
        "CompressionFormat": d.compression.wire(),
        "EncryptionConfiguration": { "NoEncryptionConfig": "NoEncryption" },
        "CloudWatchLoggingOptions": { "Enabled": false },
    });
    let mut extended = common.clone();
    extended["S3BackupMode"] = json!("Disabled");
    if !d.file_extension.is_empty() {
        extended["FileExtension"] = json!(d.file_extension);
    }
    extended["ProcessingConfiguration"] = if !d.processing.processors.is_empty() {
        d.processing.describe()
    } else if d.append_delimiter {
        json!({ "Enabled": true, "Processors": [{ "Type": "AppendDelimiterToRecord", "Parameters": [] }] })
    } else {
        json!({ "Enabled": false, "Processors": [] })
    };
    extended["DynamicPartitioningConfiguration"] = match d.dynamic_partitioning {
        Some(retry) => json!({ "Enabled": true, "RetryOptions": { "DurationInSeconds": retry } }),
        None => json!({ "Enabled": false }),
    };
    if let Some(c) = &d.conversion {
        extended["DataFormatConversionConfiguration"] = c.describe();
    }
    if let Some(b) = &d.backup {
        extended["S3BackupMode"] = json!("Enabled");
        extended["S3BackupDescription"] = describe_s3(b).0;
    }
    (common, extended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(prefix: &str, error: &str) -> S3Destination {
        S3Destination {
            role_arn: "r".into(),
            bucket: "lake".into(),
            prefix: prefix.into(),
            error_output_prefix: error.into(),
            size_mib: 5,
            interval_secs: 300,
            compression: Compression::Gzip,
            file_extension: String::new(),
            append_delimiter: false,
            processing: Processing::default(),
            dynamic_partitioning: None,
            conversion: None,
            backup: None,
        }
    }

    #[test]
    fn prefixes_evaluate_as_firehose_does() {
        // 2026-03-01T11:02:03.456Z
        let t = Timestamp::from_millis(1_772_362_923_456);
        assert_eq!(evaluate_prefix("", t, b"s", ""), "2026/03/01/11/");
        assert_eq!(evaluate_prefix("raw/", t, b"s", ""), "raw/2026/03/01/11/");
        assert_eq!(
            evaluate_prefix("dt=!{timestamp:yyyy-MM-dd}/h=!{timestamp:HH}/", t, b"s", ""),
            "dt=2026-03-01/h=11/"
        );
        assert_eq!(format_time("yy'-'MM'T'HH:mm:ss.SSS", t), "26-03T11:02:03.456");
        let r = evaluate_prefix("x/!{firehose:random-string}/", t, b"seed", "");
        assert_eq!(r.len(), "x//".len() + 11);
        assert_eq!(
            r,
            evaluate_prefix("x/!{firehose:random-string}/", t, b"seed", ""),
            "deterministic"
        );
        assert_ne!(r, evaluate_prefix("x/!{firehose:random-string}/", t, b"other", ""));
        assert_eq!(
            evaluate_prefix("err/!{firehose:error-output-type}/", t, b"s", "processing-failed"),
            "err/processing-failed/"
        );
        let key = object_key(&dest("", ""), "hose", 3, t, b"seed", &BTreeMap::new());
        assert!(key.starts_with("2026/03/01/11/hose-3-2026-03-01-11-02-03-"), "{key}");
        assert!(
            key.ends_with(".gz")
                && key.len() == "2026/03/01/11/hose-3-2026-03-01-11-02-03-".len() + 36 + 3
        );
        assert_eq!(uuid_of(b"a"), uuid_of(b"a"));
        assert_eq!(&uuid_of(b"a")[14..15], "4");
    }

    #[test]
    fn prefix_rules_are_checked() {
        assert!(
            check_prefixes(&dest("a/!{timestamp:yyyy}/", "e/!{firehose:error-output-type}/"))
                .is_ok()
        );
        for (p, e) in [
            ("a/!{timestamp:yyyy}/", ""),
            ("a/!{firehose:error-output-type}/", "e/!{firehose:error-output-type}/"),
            ("a/!{nope:x}/", "e/!{firehose:error-output-type}/"),
            ("a/!{timestamp:yyyy/", "e/!{firehose:error-output-type}/"),
            ("a/!{partitionKeyFromQuery:k}/", "e/!{firehose:error-output-type}/"),
            ("a/", "e/!{partitionKeyFromQuery:k}/"),
        ] {
            assert!(
                matches!(check_prefixes(&dest(p, e)), Err(DsError::InvalidArgument(_))),
                "{p} {e}"
            );
        }
        assert!(bucket_of("arn:aws:s3:::my-lake.1").is_ok());
        for bad in ["arn:aws:s3:::UP", "arn:aws:s3:::ab", "s3://lake", "arn:aws:s3:::-x"] {
            assert!(bucket_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn destinations_parse_merge_and_refuse_what_is_not_built() {
        let c = json!({ "RoleARN": "r", "BucketARN": "arn:aws:s3:::lake" });
        let d = s3_destination(&c, "ExtendedS3DestinationConfiguration").unwrap();
        assert_eq!(
            (d.size_mib, d.interval_secs, d.compression),
            (5, 300, Compression::Uncompressed)
        );
        let u = json!({ "BufferingHints": { "SizeInMBs": 64, "IntervalInSeconds": 0 }, "CompressionFormat": "GZIP" });
        let m = s3_update(&u, "ExtendedS3DestinationUpdate", Some(&d)).unwrap();
        assert_eq!(
            (m.size_mib, m.interval_secs, m.compression, &m.bucket[..]),
            (64, 0, Compression::Gzip, "lake")
        );
        let bad = json!({ "RoleARN": "r", "BucketARN": "arn:aws:s3:::lake", "BufferingHints": { "SizeInMBs": 129 } });
        assert!(matches!(
            s3_destination(&bad, "ExtendedS3DestinationConfiguration"),
            Err(DsError::Validation(_))
        ));
        let zip =
            json!({ "RoleARN": "r", "BucketARN": "arn:aws:s3:::lake", "CompressionFormat": "ZIP" });
        assert_eq!(s3_destination(&zip, "X").unwrap().extension(), ".zip");
        let lambda = json!({ "RoleARN": "r", "BucketARN": "arn:aws:s3:::lake",
            "ProcessingConfiguration": { "Enabled": true, "Processors": [{ "Type": "Lambda" }] } });
        assert!(matches!(s3_destination(&lambda, "X"), Err(DsError::InvalidArgument(_))));
        let dp = |prefix: &str, enabled: bool| {
            json!({ "RoleARN": "r", "BucketARN": "arn:aws:s3:::lake",
            "Prefix": prefix, "ErrorOutputPrefix": "err/!{firehose:error-output-type}/",
            "DynamicPartitioningConfiguration": { "Enabled": enabled } })
        };
        let with = s3_destination(&dp("cam=!{partitionKeyFromQuery:camera}/", true), "X").unwrap();
        assert_eq!(with.dynamic_partitioning, Some(300));
        let keys = BTreeMap::from([("camera".to_owned(), "door".to_owned())]);
        assert!(
            object_key(&with, "h", 1, Timestamp::from_millis(0), b"s", &keys)
                .starts_with("cam=door/h-1-1970-")
        );
        for (prefix, enabled) in [("cam=!{partitionKeyFromQuery:camera}/", false), ("plain/", true)]
        {
            assert!(
                matches!(
                    s3_destination(&dp(prefix, enabled), "X"),
                    Err(DsError::InvalidArgument(_))
                ),
                "{prefix}"
            );
        }
        let parquet = json!({ "RoleARN": "r", "BucketARN": "arn:aws:s3:::lake", "CompressionFormat": "GZIP",
            "DataFormatConversionConfiguration": { "SchemaConfiguration": { "Columns": [{ "Name": "a", "Type": "int" }] } } });
        assert!(
            matches!(s3_destination(&parquet, "X"), Err(DsError::InvalidArgument(_))),
            "Parquet needs UNCOMPRESSED"
        );
        assert!(matches!(s3_destination(&json!({}), "X"), Err(DsError::Validation(_))));
    }
}
