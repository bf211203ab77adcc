//! A stalled disk holds only what waits for it: while every sync of two streams' logs is blocked
//! (a fault-injection hook before each fdatasync, `storage.before_sync`), their producers wait,
//! and another stream's HLS is served as usual. Storage work runs on the blocking pool, never on
//! the async workers, which is what this checks: with it on the workers, two stalled producers
//! would hold both workers of this runtime and nothing would be served.

mod common;

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::*;
use sluice::clock::SystemClock;
use sluice::log::SyncHook;
use sluice::name::StreamName;

/// Blocks the syncs of chosen log directories until opened.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Default)]
struct GateState {
    /// Path fragments (`/video/<id>/`) whose syncs wait.
    stalled: Vec<String>,
    open: bool,
    /// Syncs waiting now.
    waiting: usize,
}

impl Gate {
    fn pass(&self, dir: &Path) {
        let dir = dir.to_string_lossy();
        let mut st = self.state.lock().unwrap();
        if st.open || !st.stalled.iter().any(|p| dir.contains(p.as_str())) {
            return;
        }
        st.waiting += 1;
        self.cv.notify_all();
        while !st.open {
            st = self.cv.wait(st).unwrap();
        }
        st.waiting -= 1;
    }

    fn stall(&self, paths: Vec<String>) {
        self.state.lock().unwrap().stalled = paths;
    }

    /// Waits (bounded) until at least `n` syncs are blocked.
    fn wait_for_waiters(&self, n: usize) {
        let st = self.state.lock().unwrap();
        let (st, _) =
            self.cv.wait_timeout_while(st, Duration::from_secs(60), |s| s.waiting < n).unwrap();
        assert!(st.waiting >= n, "only {} syncs are waiting", st.waiting);
    }

    fn open(&self) {
        self.state.lock().unwrap().open = true;
        self.cv.notify_all();
    }
}

/// GETs `paths` from its own thread and runtime, so a stalled server runtime cannot stall the
/// probe; each answer's status, or the error.
fn probe(base: String, paths: Vec<String>) -> std::sync::mpsc::Receiver<Vec<Result<u16, String>>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let out = rt.block_on(async {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
            let mut out = Vec::new();
            for p in &paths {
                let r = http.get(format!("{base}{p}")).send().await;
                out.push(r.map(|r| r.status().as_u16()).map_err(|e| e.to_string()));
            }
            out
        });
        let _ = tx.send(out);
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_does_not_stall_playback_of_other_streams() {
    let gate = Arc::new(Gate::default());
    let hook = gate.clone();
    let server = TestServer::start_with(
        move |c| {
            c.storage.before_sync = Some(SyncHook(Arc::new(move |dir: &Path| hook.pass(dir))));
        },
        Arc::new(SystemClock),
    )
    .await;
    server.create_stream("b").await;
    let acks = server.push("b", fixture("h264.mp4"), "").await;
    assert!(!acks_of(&acks, "PERSISTED").is_empty(), "{acks:?}");
    let playlist = server.get_text("/v1/streams/b/hls/index.m3u8").await.1;
    let segment = playlist.lines().find(|l| l.starts_with("seg/")).expect("a segment").to_owned();
    let init = playlist
        .lines()
        .find_map(|l| l.split("URI=\"").nth(1).map(|u| u.trim_end_matches('"').to_owned()))
        .expect("a map");

    // Stall every sync of a1's and a2's logs, then start a producer on each: both wait for the
    // disk (their first init segment is synced before any fragment refers to it).
    let mut stalled = Vec::new();
    for name in ["a1", "a2"] {
        server.create_stream(name).await;
        let id = server.state.video.get(&StreamName::new(name).unwrap()).unwrap().id;
        stalled.push(format!("/video/{id}/"));
    }
    gate.stall(stalled);
    let producers: Vec<_> = ["a1", "a2"]
        .into_iter()
        .map(|name| {
            let (http, url) =
                (server.http.clone(), server.url(&format!("/v1/streams/{name}/media")));
            tokio::spawn(async move {
                let resp = http.put(url).body(fixture("h264.mp4")).send().await.expect("push");
                resp.text().await.expect("acks")
            })
        })
        .collect();
    let g = gate.clone();
    tokio::task::spawn_blocking(move || g.wait_for_waiters(2)).await.unwrap();

    // Meanwhile, b plays: every request is answered.
    let base = server.url("/v1/streams/b/hls/");
    let paths = vec![
        "master.m3u8".to_owned(),
        "live.m3u8".to_owned(),
        "index.m3u8".to_owned(),
        init,
        segment,
    ];
    let rx = probe(base, paths.clone());
    let answers = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(90)))
        .await
        .unwrap();
    // Let the stalled producers finish whatever happened above.
    gate.open();
    let answers = answers.expect("b's playback was answered while the disk was stalled");
    for (p, a) in paths.iter().zip(&answers) {
        assert_eq!(a.as_ref().ok(), Some(&200), "{p}: {a:?}");
    }

    // Once the disk is back, the stalled producers' fragments are stored and acknowledged.
    for p in producers {
        let acks = tokio::time::timeout(Duration::from_secs(60), p)
            .await
            .expect("the producer finishes once the disk is back")
            .unwrap();
        assert!(acks.contains("\"PERSISTED\""), "{acks}");
        assert!(!acks.contains("\"ERROR\""), "{acks}");
    }
    server.stop().await;
}
