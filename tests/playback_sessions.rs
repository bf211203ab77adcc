//! Playback sessions with `[auth]` on: a URL with a signed, expiring, stream-scoped token that
//! ffprobe plays with no headers; every URI in the playlists it opens carries the token; a
//! tampered token, another stream's, one on a non-playback route, and an expired one get 403.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{TestServer, ffprobe_frames, fixture};
use serde_json::{Value, json};
use sluice::auth::password;
use sluice::clock::{Clock, ManualClock, SystemClock};
use sluice::config::{Action, Grant, StreamPattern, UserEntry};

fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

async fn server(clock: Arc<ManualClock>) -> TestServer {
    TestServer::start_with(
        |c| {
            c.auth.enabled = true;
            c.auth.users.push(UserEntry {
                name: "ops".into(),
                password_hash: password::hash("ops-password"),
                grants: vec![Grant { action: Action::Admin, streams: StreamPattern::All }],
                cidrs: vec![],
            });
            c.auth.users.push(UserEntry {
                name: "viewer".into(),
                password_hash: password::hash("viewer-password"),
                grants: vec![Grant {
                    action: Action::Playback,
                    streams: StreamPattern::parse("cam-1").unwrap(),
                }],
                cidrs: vec![],
            });
        },
        clock,
    )
    .await
}

async fn get(s: &TestServer, url: &str) -> (u16, String) {
    let r = s.http.get(s.url(url)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_url_plays_without_headers_until_it_expires() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let s = server(clock.clone()).await;
    let ops = basic("ops", "ops-password");
    for name in ["cam-1", "cam-2"] {
        let r = s
            .http
            .post(s.url("/v1/streams"))
            .header("authorization", &ops)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = s
            .http
            .put(s.url(&format!("/v1/streams/{name}/media")))
            .header("authorization", &ops)
            .body(fixture("h264.mp4"))
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("PERSISTED"));
    }
    let viewer = basic("viewer", "viewer-password");
    let session = |stream: &'static str, body: Value| {
        let (s, viewer) = (&s, viewer.clone());
        async move {
            let r = s
                .http
                .post(s.url(&format!("/v1/streams/{stream}/playback-sessions")))
                .header("authorization", viewer)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(session("cam-2", json!({})).await.0, 403, "no playback grant on cam-2");
    assert_eq!(session("cam-1", json!({"expiresInSeconds": 10})).await.0, 400);
    let (st, v) = session("cam-1", json!({"mode": "on_demand", "expiresInSeconds": 600})).await;
    assert_eq!(st, 201, "{v}");
    let url = v["url"].as_str().unwrap().to_owned();
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(!url.contains("viewer-password"));

    // Every URI in the playlists carries the token, and each answers without headers.
    let (st, master) = get(&s, &url).await;
    assert_eq!(st, 200, "{master}");
    let media = master.lines().find(|l| !l.starts_with('#') && !l.is_empty()).unwrap().to_owned();
    assert!(media.contains(&format!("token={token}")), "{master}");
    let (st, playlist) = get(&s, &format!("/v1/streams/cam-1/hls/{media}")).await;
    assert_eq!(st, 200, "{playlist}");
    let mut uris: Vec<String> = playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    uris.extend(playlist.split("URI=\"").skip(1).map(|r| r.split('"').next().unwrap().to_owned()));
    assert!(uris.len() > 2, "{playlist}");
    for uri in &uris {
        assert!(uri.ends_with(&format!("token={token}")), "{uri} in {playlist}");
    }
    let (st, _) = get(&s, &format!("/v1/streams/cam-1/hls/{}", uris[0])).await;
    assert_eq!(st, 200);
    // A player that knows nothing of Sluice: ffprobe reads it all.
    let (frames, _) = ffprobe_frames(&s.url(&url));
    assert_eq!(frames, 180);

    // Refusals: tampered, another stream, a route that is not playback.
    let tampered = url.replace(&token, &format!("{}x", &token));
    assert_eq!(get(&s, &tampered).await.0, 403);
    assert_eq!(get(&s, &url.replace("/cam-1/", "/cam-2/")).await.0, 403);
    assert_eq!(get(&s, &format!("/v1/streams/cam-1/fragments?token={token}")).await.0, 403);
    // A clip is playback: the token opens it (here a 400 for the missing range, not a 403).
    assert_eq!(get(&s, &format!("/v1/streams/cam-1/clip.mp4?token={token}")).await.0, 400);

    // After its expiry the session opens nothing.
    clock.advance(Duration::from_secs(601));
    let (st, body) = get(&s, &url).await;
    assert_eq!(st, 403);
    assert!(body.contains("expired"), "{body}");
    assert_eq!(get(&s, &format!("/v1/streams/cam-1/hls/{}", uris[0])).await.0, 403);
    s.stop().await;
}
