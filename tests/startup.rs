//! Starting the `sluice` binary: a listener that cannot bind is named with its address (not
//! reported as a data-directory problem), every listener can be set from the command line and
//! the environment, and the banner lists them all.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `sluice serve` with `args` and `envs` until it exits (bounded); its status and stderr.
fn run_to_exit(args: &[&str], envs: &[(&str, String)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("serve")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn sluice");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
                .expect("read stderr");
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sluice did not exit within 30 s although a port it needs is taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_busy_rtsp_port_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // By flag, then by environment variable.
    let by_flag =
        run_to_exit(&["--listen", "127.0.0.1:0", "--data-dir", data, "--rtsp-listen", &busy], &[]);
    let by_env = run_to_exit(
        &["--listen", "127.0.0.1:0", "--data-dir", data],
        &[("SLUICE_RTSP_LISTEN", busy.clone())],
    );
    for (status, err) in [by_flag, by_env] {
        assert_ne!(status, Some(0), "{err}");
        assert!(err.contains(&format!("cannot listen for RTSP publish on {busy}")), "{err}");
        assert!(err.contains("SLUICE_RTSP_LISTEN"), "the way out is named: {err}");
        assert!(!err.contains("data directory"), "not a data-directory problem: {err}");
    }
}

#[test]
fn a_busy_http_port_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let data = dir.path().join("data");
    let (status, err) = run_to_exit(
        &["--listen", &busy, "--data-dir", data.to_str().unwrap(), "--rtsp-listen", "127.0.0.1:0"],
        &[],
    );
    assert_ne!(status, Some(0), "{err}");
    assert!(err.contains(&format!("cannot listen for HTTP on {busy}")), "{err}");
}

#[test]
fn the_banner_lists_every_listener() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--rtsp-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let listening = loop {
        let line = lines.next().expect("a banner").expect("read stderr");
        if let Some(l) = line.trim().strip_prefix("Listening:") {
            break l.to_owned();
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening.contains("HTTP 127.0.0.1:"), "{listening}");
    assert!(listening.contains("RTSP 127.0.0.1:"), "{listening}");
    assert!(listening.contains("WebRTC UDP"), "{listening}");
}

/// The open-file soft limit is raised to the hard limit at start-up, and logged.
#[test]
fn the_open_file_limit_is_raised_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let script = format!(
        "ulimit -S -n 256 && exec '{}' serve --listen 127.0.0.1:0 --rtsp-listen 127.0.0.1:0 --data-dir '{}'",
        env!("CARGO_BIN_EXE_sluice"),
        data.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = loop {
        let line = lines.next().expect("the limit is logged before the banner").expect("read");
        if line.contains("open-file limit") {
            break line;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let hard: u64 =
        String::from_utf8(Command::new("sh").args(["-c", "ulimit -H -n"]).output().unwrap().stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap_or(u64::MAX);
    if hard > 256 {
        assert!(line.contains("raised") && line.contains("from=256"), "{line}");
    } else {
        assert!(line.contains("limit=256"), "{line}");
    }
}
