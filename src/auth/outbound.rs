//! Where an administrator may point Sluice: with `[auth]` on, a configured destination (an
//! image-generation webhook, an RTSP pull camera) may not be a loopback, link-local,
//! unspecified, multicast or broadcast address unless `[auth] outbound_networks` lists it, and
//! an image directory must lie under the data directory or one of `[auth] image_roots`. A name
//! is resolved when the destination is set and every address it resolves to is checked, so a
//! camera URL cannot be used to reach the server's own loopback services or a cloud metadata
//! endpoint.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

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

/// Checks a destination host (an IP literal or a name, resolved now) and port.
pub async fn check_host(what: &str, host: &str, port: u16, allowed: &[IpNet]) -> Result<()> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| Error::invalid(format!("{what}: cannot resolve {host}: {e}")))?
            .map(|a| a.ip())
            .collect(),
    };
    for ip in addrs {
        if let Some(why) = refused(ip, allowed) {
            return Err(Error::forbidden(format!(
                "{what}: {host} is {why} ({ip}); Sluice does not connect there unless [auth] outbound_networks lists it"
            )));
        }
    }
    Ok(())
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
