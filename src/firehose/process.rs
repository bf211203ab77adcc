//! Record processing before delivery, as Firehose's `ProcessingConfiguration` orders it:
//! Decompression (GZIP) → RecordDeAggregation (JSON or DELIMITED sub-records) → the Lambda
//! transform (Firehose's record contract, called over HTTP on the URL given as `LambdaArn`) →
//! MetadataExtraction (a jq query, run by jaq, giving the partition keys of dynamic
//! partitioning) → AppendDelimiterToRecord. Parsing and validation, and the pure steps; the
//! transform's I/O is `super::deliver`'s.

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::datastream::DsError;

/// One configured processor, as given (for Describe) and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processor {
    pub kind: String,
    pub parameters: Vec<(String, String)>,
}

impl Processor {
    fn param(&self, name: &str) -> Option<&str> {
        self.parameters.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// `ProcessingConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processing {
    pub enabled: bool,
    pub processors: Vec<Processor>,
}

/// The Lambda processor, Sluice's way: an HTTP(S) URL answering Firehose's record contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub url: String,
    pub retries: u32,
    /// Records are sent in requests of at most this many bytes of data.
    pub buffer_bytes: usize,
}

/// How sub-records are split out of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deaggregate {
    /// Concatenated JSON values (`{…}{…}` or one per line).
    Json,
    Delimited(Vec<u8>),
}

fn invalid(m: String) -> DsError {
    DsError::InvalidArgument(m)
}

/// Firehose's processor types and their parameters.
const KNOWN: &[(&str, &[&str])] = &[
    ("AppendDelimiterToRecord", &["Delimiter"]),
    ("MetadataExtraction", &["MetadataExtractionQuery", "JsonParsingEngine"]),
    (
        "Lambda",
        &["LambdaArn", "NumberOfRetries", "RoleArn", "BufferSizeInMBs", "BufferIntervalInSeconds"],
    ),
    ("RecordDeAggregation", &["SubRecordType", "Delimiter"]),
    ("Decompression", &["CompressionFormat"]),
];

