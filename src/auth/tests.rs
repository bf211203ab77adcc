//! Authentication and grants, without HTTP.

use std::net::IpAddr;

use super::*;
use crate::clock::SystemClock;
use crate::config::{KeyEntry, UserEntry};

fn grant(action: Action, streams: &str) -> Grant {
    Grant { action, streams: StreamPattern::parse(streams).unwrap() }
}

fn basic(user: &str, pass: &str) -> Vec<u8> {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}"))).into_bytes()
}

const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));
const AWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

fn open(dir: &std::path::Path) -> Auth {
    let mut c = AuthConfig { enabled: true, ..AuthConfig::default() };
    c.users.push(UserEntry {
        name: "viewer".into(),
        password_hash: password::hash("watch-it-all"),
        grants: vec![grant(Action::Playback, "cam*")],
        cidrs: vec!["10.0.0.0/8".parse().unwrap()],
    });
    c.keys.push(KeyEntry {
        access_key_id: "CAMERAKEY0000001".into(),
        secret: Some("0123456789abcdef0123456789abcdef01234567".into()),
        secret_env: None,
        grants: vec![grant(Action::Publish, "cam-1")],
        cidrs: vec![],
    });
    c.anonymous.push(grant(Action::Playback, "lobby"));
    c.failures_per_minute = 5;
    let catalog = Arc::new(Catalog::open(&dir.join("catalog.sqlite")).unwrap());
    Auth::open(&c, catalog, Arc::new(Sealer::new(&[9; 32])), Arc::new(SystemClock)).unwrap()
}

#[test]
fn credentials_grants_and_networks() {
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path());
    let viewer = auth.authenticate(Some(&basic("viewer", "watch-it-all")), HOME).unwrap();
    assert!(auth.allows(&viewer, Action::Playback, Some("cam-9")));
    assert!(!auth.allows(&viewer, Action::Read, Some("cam-9")), "playback is not read");
    assert!(!auth.allows(&viewer, Action::Playback, Some("door")));
    assert!(auth.sees(&viewer, "cam-2") && !auth.sees(&viewer, "door"));
    assert_eq!(
        auth.authenticate(Some(&basic("viewer", "watch-it-all")), AWAY).unwrap_err(),
        Failure::SourceNotAllowed
    );
    assert_eq!(
        auth.authenticate(Some(&basic("viewer", "nope")), HOME).unwrap_err(),
        Failure::BadSecret
    );
    assert_eq!(
        auth.authenticate(Some(&basic("nobody", "x")), HOME).unwrap_err(),
        Failure::UnknownPrincipal
    );
    let camera = auth
        .authenticate(
            Some(b"Bearer CAMERAKEY0000001:0123456789abcdef0123456789abcdef01234567"),
            HOME,
        )
        .unwrap();
    assert!(auth.allows(&camera, Action::Publish, Some("cam-1")));
    assert!(!auth.allows(&camera, Action::Publish, Some("cam-2")));
    assert!(!auth.allows(&camera, Action::Playback, Some("cam-1")));
    // OBS sends `Bearer user:password`.
    assert!(auth.authenticate(Some(b"Bearer viewer:watch-it-all"), HOME).is_ok());
    let anonymous = auth.authenticate(None, AWAY).unwrap();
    assert!(auth.allows(&anonymous, Action::Playback, Some("lobby")));
    assert!(!auth.allows(&anonymous, Action::Playback, Some("cam-1")));
    for garbage in [&b"Basic"[..], b"Basic !!!", b"Digest x", b"Bearer nocolon", b"\xff\xfe", b""] {
        assert!(auth.authenticate(Some(garbage), AWAY).is_err());
    }
}

