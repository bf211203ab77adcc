//! The HTTP endpoint delivery protocol 1.0 (Firehose's, byte for byte): a batch is one `POST` of
//! `{"requestId", "timestamp", "records": [{"data": base64}]}` (gzip when configured) with the
//! `X-Amz-Firehose-*` headers; only a 200 whose JSON names the same `requestId` acknowledges it.
//! The request id derives from where the batch starts, so it is the same on every retry (the
//! receiver's key to drop duplicates). Anything else is retried with backoff (1 s doubling, ≤ 2
//! minutes apart, ±15 % jitter) until `RetryOptions.DurationInSeconds` has passed; a 413 is not
//! retried. Then the batch goes to the backup bucket, one JSON line per record as Firehose writes
//! them (`attemptsMade`, `errorCode`, `errorMessage`, `rawData`, …).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::http_spec::HttpDestination;
use crate::auth::seal::Sealer;
use crate::clock::SharedClock;

/// How long the endpoint has to answer one request (Firehose: 3 minutes).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(180);
const MAX_RETRY_GAP: Duration = Duration::from_secs(120);
/// A transform's answer, at most (Lambda's synchronous response limit, and some).
const MAX_TRANSFORM_ANSWER: usize = 8 << 20;

/// How sending a batch ended.
pub enum Sent {
    Acknowledged,
    /// The retry window passed (or the endpoint answered 413): back it up.
    Failed {
        attempts: u32,
        code: &'static str,
        message: String,
    },
    /// The delivery stream is stopping; the batch stays in the source.
    Stopped,
}

/// Sends batches to HTTP endpoints: one client for every delivery stream.
pub struct HttpSender {
    client: reqwest::Client,
    sealer: Arc<Sealer>,
    clock: SharedClock,
}

impl HttpSender {
    /// `outbound` limits where endpoints may be (`crate::auth::outbound`), checked at connection.
    pub fn new(
        outbound: crate::auth::outbound::Outbound,
        sealer: Arc<Sealer>,
        clock: SharedClock,
    ) -> HttpSender {
        let client = reqwest::Client::builder()
            .timeout(RESPONSE_TIMEOUT)
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(outbound))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        HttpSender { client, sealer, clock }
    }

    /// The sealer of access keys.
    pub fn sealer(&self) -> Arc<Sealer> {
        self.sealer.clone()
    }

    /// The request body (uncompressed) of a batch.
    pub fn body(request_id: &str, timestamp_ms: i64, records: &[Bytes]) -> Vec<u8> {
        let records: Vec<Value> =
            records.iter().map(|r| json!({ "data": STANDARD.encode(r) })).collect();
        serde_json::to_vec(
            &json!({ "requestId": request_id, "timestamp": timestamp_ms, "records": records }),
        )
        .unwrap_or_default()
    }

    /// Sends `records` as request `request_id` until acknowledged, failed for good, or stopped.
    pub async fn send(
        &self,
        h: &HttpDestination,
        source_arn: &str,
        request_id: &str,
        records: &[Bytes],
        stop: &CancellationToken,
        mut on_failure: impl FnMut(String),
    ) -> Sent {
        let started = self.clock.now();
        let mut body = Self::body(request_id, started.as_millis(), records);
        if h.gzip {
            let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = g.write_all(&body);
            body = g.finish().unwrap_or_default();
        }
        let body = Bytes::from(body);
        let key = h.access_key_sealed.as_deref().and_then(|s| self.sealer.open(s).ok());
        let attributes = json!({ "commonAttributes": h.common_attributes }).to_string();
        let mut backoff = Duration::from_secs(1);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut req = self
                .client
                .post(&h.url)
                .header("X-Amz-Firehose-Protocol-Version", "1.0")
                .header("X-Amz-Firehose-Request-Id", request_id)
                .header("X-Amz-Firehose-Source-Arn", source_arn)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if !h.common_attributes.is_empty() {
                req = req.header("X-Amz-Firehose-Common-Attributes", &attributes);
            }
            if let Some(k) = &key {
                req = req.header("X-Amz-Firehose-Access-Key", k);
            }
            if h.gzip {
                req = req.header(reqwest::header::CONTENT_ENCODING, "gzip");
            }
            let result = tokio::select! {
                r = req.send() => r,
                _ = stop.cancelled() => return Sent::Stopped,
            };
            let (code, message) = match result {
                Err(e) => ("HttpEndpoint.RequestTimeout", crate::error::error_chain(&e)),
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.bytes().await.unwrap_or_default();
                    let answer: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
                    let echoed = answer["requestId"].as_str() == Some(request_id);
                    if status == reqwest::StatusCode::OK && echoed {
                        return Sent::Acknowledged;
                    }
                    let said = answer["errorMessage"].as_str().unwrap_or("").to_owned();
                    let message = if status == reqwest::StatusCode::OK {
                        "the response does not name the request's requestId".to_owned()
                    } else {
                        format!(
                            "the endpoint answered {status}{}",
                            if said.is_empty() { String::new() } else { format!(": {said}") }
                        )
                    };
                    if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
                        return Sent::Failed {
                            attempts,
                            code: "HttpEndpoint.PayloadTooLarge",
                            message,
                        };
                    }
                    let code = if status == reqwest::StatusCode::OK {
                        "HttpEndpoint.InvalidResponseFromDestination"
                    } else {
                        "HttpEndpoint.ResponseCodeNot200"
                    };
                    (code, message)
                }
            };
            on_failure(format!("{}: {message}", h.url));
            let waited = self.clock.now().micros_since(started).max(0) as u64;
            if waited >= u64::from(h.retry_secs) * 1_000_000 {
                return Sent::Failed { attempts, code, message };
            }
            let jitter = 0.85 + (getrandom::u32().unwrap_or(0) % 300) as f64 / 1000.0;
            let pause = backoff.mul_f64(jitter);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => return Sent::Stopped,
            }
            backoff = (backoff * 2).min(MAX_RETRY_GAP);
        }
    }

    /// One call of a transform (Firehose's Lambda record contract, over HTTP): the answer's body
    /// (at most `MAX_TRANSFORM_ANSWER` bytes), or why not; `None` when stopped.
    pub async fn invoke(
        &self,
        url: &str,
        body: Bytes,
        stop: &CancellationToken,
    ) -> Option<Result<Vec<u8>, String>> {
        let call = async {
            let mut resp = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| crate::error::error_chain(&e))?;
            if !resp.status().is_success() {
                return Err(format!("the transform answered {}", resp.status()));
            }
            let mut out = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                if out.len() + chunk.len() > MAX_TRANSFORM_ANSWER {
                    return Err(format!("the answer is over {MAX_TRANSFORM_ANSWER} bytes"));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        };
        tokio::select! {
            r = call => Some(r),
            _ = stop.cancelled() => None,
        }
    }

    /// The backup of a failed batch: one JSON line per record, as Firehose writes them.
    pub fn failed_lines(
        h: &HttpDestination,
        records: &[(Bytes, i64)],
        attempts: u32,
        code: &str,
        message: &str,
        ended_ms: i64,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        for (data, arrival_ms) in records {
            let line = json!({
                "attemptsMade": attempts,
                "arrivalTimestamp": arrival_ms,
                "errorCode": code,
                "errorMessage": message,
                "attemptEndingTimestamp": ended_ms,
                "rawData": STANDARD.encode(data),
                "EndpointUrl": h.url,
            });
            let _ = serde_json::to_writer(&mut out, &line);
            out.push(b'\n');
        }
        out
    }
}
