//! The HTTP server loop: axum's router on hyper, with what a server on a network needs and
//! `axum::serve` does not offer:
//!
//! - a **header-read timeout** (hyper's, on a timer): a client that does not send a whole
//!   request head in time, including an idle keep-alive connection that sends no next request,
//!   is closed (slowloris, idle floods);
//! - a **body-progress timeout**: a request body that stops arriving (a declared 1 GB with one
//!   byte sent) ends with an error after that long without a byte. It is on progress, not on
//!   duration: a long media upload that keeps sending is never cut, and responses that wait (a
//!   blocking playlist reload, a live tail) are not bodies being read;
//! - **connection limits**, global and per source IP: a connection over either is closed at
//!   once and counted (`sluice_http_connections_refused_total{reason}`).
//!
//! With `[server] tls_cert`/`tls_key`, each connection is a TLS one first (`super::tls`), its
//! handshake bounded by the header-read timeout; HTTP/2 is offered by ALPN.
//!
//! Graceful shutdown: on `shutdown`, no new connections are accepted and every open connection
//! is asked to finish its request in progress; `run` gives them the grace period.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::tls::Tls;
use crate::config::ServerConfig;
use crate::metrics::{KindLabel, Metrics};

/// Open connections, globally and by source address. std `Mutex`: counts only, never held
/// across an `.await`.
#[derive(Default)]
struct Connections {
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
struct Admitted {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut by_ip = self.connections.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

impl Connections {
    /// Admits a connection from `ip`, or says which limit it is over.
    fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max: usize,
        max_per_ip: usize,
    ) -> Result<Admitted, &'static str> {
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = by_ip.values().sum();
        if total >= max {
            return Err("total");
        }
        let n = by_ip.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            return Err("per_ip");
        }
        *n += 1;
        Ok(Admitted { connections: self.clone(), ip })
    }

    fn open(&self) -> usize {
        self.by_ip.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }
}

/// Serves `router` on `listener` until `shutdown`; then stops accepting, asks every connection
/// to finish, and returns once all have (the caller bounds the wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &ServerConfig,
    metrics: Arc<Metrics>,
    tls: Option<Arc<Tls>>,
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Connections::default());
    // Connections hold a receiver; `closed()` resolves when the last one has ended.
    let (done_tx, done_rx) = watch::channel(());
    let (max, max_per_ip) = (config.max_connections, config.max_connections_per_ip);
    let header_timeout = config.header_read_timeout_secs;
    let body_timeout = config.body_progress_timeout_secs;
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let admitted = match connections.admit(remote.ip(), max, max_per_ip) {
            Ok(a) => a,
            Err(reason) => {
                metrics
                    .http_connections_refused
                    .get_or_create(&KindLabel { kind: reason.to_owned() })
                    .inc();
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        metrics.http_connections.set(i64::try_from(connections.open()).unwrap_or(i64::MAX));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            let read = Arc::new(AtomicBool::new(false));
            let http1 = req.version() < axum::http::Version::HTTP_2;
            let req = req.map(|body| with_progress_timeout(body, body_timeout, read.clone()));
            let mut router = router.clone();
            async move {
                use tower_service::Service;
                let mut resp = router.call(req).await.unwrap_or_else(|e| match e {});
                // Answered before its body was read to the end (a refusal, or a response that
                // streams while the upload goes on): the connection cannot carry another request
                // cleanly, so say so rather than let the client reuse a connection that is
                // about to close under it.
                if http1 && !read.load(Ordering::Acquire) {
                    resp.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, Infallible>(resp)
            }
        });
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        let done = done_rx.clone();
        let gauge = metrics.clone();
        let conns = connections.clone();
        // One task per connection: ends when the client goes, a timeout closes it, or shutdown
        // lets its request in progress finish.
        tokio::spawn(async move {
            // The first byte, within the header timeout: before it, hyper is still deciding
            // between HTTP/1 and HTTP/2 and has no timer running.
            let mut first = [0u8; 1];
            let arrived = tokio::select! {
                r = tokio::time::timeout(header_timeout, tcp.peek(&mut first)) => {
                    matches!(r, Ok(Ok(n)) if n > 0)
                }
                _ = shutdown.cancelled() => false,
            };
            if !arrived {
                drop(admitted);
                gauge.http_connections.set(i64::try_from(conns.open()).unwrap_or(i64::MAX));
                drop(done);
                return;
            }
            match tls {
                None => {
                    connection(TokioIo::new(tcp), service, header_timeout, &shutdown, remote).await
                }
                Some(tls) => {
                    // The handshake shares the header-read timeout: a client that opens a TLS
                    // connection and stalls is closed like one that stalls a request head.
                    let handshake =
                        tokio::time::timeout(header_timeout, tls.acceptor().accept(tcp));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            connection(
                                TokioIo::new(stream),
                                service,
                                header_timeout,
                                &shutdown,
                                remote,
                            )
                            .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(remote = %remote, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(remote = %remote, "TLS handshake timed out"),
                    }
                }
            }
            drop(admitted);
            gauge.http_connections.set(i64::try_from(conns.open()).unwrap_or(i64::MAX));
            drop(done);
        });
    }
    drop(listener);
    drop(done_rx);
    done_tx.closed().await;
}

/// Serves one connection (plain or TLS) until the client goes, a timeout closes it, or shutdown
/// lets its request in progress finish.
async fn connection<I, S>(
    io: I,
    service: S,
    header_timeout: Duration,
    shutdown: &CancellationToken,
    remote: std::net::SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<
            Request<Incoming>,
            Response = axum::response::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(remote = %remote, error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The request body, ended with an error if `timeout` passes without a byte of it.
/// `read` is set once the body has been read to its end.
fn with_progress_timeout(body: Incoming, timeout: Duration, read: Arc<AtomicBool>) -> Body {
    use hyper::body::Body as _;
    if body.is_end_stream() {
        read.store(true, Ordering::Release);
        return Body::empty();
    }
    let frames = Body::new(body).into_data_stream();
    Body::from_stream(futures_util::stream::unfold(Some(frames), move |frames| {
        let read = read.clone();
        async move {
            let mut frames = frames?;
            match tokio::time::timeout(timeout, frames.next()).await {
                Ok(Some(item)) => Some((item, Some(frames))),
                Ok(None) => {
                    read.store(true, Ordering::Release);
                    None
                }
                Err(_) => Some((
                    Err(axum::Error::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the request body made no progress for {} s", timeout.as_secs()),
                    ))),
                    None,
                )),
            }
        }
    }))
}