impl Processing {
    /// A `ProcessingConfiguration` object, checked.
    pub fn parse(p: &Value) -> Result<Processing, DsError> {
        let enabled = match p.get("Enabled") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(super::spec::serialization("Enabled", "Boolean")),
        };
        let list = match p.get("Processors") {
            None | Some(Value::Null) => &Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(super::spec::serialization("Processors", "List")),
        };
        let mut processors = Vec::new();
        for proc in list {
            let kind = match proc.get("Type") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(DsError::Validation("1 validation error detected: Value null at 'processingConfiguration.processors.member.type' failed to satisfy constraint: Member must not be null".into())),
            };
            let Some((_, names)) = KNOWN.iter().find(|(k, _)| *k == kind) else {
                return Err(invalid(format!(
                    "Processor type {kind} is not supported by Sluice (AppendDelimiterToRecord, MetadataExtraction, Lambda, RecordDeAggregation and Decompression are)."
                )));
            };
            let mut parameters = Vec::new();
            if let Some(Value::Array(ps)) = proc.get("Parameters") {
                for x in ps {
                    let (Some(Value::String(n)), Some(Value::String(v))) =
                        (x.get("ParameterName"), x.get("ParameterValue"))
                    else {
                        return Err(invalid(format!(
                            "Processor {kind}: every parameter needs ParameterName and ParameterValue."
                        )));
                    };
                    if !names.contains(&n.as_str()) {
                        return Err(invalid(format!(
                            "Processor {kind} has no parameter {n} (it takes {}).",
                            names.join(", ")
                        )));
                    }
                    parameters.push((n.clone(), v.clone()));
                }
            }
            processors.push(Processor { kind, parameters });
        }
        let p = Processing { enabled, processors };
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), DsError> {
        let mut seen = std::collections::BTreeSet::new();
        for proc in &self.processors {
            if !seen.insert(proc.kind.as_str()) {
                return Err(invalid(format!("Processor {} is given twice.", proc.kind)));
            }
        }
        if let Some(q) = self.find("MetadataExtraction") {
            let query = q.param("MetadataExtractionQuery").ok_or_else(|| {
                invalid("MetadataExtraction needs the parameter MetadataExtractionQuery.".into())
            })?;
            match q.param("JsonParsingEngine") {
                Some("JQ-1.6") => {}
                other => {
                    return Err(invalid(format!(
                        "MetadataExtraction: JsonParsingEngine must be JQ-1.6 (it is {other:?})."
                    )));
                }
            }
            compile_check(query)
                .map_err(|e| invalid(format!("MetadataExtractionQuery {query:?}: {e}")))?;
        }
        self.transform()?;
        self.deaggregate()?;
        if let Some(d) = self.find("Decompression")
            && !matches!(d.param("CompressionFormat"), None | Some("GZIP"))
        {
            return Err(invalid("Decompression: CompressionFormat must be GZIP.".into()));
        }
        Ok(())
    }

    fn find(&self, kind: &str) -> Option<&Processor> {
        if !self.enabled {
            return None;
        }
        self.processors.iter().find(|p| p.kind == kind)
    }

    pub fn append_delimiter(&self) -> bool {
        self.find("AppendDelimiterToRecord").is_some()
    }

    pub fn metadata_query(&self) -> Option<&str> {
        self.find("MetadataExtraction").and_then(|p| p.param("MetadataExtractionQuery"))
    }

    pub fn decompress(&self) -> bool {
        self.find("Decompression").is_some()
    }

    pub fn transform(&self) -> Result<Option<Transform>, DsError> {
        let Some(p) = self.find("Lambda") else { return Ok(None) };
        let url = p.param("LambdaArn").unwrap_or_default();
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || url::Url::parse(url).is_err()
        {
            return Err(invalid(format!(
                "Lambda: Sluice calls the transform over HTTP; give its http(s):// URL as LambdaArn (got {url:?})."
            )));
        }
        let retries = match p.param("NumberOfRetries") {
            None => 3,
            Some(n) => n.parse::<u32>().ok().filter(|n| *n <= 300).ok_or_else(|| {
                invalid(format!("Lambda: NumberOfRetries must be 0-300 (got {n})."))
            })?,
        };
        let mib = match p.param("BufferSizeInMBs") {
            None => 1.0,
            Some(n) => {
                n.parse::<f64>().ok().filter(|n| (0.2..=3.0).contains(n)).ok_or_else(|| {
                    invalid(format!("Lambda: BufferSizeInMBs must be 0.2-3 (got {n})."))
                })?
            }
        };
        if let Some(n) = p.param("BufferIntervalInSeconds")
            && !n.parse::<u32>().is_ok_and(|n| (60..=900).contains(&n))
        {
            return Err(invalid(format!(
                "Lambda: BufferIntervalInSeconds must be 60-900 (got {n})."
            )));
        }
        Ok(Some(Transform {
            url: url.to_owned(),
            retries,
            buffer_bytes: (mib * 1048576.0) as usize,
        }))
    }

    pub fn deaggregate(&self) -> Result<Option<Deaggregate>, DsError> {
        let Some(p) = self.find("RecordDeAggregation") else { return Ok(None) };
        match p.param("SubRecordType") {
            Some("JSON") | None => Ok(Some(Deaggregate::Json)),
            Some("DELIMITED") => {
                use base64::Engine;
                let d = p.param("Delimiter").unwrap_or("Cg==");
                let d = base64::engine::general_purpose::STANDARD
                    .decode(d)
                    .ok()
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| invalid(format!("RecordDeAggregation: Delimiter must be base64 of at least one byte (got {d:?}).")))?;
                Ok(Some(Deaggregate::Delimited(d)))
            }
            Some(other) => Err(invalid(format!(
                "RecordDeAggregation: SubRecordType must be JSON or DELIMITED (got {other})."
            ))),
        }
    }

    /// The `ProcessingConfiguration` of Describe.
    pub fn describe(&self) -> Value {
        let processors: Vec<Value> = self
            .processors
            .iter()
            .map(|p| {
                let params: Vec<Value> = p
                    .parameters
                    .iter()
                    .map(|(k, v)| json!({ "ParameterName": k, "ParameterValue": v }))
                    .collect();
                json!({ "Type": p.kind, "Parameters": params })
            })
            .collect();
        json!({ "Enabled": self.enabled, "Processors": processors })
    }
}

