//! No secret reaches the log: the `sluice` binary runs with `[auth]` on and `RUST_LOG=debug`, and
//! is driven with every kind of credential, right and wrong (Basic passwords, bearer keys, a key
//! made through the admin API, a playback-session token, SigV4 from the AWS SDK, a camera
//! password in an RTSP pull source, Basic on RTSP ANNOUNCE). Then its whole log is searched for
//! each secret and each `Authorization` value.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

const OP_PASSWORD: &str = "op-password-5f2c";
const KEY_ID: &str = "LOGTESTKEY000001";
const KEY_SECRET: &str = "log-test-secret-0123456789abcdefghijklmn";
const CAMERA_PASSWORD: &str = "camera-password-9d1e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("sluice.log");
    let rtsp_port =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            r#"[rtsp]
listen = "127.0.0.1:{rtsp_port}"
[auth]
enabled = true
# The pull below goes to a closed loopback port on purpose (its errors get logged).
outbound_networks = ["127.0.0.0/8"]
[[auth.users]]
name = "op"
password_hash = "{}"
grants = [{{ action = "admin", streams = "*" }}]
[[auth.keys]]
access_key_id = "{KEY_ID}"
secret_env = "LOG_TEST_KEY_SECRET"
grants = [{{ action = "admin", streams = "*" }}]
"#,
            sluice::auth::password::hash(OP_PASSWORD)
        ),
    )
    .unwrap();
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "debug")
        .env("LOG_TEST_KEY_SECRET", KEY_SECRET)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn sluice");
    let mut base = None;
    for _ in 0..300 {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| l.trim().strip_prefix("Web UI:")) {
            base = Some(url.trim().trim_end_matches('/').to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base = base.expect("the server's banner");
    let http = reqwest::Client::new();
    let op = format!("Basic {}", STANDARD.encode(format!("op:{OP_PASSWORD}")));
    let wrong = format!("Basic {}", STANDARD.encode("op:wrong-password-77"));
    let key = format!("Bearer {KEY_ID}:{KEY_SECRET}");
    let get = |path: &str, auth: &str| {
        http.get(format!("{base}{path}")).header("authorization", auth).send()
    };

    // Native API: right and wrong credentials, a stream, a key made at run time.
    assert_eq!(get("/v1/streams", &wrong).await.unwrap().status(), 401);
    let r = http
        .post(format!("{base}/v1/streams"))
        .header("authorization", &op)
        .json(&json!({"name": "cam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .put(format!("{base}/v1/streams/cam/media"))
        .header("authorization", &key)
        .body(common::fixture("h264.mp4"))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("PERSISTED"));
    // A POST as the operator, its JSON answer.
    let post = |path: &str, body: Value| {
        let req = http.post(format!("{base}{path}")).header("authorization", &op).json(&body);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let made = post("/v1/auth/keys", json!({"grants": [{"action": "read", "streams": "*"}]})).await;
    let made_secret = made["secretAccessKey"].as_str().unwrap().to_owned();
    let made_bearer = format!("Bearer {}:{made_secret}", made["accessKeyId"].as_str().unwrap());
    assert_eq!(get("/v1/streams/cam/fragments", &made_bearer).await.unwrap().status(), 200);
    assert_eq!(get("/v1/streams", &format!("{made_bearer}x")).await.unwrap().status(), 401);

    // A playback session, used and tampered with.
    let session = post("/v1/streams/cam/playback-sessions", json!({})).await;
    let token = session["token"].as_str().unwrap().to_owned();
    assert_eq!(
        http.get(format!("{base}{}", session["url"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/v1/streams/cam/hls/index.m3u8?token={token}x"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // SigV4, right and wrong.
    let client = |secret: &str| {
        let creds = aws_sdk_kinesis::config::Credentials::new(KEY_ID, secret, None, None, "test");
        aws_sdk_kinesis::Client::from_conf(
            aws_sdk_kinesis::Config::builder()
                .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
                .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
                .endpoint_url(base.clone())
                .credentials_provider(creds)
                .build(),
        )
    };
    client(KEY_SECRET).list_streams().send().await.unwrap();
    assert!(
        client("not-the-secret-not-the-secret-not-the-se").list_streams().send().await.is_err()
    );

    // A camera password in an RTSP pull source (the camera is not there: errors get logged).
    let r = http
        .patch(format!("{base}/v1/streams/cam"))
        .header("authorization", &op)
        .json(&json!({"source": {"rtspUrl": format!("rtsp://admin:{CAMERA_PASSWORD}@127.0.0.1:9/x")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Basic credentials on RTSP ANNOUNCE, wrong ones.
    let mut rtsp = std::net::TcpStream::connect(("127.0.0.1", rtsp_port)).unwrap();
    let basic_rtsp = STANDARD.encode(format!("op:{OP_PASSWORD}-nope"));
    write!(rtsp, "ANNOUNCE rtsp://127.0.0.1:{rtsp_port}/cam RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic {basic_rtsp}\r\nContent-Type: application/sdp\r\nContent-Length: 0\r\n\r\n").unwrap();
    rtsp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = [0u8; 64];
    let n = rtsp.read(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("RTSP/1.0 401"));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("DEBUG"), "the log was written at debug level");
    for (what, secret) in [
        ("the operator's password", OP_PASSWORD.to_owned()),
        ("the configured key's secret", KEY_SECRET.to_owned()),
        ("a made key's secret", made_secret.clone()),
        ("a playback token", token.clone()),
        ("the camera password", CAMERA_PASSWORD.to_owned()),
        ("a Basic header", op.trim_start_matches("Basic ").to_owned()),
        ("a wrong Basic header", wrong.trim_start_matches("Basic ").to_owned()),
        ("an RTSP Basic header", basic_rtsp.clone()),
    ] {
        assert!(!text.contains(&secret), "{what} is in the log");
    }
}
