//! The Kinesis Data Streams API, black-box, through the AWS SDK for Rust (`aws-sdk-kinesis`) —
//! a parser and serializer we did not write — plus raw JSON for the request shapes the SDK will
//! not build. Every test runs a real server on 127.0.0.1:0 with a `ManualClock`, so throughput
//! limits, iterator expiry, AT_TIMESTAMP and retention are deterministic: the tests advance the
//! clock by a second before every paced call and never assert on durations.
//!
//! Expectations follow AWS Kinesis (botocore model `kinesis/2013-12-02` and the service docs).
//!
//! One crate, one module per section: [`harness`] (the server, the SDK client, helpers), then the
//! control plane, records, resharding, throughput, iterators, validation and retention.

#[path = "../common/mod.rs"]
mod common;

mod harness;

mod cbor;
mod control;
mod iterators;
mod large;
mod messages;
mod node;
mod on_demand;
mod python;
mod records;
mod reshard;
mod retention;
mod settings;
mod states;
mod subscribe;
mod throughput;
mod validation;
