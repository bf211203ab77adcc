//! `sluice frames export`, run as the built binary against a real server: a dataset of images plus
//! `manifest.jsonl` (checked with ffprobe), resumed without duplicates after an interruption, and
//! clear errors for a wrong server, an unknown stream and bad times.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;
use sluice::clock::Timestamp;

const T0: &str = "2026-11-21T10:00:00.000Z";

/// Runs `sluice frames export` with `args` on a blocking thread (the server runs on this runtime).
async fn export(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["frames", "export"])
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run sluice frames export")
    })
    .await
    .expect("join")
}

fn args(
    base: &str,
    stream: &str,
    start: &str,
    end: &str,
    out: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut v: Vec<String> =
        ["--server", base, "--stream", stream, "--start", start, "--end", end, "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    v.push(out.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn manifest(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("manifest.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("manifest line"))
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_a_dataset_and_resumes_without_duplicates() {
    let s = TestServer::start().await;
    s.create_stream("cam").await;
    let acks = s.push("cam", fixture("h264.mp4"), &format!("?producerStart={T0}")).await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    let out = tempfile::tempdir().unwrap();
    let end = "2026-11-21T10:00:06.000Z";
    let extra = ["--every", "500ms", "--width", "160", "--page-size", "5"];
    let o = export(args(&s.base, "cam", T0, end, out.path(), &extra)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("exported 12 images"), "{}", stderr(&o));

    let lines = manifest(out.path());
    assert_eq!(lines.len(), 12, "instants T0 + k·500 ms < end");
    let t0 = Timestamp::parse_api(T0).unwrap();
    for (k, l) in lines.iter().enumerate() {
        let instant = t0.add_micros(k as i64 * 500_000);
        assert_eq!(l["stream"], "cam");
        assert_eq!(l["instant"], instant.to_rfc3339());
        let p = Timestamp::parse_api(l["producerTimestamp"].as_str().unwrap()).unwrap();
        assert!(p <= instant && instant.micros_since(p) < 34_000, "{l}");
        assert!(Timestamp::parse_api(l["serverTimestamp"].as_str().unwrap()).is_ok());
        assert_eq!(l["fragmentNumber"], (k / 2).to_string(), "{l}");
        assert_eq!((l["width"].as_u64(), l["height"].as_u64()), (Some(160), Some(90)));
        let file = out.path().join(l["file"].as_str().unwrap());
        let (codec, w, h) = ffprobe_image(&file);
        assert_eq!((codec.as_str(), w, h), ("mjpeg", 160, 90), "{}", file.display());
    }

    // An interrupted run: the manifest holds 5 lines and half of a sixth.
    let path = out.path().join("manifest.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut cut: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
    cut.push_str(&text.lines().nth(5).unwrap()[..20]);
    std::fs::write(&path, cut).unwrap();
    let o = export(args(&s.base, "cam", T0, end, out.path(), &extra)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("exported 7 images"), "{}", stderr(&o));
    let again = manifest(out.path());
    assert_eq!(again, lines, "the same dataset, no duplicates");

    // A finished export is a no-op.
    let o = export(args(&s.base, "cam", T0, end, out.path(), &extra)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("exported 0 images"), "{}", stderr(&o));
    assert!(stderr(&o).contains("12 already there"), "{}", stderr(&o));
    assert_eq!(manifest(out.path()).len(), 12);

    // PNG into another directory.
    let png = tempfile::tempdir().unwrap();
    let o = export(args(
        &s.base,
        "cam",
        T0,
        "2026-11-21T10:00:02.000Z",
        png.path(),
        &["--every", "1s", "--format", "png", "--height", "90"],
    ))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = manifest(png.path());
    assert_eq!(lines.len(), 2);
    let (codec, w, h) = ffprobe_image(&png.path().join(lines[0]["file"].as_str().unwrap()));
    assert_eq!((codec.as_str(), w, h), ("png", 160, 90));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_errors_are_clear() {
    let s = TestServer::start().await;
    s.create_stream("cam").await;
    s.push("cam", fixture("h264.mp4"), &format!("?producerStart={T0}")).await;
    let out = tempfile::tempdir().unwrap();
    let end = "2026-11-21T10:00:02.000Z";

    // Nothing listens on this port any more.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (args(&closed, "cam", T0, end, out.path(), &[]), "cannot reach the Sluice server"),
        (args(&s.base, "nope", T0, end, out.path(), &[]), "stream \"nope\" does not exist"),
        (args(&s.base, "cam", "yesterday", end, out.path(), &[]), "--start"),
        (args(&s.base, "cam", end, T0, out.path(), &[]), "is before --start"),
        (args(&s.base, "cam", T0, end, out.path(), &["--every", "fast"]), "--every"),
        (args("not a url", "cam", T0, end, out.path(), &[]), "--server"),
        (
            args(&s.base, "cam", "2020-01-01T00:00:00Z", "2020-01-01T00:01:00Z", out.path(), &[]),
            "no media",
        ),
    ];
    for (a, expect) in cases {
        let o = export(a.clone()).await;
        assert!(!o.status.success(), "{a:?} should fail");
        assert!(stderr(&o).contains(expect), "{a:?}: {}", stderr(&o));
    }
    assert!(manifest(out.path()).is_empty(), "failed runs wrote nothing");
    s.stop().await;
}
