//! Golden outputs: playlists, and the served bytes of every init segment, media segment and part
//! with their ETags, for fixtures pushed at a fixed producer time. A change to any of them fails
//! here, so it is a decision, not an accident:
//!
//! - a playlist that changes: check it with the players (`tests/interop.rs`), then update;
//! - bytes served under an unchanged URL that change: bump the format version in the ETag
//!   (`src/video/serve.rs`), or caches and players keep the old bytes forever (they are
//!   `immutable`); the test refuses new bytes under an old ETag.
//!
//! To accept a deliberate change: `SLUICE_UPDATE_GOLDEN=1 cargo nextest run --test golden`, and
//! review the diff of `tests/golden/`.

mod common;

use std::path::PathBuf;

use common::*;
use md5::{Digest, Md5};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn updating() -> bool {
    std::env::var_os("SLUICE_UPDATE_GOLDEN").is_some()
}

/// Compares `got` with the golden file `name`, or writes it when updating.
fn check_text(name: &str, got: &str) {
    let path = golden_dir().join(name);
    if updating() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with SLUICE_UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(got, want, "{name} changed (see the module docs of tests/golden.rs)");
}

/// `uri etag md5` for each resource, checked against the golden list: a resource whose bytes
/// changed must have a new ETag.
fn check_bytes(name: &str, got: &[(String, String, String)]) {
    let path = golden_dir().join(name);
    let text: String = got.iter().map(|(u, e, h)| format!("{u} {e} {h}\n")).collect();
    if !updating()
        && let Ok(want) = std::fs::read_to_string(&path)
    {
        for line in want.lines() {
            let mut f = line.split(' ');
            let (uri, etag, hash) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            if let Some((_, e, h)) = got.iter().find(|(u, _, _)| u == uri)
                && e == etag
            {
                assert_eq!(
                    h, hash,
                    "{uri}: the served bytes changed under the same ETag {etag}: bump the format version in src/video/serve.rs"
                );
            }
        }
    }
    check_text(name, &text);
}

async fn fetch(server: &TestServer, path: &str) -> (String, Vec<u8>) {
    let resp = server.http.get(server.url(path)).send().await.expect("get");
    assert_eq!(resp.status(), 200, "{path}");
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    (etag, resp.bytes().await.unwrap().to_vec())
}

fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// The resources a playlist names (EXT-X-MAP, segments, parts), in order, without duplicates.
fn resources(playlist: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in playlist.lines() {
        let mut uris: Vec<&str> =
            line.split("URI=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
        if !line.starts_with('#') && !line.is_empty() {
            uris.push(line);
        }
        for u in uris {
            if !out.iter().any(|o| o == u) {
                out.push(u.to_owned());
            }
        }
    }
    out
}

async fn golden_stream(fixture_name: &str, stream: &str, golden: &str) {
    let server = TestServer::start().await;
    server.create_stream(stream).await;
    let acks =
        server.push(stream, fixture(fixture_name), "?producerStart=2026-01-01T00:00:00Z").await;
    assert!(acks_of(&acks, "ERROR").is_empty(), "{acks:?}");
    let base = format!("/v1/streams/{stream}/hls/");
    let range = "start=2026-01-01T00:00:00Z&end=2026-01-01T01:00:00Z";
    let mut served = Vec::new();
    for (file, path) in [
        ("master-on-demand.m3u8", format!("master.m3u8?{range}")),
        ("index.m3u8", format!("index.m3u8?{range}")),
        ("live.m3u8", "live.m3u8".to_owned()),
    ] {
        let (status, text) = server.get_text(&format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}: {text}");
        check_text(&format!("{golden}-{file}"), &text);
        if file != "master-on-demand.m3u8" {
            for uri in resources(&text) {
                if !served.iter().any(|(u, _, _)| *u == uri) {
                    let (etag, bytes) = fetch(&server, &format!("{base}{uri}")).await;
                    served.push((uri, etag, md5_hex(&bytes)));
                }
            }
        }
    }
    check_bytes(&format!("{golden}-served.txt"), &served);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_playlists_and_served_bytes() {
    golden_stream("h264.mp4", "golden", "h264").await;
}

/// Fragments shorter than the GOP: a low-latency live playlist with parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ll_parts_playlists_and_served_bytes() {
    golden_stream("h264-parts.mp4", "golden-ll", "h264-parts").await;
}
