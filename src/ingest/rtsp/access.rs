//! Credentials on RTSP publish: with `[auth]` on, ANNOUNCE must carry `Authorization` for a
//! principal holding `publish` on the stream. Without it the answer is 401 with a `Basic`
//! challenge (and `Digest`, when `[rtsp] digest`), which is what ffmpeg (`rtsp://user:pass@…`)
//! and GStreamer's rtspclientsink (`user-id`, `user-pw`) wait for before they send credentials.
//! Digest (RFC 2617, MD5, with or without `qop=auth`) works for access keys, whose secret the
//! server holds; users' passwords are kept only as hashes, so users use Basic.

use std::net::IpAddr;
use std::sync::Arc;

use md5::{Digest, Md5};

use crate::auth::{Auth, Failure, Identity, Principal};
use crate::config::Action;

pub const REALM: &str = "sluice";

pub enum Verdict {
    Allowed(Identity),
    /// 401 with challenges; the reason is for the log and the body.
    Challenge(&'static str),
    /// 403: known, but not granted (or not from this address).
    Forbidden(String),
}

/// The `WWW-Authenticate` values of a 401.
pub fn challenges(digest: bool, nonce: &str) -> Vec<String> {
    let mut v = vec![format!("Basic realm=\"{REALM}\"")];
    if digest {
        v.insert(
            0,
            format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\""),
        );
    }
    v
}

/// Decides an ANNOUNCE of `method uri` for `stream` carrying `authorization`.
pub fn check(
    auth: &Auth,
    digest: bool,
    nonce: &str,
    method: &str,
    authorization: Option<&str>,
    stream: &str,
    peer: IpAddr,
) -> Verdict {
    if !auth.enabled() {
        return Verdict::Allowed(Identity::Anonymous);
    }
    let who = match authorization {
        None => Identity::Anonymous,
        Some(h)
            if h.trim_start().len() > 7 && h.trim_start()[..7].eq_ignore_ascii_case("digest ") =>
        {
            if !digest {
                return Verdict::Challenge("Digest is not enabled ([rtsp] digest); use Basic");
            }
            if auth.check_throttle(peer).is_err() {
                return Verdict::Forbidden(
                    "too many failed authentications from this address".into(),
                );
            }
            match verify_digest(auth, &h.trim_start()[7..], nonce, method) {
                Some(p) => Identity::Principal(p),
                None => {
                    auth.record_failure(peer);
                    return Verdict::Challenge("the Digest response does not match");
                }
            }
        }
        Some(h) => match auth.authenticate(Some(h.as_bytes()), peer) {
            Ok(who) => who,
            Err(Failure::SourceNotAllowed) => {
                return Verdict::Forbidden(
                    "these credentials may not be used from this address".into(),
                );
            }
            Err(Failure::Throttled { .. }) => {
                return Verdict::Forbidden(
                    "too many failed authentications from this address".into(),
                );
            }
            Err(_) => return Verdict::Challenge("the credentials are not valid"),
        },
    };
    if auth.allows(&who, Action::Publish, Some(stream)) {
        Verdict::Allowed(who)
    } else if matches!(who, Identity::Anonymous) {
        Verdict::Challenge("credentials are required")
    } else {
        Verdict::Forbidden(format!("`{}` has no `publish` grant on `{stream}`", who.name()))
    }
}

fn hex_md5(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The parameters of a Digest header: `k=v` or `k="v"`, comma-separated.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else { break };
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v, n),
                None => (q, ""),
            }
        } else {
            after.split_once(',').map_or((after, ""), |(v, n)| (v, n))
        };
        out.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn verify_digest(auth: &Auth, header: &str, nonce: &str, method: &str) -> Option<Arc<Principal>> {
    let p = params(header);
    let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    if get("realm")? != REALM || get("nonce")? != nonce {
        return None;
    }
    let user = get("username")?;
    let (principal, secret) = auth.key_secret(user)?;
    let ha1 = hex_md5(&[user, REALM, &secret]);
    let ha2 = hex_md5(&[method, get("uri")?]);
    let expected = match get("qop") {
        Some("auth") => hex_md5(&[&ha1, nonce, get("nc")?, get("cnonce")?, "auth", &ha2]),
        Some(_) => return None,
        None => hex_md5(&[&ha1, nonce, &ha2]),
    };
    let given = get("response")?;
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y.to_ascii_lowercase()))
            == 0;
    same.then_some(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parameters_parse() {
        let p = params(
            r#"username="k", realm="sluice", nonce="abc", uri="rtsp://h/s", response="00ff", qop=auth, nc=00000001, cnonce="x,y""#,
        );
        let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("username"), Some("k"));
        assert_eq!(get("qop"), Some("auth"));
        assert_eq!(get("nc"), Some("00000001"));
        assert_eq!(get("cnonce"), Some("x,y"));
        assert_eq!(get("uri"), Some("rtsp://h/s"));
        // RFC 2617 §3.5's example.
        let ha1 = hex_md5(&["Mufasa", "testrealm@host.com", "Circle Of Life"]);
        let ha2 = hex_md5(&["GET", "/dir/index.html"]);
        let r = hex_md5(&[
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
            "auth",
            &ha2,
        ]);
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        for garbage in ["", "=", "a", "a=\"", ",,,", "k=v,"] {
            let _ = params(garbage);
        }
    }
}
