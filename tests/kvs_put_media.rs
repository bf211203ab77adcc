//! KVS PutMedia, black-box: Matroska that ffmpeg (`-f matroska -live 1`) and GStreamer
//! (`matroskamux streamable=true`) write, and what GetMedia sends, posted chunked with the KVS
//! headers by a Python producer (tests/python/kvs_put_media.py, SigV4-signed over the empty
//! payload when auth is on), acknowledged PERSISTED and played back to the exact frame; and bad
//! Matroska refused with KVS's error codes, nothing stored half.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use serde_json::Value;

/// What PutMedia answered: the HTTP status, `x-amzn-ErrorType` (`-` without one), and the
/// acknowledgements.
struct Answer {
    status: u16,
    error_type: String,
    acks: Vec<Value>,
}

impl Answer {
    fn events(&self, kind: &str) -> Vec<&Value> {
        self.acks.iter().filter(|a| a["EventType"] == kind).collect()
    }
}

/// Posts `file` to `/putMedia` with these headers (`name:value`), signed with `key` if given.
async fn put_media(base: &str, file: &Path, headers: &[&str], key: Option<(&str, &str)>) -> Answer {
    let mut cmd = Command::new(venv_python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/kvs_put_media.py"))
        .arg(base)
        .arg(file)
        .args(headers);
    if let Some((id, secret)) = key {
        cmd.args(["--key", id, secret]);
    }
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run kvs_put_media.py");
        // Bounded: the producer is killed after 60 s (and the test fails on it).
        for _ in 0..600 {
            if child.try_wait().expect("wait").is_some() {
                return child.wait_with_output().expect("output of kvs_put_media.py");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("kvs_put_media.py did not finish within 60 s");
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "kvs_put_media.py: {}", String::from_utf8_lossy(&out.stderr));
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().expect("a status line").split(' ').collect();
    let acks = lines.filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok());
    Answer {
        status: head[1].parse().unwrap(),
        error_type: head[2].to_owned(),
        acks: acks.collect(),
    }
}

/// Video and audio frames of a file or URL, by ffprobe, with no error.
fn frames(input: &str) -> (u64, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames"])
        .args(["-of", "csv=p=0", input])
        .output()
        .expect("run ffprobe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "ffprobe {input}: {stderr}");
    let (mut video, mut audio) = (0, 0);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.split_once(',') {
            Some(("video", n)) => video = n.parse().unwrap(),
            Some(("audio", n)) => audio = n.parse().unwrap(),
            _ => {}
        }
    }
    (video, audio)
}

fn hls(server: &TestServer, stream: &str) -> String {
    server.url(&format!("/v1/streams/{stream}/hls/master.m3u8?mode=on_demand"))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The fixture remuxed to Matroska by ffmpeg in live mode (clusters cut by time, not at
/// keyframes), and with its clusters at keyframes.
fn ffmpeg_mkv(dir: &Path, fixture_name: &str, live: bool) -> std::path::PathBuf {
    require_tool("ffmpeg");
    let out = dir.join(format!("{fixture_name}-{live}.mkv"));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-i"]).arg(fixture_path(fixture_name));
    cmd.args(["-c", "copy", "-f", "matroska", "-live", if live { "1" } else { "0" }]);
    if !live {
        cmd.args(["-cluster_time_limit", "100000", "-cluster_size_limit", "100000000"]);
    }
    run(cmd.arg(&out));
    out
}

const RELATIVE: [&str; 2] =
    ["x-amzn-fragment-timecode-type:RELATIVE", "x-amzn-producer-start-timestamp:1772362800.000"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_and_gstreamer_matroska_is_stored_and_plays_back_exactly() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let dir = tempfile::tempdir().unwrap();

    // ffmpeg's live mode: clusters every few hundred milliseconds, most not at a keyframe.
    let ff = ffmpeg_mkv(dir.path(), "h264-aac.mp4", true);
    server.create_stream("ff").await;
    let mut headers = vec!["x-amzn-stream-name:ff"];
    headers.extend(RELATIVE);
    let a = put_media(&server.base, &ff, &headers, None).await;
    assert_eq!((a.status, a.error_type.as_str()), (200, "-"));
    assert!(a.events("ERROR").is_empty(), "{:?}", a.acks);
    let fragments = server.fragments("ff").await;
    assert_eq!(a.events("PERSISTED").len(), fragments.len());
    assert_eq!(fragments[0]["producerTimestamp"], "2026-03-01T11:00:00.000Z");
    // Acknowledged by the producer's own (relative) cluster timecodes, in order.
    let timecodes: Vec<i64> =
        a.events("PERSISTED").iter().map(|p| p["FragmentTimecode"].as_i64().unwrap()).collect();
    assert_eq!(timecodes[0], 0);
    assert!(timecodes.windows(2).all(|w| w[0] < w[1]), "{timecodes:?}");
    let source = frames(fixture_path("h264-aac.mp4").to_str().unwrap());
    assert_eq!(frames(&hls(&server, "ff")), source);

    // GStreamer: x264 with B-frames and AAC, streamable (unknown sizes), timecodes from 0.
    require_tool("gst-launch-1.0");
    let gst = dir.path().join("gst.mkv");
    run(Command::new("gst-launch-1.0").args(["-q", "videotestsrc", "num-buffers=90", "!"]).args([
        "video/x-raw,width=320,height=240,framerate=30/1",
        "!",
        "x264enc",
        "key-int-max=30",
        "bframes=2",
        "!",
        "h264parse",
        "!",
        "matroskamux",
        "streamable=true",
        "name=m",
        "!",
        "filesink",
        &format!("location={}", gst.display()),
        "audiotestsrc",
        "num-buffers=120",
        "!",
        "avenc_aac",
        "!",
        "aacparse",
        "!",
        "m.",
    ]));
    server.create_stream("gst").await;
    let mut headers = vec!["x-amzn-stream-name:gst"];
    headers.extend(RELATIVE);
    let a = put_media(&server.base, &gst, &headers, None).await;
    assert!(a.events("ERROR").is_empty(), "{:?}", a.acks);
    assert_eq!(frames(&hls(&server, "gst")), frames(gst.to_str().unwrap()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_get_media_sends_put_media_takes_back_unchanged() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    server.create_stream("orig").await;
    server.push("orig", fixture("h264-bframes.mp4"), "?producerStart=2026-03-01T11:00:00Z").await;
    let body = server
        .http
        .post(server.url("/getMedia"))
        .body(r#"{"StreamName":"orig","StartSelector":{"StartSelectorType":"EARLIEST"}}"#)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orig.mkv");
    std::fs::write(&file, &body).unwrap();
    // Chained documents, absolute cluster timecodes, KVS's tags: a new stream from them.
    server.create_stream("copy").await;
    let headers = ["x-amzn-stream-name:copy", "x-amzn-fragment-timecode-type:ABSOLUTE"];
    let a = put_media(&server.base, &file, &headers, None).await;
    assert!(a.events("ERROR").is_empty(), "{:?}", a.acks);
    let (orig, copy) = (server.fragments("orig").await, server.fragments("copy").await);
    assert_eq!(orig.len(), copy.len());
    for (o, c) in orig.iter().zip(&copy) {
        let t = |f: &Value| {
            sluice::clock::Timestamp::parse_api(f["producerTimestamp"].as_str().unwrap()).unwrap()
        };
        // Within the millisecond of Matroska's timecodes (less the reordering delay, rebuilt).
        assert!((t(o).as_micros() - t(c).as_micros()).abs() <= 70_000, "{o} / {c}");
    }
    let want = frames(fixture_path("h264-bframes.mp4").to_str().unwrap());
    assert_eq!(frames(&hls(&server, "copy")), want);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_matroska_is_refused_with_kvs_codes_and_nothing_half_stored() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let dir = tempfile::tempdir().unwrap();
    let good = ffmpeg_mkv(dir.path(), "h264.mp4", false);
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let clusters = ffprobe_frames(fixture_path("h264.mp4").to_str().unwrap()).0 / 30;

    // Not Matroska: ERROR 4006 at byte 0; nothing stored.
    server.create_stream("junk").await;
    let junk = write("junk.mkv", b"\x00\x00\x00\x18ftypisom, not Matroska at all");
    let a = put_media(&server.base, &junk, &["x-amzn-stream-name:junk", RELATIVE[0]], None).await;
    let e = a.events("ERROR");
    assert_eq!(e.len(), 1, "{:?}", a.acks);
    assert_eq!(e[0]["ErrorCode"], 4006);
    assert!(e[0]["Message"].as_str().unwrap().contains("byte 0"), "{}", e[0]);
    assert!(server.fragments("junk").await.is_empty());

    // A codec Sluice cannot store: the session ends before any media.
    let mut vp9 = bytes.clone();
    let at = vp9.windows(15).position(|w| w == b"V_MPEG4/ISO/AVC").unwrap();
    vp9[at..at + 15].copy_from_slice(b"V_VP9\0\0\0\0\0\0\0\0\0\0");
    server.create_stream("vp9").await;
    let vp9 = write("vp9.mkv", &vp9);
    let a = put_media(&server.base, &vp9, &["x-amzn-stream-name:vp9", RELATIVE[0]], None).await;
    let e = a.events("ERROR");
    assert!(e.len() == 1 && e[0]["ErrorCode"] == 4006, "{:?}", a.acks);
    assert!(e[0]["Message"].as_str().unwrap().contains("V_VP9"), "{}", e[0]);
    assert!(server.fragments("vp9").await.is_empty());

    // The first cluster does not begin with a keyframe: refused alone, the rest is stored.
    let mut no_key = bytes.clone();
    let cluster = no_key.windows(4).position(|w| w == [0x1F, 0x43, 0xB6, 0x75]).unwrap();
    let block = cluster + no_key[cluster..].iter().position(|&b| b == 0xA3).unwrap();
    let size_len = no_key[block + 1].leading_zeros() as usize + 1;
    no_key[block + 1 + size_len + 3] &= 0x7F;
    server.create_stream("nokey").await;
    let no_key = write("nokey.mkv", &no_key);
    let a =
        put_media(&server.base, &no_key, &["x-amzn-stream-name:nokey", RELATIVE[0]], None).await;
    let e = a.events("ERROR");
    assert!(e.len() == 1 && e[0]["ErrorCode"] == 4006, "{:?}", a.acks);
    assert!(e[0]["Message"].as_str().unwrap().contains("keyframe"), "{}", e[0]);
    assert_eq!(server.fragments("nokey").await.len() as u64, clusters - 1);

    // The same clusters again in the same body: their timecodes go back, 4004 for each.
    let twice = write("twice.mkv", &[bytes.clone(), bytes.clone()].concat());
    server.create_stream("twice").await;
    let a = put_media(&server.base, &twice, &["x-amzn-stream-name:twice", RELATIVE[0]], None).await;
    let e = a.events("ERROR");
    assert_eq!(e.len() as u64, clusters, "{:?}", a.acks);
    assert!(e.iter().all(|e| e["ErrorCode"] == 4004), "{e:?}");
    assert_eq!(server.fragments("twice").await.len() as u64, clusters);

    // Headers: no timecode type, no stream, an unknown stream; a second producer.
    let a = put_media(&server.base, &good, &["x-amzn-stream-name:twice"], None).await;
    assert_eq!((a.status, a.error_type.as_str()), (400, "InvalidArgumentException"));
    let a = put_media(&server.base, &good, &[RELATIVE[0]], None).await;
    assert_eq!((a.status, a.error_type.as_str()), (400, "InvalidArgumentException"));
    let a = put_media(&server.base, &good, &["x-amzn-stream-name:nope", RELATIVE[0]], None).await;
    assert_eq!((a.status, a.error_type.as_str()), (404, "ResourceNotFoundException"));
    let producer =
        connect_producer(&server.http, server.url("/v1/streams/twice/media?acks=stream")).await;
    producer.send(split_fixture(&fixture("h264.mp4")).0).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let a = put_media(&server.base, &good, &["x-amzn-stream-name:twice", RELATIVE[0]], None).await;
    assert_eq!((a.status, a.error_type.as_str()), (400, "ResourceInUseException"));
    producer.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_media_is_signed_over_the_empty_payload_and_needs_publish() {
    use base64::Engine;
    use sluice::config::{Action, Grant, StreamPattern, UserEntry};
    let server = TestServer::start_with(
        |c| {
            c.auth.enabled = true;
            c.auth.failures_per_minute = 10_000;
            c.auth.users.push(UserEntry {
                name: "operator".into(),
                password_hash: sluice::auth::password::hash("operator-password"),
                grants: vec![Grant { action: Action::Admin, streams: StreamPattern::All }],
                cidrs: vec![],
            });
        },
        Arc::new(sluice::clock::SystemClock),
    )
    .await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("operator:operator-password")
    );
    server
        .http
        .post(server.url("/v1/streams"))
        .header("authorization", &basic)
        .json(&serde_json::json!({"name": "cam1"}))
        .send()
        .await
        .unwrap();
    let (pub_id, pub_secret) = access_key(&server, &basic, "publish", "cam*").await;
    let (read_id, read_secret) = access_key(&server, &basic, "read", "cam*").await;
    let dir = tempfile::tempdir().unwrap();
    let mkv = ffmpeg_mkv(dir.path(), "h264.mp4", false);
    let headers = ["x-amzn-stream-name:cam1", RELATIVE[0], RELATIVE[1]];

    let a = put_media(&server.base, &mkv, &headers, None).await;
    assert_eq!((a.status, a.error_type.as_str()), (403, "MissingAuthenticationTokenException"));
    let a = put_media(&server.base, &mkv, &headers, Some((&pub_id, "not-the-secret"))).await;
    assert_eq!((a.status, a.error_type.as_str()), (400, "InvalidSignatureException"));
    let a = put_media(&server.base, &mkv, &headers, Some((&read_id, &read_secret))).await;
    assert_eq!((a.status, a.error_type.as_str()), (401, "NotAuthorizedException"));
    assert!(server.fragments_as("cam1", &basic).await.is_empty());
    let a = put_media(&server.base, &mkv, &headers, Some((&pub_id, &pub_secret))).await;
    assert_eq!(a.status, 200);
    assert!(a.events("ERROR").is_empty(), "{:?}", a.acks);
    assert_eq!(a.events("PERSISTED").len(), server.fragments_as("cam1", &basic).await.len());
    assert!(!a.events("PERSISTED").is_empty());
    server.stop().await;
}

/// A Matroska `Tags` element of one `Tag` holding `simple` (already encoded `SimpleTag`s).
fn tags_element(simple: &[Vec<u8>]) -> Vec<u8> {
    use sluice::media::mkv::{ebml, id};
    let mut tag = Vec::new();
    ebml::master(&mut tag, id::TAG, |t| {
        for s in simple {
            t.extend_from_slice(s);
        }
    });
    let mut out = Vec::new();
    ebml::put_master(&mut out, id::TAGS, &tag);
    out
}

/// A `SimpleTag` with a name, a string and nested `SimpleTag`s.
fn simple_tag(name: &str, value: &str, nested: &[Vec<u8>]) -> Vec<u8> {
    use sluice::media::mkv::{ebml, id};
    let mut out = Vec::new();
    ebml::master(&mut out, id::SIMPLE_TAG, |s| {
        ebml::put_str(s, id::TAG_NAME, name);
        ebml::put_str(s, id::TAG_STRING, value);
        for n in nested {
            s.extend_from_slice(n);
        }
    });
    out
}

/// GetMedia's body split into its documents (one per fragment), each starting at its EBML header.
fn documents(body: &[u8]) -> Vec<Vec<u8>> {
    const EBML: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];
    let starts: Vec<usize> =
        (0..body.len().saturating_sub(3)).filter(|&i| body[i..i + 4] == EBML).collect();
    let mut ends = starts[1..].to_vec();
    ends.push(body.len());
    starts.iter().zip(&ends).map(|(&s, &e)| body[s..e].to_vec()).collect()
}

/// `doc` with `tags` inserted before its Cluster.
fn tag_document(doc: &[u8], tags: &[u8]) -> Vec<u8> {
    const CLUSTER: [u8; 4] = [0x1F, 0x43, 0xB6, 0x75];
    let at = (0..doc.len() - 3).find(|&i| doc[i..i + 4] == CLUSTER).expect("a Cluster");
    [&doc[..at], tags, &doc[at..]].concat()
}

/// What the test's webhook received: JSON bodies.
async fn serve_hook() -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/kvs",
        axum::routing::post(move |body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(serde_json::from_slice::<Value>(&body).expect("json"));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/kvs"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_tagged_for_notice_are_notified_by_event_and_webhook() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let (hook, seen) = serve_hook().await;
    server.create_stream("orig").await;
    server.push("orig", fixture("h264-bframes.mp4"), "?producerStart=2026-03-01T11:00:00Z").await;
    let body = server
        .http
        .post(server.url("/getMedia"))
        .body(r#"{"StreamName":"orig","StartSelector":{"StartSelectorType":"EARLIEST"}}"#)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut docs = documents(&body);
    assert!(docs.len() >= 4, "{} documents", docs.len());
    // Fragment 2 and the last are tagged for notice; fragment 3 carries a plain tag only.
    let notice = |pairs: &[(&str, &str)]| {
        let nested: Vec<Vec<u8>> = pairs.iter().map(|(k, v)| simple_tag(k, v, &[])).collect();
        tags_element(&[simple_tag("AWS_KINESISVIDEO_NOTIFICATION", "", &nested)])
    };
    docs[1] = tag_document(&docs[1], &notice(&[("Motion", "true"), ("Camera", "front")]));
    docs[2] = tag_document(&docs[2], &tags_element(&[simple_tag("Motion", "true", &[])]));
    let last = docs.len() - 1;
    docs[last] = tag_document(&docs[last], &notice(&[("Zone", "3")]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tagged.mkv");
    std::fs::write(&file, docs.concat()).unwrap();

    // `quiet` has notifications disabled, `bare` none at all; only `tagged` is notified.
    for (name, status) in [("tagged", Some("ENABLED")), ("quiet", Some("DISABLED")), ("bare", None)]
    {
        server.create_stream(name).await;
        if let Some(status) = status {
            let conf = serde_json::json!({
                "StreamName": name,
                "NotificationConfiguration": { "Status": status, "DestinationConfig": { "Uri": hook } },
            });
            let r = server.http.post(server.url("/updateNotificationConfiguration")).json(&conf);
            assert_eq!(r.send().await.unwrap().status(), 200);
        }
    }
    for name in ["quiet", "bare", "tagged"] {
        let headers = [
            &format!("x-amzn-stream-name:{name}") as &str,
            "x-amzn-fragment-timecode-type:ABSOLUTE",
        ];
        let a = put_media(&server.base, &file, &headers, None).await;
        assert!(a.events("ERROR").is_empty(), "{name}: {:?}", a.acks);
        assert_eq!(a.events("PERSISTED").len(), docs.len(), "{name}");
    }

    let stored = server.fragments("tagged").await;
    let number = |i: usize| stored[i]["fragmentNumber"].as_str().unwrap().to_owned();
    let mut messages = Vec::new();
    for _ in 0..100 {
        messages = seen.lock().unwrap().clone();
        if messages.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    messages.sort_by_key(|m| m["FragmentNumber"].as_str().unwrap().parse::<u64>().unwrap());
    assert_eq!(messages.len(), 2, "{messages:?}");
    let (first, second) = (&messages[0], &messages[1]);
    assert_eq!(first["FragmentNumber"], number(1), "{first}");
    assert_eq!(second["FragmentNumber"], number(last), "{second}");
    assert_eq!(first["NotificationType"], "PERSISTED");
    assert_eq!(
        first["NotificationPayload"],
        serde_json::json!({ "Motion": "true", "Camera": "front" })
    );
    assert_eq!(second["NotificationPayload"], serde_json::json!({ "Zone": "3" }));
    let arn = first["StreamArn"].as_str().unwrap();
    assert!(arn.starts_with("arn:aws:kinesisvideo:") && arn.contains(":stream/tagged/"), "{arn}");
    let producer_ms = |f: &Value| {
        sluice::clock::Timestamp::parse_api(f["producerTimestamp"].as_str().unwrap())
            .unwrap()
            .as_millis()
    };
    assert_eq!(first["FragmentStartProducerTimestamp"], producer_ms(&stored[1]));

    // The same notifications are events in sluice-events, for `tagged` only.
    let kds = kinesis_client(&server.base);
    let mut notified: Vec<Value> = Vec::new();
    for _ in 0..100 {
        notified = stream_records(&kds, "sluice-events")
            .await
            .iter()
            .map(|d| serde_json::from_slice::<Value>(d).unwrap())
            .filter(|e| e["type"] == "FragmentNotification")
            .collect();
        if notified.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(notified.len(), 2, "{notified:?}");
    assert!(
        notified.iter().all(|e| e["stream"] == "tagged" && e["details"]["destination"] == hook)
    );
    assert_eq!(notified[0]["details"]["fragmentNumber"], number(1));
    assert_eq!(notified[0]["details"]["payload"]["Camera"], "front");
    server.stop().await;
}