/// Records at most this large come out of decompression (Firehose's record limit after it).
const MAX_DECOMPRESSED: u64 = 64 << 20;

/// A gzip record decompressed (a record that is not gzip passes unchanged, as Firehose's
/// processor leaves uncompressed records alone).
pub fn decompress(data: &Bytes) -> Result<Bytes, String> {
    if !data.starts_with(&[0x1f, 0x8b]) {
        return Ok(data.clone());
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&data[..])
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip: {e}"))?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(format!("decompressed, the record is over {MAX_DECOMPRESSED} bytes"));
    }
    Ok(Bytes::from(out))
}

/// The sub-records of an aggregated record.
pub fn split(how: &Deaggregate, data: &Bytes) -> Result<Vec<Bytes>, String> {
    match how {
        Deaggregate::Json => {
            let mut out = Vec::new();
            let mut stream =
                serde_json::Deserializer::from_slice(data).into_iter::<serde::de::IgnoredAny>();
            let mut start = 0;
            while let Some(item) = stream.next() {
                item.map_err(|e| format!("JSON sub-records: {e}"))?;
                let end = stream.byte_offset();
                let text = data.slice(start..end);
                let trimmed =
                    text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
                out.push(text.slice(trimmed..));
                start = end;
            }
            Ok(out)
        }
        Deaggregate::Delimited(d) => {
            let mut out = Vec::new();
            let mut start = 0;
            let mut i = 0;
            while i + d.len() <= data.len() {
                if data[i..].starts_with(d) {
                    if i > start {
                        out.push(data.slice(start..i));
                    }
                    i += d.len();
                    start = i;
                } else {
                    i += 1;
                }
            }
            if start < data.len() {
                out.push(data.slice(start..));
            }
            Ok(out)
        }
    }
}

type Compiled = jaq_core::compile::Filter<jaq_core::Native<jaq_core::data::JustLut<jaq_json::Val>>>;

fn compile(query: &str) -> Result<Compiled, String> {
    use jaq_core::load::{Arena, File, Loader};
    let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
    let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
    let arena = Arena::default();
    let modules =
        Loader::new(defs).load(&arena, File { code: query, path: () }).map_err(|errs| {
            format!(
                "the query does not parse ({} errors: {:?})",
                errs.len(),
                errs.first().map(|e| &e.1)
            )
        })?;
    jaq_core::Compiler::default().with_funs(funs).compile(modules).map_err(|errs| {
        format!(
            "the query does not compile ({} errors: {:?})",
            errs.len(),
            errs.first().map(|e| &e.1)
        )
    })
}

fn compile_check(query: &str) -> Result<(), String> {
    compile(query).map(|_| ())
}

/// The partition keys `query` gives each record (a JSON object of scalars), or why it could not.
pub fn partition_keys(
    query: &str,
    records: &[Bytes],
) -> Vec<Result<BTreeMap<String, String>, String>> {
    let filter = match compile(query) {
        Ok(f) => f,
        Err(e) => return records.iter().map(|_| Err(e.clone())).collect(),
    };
    let ctx = jaq_core::Ctx::<jaq_core::data::JustLut<jaq_json::Val>>::new(
        &filter.lut,
        jaq_core::Vars::new([]),
    );
    records
        .iter()
        .map(|r| {
            let input = jaq_json::read::parse_single(r)
                .map_err(|e| format!("the record is not JSON: {e}"))?;
            let out = filter
                .id
                .run((ctx.clone(), input))
                .map(jaq_core::unwrap_valr)
                .next()
                .ok_or("the query gave no output")?
                .map_err(|e| format!("the query failed: {e:?}"))?;
            keys_of(&serde_json::from_str::<Value>(&out.to_string()).map_err(|e| e.to_string())?)
        })
        .collect()
}

