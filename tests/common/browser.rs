//! Running the browser scripts (`tests/browser/*.mjs`): Debian's headless Chromium driven by
//! playwright-core (npm), bounded in time, failing (never skipping) when a tool is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::require_tool;

/// Longest a browser script may run (each script also bounds itself).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Fails (never skips) when node, Chromium or playwright-core is missing.
pub fn require_browser_tools() {
    require_tool("ffmpeg");
    for (tool, arg) in [("node", "--version"), ("/usr/bin/chromium", "--version")] {
        let ok = std::process::Command::new(tool)
            .arg(arg)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok,
            "{tool} is required for the browser tests: run `make test` (its setup installs Debian's chromium and nodejs)"
        );
    }
    assert!(
        repo().join("node_modules/shaka-player/dist/shaka-player.compiled.js").is_file(),
        "node_modules/shaka-player is missing: run `scripts/setup.sh test` (npm ci of package-lock.json)"
    );
    assert!(
        repo().join("node_modules/playwright-core/package.json").is_file(),
        "node_modules/playwright-core is missing: run `scripts/setup.sh test` (npm ci of package-lock.json)"
    );
}

pub fn artifacts() -> PathBuf {
    let dir = repo().join("artifacts/browser");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// Runs `tests/browser/<script>` with node against `base`; panics with its output on failure.
/// Bounded by [`SCRIPT_TIMEOUT`]: the script is killed past it.
pub async fn run_script(script: &str, base: &str, env: &[(&str, String)]) -> String {
    let mut cmd = std::process::Command::new("node");
    cmd.arg(repo().join("tests/browser").join(script))
        .env("SLUICE_URL", base)
        .env("SLUICE_ARTIFACTS", artifacts())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = Guard(cmd.spawn().expect("spawn node"));
    let pid = child.0.id();
    let waiter = tokio::task::spawn_blocking(move || {
        let mut child = child;
        let mut stdout = String::new();
        let mut stderr = String::new();
        use std::io::Read;
        if let Some(mut o) = child.0.stdout.take() {
            let _ = o.read_to_string(&mut stdout);
        }
        if let Some(mut e) = child.0.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let status = child.0.wait().expect("wait for node");
        (status, stdout, stderr)
    });
    let (status, stdout, stderr) = match tokio::time::timeout(SCRIPT_TIMEOUT, waiter).await {
        Ok(r) => r.expect("node waiter"),
        Err(_) => {
            let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{script} did not finish within {SCRIPT_TIMEOUT:?} (killed)");
        }
    };
    assert!(status.success(), "{script} failed:\n{stdout}\n{stderr}");
    stdout
}

/// A child process killed when the test lets go of it (also when it panics).
pub struct Guard(pub std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ffmpeg pushing `h264-parts.mp4` to `name` in real time with 200 ms fragments (GOP 2 s), once,
/// or looped for `loop_secs` seconds; killed when dropped. The fixture is copied, not re-encoded:
/// an encoder would compete with the browser and the server for the CPU, and parts arriving late
/// make hls.js's blocking reloads time out (it waits at most max(3 parts, 0.8 target durations)).
pub fn push_live(base: &str, name: &str, loop_secs: Option<u32>) -> Guard {
    let url = format!("{base}/v1/streams/{name}/media");
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-loglevel", "error", "-re"]);
    if loop_secs.is_some() {
        cmd.args(["-stream_loop", "-1"]);
    }
    cmd.arg("-i").arg(super::fixture_path("h264-parts.mp4"));
    if let Some(secs) = loop_secs {
        cmd.args(["-t", &secs.to_string()]);
    }
    cmd.args([
        "-c",
        "copy",
        "-f",
        "mp4",
        "-movflags",
        "frag_keyframe+empty_moov+default_base_moof",
    ])
    .args(["-frag_duration", "200000", "-method", "PUT", &url])
    .stdin(Stdio::null());
    Guard(cmd.spawn().expect("spawn ffmpeg"))
}
