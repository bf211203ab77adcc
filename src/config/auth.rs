//! `[auth]`: who may do what. The grant vocabulary lives here because the configuration speaks it;
//! `crate::auth` enforces it.

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Push media and metadata into a stream (fMP4 push, RTSP publish, WHIP, events POST), and
    /// put records into a data stream.
    Publish,
    /// Everything a reader of recorded data needs: frames, images, clips, fragments, timeline,
    /// events, the media tail, HLS, and data-stream reads.
    Read,
    /// The subset a browser player needs: HLS, clips, frames. `read` implies it.
    Playback,
    /// Create, update and delete streams and their configuration; with `streams = "*"`, manage
    /// principals too. Implies every other action on the same streams.
    Admin,
    /// `/metrics` (and `/healthz` details).
    Metrics,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Read => "read",
            Action::Playback => "playback",
            Action::Admin => "admin",
            Action::Metrics => "metrics",
        }
    }

    /// Whether a grant of `self` covers a request for `wanted`.
    pub fn covers(self, wanted: Action) -> bool {
        self == wanted
            || self == Action::Admin
            || (self == Action::Read && wanted == Action::Playback)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which streams a grant covers: `*` (all), `prefix*`, or one exact name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamPattern {
    All,
    Prefix(String),
    Exact(String),
}

impl StreamPattern {
    pub fn parse(s: &str) -> Result<StreamPattern, String> {
        let valid = |n: &str| n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        match s.strip_suffix('*') {
            Some("") => Ok(StreamPattern::All),
            Some(p) if valid(p) && p.len() <= 256 => Ok(StreamPattern::Prefix(p.to_owned())),
            None if !s.is_empty() && valid(s) && s.len() <= 256 => {
                Ok(StreamPattern::Exact(s.to_owned()))
            }
            _ => Err(format!(
                "`{s}` is not a stream pattern: a name, a prefix ending in `*`, or `*`"
            )),
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            StreamPattern::All => true,
            StreamPattern::Prefix(p) => name.starts_with(p.as_str()),
            StreamPattern::Exact(n) => n == name,
        }
    }
}

impl fmt::Display for StreamPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamPattern::All => f.write_str("*"),
            StreamPattern::Prefix(p) => write!(f, "{p}*"),
            StreamPattern::Exact(n) => f.write_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for StreamPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StreamPattern::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for StreamPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One grant: an action on the streams a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub action: Action,
    pub streams: StreamPattern,
}

/// A user defined in the configuration: a name, an argon2id password hash (`sluice auth
/// hash-password`), grants and optional source networks.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    pub password_hash: String,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Source networks the user may connect from; empty: anywhere.
    #[serde(default)]
    pub cidrs: Vec<IpNet>,
}

/// An access key defined in the configuration. The secret comes from an environment variable
/// (`secret_env`) or, for a file kept private, the file itself (`secret`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub access_key_id: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub cidrs: Vec<IpNet>,
}

/// Secrets never appear in debug output (logs of the configuration).
impl fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserEntry").field("name", &self.name).field("grants", &self.grants).finish()
    }
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("access_key_id", &self.access_key_id)
            .field("grants", &self.grants)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require credentials. Default false: every client may do everything, as on a development
    /// box; Sluice warns loudly when it listens beyond loopback so.
    pub enabled: bool,
    /// What a request without credentials may do. Default nothing.
    pub anonymous: Vec<Grant>,
    /// `/metrics` and `/healthz` answer clients on loopback without credentials. Default true.
    pub loopback_metrics: bool,
    /// The AWS region the AWS-compatible APIs sign for; empty accepts any. Default empty.
    pub region: String,
    pub users: Vec<UserEntry>,
    pub keys: Vec<KeyEntry>,
    /// Failed authentications one source address may make per minute before it is answered 429
    /// without checking. Default 30.
    pub failures_per_minute: u32,
    /// Networks configured destinations (webhooks, RTSP pull cameras) may be in although they are
    /// loopback, link-local, multicast or unspecified (refused otherwise). Default none.
    pub outbound_networks: Vec<IpNet>,
    /// Directories image generation may write under, besides the data directory. Default none.
    pub image_roots: Vec<std::path::PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            anonymous: Vec::new(),
            loopback_metrics: true,
            region: String::new(),
            users: Vec::new(),
            keys: Vec::new(),
            failures_per_minute: 30,
            outbound_networks: Vec::new(),
            image_roots: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_actions() {
        let p = |s| StreamPattern::parse(s).unwrap();
        assert!(p("*").matches("anything"));
        assert!(p("cam*").matches("cam-1") && !p("cam*").matches("door"));
        assert!(p("cam-1").matches("cam-1") && !p("cam-1").matches("cam-10"));
        for bad in ["", "a*b", "c/d*", "**", "x y"] {
            assert!(StreamPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(Action::Read.covers(Action::Playback));
        assert!(!Action::Playback.covers(Action::Read));
        assert!(Action::Admin.covers(Action::Publish));
        assert!(!Action::Publish.covers(Action::Read));
    }
}
