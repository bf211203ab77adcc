//! Who may call which Kinesis operation on which stream: the request's SigV4 signature names an
//! access key (`crate::auth::sigv4`), and the operation needs a grant on the stream its body
//! names (`StreamName`, `StreamARN`, the stream of a `ConsumerARN` or of a shard iterator).
//! ListStreams shows only the streams the key may see.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Auth, Identity};
use crate::config::Action;
use crate::datastream::{DataStreams, DsError};

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `action` on the stream the request names.
    Stream(Action),
    /// Any identity (ListStreams is filtered, DescribeLimits is the account's).
    Any,
    /// `action` on every stream: a change to the account as a whole.
    Account(Action),
}

pub fn need(op: &str) -> Need {
    match op {
        "PutRecord" | "PutRecords" => Need::Stream(Action::Publish),
        "GetRecords"
        | "GetShardIterator"
        | "DescribeStream"
        | "DescribeStreamSummary"
        | "ListShards"
        | "ListTagsForStream"
        | "DescribeStreamConsumer"
        | "ListStreamConsumers"
        | "GetResourcePolicy"
        | "ListTagsForResource"
        | "SubscribeToShard" => Need::Stream(Action::Read),
        "ListStreams" | "DescribeLimits" | "DescribeAccountSettings" => Need::Any,
        "UpdateAccountSettings" => Need::Account(Action::Admin),
        _ => Need::Stream(Action::Admin),
    }
}

/// The members that name a stream; every other member is skipped unread.
#[derive(Deserialize, Default)]
struct Names<'a> {
    #[serde(rename = "StreamName", borrow, default)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "StreamARN", borrow, default)]
    stream_arn: Option<Cow<'a, str>>,
    #[serde(rename = "ConsumerARN", borrow, default)]
    consumer_arn: Option<Cow<'a, str>>,
    #[serde(rename = "ResourceARN", borrow, default)]
    resource_arn: Option<Cow<'a, str>>,
    #[serde(rename = "ShardIterator", borrow, default)]
    shard_iterator: Option<Cow<'a, str>>,
}

/// `arn:aws:kinesis:<region>:<account>:stream/<name>[/consumer/…]` → `<name>`.
fn stream_of_arn(arn: &str) -> Option<&str> {
    arn.split_once(":stream/").map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
}

/// Checks that `who` may run `op` with `body`; the error is the `AccessDeniedException` to send.
pub fn check(
    auth: &Auth,
    ds: &DataStreams,
    who: &Identity,
    op: &str,
    body: &[u8],
) -> Result<(), DsError> {
    let action = match need(op) {
        Need::Any => return Ok(()),
        Need::Account(action) if auth.allows(who, action, None) => return Ok(()),
        Need::Account(_) => return Err(denied(who, op, None)),
        Need::Stream(action) => action,
    };
    // A body that is not JSON fails in the operation itself with a SerializationException.
    let names: Names = serde_json::from_slice(body).unwrap_or_default();
    let stream = names
        .stream_name
        .as_deref()
        .map(str::to_owned)
        .or_else(|| names.stream_arn.as_deref().and_then(stream_of_arn).map(str::to_owned))
        .or_else(|| names.consumer_arn.as_deref().and_then(stream_of_arn).map(str::to_owned))
        .or_else(|| names.resource_arn.as_deref().and_then(stream_of_arn).map(str::to_owned))
        .or_else(|| names.shard_iterator.as_deref().and_then(|it| ds.iterator_stream(it)));
    let Some(stream) = stream else {
        // No stream named: the operation answers its own ValidationException, unless the key
        // may not do this on any stream at all.
        return if auth.allows(who, action, None) || has_any(who, action) {
            Ok(())
        } else {
            Err(denied(who, op, None))
        };
    };
    if auth.allows(who, action, Some(&stream)) {
        Ok(())
    } else {
        Err(denied(who, op, Some(&stream)))
    }
}

fn has_any(who: &Identity, action: Action) -> bool {
    matches!(who, Identity::Principal(p) if p.grants.iter().any(|g| g.action.covers(action)))
}

fn denied(who: &Identity, op: &str, stream: Option<&str>) -> DsError {
    let resource = stream.map_or_else(String::new, |s| format!(" on resource stream/{s}"));
    DsError::AccessDenied(format!(
        "User: {} is not authorized to perform: kinesis:{op}{resource}",
        who.name()
    ))
}

/// ListStreams' answer with only the streams `who` may see.
pub fn filter_list(auth: &Auth, who: &Identity, mut v: Value) -> Value {
    if let Some(Value::Array(names)) = v.get_mut("StreamNames") {
        names.retain(|n| n.as_str().is_some_and(|n| auth.sees(who, n)));
    }
    if let Some(Value::Array(summaries)) = v.get_mut("StreamSummaries") {
        summaries.retain(|s| s["StreamName"].as_str().is_some_and(|n| auth.sees(who, n)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_and_arns() {
        assert_eq!(need("PutRecords"), Need::Stream(Action::Publish));
        assert_eq!(need("GetRecords"), Need::Stream(Action::Read));
        assert_eq!(need("DeleteStream"), Need::Stream(Action::Admin));
        assert_eq!(need("MergeShards"), Need::Stream(Action::Admin));
        assert_eq!(need("ListStreams"), Need::Any);
        assert_eq!(need("UpdateAccountSettings"), Need::Account(Action::Admin));
        assert_eq!(need("UpdateStreamWarmThroughput"), Need::Stream(Action::Admin));
        assert_eq!(
            stream_of_arn("arn:aws:kinesis:us-east-1:000000000000:stream/cams"),
            Some("cams")
        );
        assert_eq!(
            stream_of_arn("arn:aws:kinesis:us-east-1:0:stream/cams/consumer/c:1700000000"),
            Some("cams")
        );
        assert_eq!(stream_of_arn("garbage"), None);
    }
}
