//! Shared harness for the black-box tests: a real Sluice server on 127.0.0.1:0 (in-process, or
//! the `sluice` binary for crash tests), HTTP helpers, fixtures, and the external tools (ffprobe,
//! ffmpeg) that check our output. A missing tool fails the test with what to install.

#![allow(dead_code)]

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sluice::api::ApiState;
use sluice::clock::{SharedClock, SystemClock};
use sluice::config::Config;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub base: String,
    pub state: ApiState,
    /// The RTSP publish listener's address, when `[rtsp] enabled`.
    pub rtsp_addr: Option<std::net::SocketAddr>,
    pub shutdown: CancellationToken,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub http: reqwest::Client,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}, Arc::new(SystemClock)).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config), clock: SharedClock) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        let mut s = Self::start_in(&dir, tweak, clock).await;
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing data directory (restarts).
    pub async fn start_in(
        dir: &Path,
        tweak: impl FnOnce(&mut Config),
        clock: SharedClock,
    ) -> TestServer {
        let mut config = Config::default();
        config.server.data_dir = dir.to_owned();
        config.hls.idle_wait_secs = std::time::Duration::from_secs(2);
        config.server.shutdown_grace_secs = std::time::Duration::from_secs(5);
        // RTSP publish on a free port (see `rtsp_url`).
        config.rtsp.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let server = sluice::app::build(config, clock, shutdown.clone()).expect("build");
        let (state, rtsp_addr) = (server.services.clone(), server.rtsp_addr);
        let task = tokio::spawn(async move {
            sluice::app::run(listener, server).await.expect("server run");
        });
        TestServer {
            base: format!("http://{addr}"),
            state,
            rtsp_addr,
            shutdown,
            dir: dir.to_owned(),
            _tmp: None,
            task: Some(task),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        }
    }

    /// `rtsp://127.0.0.1:<port>/<path>` of the server's RTSP publish listener.
    pub fn rtsp_url(&self, path: &str) -> String {
        let addr = self.rtsp_addr.expect("[rtsp] enabled in this test server");
        format!("rtsp://{addr}/{path}")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server (as SIGTERM would) and waits for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("server stops")
                .expect("server task");
        }
    }

    pub async fn create_stream(&self, name: &str) -> Value {
        self.create_stream_with(serde_json::json!({ "name": name })).await
    }

    pub async fn create_stream_with(&self, body: Value) -> Value {
        let resp =
            self.http.post(self.url("/v1/streams")).json(&body).send().await.expect("create");
        assert_eq!(resp.status(), 201, "create {body}: {}", resp.text().await.unwrap_or_default());
        resp.json().await.expect("json")
    }

    /// Pushes a whole body and returns the acknowledgements.
    pub async fn push(&self, name: &str, body: Vec<u8>, query: &str) -> Vec<Value> {
        let url = self.url(&format!("/v1/streams/{name}/media{query}"));
        let resp =
            tokio::time::timeout(Duration::from_secs(60), self.http.put(url).body(body).send())
                .await
                .expect("push in time")
                .expect("push");
        assert_eq!(resp.status(), 200, "push status");
        assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
        parse_acks(&resp.text().await.expect("acks"))
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.http.get(self.url(path)).send().await.expect("get");
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.expect("json")
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let resp = self.http.get(self.url(path)).send().await.expect("get");
        (resp.status().as_u16(), resp.text().await.expect("text"))
    }

    pub async fn fragments(&self, name: &str) -> Vec<Value> {
        let v = self.get_json(&format!("/v1/streams/{name}/fragments?limit=10000")).await;
        v["fragments"].as_array().cloned().unwrap_or_default()
    }

    /// [`TestServer::fragments`] on a server with auth on, as `authorization`.
    pub async fn fragments_as(&self, name: &str, authorization: &str) -> Vec<Value> {
        let url = self.url(&format!("/v1/streams/{name}/fragments?limit=10000"));
        let resp = self.http.get(url).header("authorization", authorization).send().await.unwrap();
        assert!(resp.status().is_success(), "GET fragments: {}", resp.status());
        let v: Value = resp.json().await.expect("json");
        v["fragments"].as_array().cloned().unwrap_or_default()
    }
}

pub fn parse_acks(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("ack line {l:?}: {e}")))
        .collect()
}

