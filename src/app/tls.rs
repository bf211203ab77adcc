//! TLS on the HTTP listener (rustls, no OpenSSL): `[server] tls_cert` and `tls_key` (PEM) turn
//! the same listener into HTTPS, with HTTP/2 offered by ALPN to browsers. The certificate is
//! reloaded on SIGHUP and when either file changes (checked every few seconds), for new
//! connections only: open ingest sessions and players keep the connection they have. A reload
//! that fails (a half-written file) is logged and the certificate in use is kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// How often the certificate files are checked for changes.
const CHECK_EVERY: Duration = Duration::from_secs(5);

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<TlsAcceptor>,
    /// The files' modification times when last loaded.
    loaded: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
}

fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| Error::invalid(format!("tls_cert {}: {e}", cert.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::invalid(format!("tls_cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(Error::invalid(format!("tls_cert {}: no certificate in it", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::invalid(format!("tls_key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::invalid(format!("tls_cert and tls_key do not make a certificate: {e}"))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn mtimes(cert: &Path, key: &Path) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(cert), m(key))
}

impl Tls {
    /// Loads the certificate and key; an error names the file at fault.
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<Tls>> {
        let acceptor = load(cert, key)?;
        Ok(Arc::new(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            acceptor: RwLock::new(acceptor),
            loaded: RwLock::new(mtimes(cert, key)),
        }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Loads the files again; keeps the certificate in use when they do not load.
    pub fn reload(&self) -> bool {
        let stamp = mtimes(&self.cert, &self.key);
        match load(&self.cert, &self.key) {
            Ok(a) => {
                *self.acceptor.write().unwrap_or_else(|p| p.into_inner()) = a;
                *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = stamp;
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate not reloaded; the one in use is kept");
                false
            }
        }
    }

    /// Reloads on SIGHUP and when a file changes, until `stop`.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler; TLS files are still watched");
                None
            }
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => {
                    self.reload();
                }
                _ = tokio::time::sleep(CHECK_EVERY) => {
                    let now = mtimes(&self.cert, &self.key);
                    if now != *self.loaded.read().unwrap_or_else(|p| p.into_inner()) {
                        self.reload();
                    }
                }
            }
        }
    }
}
