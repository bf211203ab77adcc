//! Where an administrator may point Sluice: with `[auth]` on, a configured destination (an
//! image-generation webhook, an RTSP pull camera) may not be a loopback, link-local,
//! unspecified, multicast or broadcast address unless `[auth] outbound_networks` lists it, and
//! an image directory must lie under the data directory or one of `[auth] image_roots`. A name
//! is resolved when the destination is set and again at every connection, and every address it
//! resolves to is checked, so a camera URL cannot be used to reach the server's own loopback
//! services or a cloud metadata endpoint, not even by re-pointing its name later.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;

use crate::config::AuthConfig;
use crate::error::{Error, Result};

/// Why an address is refused, or `None` when it may be reached.
pub fn refused(ip: IpAddr, allowed: &[IpNet]) -> Option<&'static str> {
    if allowed.iter().any(|n| n.contains(&ip)) {
        return None;
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V4(a) if a.is_link_local() => {
            Some("a link-local address (cloud metadata lives there)")
        }
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(a) if a.is_multicast() || a.is_broadcast() => {
            Some("a multicast or broadcast address")
        }
        IpAddr::V6(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80 => Some("a link-local address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        _ => None,
    }
}

/// Where Sluice may connect, applied when a destination is set and again at every connection,
/// so a name that resolves to a public address when it is checked cannot be re-pointed at
/// loopback afterwards (DNS rebinding). With `[auth]` off it allows everything.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    limited: bool,
    allowed: Arc<[IpNet]>,
}

impl Outbound {
    /// Everywhere (auth off, tests).
    pub fn anywhere() -> Self {
        Outbound::default()
    }

    /// Only what `[auth] outbound_networks` allows past the default refusals.
    pub fn limited(allowed: &[IpNet]) -> Self {
        Outbound { limited: true, allowed: allowed.into() }
    }

    pub fn from_config(auth: &AuthConfig) -> Self {
        if auth.enabled { Outbound::limited(&auth.outbound_networks) } else { Outbound::anywhere() }
    }

    pub fn is_limited(&self) -> bool {
        self.limited
    }

    /// The addresses of `host` (an IP literal or a name, resolved now) at `port`, all of them
    /// allowed; `what` names the setting in the error.
    pub async fn resolve(&self, what: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| Error::invalid(format!("{what}: cannot resolve {host}: {e}")))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Error::invalid(format!("{what}: {host} has no address")));
        }
        if self.limited {
            for a in &addrs {
                if let Some(why) = refused(a.ip(), &self.allowed) {
                    return Err(Error::forbidden(format!(
                        "{what}: {host} is {why} ({}); Sluice does not connect there unless [auth] outbound_networks lists it",
                        a.ip()
                    )));
                }
            }
        }
        Ok(addrs)
    }

    /// Checks a destination host and port without keeping the addresses.
    pub async fn check(&self, what: &str, host: &str, port: u16) -> Result<()> {
        self.resolve(what, host, port).await.map(drop)
    }
}

/// The HTTP client's resolver (webhooks): names resolve only to allowed addresses. (IP literals
/// never reach a resolver; they are checked when set, and redirects are not followed.)
impl reqwest::dns::Resolve for Outbound {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this
                .resolve("webhook", name.as_str(), 0)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.message.into() })?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Checks an image directory: under `data_dir` or one of `roots`.
pub fn check_directory(path: &Path, data_dir: &Path, roots: &[PathBuf]) -> Result<()> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let path = absolute(path);
    let under = std::iter::once(data_dir)
        .chain(roots.iter().map(PathBuf::as_path))
        .any(|r| path.starts_with(absolute(r)));
    if under {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "imageGeneration.destination.path: {} is outside the data directory and [auth] image_roots",
            path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_are_refused_by_default() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.251",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert!(refused(ip(bad), &[]).is_some(), "{bad}");
        }
        for good in ["10.0.0.5", "192.168.1.20", "8.8.8.8", "2001:db8::1"] {
            assert!(refused(ip(good), &[]).is_none(), "{good}");
        }
        let lo: IpNet = "127.0.0.0/8".parse().unwrap();
        assert!(refused(ip("127.0.0.1"), &[lo]).is_none());
    }

    #[tokio::test]
    async fn the_webhook_resolver_refuses_names_of_refused_addresses() {
        use reqwest::dns::Resolve;
        let name = || "localhost".parse::<reqwest::dns::Name>().unwrap();
        assert!(Resolve::resolve(&Outbound::limited(&[]), name()).await.is_err());
        let any = Resolve::resolve(&Outbound::anywhere(), name()).await.unwrap();
        assert!(any.into_iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn directories_must_be_under_a_root() {
        let data = Path::new("/srv/sluice");
        assert!(check_directory(Path::new("/srv/sluice/images"), data, &[]).is_ok());
        assert!(check_directory(Path::new("/etc/cron.d"), data, &[]).is_err());
        assert!(check_directory(Path::new("/srv/sluicex"), data, &[]).is_err());
        assert!(
            check_directory(Path::new("/mnt/nas/x"), data, &[PathBuf::from("/mnt/nas")]).is_ok()
        );
    }
}
