//! A full disk, for real: the `sluice` binary runs in a private mount namespace (`unshare`)
//! with its data directory on a 24 MiB tmpfs, and producers fill it. Every write then gets one
//! clear refusal: a producer ERROR 5001 (and no false "stream deleted" after it), 503 with
//! Retry-After for a stream create, a Kinesis `ServiceUnavailable` 503 for a PutRecords that
//! could store nothing; reads go on.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::{Value, json};

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The data directory under `dir` and the `sluice serve` command line for it: no free-disk floor
/// (these tests want the disk full), small segments, RTSP on a free port.
fn serve_command(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "[storage]\nmin_free_bytes = 0\nsegment_max_bytes = 1048576\n[rtsp]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let serve = format!(
        "'{bin}' serve --listen 127.0.0.1:0 --data-dir '{data}' --config '{config}'",
        bin = env!("CARGO_BIN_EXE_sluice"),
        data = data.display(),
        config = config.display()
    );
    (data, serve)
}

/// `sh -c script` in a mount namespace of its own (`unshare -m` as root, else in a user namespace
/// too, `unshare -rm`), its stderr piped.
fn in_namespace(script: &str) -> Child {
    let flags = if rustix::process::geteuid().is_root() { "-m" } else { "-rm" };
    Command::new("unshare")
        .args([flags, "sh", "-c", script])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs the server in a mount namespace")
}

