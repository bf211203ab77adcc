//! `[auth] enabled`: the authorization matrix over every route (generated from the one rule table,
//! `sluice::api::access::RULES`, which must cover every endpoint of docs/api.md), the admin API,
//! Basic and Bearer credentials, and the Kinesis API signed with SigV4 by the AWS SDK.

mod common;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{TestServer, fixture};
use reqwest::Method;
use serde_json::{Value, json};
use sluice::api::access::{RULES, Rule};
use sluice::auth::password;
use sluice::clock::SystemClock;
use sluice::config::{Action, Grant, StreamPattern, UserEntry};

const OPERATOR: (&str, &str) = ("operator", "operator-password");

async fn server() -> TestServer {
    TestServer::start_with(
        |c| {
            c.auth.enabled = true;
            c.auth.loopback_metrics = false;
            c.auth.failures_per_minute = 10_000;
            c.auth.users.push(UserEntry {
                name: OPERATOR.0.into(),
                password_hash: password::hash(OPERATOR.1),
                grants: vec![Grant { action: Action::Admin, streams: StreamPattern::All }],
                cidrs: vec![],
            });
        },
        Arc::new(SystemClock),
    )
    .await
}

fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = s.http.request(method, s.url(path));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A key with one grant, made through the admin API; returns its `Bearer id:secret`.
async fn key(s: &TestServer, action: &str, streams: &str) -> String {
    let admin = basic(OPERATOR.0, OPERATOR.1);
    let (status, v) = call(
        s,
        Method::POST,
        "/v1/auth/keys",
        Some(&admin),
        Some(json!({"grants": [{"action": action, "streams": streams}], "description": "test"})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    format!(
        "Bearer {}:{}",
        v["accessKeyId"].as_str().unwrap(),
        v["secretAccessKey"].as_str().unwrap()
    )
}

fn concrete(route: &str) -> String {
    route
        .replace("{name}", "cam-1")
        .replace("{stream}", "data-1")
        .replace("{shard}", "shardId-000000000000")
        .replace("{number}", "1")
        .replace("{id}", "1")
        .replace("{file}", "x.m4s")
        .replace("{session}", "nosuchsession")
        .replace("{user}", "someone")
        .replace("{key}", "SLKNOSUCHKEY00000000")
}

fn action_name(a: Action) -> &'static str {
    a.name()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_401_401_403_then_lets_the_granted_in() {
    let s = server().await;
    let admin = basic(OPERATOR.0, OPERATOR.1);
    let (status, _) =
        call(&s, Method::POST, "/v1/streams", Some(&admin), Some(json!({"name": "cam-1"}))).await;
    assert_eq!(status, 201);
    // A wrong password is checked once (argon2 is slow by design); a wrong key secret everywhere.
    let (st, _) =
        call(&s, Method::GET, "/v1/streams", Some(&basic(OPERATOR.0, "not-the-password")), None)
            .await;
    assert_eq!(st, 401);
    let some_key = key(&s, "read", "*").await;
    let wrong = format!("{}:{}", some_key.rsplit_once(':').unwrap().0, "z".repeat(40));
    let mut checked = 0;
    for (method, route, rule) in RULES {
        let path = concrete(route);
        let m: Method = method.parse().unwrap();
        let body = match (*method, *route) {
            ("POST", "/v1/streams") => Some(json!({"name": "cam-1"})),
            ("PUT", "/v1/auth/users/{user}") => Some(json!({"password": "longer-than-8"})),
            ("POST" | "PATCH" | "PUT", _) => Some(json!({})),
            _ => None,
        };
        let own = if route.contains("{stream}") { "data-1" } else { "cam-1" };
        let (granted, ungranted) = match *rule {
            Rule::Public | Rule::SelfAuthenticated => continue,
            Rule::Stream(a, _) => {
                (key(&s, action_name(a), own).await, Some(key(&s, action_name(a), "other").await))
            }
            Rule::SeeStream(_) => {
                (key(&s, "playback", "cam*").await, Some(key(&s, "read", "other").await))
            }
            Rule::SomeStream(a) => {
                (key(&s, action_name(a), "*").await, Some(key(&s, "read", "*").await))
            }
            Rule::Listed => (key(&s, "playback", "x").await, None),
            Rule::Identify => {
                // Anyone may ask who they are; wrong credentials are still refused.
                assert_eq!(call(&s, m.clone(), &path, None, None).await.0, 200, "{method} {route}");
                assert_eq!(call(&s, m.clone(), &path, Some(&wrong), None).await.0, 401);
                continue;
            }
            Rule::Server(a) => {
                (key(&s, action_name(a), "*").await, Some(key(&s, action_name(a), "cam-1").await))
            }
            Rule::Health => (key(&s, "metrics", "*").await, Some(key(&s, "admin", "cam-1").await)),
        };
        let what = format!("{method} {route}");
        let (st, v) = call(&s, m.clone(), &path, None, body.clone()).await;
        assert_eq!(st, 401, "{what} without credentials: {v}");
        assert_eq!(v["error"]["code"], "Unauthorized", "{what}");
        let (st, _) = call(&s, m.clone(), &path, Some(&wrong), body.clone()).await;
        assert_eq!(st, 401, "{what} with a wrong secret");
        if let Some(u) = ungranted {
            let (st, v) = call(&s, m.clone(), &path, Some(&u), body.clone()).await;
            assert_eq!(st, 403, "{what} valid but not granted: {v}");
            assert_eq!(v["error"]["code"], "AccessDenied", "{what}");
        }
        let (st, v) = call(&s, m.clone(), &path, Some(&granted), body.clone()).await;
        assert!(st != 401 && st != 403, "{what} granted got {st}: {v}");
        checked += 1;
    }
    assert!(checked >= 35, "{checked}");
    // CORS preflights are never authenticated.
    let pre = s
        .http
        .request(Method::OPTIONS, s.url("/v1/streams/cam-1"))
        .header("origin", "http://example.test")
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    s.stop().await;
}

/// docs/api.md's endpoints, with every `{…}` segment as `*`, must each have a rule.
#[test]
fn every_documented_endpoint_has_a_rule() {
    let norm = |p: &str| {
        p.split('/')
            .map(|seg| if seg.contains('{') { "*" } else { seg })
            .collect::<Vec<_>>()
            .join("/")
    };
    let rules: Vec<(String, String)> =
        RULES.iter().map(|(m, r, _)| (m.to_string(), norm(r))).collect();
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let mut seen = 0;
    for line in docs.split('`').filter(|s| s.contains(" /")) {
        let Some((method, path)) = line.split_once(' ') else { continue };
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
            continue;
        }
        let path = path.split(['?', ' ']).next().unwrap();
        seen += 1;
        assert!(
            rules.contains(&(method.to_owned(), norm(path))),
            "docs/api.md documents `{method} {path}`, which has no rule in api::access::RULES"
        );
    }
    assert!(seen >= 30, "{seen} endpoints found in docs/api.md");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_publish_play_and_are_listed_only_where_granted() {
    let s = server().await;
    let admin = basic(OPERATOR.0, OPERATOR.1);
    for name in ["cam-1", "cam-2", "door"] {
        call(&s, Method::POST, "/v1/streams", Some(&admin), Some(json!({"name": name}))).await;
    }
    let camera = key(&s, "publish", "cam-1").await;
    let viewer = key(&s, "playback", "cam*").await;
    // The camera pushes into its own stream only.
    let push = |name: &'static str, auth: String| {
        let s = &s;
        async move {
            s.http
                .put(s.url(&format!("/v1/streams/{name}/media")))
                .header("authorization", auth)
                .body(fixture("h264.mp4"))
                .send()
                .await
                .unwrap()
        }
    };
    let resp = push("cam-1", camera.clone()).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("PERSISTED"));
    assert_eq!(push("cam-2", camera.clone()).await.status(), 403);
    assert_eq!(push("cam-1", viewer.clone()).await.status(), 403);
    // The viewer plays, but cannot read fragments or delete.
    let (st, _) =
        call(&s, Method::GET, "/v1/streams/cam-1/hls/index.m3u8", Some(&viewer), None).await;
    assert_eq!(st, 200);
    let (st, _) = call(&s, Method::GET, "/v1/streams/cam-1/fragments", Some(&viewer), None).await;
    assert_eq!(st, 403);
    let (st, _) = call(&s, Method::DELETE, "/v1/streams/cam-1", Some(&viewer), None).await;
    assert_eq!(st, 403);
    // Listing shows what each may see.
    let names = |v: Value| -> Vec<String> {
        v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = call(&s, Method::GET, "/v1/streams", Some(&viewer), None).await;
    assert_eq!(names(v), ["cam-1", "cam-2"]);
    let (_, v) = call(&s, Method::GET, "/v1/streams", Some(&admin), None).await;
    assert_eq!(names(v), ["cam-1", "cam-2", "door"]);
    let (st, v) = call(&s, Method::GET, "/v1/auth/whoami", Some(&viewer), None).await;
    assert_eq!((st, &v["admin"]), (200, &json!(false)), "{v}");
    // Keys are listed without secrets; a rotated key's old secret stops working.
    let (_, keys) = call(&s, Method::GET, "/v1/auth/keys", Some(&admin), None).await;
    assert!(!keys.to_string().contains(viewer.split(':').nth(1).unwrap()), "no secret listed");
    let id = camera.trim_start_matches("Bearer ").split(':').next().unwrap().to_owned();
    let (st, rotated) =
        call(&s, Method::POST, &format!("/v1/auth/keys/{id}/rotate"), Some(&admin), None).await;
    assert_eq!(st, 200, "{rotated}");
    assert_eq!(push("cam-1", camera.clone()).await.status(), 401);
    let fresh = format!("Bearer {id}:{}", rotated["secretAccessKey"].as_str().unwrap());
    assert_eq!(push("cam-1", fresh).await.status(), 200);
    // Denials are counted.
    let metrics_key = key(&s, "metrics", "*").await;
    let (_, text) = call(&s, Method::GET, "/metrics", Some(&metrics_key), None).await;
    let text = text.as_str().unwrap().to_owned();
    assert!(
        text.contains("sluice_auth_denied_total{surface=\"http\",reason=\"not_granted\"}"),
        "{text}"
    );
    let secret = rotated["secretAccessKey"].as_str().unwrap();
    assert!(!text.contains(OPERATOR.1) && !text.contains(secret), "no secret in /metrics");
    s.stop().await;
}

/// The AWS SDK for Rust signing with the key `bearer` (`Bearer id:secret`).
fn sdk(s: &TestServer, bearer: &str) -> aws_sdk_kinesis::Client {
    let (id, secret) = bearer.trim_start_matches("Bearer ").split_once(':').unwrap();
    let creds = aws_sdk_kinesis::config::Credentials::new(id, secret, None, None, "test");
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("eu-west-1"))
        .endpoint_url(s.base.clone())
        .credentials_provider(creds)
        .build();
    aws_sdk_kinesis::Client::from_conf(conf)
}

