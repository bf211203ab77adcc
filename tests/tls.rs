//! HTTPS on the main listener (`[server] tls_cert`/`tls_key`): curl over HTTP/2 (ALPN) and
//! HTTP/1.1, a push over TLS, ffprobe reading the HLS playlist with the test CA, and a
//! certificate replaced on disk taking effect for new connections while an upload that began
//! before it goes on to its end.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, fixture, fixture_path, require_tool, split_fixture};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use sluice::clock::SystemClock;

/// A CA and a certificate for 127.0.0.1 it signed: writes `ca.pem`, `cert.pem`, `key.pem`
/// (prefixed) into `dir`.
fn make_certs(dir: &Path, prefix: &str) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, format!("Sluice test CA {prefix}"));
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join(format!("{prefix}ca.pem")), ca.pem()).unwrap();
    std::fs::write(dir.join(format!("{prefix}cert.pem")), leaf.pem()).unwrap();
    std::fs::write(dir.join(format!("{prefix}key.pem")), key.serialize_pem()).unwrap();
}

fn curl(ca: &Path, args: &[&str]) -> (bool, String) {
    require_tool("curl");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .expect("run curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Creates stream `name` over HTTPS.
fn create_stream(ca: &Path, base: &str, name: &str) {
    let body = format!(r#"{{"name":"{name}"}}"#);
    let url = format!("{base}/v1/streams");
    let (ok, out) =
        curl(ca, &["-X", "POST", "-H", "content-type: application/json", "-d", &body, &url]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_http2_pushes_plays_and_reloads_its_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path().to_owned();
    make_certs(&dir, "a-");
    std::fs::copy(dir.join("a-cert.pem"), dir.join("cert.pem")).unwrap();
    std::fs::copy(dir.join("a-key.pem"), dir.join("key.pem")).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let s = TestServer::start_with(
        |c| {
            c.server.tls_cert = Some(cert.clone());
            c.server.tls_key = Some(key.clone());
        },
        Arc::new(SystemClock),
    )
    .await;
    let base = s.base.replace("http://", "https://");
    let ca_a = dir.join("a-ca.pem");

    // HTTP/2 by ALPN, and HTTP/1.1.
    let (ok, out) = curl(&ca_a, &["-w", " %{http_version}", &format!("{base}/healthz")]);
    assert!(ok && out.ends_with(" 2") && out.contains("\"ok\""), "{out}");
    let (ok, out) =
        curl(&ca_a, &["--http1.1", "-w", " %{http_version}", &format!("{base}/healthz")]);
    assert!(ok && out.ends_with(" 1.1"), "{out}");
    // Plain HTTP on the TLS port gets no answer, and the server goes on.
    let plain = curl(&ca_a, &[&format!("{}/healthz", s.base)]);
    assert!(!plain.0, "{plain:?}");

    // A push over TLS, and ffprobe plays the result with the test CA.
    create_stream(&ca_a, &base, "tls");
    let h264 = fixture_path("h264.mp4");
    let (ok, out) = curl(
        &ca_a,
        &["-T", h264.to_str().unwrap(), &format!("{base}/v1/streams/tls/media?acks=end")],
    );
    assert!(ok && out.contains("PERSISTED"), "{out}");
    require_tool("ffprobe");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-tls_verify", "1", "-ca_file"])
        .arg(&ca_a)
        .args([
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(format!("{base}/v1/streams/tls/hls/index.m3u8"))
        .output()
        .unwrap();
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let frames =
        String::from_utf8_lossy(&probe.stdout).lines().find(|l| !l.is_empty()).map(str::to_owned);
    assert_eq!(frames.as_deref(), Some("180"));

    // An upload under way when the certificate changes goes on to its end.
    let (init, frags) = split_fixture(&fixture("h264.mp4"));
    create_stream(&ca_a, &base, "long");
    let mut upload = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(&ca_a)
        .args(["-T", "-", &format!("{base}/v1/streams/long/media?acks=end")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = upload.stdin.take().unwrap();
    stdin.write_all(&init).unwrap();
    stdin.write_all(&frags[0]).unwrap();
    stdin.flush().unwrap();

    make_certs(&dir, "b-");
    // Key first, then the certificate: a reload between the two fails and keeps the old pair.
    std::fs::copy(dir.join("b-key.pem"), &key).unwrap();
    std::fs::copy(dir.join("b-cert.pem"), &cert).unwrap();
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::HUP).unwrap();
    hup.recv().await;
    let ca_b = dir.join("b-ca.pem");
    let mut switched = false;
    for _ in 0..100 {
        if curl(&ca_b, &[&format!("{base}/healthz")]).0 {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(switched, "the new certificate was not served within 10 s");
    assert!(!curl(&ca_a, &[&format!("{base}/healthz")]).0, "the old CA no longer verifies");

    for f in &frags[1..] {
        stdin.write_all(f).unwrap();
    }
    drop(stdin);
    let out =
        tokio::task::spawn_blocking(move || upload.wait_with_output().unwrap()).await.unwrap();
    let acks = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{acks} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(acks.matches("\"PERSISTED\"").count(), frags.len(), "{acks}");
    s.stop().await;
}
