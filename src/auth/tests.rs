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
