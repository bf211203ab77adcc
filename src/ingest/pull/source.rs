//! A pulled source's configuration as clients give it (`PATCH /v1/streams/{name}` `source`, or
//! `[[sources]]` in the config file): validation with precise messages, and credential redaction.
//!
//! Credentials are kept apart from the URL from the moment it is parsed: the stored and shown URL
//! never has a user-info part, the password is never serialised into a response, and
//! [`redact`] scrubs any `scheme://user:pass@` out of text (retina's errors, logs) before it is
//! shown or logged.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::Error;

/// How RTP travels from the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullTransport {
    /// Interleaved in the RTSP TCP connection (the default: works through NAT and firewalls).
    #[default]
    Tcp,
    /// Separate UDP ports (LAN only: no reorder buffer).
    Udp,
}

impl PullTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            PullTransport::Tcp => "tcp",
            PullTransport::Udp => "udp",
        }
    }

    fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "tcp" => Ok(PullTransport::Tcp),
            "udp" => Ok(PullTransport::Udp),
            other => Err(Error::invalid(format!(
                "source.transport: {other:?} is not a transport; use \"tcp\" or \"udp\""
            ))),
        }
    }
}

/// A validated RTSP source. `url` never carries credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub url: Url,
    pub transport: PullTransport,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("url", &self.url.as_str())
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The `source` object of `PATCH /v1/streams/{name}` (camelCase).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceBody {
    pub rtsp_url: String,
    pub transport: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

const MAX_URL: usize = 2048;
const MAX_CREDENTIAL: usize = 256;

impl SourceConfig {
    /// Validates a source. Credentials may be given apart or inside the URL
    /// (`rtsp://user:pass@host/…`), not both; they are moved out of the URL either way.
    pub fn parse(
        rtsp_url: &str,
        transport: Option<&str>,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<SourceConfig, Error> {
        if rtsp_url.len() > MAX_URL {
            return Err(Error::invalid(format!("source.rtspUrl is longer than {MAX_URL} bytes")));
        }
        let mut url = Url::parse(rtsp_url)
            .map_err(|e| Error::invalid(format!("source.rtspUrl: {e} ({})", redact(rtsp_url))))?;
        match url.scheme() {
            "rtsp" => {}
            "rtsps" => {
                return Err(Error::invalid(
                    "source.rtspUrl: rtsps:// is not supported yet (the RTSP client speaks plain \
                     rtsp://); use an rtsp:// URL",
                ));
            }
            other => {
                return Err(Error::invalid(format!(
                    "source.rtspUrl: scheme {other:?} is not supported; use rtsp://host[:port]/path"
                )));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid("source.rtspUrl: the URL has no host"));
        }
        if url.fragment().is_some() {
            return Err(Error::invalid("source.rtspUrl: a URL fragment (#…) is not allowed"));
        }
        let url_user = (!url.username().is_empty()).then(|| decode(url.username()));
        let url_pass = url.password().map(decode);
        if (url_user.is_some() || url_pass.is_some()) && (username.is_some() || password.is_some())
        {
            return Err(Error::invalid(
                "source: give credentials either in rtspUrl or as username/password, not both",
            ));
        }
        let username = username.or(url_user);
        let password = password.or(url_pass);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        for (what, v) in [("username", &username), ("password", &password)] {
            if let Some(v) = v {
                if v.len() > MAX_CREDENTIAL {
                    return Err(Error::invalid(format!(
                        "source.{what} is longer than {MAX_CREDENTIAL} bytes"
                    )));
                }
                if v.chars().any(char::is_control) {
                    return Err(Error::invalid(format!(
                        "source.{what} contains control characters"
                    )));
                }
            }
        }
        if password.is_some() && username.is_none() {
            return Err(Error::invalid("source: a password needs a username"));
        }
        let transport = transport.map(PullTransport::parse).transpose()?.unwrap_or_default();
        Ok(SourceConfig { url, transport, username, password })
    }

    pub fn from_body(b: SourceBody) -> Result<SourceConfig, Error> {
        SourceConfig::parse(&b.rtsp_url, b.transport.as_deref(), b.username, b.password)
    }

    /// Removes this source's password from `text` too, in case a library echoed it.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = redact(text);
        if let Some(p) = self.password.as_deref().filter(|p| p.len() >= 3) {
            out = out.replace(p, "***");
        }
        out
    }
}

fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) =
                (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces the user-info of every `scheme://user[:pass]@` in `text` with `***@`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; user-info ends at its last '@'.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'' || c == '>')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_move_out_of_the_url() {
        let s = SourceConfig::parse("rtsp://admin:s%40cret@cam.local:8554/live", None, None, None)
            .unwrap();
        assert_eq!(s.url.as_str(), "rtsp://cam.local:8554/live");
        assert_eq!(s.username.as_deref(), Some("admin"));
        assert_eq!(s.password.as_deref(), Some("s@cret"));
        assert_eq!(s.transport, PullTransport::Tcp);
        assert!(!format!("{s:?}").contains("s@cret"));
    }

    #[test]
    fn precise_errors() {
        let e =
            |u: &str, t: Option<&str>| SourceConfig::parse(u, t, None, None).unwrap_err().message;
        assert!(e("http://x/y", None).contains("scheme \"http\""));
        assert!(e("rtsps://x/y", None).contains("rtsps"));
        assert!(e("rtsp://x/y", Some("sctp")).contains("\"tcp\" or \"udp\""));
        assert!(e("not a url", None).contains("source.rtspUrl"));
        let both = SourceConfig::parse("rtsp://a:b@x/", None, Some("u".into()), None).unwrap_err();
        assert!(both.message.contains("not both"));
    }

    #[test]
    fn redact_hides_user_info() {
        assert_eq!(
            redact("failed: rtsp://admin:hunter2@10.0.0.5:554/s1 timed out"),
            "failed: rtsp://***@10.0.0.5:554/s1 timed out"
        );
        assert_eq!(redact("rtsp://host/x"), "rtsp://host/x");
        assert_eq!(redact("no url"), "no url");
        assert_eq!(redact("a://b@"), "a://***@");
    }
}
