//! The HTTP endpoint destination's configuration (`HttpEndpointDestinationConfiguration`, its
//! update and description), as Firehose's API shapes it. Pure: no I/O (the protocol is
//! `super::http`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::spec::{
    S3Destination, describe_s3, integer, s3_destination, s3_update, serialization, string,
    structure,
};
use crate::datastream::DsError;
use crate::datastream::validate::Violations;

/// An HTTP endpoint destination (`HttpEndpointDestinationConfiguration`), spoken to with
/// Firehose's HTTP endpoint delivery protocol 1.0. Failed batches (and all, with `AllData`) go to
/// the stream's S3 configuration (`DeliveryConfig::destination`) as backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpDestination {
    pub url: String,
    pub name: String,
    /// `AccessKey`, sealed (`crate::auth::seal`); sent as `X-Amz-Firehose-Access-Key`.
    pub access_key_sealed: Option<String>,
    pub size_mib: u32,
    pub interval_secs: u32,
    pub gzip: bool,
    pub common_attributes: BTreeMap<String, String>,
    /// `RetryOptions.DurationInSeconds`: how long a batch is retried before it goes to backup.
    pub retry_secs: u32,
    /// `S3BackupMode` `AllData` (every batch also to the bucket) rather than `FailedDataOnly`.
    pub backup_all: bool,
    pub role_arn: String,
}

/// An `HttpEndpointDestinationConfiguration` (`seal` seals its access key); its
/// `S3Configuration` is returned beside it as the backup bucket.
pub fn http_destination(
    c: &Value,
    seal: &dyn Fn(&str) -> String,
) -> Result<(HttpDestination, S3Destination), DsError> {
    let p = "httpEndpointDestinationConfiguration";
    let endpoint = structure(c, "EndpointConfiguration")?;
    let (url, name, key) = match endpoint {
        Some(e) => (string(e, "Url")?, string(e, "Name")?, string(e, "AccessKey")?),
        None => (None, None, None),
    };
    let hints = structure(c, "BufferingHints")?;
    let (size, interval) = match hints {
        Some(h) => (integer(h, "SizeInMBs")?, integer(h, "IntervalInSeconds")?),
        None => (None, None),
    };
    let request = structure(c, "RequestConfiguration")?;
    let encoding = match request {
        Some(r) => string(r, "ContentEncoding")?,
        None => None,
    };
    let retry = match structure(c, "RetryOptions")? {
        Some(r) => integer(r, "DurationInSeconds")?,
        None => None,
    };
    let backup_mode = string(c, "S3BackupMode")?;
    let mut v = Violations::default();
    if endpoint.is_none() {
        v.null(&format!("{p}.endpointConfiguration"));
    } else {
        v.length(&format!("{p}.endpointConfiguration.url"), url, true, (1, 1000));
        v.length(&format!("{p}.endpointConfiguration.name"), name, false, (1, 256));
        v.length(&format!("{p}.endpointConfiguration.accessKey"), key, false, (0, 4096));
    }
    v.range(&format!("{p}.bufferingHints.sizeInMBs"), size, false, (1, 64));
    v.range(&format!("{p}.bufferingHints.intervalInSeconds"), interval, false, (0, 900));
    v.one_of(
        &format!("{p}.requestConfiguration.contentEncoding"),
        encoding,
        false,
        &["NONE", "GZIP"],
        "NONE, GZIP",
    );
    v.range(&format!("{p}.retryOptions.durationInSeconds"), retry, false, (0, 7200));
    v.one_of(
        &format!("{p}.s3BackupMode"),
        backup_mode,
        false,
        &["FailedDataOnly", "AllData"],
        "FailedDataOnly, AllData",
    );
    v.finish()?;
    let url = url.unwrap_or_default();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url::Url::parse(url).is_err()
    {
        return Err(DsError::InvalidArgument(format!(
            "EndpointConfiguration.Url {url} is not an http(s) URL."
        )));
    }
    let mut common_attributes = BTreeMap::new();
    if let Some(r) = request {
        match r.get("CommonAttributes") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for a in list {
                    let (k, val) = (string(a, "AttributeName")?, string(a, "AttributeValue")?);
                    common_attributes.insert(
                        k.unwrap_or_default().to_owned(),
                        val.unwrap_or_default().to_owned(),
                    );
                }
            }
            Some(_) => return Err(serialization("CommonAttributes", "List")),
        }
    }
    let backup = structure(c, "S3Configuration")?.ok_or_else(|| {
        DsError::InvalidArgument(
            "HttpEndpointDestinationConfiguration needs S3Configuration: the bucket failed batches are backed up to.".into(),
        )
    })?;
    let backup = s3_destination(backup, "S3Configuration")?;
    let http = HttpDestination {
        url: url.to_owned(),
        name: name.unwrap_or_default().to_owned(),
        access_key_sealed: key.filter(|k| !k.is_empty()).map(seal),
        size_mib: size.map_or(5, |s| s as u32),
        interval_secs: interval.map_or(300, |s| s as u32),
        gzip: encoding == Some("GZIP"),
        common_attributes,
        retry_secs: retry.map_or(300, |s| s as u32),
        backup_all: backup_mode == Some("AllData"),
        role_arn: string(c, "RoleARN")?.unwrap_or_default().to_owned(),
    };
    Ok((http, backup))
}