pub fn acks_of<'a>(acks: &'a [Value], kind: &str) -> Vec<&'a Value> {
    acks.iter().filter(|a| a["EventType"] == kind).collect()
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Runs a client process to its end, bounded: killed after 60 s (then the error says so).
/// Returns whether it succeeded and its stderr.
pub async fn run_bounded(mut cmd: Command) -> (bool, String) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    tokio::task::spawn_blocking(move || {
        for _ in 0..600 {
            if let Some(status) = child.try_wait().expect("wait") {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return (status.success(), err);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        (false, RUN_TIMED_OUT.to_owned())
    })
    .await
    .expect("join")
}

/// What [`run_bounded`] answers for a process it had to kill.
pub const RUN_TIMED_OUT: &str = "did not finish within 60 s";

/// Fails (never skips) when an external tool is missing.
pub fn require_tool(tool: &str) {
    let flag = if tool.starts_with("gst-") || tool == "curl" { "--version" } else { "-version" };
    let ok = Command::new(tool).arg(flag).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        ok,
        "{tool} is required for this test: run `make test` (its setup installs ffmpeg and the GStreamer tools and plugins)"
    );
}

/// Video frames ffprobe decodes from a file or URL, and the container duration in seconds.
pub fn ffprobe_frames(input: &str) -> (u64, f64) {
    require_tool("ffprobe");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames:format=duration", "-of", "json", input])
        .output()
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe {input}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let frames =
        v["streams"][0]["nb_read_frames"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
    let duration = v["format"]["duration"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (frames, duration)
}

/// Decodes `input` fully with ffmpeg; returns stderr lines at error level (empty = clean).
pub fn ffmpeg_decode_errors(input: &str, extra: &[&str]) -> String {
    require_tool("ffmpeg");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i", input])
        .args(extra)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "ffmpeg {input}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The fixture's init segment and fragments, split at box boundaries by Sluice's reader.
pub fn split_fixture(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    use sluice::media::fmp4::{Fmp4Reader, Item, Limits};
    let mut r = Fmp4Reader::new(Limits::default());
    r.push(bytes::Bytes::copy_from_slice(bytes));
    let mut init = Vec::new();
    let mut frags = Vec::new();
    while let Some(item) = r.next_item().expect("fixture parses") {
        match item {
            Item::Init(i) => init = i.bytes.to_vec(),
            Item::Fragment(f) => frags.push(f.bytes.to_vec()),
            Item::FragmentStarted { .. } => {}
        }
    }
    (init, frags)
}

/// The `sluice` binary running as its own process (crash and signal tests).
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
}

/// Starts `sluice serve` on a free loopback port over `data_dir` and waits for its banner.
pub fn spawn_server(data_dir: &Path) -> ServerProcess {
    spawn_server_with(data_dir, "", &[])
}

/// [`spawn_server`] with more configuration (TOML appended to the test config) and environment.
pub fn spawn_server_with(data_dir: &Path, config: &str, env: &[(&str, &str)]) -> ServerProcess {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .arg("--config")
        .arg(free_port_config(data_dir, config))
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().expect("server banner").expect("read stderr");
        if let Some(url) = line.trim().strip_prefix("Web UI:") {
            break url.trim().trim_end_matches('/').to_owned();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServerProcess { child, base }
}

/// A config file beside `data_dir` that puts the listeners other than HTTP on free ports, so
/// several spawned servers run side by side.
fn free_port_config(data_dir: &Path, more: &str) -> PathBuf {
    let path = data_dir.with_extension("test-config.toml");
    let text = format!("[rtsp]\nlisten = \"127.0.0.1:0\"\n{more}");
    std::fs::write(&path, text).expect("write test config");
    path
}

/// An AWS SDK Kinesis client for the server at `base`: dummy credentials, no retries (so
/// exceptions surface), bounded operation time.
pub fn kinesis_client(base: &str) -> aws_sdk_kinesis::Client {
    use aws_sdk_kinesis::config::retry::RetryConfig;
    use aws_sdk_kinesis::config::timeout::TimeoutConfig;
    use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(base)
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(60)).build())
        .build();
    aws_sdk_kinesis::Client::from_conf(conf)
}

/// ffprobe's view of an image file: codec name, width, height.
pub fn ffprobe_image(path: &Path) -> (String, u64, u64) {
    require_tool("ffprobe");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let s = &v["streams"][0];
    (
        s["codec_name"].as_str().unwrap_or("").to_owned(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
    )
}

/// Every record's data in every shard of the data stream `stream`, from TRIM_HORIZON, read with
/// the AWS SDK.
pub async fn stream_records(kds: &aws_sdk_kinesis::Client, stream: &str) -> Vec<Vec<u8>> {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let shards = kds.list_shards().stream_name(stream).send().await.expect("list shards");
    let mut out = Vec::new();
    for shard in shards.shards() {
        let it = kds
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator");
        let mut iterator = it.shard_iterator().map(str::to_owned);
        while let Some(i) = iterator {
            // A consumer that reads faster than five calls a second per shard is throttled, as
            // in Kinesis; it waits and asks again with the same iterator, as the KCL does.
            let mut attempts = 0;
            let page = loop {
                match kds.get_records().shard_iterator(&i).send().await {
                    Ok(page) => break page,
                    Err(e)
                        if attempts < 20
                            && e.as_service_error().is_some_and(|s| {
                                s.is_provisioned_throughput_exceeded_exception()
                            }) =>
                    {
                        attempts += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                    Err(e) => panic!("get records: {e:?}"),
                }
            };
            out.extend(page.records().iter().map(|r| r.data().as_ref().to_vec()));
            if page.records().is_empty() {
                break;
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
    }
    out
}

/// The lifecycle events (`sluice-events`) of the video stream `video` so far, in order per shard.
pub async fn lifecycle_events(base: &str, video: &str) -> Vec<Value> {
    let kds = kinesis_client(base);
    stream_records(&kds, "sluice-events")
        .await
        .iter()
        .map(|d| serde_json::from_slice::<Value>(d).expect("event json"))
        .filter(|e| e["stream"] == video)
        .collect()
}

type Chunk = Result<Vec<u8>, std::io::Error>;

/// A producer whose body is fed chunk by chunk (`tx`; an `Err` tears the upload down), with its
/// acks parsed as they stream back.
pub struct Producer {
    pub tx: tokio::sync::mpsc::Sender<Chunk>,
    acks: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

/// Starts a streaming `PUT` of a media body to `url` (add `?acks=stream` to see acks live).
pub async fn connect_producer(http: &reqwest::Client, url: String) -> Producer {
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (c, rx))
    }));
    let (ack_tx, acks) = tokio::sync::mpsc::unbounded_channel();
    let http = http.clone();
    tokio::spawn(async move {
        let Ok(resp) = http.put(url).body(body).send().await else { return };
        let mut stream = resp.bytes_stream();
        let mut buf = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                if let Ok(v) = serde_json::from_slice(&line) {
                    let _ = ack_tx.send(v);
                }
            }
        }
    });
    Producer { tx, acks }
}

