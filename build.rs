//! Build script: checks that the web player's hls.js (from npm, pinned in package-lock.json) is
//! installed, since `src/web.rs` embeds it into the binary, and passes its version on.

use std::path::Path;

fn main() {
    let dist = Path::new("node_modules/hls.js/dist/hls.min.js");
    let package = Path::new("node_modules/hls.js/package.json");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-changed={}", package.display());
    if !dist.is_file() {
        panic!(
            "{} is missing: the web UI embeds hls.js from npm. Run `scripts/setup.sh run` \
             (or `make run` / `make test`, which run it) to install the pinned npm packages.",
            dist.display()
        );
    }
    let text = std::fs::read_to_string(package).unwrap_or_default();
    // `"version": "1.7.4"`: a plain search keeps the build script free of dependencies.
    let version = text
        .split("\"version\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or("unknown")
        .to_owned();
    println!("cargo:rustc-env=SLUICE_HLS_VERSION={version}");
}