/// Partition keys from a JSON object of scalars (the query's output, or a transform's
/// `metadata.partitionKeys`).
pub fn keys_of(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let Value::Object(m) = v else { return Err(format!("the keys are not a JSON object: {v}")) };
    m.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "partition key {k} is {other}, not a string, number or boolean"
                    ));
                }
            };
            if s.is_empty() || s.len() > 1024 {
                return Err(format!("partition key {k} is empty or longer than 1024 bytes"));
            }
            Ok((k.clone(), s))
        })
        .collect()
}

/// What the transform said of one record.
#[derive(Debug, PartialEq)]
pub enum Transformed {
    Ok { data: Bytes, keys: Option<BTreeMap<String, String>> },
    Dropped,
    Failed(String),
}

/// The transform's request for `records` (`recordId`, arrival ms, data).
pub fn transform_request(
    invocation: &str,
    arn: &str,
    records: &[(String, i64, &Bytes)],
) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> = records
        .iter()
        .map(|(id, at, data)| json!({ "recordId": id, "approximateArrivalTimestamp": at, "data": b64.encode(data) }))
        .collect();
    let region = arn.split(':').nth(3).unwrap_or("");
    serde_json::to_vec(&json!({ "invocationId": invocation, "deliveryStreamArn": arn, "region": region, "records": records }))
        .unwrap_or_default()
}

/// The transform's answer, one result per record asked about (in order), or why the whole
/// answer is unusable (then the invocation is retried).
pub fn transform_answer(ids: &[String], answer: &[u8]) -> Result<Vec<Transformed>, String> {
    use base64::Engine;
    let v: Value =
        serde_json::from_slice(answer).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let list = v["records"].as_array().ok_or("the answer has no records list")?;
    let mut by_id: BTreeMap<&str, &Value> = BTreeMap::new();
    for r in list {
        let id = r["recordId"].as_str().ok_or("a record in the answer has no recordId")?;
        if by_id.insert(id, r).is_some() {
            return Err(format!("recordId {id} is in the answer twice"));
        }
    }
    if by_id.len() != ids.len() {
        return Err(format!("{} records were sent and {} came back", ids.len(), by_id.len()));
    }
    ids.iter()
        .map(|id| {
            let r = by_id
                .get(id.as_str())
                .ok_or_else(|| format!("recordId {id} is missing from the answer"))?;
            Ok(match r["result"].as_str() {
                Some("Ok") => {
                    let data = r["data"]
                        .as_str()
                        .ok_or_else(|| format!("record {id}: Ok without data"))?;
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .map_err(|e| format!("record {id}: data is not base64: {e}"))?;
                    let keys = match r.get("metadata").and_then(|m| m.get("partitionKeys")) {
                        None | Some(Value::Null) => None,
                        Some(k) => match keys_of(k) {
                            Ok(k) => Some(k),
                            Err(e) => {
                                return Ok(Transformed::Failed(format!("partitionKeys: {e}")));
                            }
                        },
                    };
                    Transformed::Ok { data: Bytes::from(data), keys }
                }
                Some("Dropped") => Transformed::Dropped,
                Some("ProcessingFailed") => {
                    Transformed::Failed("the transform answered ProcessingFailed".into())
                }
                other => {
                    return Err(format!(
                        "record {id}: result {other:?} is not Ok, Dropped or ProcessingFailed"
                    ));
                }
            })
        })
        .collect()
}