/// Every admin change and every refusal is an event in `sluice-events` naming the principal, and
/// refusals are counted by surface and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_names_who_did_what() {
    let s = server().await;
    let admin = basic(OPERATOR.0, OPERATOR.1);
    let viewer = key(&s, "playback", "cam-*").await;
    let viewer_id = viewer.trim_start_matches("Bearer ").split_once(':').unwrap().0.to_owned();
    let rotate = format!("/v1/auth/keys/{viewer_id}/rotate");
    assert_eq!(call(&s, Method::POST, &rotate, Some(&admin), None).await.0, 200);
    let made = json!({"name": "cam-audit"});
    assert_eq!(call(&s, Method::POST, "/v1/streams", Some(&admin), Some(made)).await.0, 201);
    let patch = json!({"retentionHours": 48});
    let path = "/v1/streams/cam-audit";
    assert_eq!(call(&s, Method::PATCH, path, Some(&admin), Some(patch)).await.0, 200);
    assert_eq!(call(&s, Method::DELETE, path, Some(&basic(OPERATOR.0, "nope")), None).await.0, 401);
    assert_eq!(call(&s, Method::DELETE, path, None, None).await.0, 401);
    assert_eq!(call(&s, Method::DELETE, path, Some(&admin), None).await.0, 204);

    let reader = sdk(&s, &key(&s, "read", "sluice-events").await);
    let mut events: Vec<Value> = Vec::new();
    for _ in 0..100 {
        events = common::stream_records(&reader, "sluice-events")
            .await
            .iter()
            .map(|r| serde_json::from_slice(r).unwrap())
            .collect();
        if events.iter().any(|e| e["type"] == "StreamDeleted") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let find = |kind: &str, f: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .find(|e| e["type"] == kind && f(&e["details"]))
            .unwrap_or_else(|| panic!("no {kind} event in {events:#?}"))
            .clone()
    };
    let created = find("PrincipalChanged", &|d| d["change"] == "created" && d["kind"] == "key");
    assert_eq!(created["details"]["by"], OPERATOR.0);
    let rotated = find("PrincipalChanged", &|d| d["change"] == "rotated");
    assert_eq!(rotated["details"]["name"], viewer_id.as_str());
    for kind in ["StreamCreated", "StreamUpdated", "StreamDeleted"] {
        let e = find(kind, &|_| true);
        assert_eq!(e["stream"], "cam-audit", "{e}");
        assert_eq!(e["details"]["by"], OPERATOR.0, "{e}");
    }
    let wrong = find("AccessDenied", &|d| d["reason"] == "bad_secret");
    assert_eq!(wrong["details"]["principal"], OPERATOR.0);
    assert_eq!(wrong["details"]["surface"], "http");
    let anonymous = find("AccessDenied", &|d| d["reason"] == "missing");
    assert_eq!(anonymous["stream"], "cam-audit");
    assert_eq!(anonymous["details"]["action"], "admin");
    let (_, metrics) = call(&s, Method::GET, "/metrics", Some(&admin), None).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    for reason in ["bad_secret", "missing"] {
        let line = format!("sluice_auth_denied_total{{surface=\"http\",reason=\"{reason}\"}}");
        assert!(metrics.lines().any(|l| l.starts_with(&line)), "{line} in {metrics}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_signs_and_is_refused_precisely() {
    use aws_sdk_kinesis::primitives::Blob;
    let s = server().await;
    let admin_key = key(&s, "admin", "*").await;
    let reader_key = key(&s, "read", "*").await;
    let client = |bearer: &str| sdk(&s, bearer);
    let admin = client(&admin_key);
    admin.create_stream().stream_name("signed").shard_count(1).send().await.unwrap();
    admin
        .put_record()
        .stream_name("signed")
        .partition_key("k")
        .data(Blob::new(&b"hello"[..]))
        .send()
        .await
        .unwrap();
    let code = |e: &aws_sdk_kinesis::error::SdkError<_, _>| -> String {
        use aws_sdk_kinesis::error::ProvideErrorMetadata;
        e.as_service_error()
            .and_then(|e: &aws_sdk_kinesis::operation::put_record::PutRecordError| {
                e.code().map(str::to_owned)
            })
            .unwrap_or_else(|| format!("{e:?}"))
    };
    let put_error = |c: aws_sdk_kinesis::Client| async move {
        let err = c
            .put_record()
            .stream_name("signed")
            .partition_key("k")
            .data(Blob::new(&b"x"[..]))
            .send()
            .await
            .unwrap_err();
        code(&err)
    };
    let reader = client(&reader_key);
    assert_eq!(put_error(reader.clone()).await, "AccessDeniedException");
    let summary = reader.describe_stream_summary().stream_name("signed").send().await.unwrap();
    assert_eq!(summary.stream_description_summary().unwrap().stream_name(), "signed");
    let (id, _) = admin_key.trim_start_matches("Bearer ").split_once(':').unwrap();
    let wrong = client(&format!("Bearer {id}:{}", "x".repeat(40)));
    assert_eq!(put_error(wrong).await, "InvalidSignatureException");
    let unknown = client(&format!("Bearer SLKUNKNOWNUNKNOWN000:{}", "y".repeat(40)));
    assert_eq!(put_error(unknown).await, "UnrecognizedClientException");
    // ListStreams shows only what the key may see.
    let scoped = client(&key(&s, "read", "sig*").await);
    admin.create_stream().stream_name("hidden").shard_count(1).send().await.unwrap();
    let names = scoped.list_streams().send().await.unwrap().stream_names().to_vec();
    assert_eq!(names, ["signed"]);

    // SubscribeToShard, signed: `read` on the consumer's stream subscribes and receives the
    // record; a publish-only key is refused before any event.
    use aws_sdk_kinesis::types::{
        ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
    };
    let arn = summary.stream_description_summary().unwrap().stream_arn().to_owned();
    let reg = admin.register_stream_consumer().stream_arn(arn).consumer_name("app").send().await;
    let consumer = reg.unwrap().consumer().unwrap().consumer_arn().to_owned();
    let subscribe = |c: aws_sdk_kinesis::Client| {
        let start = StartingPosition::builder().r#type(ShardIteratorType::TrimHorizon).build();
        c.subscribe_to_shard()
            .consumer_arn(&consumer)
            .shard_id("shardId-000000000000")
            .starting_position(start.unwrap())
            .send()
    };
    let publisher = client(&key(&s, "publish", "*").await);
    let refused = subscribe(publisher).await.unwrap_err();
    let refused = aws_sdk_kinesis::error::ProvideErrorMetadata::code(&refused).map(str::to_owned);
    assert_eq!(refused.as_deref(), Some("AccessDeniedException"));
    let mut events = subscribe(reader).await.unwrap();
    let first =
        tokio::time::timeout(std::time::Duration::from_secs(30), events.event_stream.recv());
    match first.await.unwrap().unwrap() {
        Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)) => {
            assert_eq!(e.records()[0].data().as_ref(), b"hello");
        }
        other => panic!("{other:?}"),
    }
    s.stop().await;
}