#[test]
fn repeated_failures_are_throttled_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path());
    for _ in 0..5 {
        assert_eq!(
            auth.authenticate(Some(&basic("x", "y")), AWAY).unwrap_err(),
            Failure::UnknownPrincipal
        );
    }
    let err = auth.authenticate(Some(&basic("viewer", "watch-it-all")), AWAY).unwrap_err();
    assert!(matches!(err, Failure::Throttled { .. }), "{err:?}");
    assert!(
        auth.authenticate(Some(&basic("viewer", "watch-it-all")), HOME).is_ok(),
        "others go on"
    );
}

#[test]
fn keys_and_users_from_the_api_survive_a_restart_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path());
    let (view, secret) =
        auth.create_key(vec![grant(Action::Read, "*")], vec![], "ml job".into()).unwrap();
    assert!(view.access_key_id.starts_with("SLK") && view.access_key_id.len() == 20);
    assert_eq!(secret.len(), 40);
    auth.put_user("op", "long enough", vec![grant(Action::Admin, "*")], vec![]).unwrap();
    let raw = std::fs::read(dir.path().join("catalog.sqlite")).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains(&secret) && !text.contains("long enough"), "no secret in plain text");
    drop(auth);
    let auth = open(dir.path());
    let bearer = format!("Bearer {}:{secret}", view.access_key_id);
    assert!(auth.authenticate(Some(bearer.as_bytes()), HOME).is_ok());
    assert!(auth.authenticate(Some(&basic("op", "long enough")), HOME).is_ok());
    let (_, new_secret) = auth.rotate_key(&view.access_key_id).unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(auth.authenticate(Some(bearer.as_bytes()), HOME).unwrap_err(), Failure::BadSecret);
    assert!(auth.delete(false, "CAMERAKEY0000001").is_err(), "config keys stay");
    auth.delete(false, &view.access_key_id).unwrap();
    assert_eq!(auth.list_keys().len(), 1);
    assert!(auth.put_user("viewer", "long enough", vec![], vec![]).is_err(), "config users stay");
}

#[test]
fn disabled_allows_everything() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(Catalog::open(&dir.path().join("catalog.sqlite")).unwrap());
    let auth = Auth::open(
        &AuthConfig::default(),
        catalog,
        Arc::new(Sealer::new(&[1; 32])),
        Arc::new(SystemClock),
    )
    .unwrap();
    assert!(auth.allows(&Identity::Anonymous, Action::Admin, None));
}

