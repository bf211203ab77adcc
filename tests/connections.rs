//! The HTTP server's timeouts and connection limits, with raw sockets, bounded in count and
//! time: a client that never finishes its request head is closed after the header-read timeout
//! (slowloris, and idle keep-alive connections); a body that stops arriving ends after the
//! body-progress timeout; connections over the per-address limit are closed at once and
//! counted, while the server goes on answering within the limit.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server() -> TestServer {
    TestServer::start_with(
        |c| {
            c.server.header_read_timeout_secs = Duration::from_secs(1);
            c.server.body_progress_timeout_secs = Duration::from_secs(1);
            c.server.max_connections_per_ip = 20;
        },
        std::sync::Arc::new(sluice::clock::SystemClock),
    )
    .await
}

fn addr(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (bounded: 20 s); what it sent.
async fn until_closed(sock: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), sock.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server did not close the connection within 20 s");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_closed_after_the_header_timeout() {
    let s = server().await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..10 {
        let mut sock = TcpStream::connect(addr(&s)).await.unwrap();
        // Half a request head, then nothing (slowloris).
        sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
        slow.push(sock);
    }
    // An idle connection that never sends anything.
    let mut idle = TcpStream::connect(addr(&s)).await.unwrap();
    for sock in &mut slow {
        until_closed(sock).await;
    }
    until_closed(&mut idle).await;
    // Meanwhile, and after, the server answers.
    let (status, _) = s.get_text("/healthz").await;
    assert_eq!(status, 200);
    eprintln!("closed after {:?}", started.elapsed());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_ended() {
    let s = server().await;
    s.create_stream("cam").await;
    let mut sock = TcpStream::connect(addr(&s)).await.unwrap();
    // A PutRecords-sized promise, one byte kept.
    let head = format!(
        "POST /v1/streams/cam/events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{{",
        addr(&s)
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let answer = until_closed(&mut sock).await;
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "a client error, then the connection closes: {answer}"
    );
    let (status, _) = s.get_text("/healthz").await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_address_limit_are_refused_and_counted() {
    let s = server().await;
    // 20 open keep-alive connections, each with an answered request.
    let mut open = Vec::new();
    for _ in 0..20 {
        let mut sock = TcpStream::connect(addr(&s)).await.unwrap();
        sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 12];
        sock.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        open.push(sock);
    }
    // The 21st is closed at once, without an answer.
    let mut over = TcpStream::connect(addr(&s)).await.unwrap();
    let _ = over.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    assert_eq!(until_closed(&mut over).await, "", "closed without an answer");
    // Freed places are taken again.
    drop(open);
    let mut answered = false;
    for _ in 0..100 {
        if s.http.get(s.url("/metrics")).send().await.is_ok_and(|r| r.status() == 200) {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "the server answers once connections are freed");
    let (_, metrics) = s.get_text("/metrics").await;
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_http_connections_refused_total{kind=\"per_ip\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // At least the 21st (a client retrying while places were being freed may add more).
    assert!(refused >= 1, "{metrics}");
    s.stop().await;
}