/// With auth off: only requests addressed to an IP, `localhost` or a configured name are served
/// (DNS rebinding), and only playback is open to every origin (CORS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_and_origins_are_checked() {
    let s = TestServer::start_with(
        |c| {
            c.server.allowed_hosts = vec!["cams.lan".into()];
            c.server.cors_origins = vec!["https://ops.example".into()];
        },
        Arc::new(SystemClock),
    )
    .await;
    let with_host = |host: &'static str| {
        let s = &s;
        async move {
            s.http
                .get(s.url("/v1/streams"))
                .header("host", host)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(with_host("rebound.example:8080").await, 403);
    assert_eq!(with_host("cams.lan:8080").await, 200);
    assert_eq!(with_host("localhost:8080").await, 200);
    assert_eq!(with_host("[::1]:8080").await, 200);
    assert_eq!(s.http.get(s.url("/v1/streams")).send().await.unwrap().status(), 200);

    let preflight = |path: &'static str, origin: &'static str| {
        let s = &s;
        async move {
            let r = s
                .http
                .request(Method::OPTIONS, s.url(path))
                .header("origin", origin)
                .header("access-control-request-method", "DELETE")
                .send()
                .await
                .unwrap();
            r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(preflight("/v1/streams/x", "http://evil.example").await, None);
    assert_eq!(
        preflight("/v1/streams/x", "https://ops.example").await.as_deref(),
        Some("https://ops.example")
    );
    assert_eq!(
        preflight("/v1/streams/x/hls/index.m3u8", "http://any.example").await.as_deref(),
        Some("*")
    );
    s.stop().await;
}

/// Garbage in `Authorization` (Basic, Bearer, AWS4-HMAC-SHA256 and nothing in particular) never
/// gets a 5xx or stops the server: 401/403/400 only, on the native API and the Kinesis API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_credentials_are_refused_never_crash() {
    use rand::{Rng, SeedableRng};
    let s = server().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x005e_eda0);
    let prefixes =
        ["Basic ", "Bearer ", "AWS4-HMAC-SHA256 ", "Digest ", "", "basic ", "Bearer SLK"];
    let pieces = [
        "Credential=",
        "/",
        ",",
        "SignedHeaders=",
        "Signature=",
        ":",
        "=",
        "==",
        "\t",
        " ",
        "%00",
        "host;x-amz-date",
        "20260101/us-east-1/kinesis/aws4_request",
        "\u{e9}",
        "AAAA",
        "operator",
    ];
    for i in 0..400 {
        let mut h = prefixes[rng.random_range(0..prefixes.len())].to_owned();
        for _ in 0..rng.random_range(0..12) {
            if rng.random_bool(0.5) {
                h.push_str(pieces[rng.random_range(0..pieces.len())]);
            } else {
                let n = rng.random_range(1..40);
                h.extend((0..n).map(|_| rng.random_range(b'!'..=b'~') as char));
            }
        }
        let Ok(value) = reqwest::header::HeaderValue::from_str(&h) else { continue };
        let kinesis = i % 2 == 0;
        let req = if kinesis {
            s.http
                .post(s.url("/"))
                .header("x-amz-target", "Kinesis_20131202.ListStreams")
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-date", "20260101T000000Z")
                .body("{}")
        } else {
            s.http.get(s.url("/v1/streams"))
        };
        let status = req.header("authorization", value).send().await.unwrap().status().as_u16();
        assert!([400, 401, 403, 429].contains(&status), "{h:?} → {status}");
    }
    let admin = basic(OPERATOR.0, OPERATOR.1);
    assert_eq!(call(&s, Method::GET, "/healthz", Some(&admin), None).await.0, 200);
    s.stop().await;
}