/// One signed request of the AWS SigV4 test suite (`fixtures/aws-sig-v4-test-suite`, the
/// `.sreq` files): request line, `Name:value` headers, a blank line, the body.
fn suite_request(name: &str) -> Result<(http::request::Parts, bytes::Bytes), String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/aws-sig-v4-test-suite")
        .join(format!("{name}.sreq"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let line = lines.next().ok_or("no request line")?;
    let (method_target, _version) = line.rsplit_once(' ').ok_or("no HTTP version")?;
    let (method, target) = method_target.split_once(' ').ok_or("no target")?;
    let mut req = http::Request::builder().method(method).uri(target);
    for l in lines {
        if l.starts_with([' ', '\t']) {
            return Err("a folded header line (obs-fold), which HTTP/1.1 servers reject".into());
        }
        let (k, v) = l.split_once(':').ok_or("a header without a colon")?;
        req = req.header(k, v.trim());
    }
    let req = req.body(()).map_err(|e| format!("not an HTTP request: {e}"))?;
    Ok((req.into_parts().0, bytes::Bytes::copy_from_slice(body.as_bytes())))
}

/// Sluice's SigV4 path (scope, region, key lookup, clock window, the verifier) against the AWS
/// test suite's signed requests: every one either verifies, or is refused for a stated reason,
/// and a changed request never verifies.
#[tokio::test]
async fn the_aws_sigv4_test_suite_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let auth = open(dir.path());
    // The suite's key id is shorter than the 16 characters Sluice (like AWS) requires of the
    // keys it is given, so it goes straight into the table.
    let principal = Principal {
        name: "AKIDEXAMPLE".into(),
        kind: Kind::Key,
        grants: vec![grant(Action::Admin, "*")],
        cidrs: vec![],
        origin: Origin::Config,
    };
    auth.keys.write().unwrap().insert(
        "AKIDEXAMPLE".into(),
        Entry {
            principal: Arc::new(principal),
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            description: String::new(),
            created_at: None,
            rotated_at: None,
        },
    );
    let signed_at = crate::clock::Timestamp::parse_api("2015-08-30T12:36:00Z").unwrap();

    // The expected outcome of every vector: Ok, or why it is refused.
    let not_http = "not HTTP";
    let cases: &[(&str, Result<(), &str>)] = &[
        ("get-header-key-duplicate", Ok(())),
        ("get-header-value-multiline", Err(not_http)),
        ("get-header-value-order", Ok(())),
        ("get-header-value-trim", Ok(())),
        ("get-unreserved", Ok(())),
        ("get-utf8", Ok(())),
        // A space in the request target is not HTTP.
        ("get-space", Err(not_http)),
        ("get-vanilla-empty-query-key", Ok(())),
        ("get-vanilla-query-order-key-case", Ok(())),
        ("get-vanilla-query-order-key", Ok(())),
        ("get-vanilla-query-order-value", Ok(())),
        ("get-vanilla-query-unreserved", Ok(())),
        ("get-vanilla-query", Ok(())),
        ("get-vanilla-utf8-query", Ok(())),
        ("get-vanilla", Ok(())),
        ("get-relative-relative", Ok(())),
        ("get-relative", Ok(())),
        ("get-slash-dot-slash", Ok(())),
        ("get-slash-pointless-dot", Ok(())),
        ("get-slash", Ok(())),
        ("get-slashes", Ok(())),
        ("post-header-key-case", Ok(())),
        ("post-header-key-sort", Ok(())),
        ("post-header-value-case", Ok(())),
        // Session tokens are refused by design: Sluice issues none.
        ("post-sts-header-after", Err("UnrecognizedClientException")),
        ("post-sts-header-before", Err("UnrecognizedClientException")),
        ("post-vanilla-empty-query-value", Ok(())),
        ("post-vanilla-query", Ok(())),
        ("post-vanilla", Ok(())),
        // These two sign a form body as query parameters, the AWS Query protocol's convention
        // (STS, IAM); Sluice speaks JSON, CBOR and REST-JSON protocols, whose bodies are hashed.
        ("post-x-www-form-urlencoded-parameters", Err("InvalidSignatureException")),
        ("post-x-www-form-urlencoded", Err("InvalidSignatureException")),
    ];
    let on_disk = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/aws-sig-v4-test-suite"),
    )
    .unwrap()
    .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".sreq").map(str::to_owned))
    .count();
    assert_eq!(on_disk, cases.len(), "every vector has an expected outcome");

    for (name, expected) in cases {
        let outcome = match suite_request(name) {
            Err(_) => Err(not_http),
            Ok((parts, body)) => {
                match sigv4::verify(&auth, &parts, body.clone(), "service", signed_at).await {
                    Ok(p) => {
                        assert_eq!(p.name, "AKIDEXAMPLE");
                        // The same request, changed: another method, or a day later.
                        let mut changed = parts.clone();
                        changed.method = http::Method::PUT;
                        let e = sigv4::verify(&auth, &changed, body.clone(), "service", signed_at);
                        assert_eq!(e.await.unwrap_err().type_name(), "InvalidSignatureException");
                        let later =
                            signed_at.saturating_add(std::time::Duration::from_secs(86_400));
                        let e = sigv4::verify(&auth, &parts, body, "service", later).await;
                        assert_eq!(e.unwrap_err().type_name(), "InvalidSignatureException");
                        Ok(())
                    }
                    Err(e) => Err(e.type_name()),
                }
            }
        };
        assert_eq!(outcome, *expected, "{name}");
    }
}
