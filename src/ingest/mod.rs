//! Ingest: one module per protocol, each turning a producer's bytes into init segments and
//! fragments handed to the stream's single writer (`video::writer::ProducerSession`).
//!
//! - [`http_fmp4`]: fragmented MP4 pushed over HTTP (`PUT /v1/streams/{name}/media`), with
//!   Kinesis-PutMedia-style NDJSON acknowledgements.
//! - [`acks`]: the acknowledgement queue and its JSON lines.

pub mod acks;
pub mod http_fmp4;