impl Producer {
    pub async fn send(&self, bytes: Vec<u8>) {
        self.tx.send(Ok(bytes)).await.expect("upload open");
    }

    /// Waits (bounded) for the next ack of this type.
    pub async fn next(&mut self, kind: &str) -> Value {
        loop {
            let ack = tokio::time::timeout(Duration::from_secs(20), self.acks.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind} ack within 20 s"))
                .unwrap_or_else(|| panic!("ack stream ended before {kind}"));
            if ack["EventType"] == kind {
                return ack;
            }
        }
    }

    /// Ends the upload and returns the acks not yet taken, once the response has ended.
    pub async fn finish(mut self) -> Vec<Value> {
        drop(self.tx);
        let mut rest = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(30), self.acks.recv()).await {
                Ok(Some(a)) => rest.push(a),
                Ok(None) => return rest,
                Err(_) => panic!("the ack stream did not end within 30 s"),
            }
        }
    }
}

/// The Python of the venv `make test` sets up (tests/requirements.txt).
pub fn venv_python() -> std::path::PathBuf {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is required: run `make test` (its setup makes the venv of tests/requirements.txt)",
        python.display()
    );
    python
}

/// An access key with one grant, made through the admin API as `admin` (an Authorization
/// header): (id, secret).
pub async fn access_key(
    s: &TestServer,
    admin: &str,
    action: &str,
    streams: &str,
) -> (String, String) {
    let resp = s
        .http
        .post(s.url("/v1/auth/keys"))
        .header("authorization", admin)
        .json(&serde_json::json!({"grants": [{"action": action, "streams": streams}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    (v["accessKeyId"].as_str().unwrap().into(), v["secretAccessKey"].as_str().unwrap().into())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// moto's S3-compatible server (from the test venv) on `port`, killed when dropped.
pub async fn moto(port: u16) -> browser::Guard {
    let bin = venv_python().with_file_name("moto_server");
    let child = std::process::Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn moto_server (tests/requirements.txt)");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    browser::Guard(child)
}

/// One call of an AWS JSON 1.1 API (`target` is `Service_Version.Operation`), as the SDKs send
/// it, unsigned: the status and the JSON answer.
pub async fn aws_json(
    http: &reqwest::Client,
    base: &str,
    target: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let resp = http
        .post(format!("{base}/"))
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .expect("AWS JSON call");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}