/// `sluice serve` in a mount namespace of its own, its data on a fresh tmpfs of `size`.
fn start_on_small_disk(dir: &std::path::Path, size: &str) -> Server {
    let (data, serve) = serve_command(dir);
    let script =
        format!("mount -t tmpfs -o size={size} tmpfs '{}' && exec {serve}", data.display());
    let mut child = in_namespace(&script);
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = match lines.next() {
            Some(l) => l.expect("read stderr"),
            None => panic!(
                "the server did not start in a mount namespace with a tmpfs data directory; \
                 this test needs `unshare -rm` and tmpfs mounts (user namespaces)"
            ),
        };
        if let Some(url) = line.trim().strip_prefix("Web UI:") {
            break url.trim().trim_end_matches('/').to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_keeps_serving_reads() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_on_small_disk(dir.path(), "24m");
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.base);
    let resp = http.post(url("/v1/streams")).json(&json!({ "name": "cam" })).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let kinesis = |op: &str, body: Value| {
        http.post(url("/"))
            .header("x-amz-target", format!("Kinesis_20131202.{op}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(body.to_string())
            .send()
    };
    let resp =
        kinesis("CreateStream", json!({ "StreamName": "ds", "ShardCount": 1 })).await.unwrap();
    assert_eq!(resp.status(), 200);

    // Fill the disk with pushes until the producer is refused.
    let fixture = fixture("h264.mp4");
    let mut refused = None;
    for i in 0..200 {
        let start = format!("2026-01-01T00:{:02}:{:02}Z", i / 6, (i % 6) * 10);
        let resp = http
            .put(url(&format!("/v1/streams/cam/media?producerStart={start}")))
            .body(fixture.clone())
            .send()
            .await
            .unwrap();
        let acks: Vec<Value> = resp
            .text()
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("ack JSON"))
            .collect();
        if acks.iter().any(|a| a["EventType"] == "ERROR") {
            refused = Some(acks);
            break;
        }
    }
    let acks = refused.expect("the disk filled up within 200 pushes");
    let errors: Vec<&Value> = acks.iter().filter(|a| a["EventType"] == "ERROR").collect();
    assert!(
        errors.iter().all(|e| e["ErrorCode"] == 5001),
        "one clear error per condition: {errors:?}"
    );
    assert!(!errors.is_empty());

    // The last bytes go to new streams (each takes a few pages) until creating one is refused
    // too: a precise 503 with Retry-After, not a 500.
    let mut created = 0;
    let resp = loop {
        let name = format!("fill-{created}");
        let resp =
            http.post(url("/v1/streams")).json(&json!({ "name": name })).send().await.unwrap();
        if resp.status() != 201 || created == 2000 {
            break resp;
        }
        created += 1;
    };
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").is_some();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(retry, "Retry-After");
    assert_eq!(body["error"]["code"], "ServiceUnavailable");

    // A PutRecords that can store none of its records: one ServiceUnavailable 503 (the SDKs
    // retry it), not a 200 whose every record failed.
    use base64::Engine;
    let big = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 200_000]);
    let records: Vec<Value> =
        (0..3).map(|i| json!({ "Data": big, "PartitionKey": format!("k{i}") })).collect();
    let resp =
        kinesis("PutRecords", json!({ "StreamName": "ds", "Records": records })).await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").is_some();
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!((status, body["__type"].as_str()), (503, Some("ServiceUnavailable")), "{body}");
    assert!(retry, "Retry-After");

    // Reads go on: the stream, its playlist and a segment.
    let resp = http.get(url("/v1/streams/cam")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let playlist = http.get(url("/v1/streams/cam/hls/index.m3u8")).send().await.unwrap();
    assert_eq!(playlist.status(), 200);
    let text = playlist.text().await.unwrap();
    let seg = text.lines().find(|l| l.starts_with("seg/")).expect("a segment");
    let resp = http.get(url(&format!("/v1/streams/cam/hls/{seg}"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let health = http.get(url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// Kills the first server with SIGKILL on a full disk; the second must start on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_starts_on_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (data, serve) = serve_command(dir.path());
    // One mount namespace for both servers: the tmpfs (and what fills it) outlives the first.
    let script = format!(
        "mount -t tmpfs -o size=24m tmpfs '{data}' || exit 1; {serve} & echo \"FIRST_PID $!\" >&2; wait; echo 'SECOND START' >&2; exec {serve}",
        data = data.display()
    );
    let mut child = in_namespace(&script);
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next_base = |what: &str, log: &mut Vec<String>| -> Option<String> {
        loop {
            let line = rx.recv_timeout(std::time::Duration::from_secs(60)).ok()?;
            log.push(line.clone());
            if let Some(url) = line.trim().strip_prefix("Web UI:") {
                return Some(url.trim().trim_end_matches('/').to_owned());
            }
            let _ = what;
        }
    };
    let mut log = Vec::new();
    let first = next_base("first", &mut log).expect("the first server starts");
    let pid: u32 = log
        .iter()
        .find_map(|l| l.strip_prefix("FIRST_PID ").map(|p| p.trim().parse().unwrap()))
        .expect("the first server's pid");
    let server = Server { child, base: first.clone() };
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{first}/v1/streams"))
        .json(&json!({ "name": "cam" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let fixture = fixture("h264.mp4");
    for i in 0..200 {
        let start = format!("2026-01-01T00:{:02}:{:02}Z", i / 6, (i % 6) * 10);
        let text = http
            .put(format!("{first}/v1/streams/cam/media?producerStart={start}"))
            .body(fixture.clone())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("\"ERROR\"") {
            break;
        }
    }
    for n in 0..2000 {
        let r = http
            .post(format!("{first}/v1/streams"))
            .json(&json!({ "name": format!("f{n}") }))
            .send()
            .await
            .unwrap();
        if r.status() != 201 {
            break;
        }
    }
    let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let second = next_base("second", &mut log);
    let second = second
        .unwrap_or_else(|| panic!("the server did not start on a full disk:\n{}", log.join("\n")));
    let resp = http.get(format!("{second}/v1/streams/cam")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "reads go on");
    let playlist =
        http.get(format!("{second}/v1/streams/cam/hls/index.m3u8")).send().await.unwrap();
    assert_eq!(playlist.status(), 200);
    // The condition is reported: the stream whose creation the full disk cut short is left out
    // (its data kept), and the disk's free space is shown.
    let health: Value =
        http.get(format!("{second}/healthz")).send().await.unwrap().json().await.unwrap();
    assert!(health["disk"]["availableBytes"].is_u64(), "{health}");
    let left_out = health["unavailableStreams"].as_array().expect("a list");
    assert_eq!(health["status"], if left_out.is_empty() { "ok" } else { "degraded" }, "{health}");
    let metrics = http.get(format!("{second}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sluice_disk_available_bytes "), "{metrics}");
    assert!(
        metrics.contains(&format!("sluice_video_streams_unavailable {}", left_out.len())),
        "{metrics}"
    );
    // Writes that cannot be stored are refused clearly.
    let resp = http
        .post(format!("{second}/v1/streams"))
        .json(&json!({ "name": "late" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    drop(server);
}