/// With auth on, an administrator cannot point Sluice at its own loopback, link-local (cloud
/// metadata) addresses, or a directory outside the allowed roots, unless the config allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_are_limited_to_what_the_config_allows() {
    let s = server().await;
    let admin = basic(OPERATOR.0, OPERATOR.1);
    let (st, _) =
        call(&s, Method::POST, "/v1/streams", Some(&admin), Some(json!({"name": "cam"}))).await;
    assert_eq!(st, 201);
    let patch = |body: Value| {
        let (s, admin) = (&s, admin.clone());
        async move { call(s, Method::PATCH, "/v1/streams/cam", Some(&admin), Some(body)).await }
    };
    let hook = |url: &str| json!({"imageGeneration": {"intervalMs": 1000, "destination": {"kind": "webhook", "url": url}}});
    let dir = |path: &str| json!({"imageGeneration": {"intervalMs": 1000, "destination": {"kind": "directory", "path": path}}});
    for (body, what) in [
        (json!({"source": {"rtspUrl": "rtsp://127.0.0.1:554/x"}}), "loopback"),
        (json!({"source": {"rtspUrl": "rtsp://localhost:554/x"}}), "loopback"),
        (hook("http://169.254.169.254/latest/meta-data"), "link-local"),
        (hook("http://[::1]:9/hook"), "loopback"),
        (dir("/etc/cron.d"), "outside the data directory"),
    ] {
        let (st, v) = patch(body.clone()).await;
        assert_eq!(st, 403, "{body} → {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(what), "{v}");
    }
    let inside = s.dir.join("images");
    let (st, v) = patch(dir(inside.to_str().unwrap())).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = patch(json!({"source": {"rtspUrl": "rtsp://192.0.2.10:554/x"}})).await;
    assert_eq!(st, 200, "a LAN camera is fine: {v}");
    s.stop().await;
}
