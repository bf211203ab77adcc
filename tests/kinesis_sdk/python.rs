//! Python clients of the Kinesis API: boto3 (SubscribeToShard through botocore's event-stream
//! parser, over HTTP/1.1) and cbor2 (the CBOR wire), from the venv `make test` sets up
//! (tests/requirements.txt). The script is tests/python/kinesis_clients.py.

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_subscribes_and_cbor2_reads() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is required: run `make test` (its setup makes the venv of tests/requirements.txt)",
        python.display()
    );
    // A real clock: botocore's SubscribeToShard waits for pushed events in real time.
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let mut cmd = std::process::Command::new(python);
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/kinesis_clients.py"))
        .arg(&server.base);
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "kinesis_clients.py: {stderr}");
    server.stop().await;
}