/// An `HttpEndpointDestinationUpdate` merged into the current configuration: members given
/// replace theirs (objects member by member, `S3Update` into the backup bucket); the access key
/// stays unless a new one is given.
pub fn http_update(
    u: &Value,
    old: &HttpDestination,
    backup: &S3Destination,
    seal: &dyn Fn(&str) -> String,
) -> Result<(HttpDestination, S3Destination), DsError> {
    fn merge(into: &mut Value, from: &Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            (slot, v) => *slot = v.clone(),
        }
    }
    let mut current = describe_http(old, backup);
    if let Value::Object(m) = &mut current {
        m.remove("S3DestinationDescription");
        m.remove("CloudWatchLoggingOptions");
    }
    let mut changes = u.clone();
    if let Value::Object(m) = &mut changes {
        m.remove("S3Update");
    }
    merge(&mut current, &changes);
    let new_backup = match structure(u, "S3Update")? {
        Some(s) => s3_update(s, "S3Update", Some(backup))?,
        None => backup.clone(),
    };
    // Parsed whole with a placeholder backup (the real one is merged above).
    current["S3Configuration"] = json!({ "RoleARN": "r", "BucketARN": "arn:aws:s3:::placeholder" });
    let (mut h, _) = http_destination(&current, seal)?;
    let new_key = u.get("EndpointConfiguration").and_then(|e| e.get("AccessKey"));
    if new_key.is_none_or(Value::is_null) {
        h.access_key_sealed = old.access_key_sealed.clone();
    }
    Ok((h, new_backup))
}

/// `HttpEndpointDestinationDescription` (the access key is never shown).
pub fn describe_http(h: &HttpDestination, backup: &S3Destination) -> Value {
    let attributes: Vec<Value> = h
        .common_attributes
        .iter()
        .map(|(k, v)| json!({ "AttributeName": k, "AttributeValue": v }))
        .collect();
    json!({
        "EndpointConfiguration": { "Url": h.url, "Name": h.name },
        "BufferingHints": { "SizeInMBs": h.size_mib, "IntervalInSeconds": h.interval_secs },
        "RequestConfiguration": {
            "ContentEncoding": if h.gzip { "GZIP" } else { "NONE" },
            "CommonAttributes": attributes,
        },
        "RetryOptions": { "DurationInSeconds": h.retry_secs },
        "S3BackupMode": if h.backup_all { "AllData" } else { "FailedDataOnly" },
        "RoleARN": h.role_arn,
        "S3DestinationDescription": describe_s3(backup).0,
        "CloudWatchLoggingOptions": { "Enabled": false },
    })
}
