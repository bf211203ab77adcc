//! The AWS SDK for JavaScript v3 (`@aws-sdk/client-kinesis`, from npm through package-lock.json):
//! a third SDK with its own JSON 1.1 serializer and parser, its waiters and exception classes,
//! and SubscribeToShard over HTTP/2 through Node's http2 client. The script is
//! tests/node/kinesis_clients.mjs.

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_sdk_reads_writes_waits_and_subscribes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("node_modules/@aws-sdk/client-kinesis").exists()
            && std::process::Command::new("node").arg("--version").output().is_ok(),
        "node and node_modules/@aws-sdk/client-kinesis are required: run `make test` (its setup installs them)"
    );
    // A real clock: the SDK's waiters and the subscription run in real time.
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let mut cmd = std::process::Command::new("node");
    cmd.arg(root.join("tests/node/kinesis_clients.mjs")).arg(&server.base);
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "kinesis_clients.mjs: {stderr}");
    server.stop().await;
}