/// The transform URLs a configuration or update names (`LambdaArn` of a Lambda processor), for
/// the outbound policy.
pub fn transform_urls(c: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Value::Array(ps)) =
        c.get("ProcessingConfiguration").and_then(|p| p.get("Processors"))
    {
        for p in ps.iter().filter(|p| p["Type"] == "Lambda") {
            if let Some(Value::Array(params)) = p.get("Parameters") {
                for x in params.iter().filter(|x| x["ParameterName"] == "LambdaArn") {
                    if let Some(u) = x["ParameterValue"].as_str() {
                        out.push(u.to_owned());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processing(v: Value) -> Result<Processing, DsError> {
        Processing::parse(&v)
    }

    #[test]
    fn processors_are_checked() {
        let ok = processing(json!({ "Enabled": true, "Processors": [
            { "Type": "MetadataExtraction", "Parameters": [
                { "ParameterName": "MetadataExtractionQuery", "ParameterValue": "{camera: .camera, day: (.at | .[0:10])}" },
                { "ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6" } ] },
            { "Type": "AppendDelimiterToRecord" },
            { "Type": "Lambda", "Parameters": [{ "ParameterName": "LambdaArn", "ParameterValue": "http://127.0.0.1:9/t" }] } ] }))
        .unwrap();
        assert!(ok.append_delimiter());
        assert_eq!(ok.transform().unwrap().unwrap().retries, 3);
        for bad in [
            json!({ "Processors": [{ "Type": "CloudWatchLogProcessing" }] }),
            json!({ "Processors": [{ "Type": "MetadataExtraction", "Parameters": [
                { "ParameterName": "MetadataExtractionQuery", "ParameterValue": "{a: .a" },
                { "ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6" } ] }] }),
            json!({ "Processors": [{ "Type": "Lambda", "Parameters": [{ "ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:1:function:f" }] }] }),
            json!({ "Processors": [{ "Type": "Lambda", "Parameters": [{ "ParameterName": "Nope", "ParameterValue": "x" }] }] }),
        ] {
            assert!(matches!(processing(bad.clone()), Err(DsError::InvalidArgument(_))), "{bad}");
        }
    }

    #[test]
    fn jq_gives_partition_keys() {
        let records = [
            Bytes::from(r#"{"camera":"door","at":"2026-12-08T01:00:00Z","n":3}"#),
            Bytes::from(r#"{"at":"2026-12-08T01:00:00Z"}"#),
            Bytes::from("nope"),
        ];
        let keys = partition_keys("{camera: .camera, day: .at[0:10], n: .n}", &records);
        let first = keys[0].as_ref().unwrap();
        assert_eq!(
            (first["camera"].as_str(), first["day"].as_str(), first["n"].as_str()),
            ("door", "2026-12-08", "3")
        );
        assert!(keys[1].as_ref().unwrap_err().contains("camera"), "{:?}", keys[1]);
        assert!(keys[2].is_err());
    }

    #[test]
    fn sub_records_split() {
        let j = split(&Deaggregate::Json, &Bytes::from("{\"a\":1}{\"b\":2}\n{\"c\":[3]}")).unwrap();
        assert_eq!(
            j,
            vec![Bytes::from("{\"a\":1}"), Bytes::from("{\"b\":2}"), Bytes::from("{\"c\":[3]}")]
        );
        assert!(split(&Deaggregate::Json, &Bytes::from("{\"a\":1}{")).is_err());
        let d = split(&Deaggregate::Delimited(b"||".to_vec()), &Bytes::from("a||bc||||d")).unwrap();
        assert_eq!(d, vec![Bytes::from("a"), Bytes::from("bc"), Bytes::from("d")]);
    }

    #[test]
    fn transform_answers_are_checked() {
        let ids = vec!["1".to_owned(), "2".to_owned(), "3".to_owned()];
        let answer = json!({ "records": [
            { "recordId": "2", "result": "Dropped" },
            { "recordId": "1", "result": "Ok", "data": "aGk=", "metadata": { "partitionKeys": { "k": "v" } } },
            { "recordId": "3", "result": "ProcessingFailed" } ] });
        let got = transform_answer(&ids, answer.to_string().as_bytes()).unwrap();
        assert_eq!(
            got[0],
            Transformed::Ok {
                data: Bytes::from("hi"),
                keys: Some([("k".to_owned(), "v".to_owned())].into())
            }
        );
        assert_eq!(got[1], Transformed::Dropped);
        assert!(matches!(got[2], Transformed::Failed(_)));
        let missing = json!({ "records": [{ "recordId": "1", "result": "Dropped" }] });
        assert!(transform_answer(&ids, missing.to_string().as_bytes()).is_err());
    }
}
