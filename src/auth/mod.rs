//! Who may do what: principals (users and access keys), their grants, and the one decision every
//! surface asks for (`Auth::authenticate`, then `Auth::allows`). The HTTP surfaces call it from one
//! middleware (`crate::api::access`), the AWS-compatible APIs through SigV4 (`sigv4`), RTSP
//! publish from its session.
//!
//! Principals come from the configuration (`[auth] users`, `keys`) and from the admin API (kept in
//! the catalog, `store`). Passwords are kept only as argon2id hashes (`password`); access-key
//! secrets, which SigV4 needs to recompute signatures, are sealed at rest (`seal`) and held in
//! memory. With `[auth] enabled = false` every request is allowed, as before.

pub mod outbound;
pub mod password;
pub mod playback;
pub mod seal;
pub mod sigv4;
mod store;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipnet::IpNet;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::clock::{SharedClock, Timestamp};
use crate::config::{Action, AuthConfig, Grant, StreamPattern};
use crate::error::{Error, Result};
use seal::Sealer;

/// Where a principal was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Config,
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    User,
    Key,
}

/// A user or an access key, with what it may do.
#[derive(Debug)]
pub struct Principal {
    /// The user name or the access key id.
    pub name: String,
    pub kind: Kind,
    pub grants: Vec<Grant>,
    pub cidrs: Vec<IpNet>,
    pub origin: Origin,
}

/// Who a request comes from.
#[derive(Debug, Clone)]
pub enum Identity {
    Anonymous,
    Principal(Arc<Principal>),
}

impl Identity {
    /// The name audit events and logs show.
    pub fn name(&self) -> &str {
        match self {
            Identity::Anonymous => "anonymous",
            Identity::Principal(p) => &p.name,
        }
    }
}

/// Why credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// An `Authorization` header in no scheme Sluice knows, or malformed.
    Malformed,
    /// An unknown user or access key.
    UnknownPrincipal,
    /// A wrong password or secret.
    BadSecret,
    /// Valid credentials from an address outside the principal's networks.
    SourceNotAllowed,
    /// Too many failures from this address lately.
    Throttled { retry_after: Duration },
}

impl Failure {
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Malformed => "malformed",
            Failure::UnknownPrincipal => "unknown_principal",
            Failure::BadSecret => "bad_secret",
            Failure::SourceNotAllowed => "source_not_allowed",
            Failure::Throttled { .. } => "throttled",
        }
    }
}

struct Entry {
    principal: Arc<Principal>,
    /// A user's argon2id hash, or a key's secret.
    secret: String,
    description: String,
    created_at: Option<Timestamp>,
    rotated_at: Option<Timestamp>,
}

/// An access key as the admin API lists it (never its secret).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub access_key_id: String,
    pub grants: Vec<Grant>,
    pub cidrs: Vec<IpNet>,
    pub description: String,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub name: String,
    pub grants: Vec<Grant>,
    pub cidrs: Vec<IpNet>,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

pub struct Auth {
    config: AuthConfig,
    users: RwLock<HashMap<String, Entry>>,
    keys: RwLock<HashMap<String, Entry>>,
    catalog: Arc<Catalog>,
    sealer: Arc<Sealer>,
    /// Playback-session tokens (`playback`).
    pub playback: playback::PlaybackTokens,
    verifier: password::Verifier,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Whether `failures` may hold anything: the common case (no failures lately) then costs
    /// no lock per request.
    any_failures: AtomicBool,
    clock: SharedClock,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Constant-time equality of two secrets.
/// The `(id, secret)` of a Basic (`user:password`) or Bearer (`id:secret`) header.
fn credentials(header: &[u8]) -> Result<(String, String), Failure> {
    let header = std::str::from_utf8(header).map_err(|_| Failure::Malformed)?;
    let (scheme, rest) = header.trim().split_once(' ').ok_or(Failure::Malformed)?;
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = STANDARD.decode(rest.trim()).map_err(|_| Failure::Malformed)?;
        let text = String::from_utf8(raw).map_err(|_| Failure::Malformed)?;
        let (u, p) = text.split_once(':').ok_or(Failure::Malformed)?;
        Ok((u.to_owned(), p.to_owned()))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        // `id:secret` of an access key, or `user:password` (what OBS sends for WHIP).
        let (i, s) = rest.trim().split_once(':').ok_or(Failure::Malformed)?;
        Ok((i.to_owned(), s.to_owned()))
    } else {
        Err(Failure::Malformed)
    }
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The length of an access key's secret, as AWS's.
pub const SECRET_LEN: usize = 40;

impl Auth {
    /// Loads the configured principals and those the admin API created.
    pub fn open(
        config: &AuthConfig,
        catalog: Arc<Catalog>,
        sealer: Arc<Sealer>,
        clock: SharedClock,
    ) -> Result<Auth> {
        catalog.ensure_schema(store::SCHEMA)?;
        let mut users = HashMap::new();
        let mut keys = HashMap::new();
        for u in &config.users {
            if !password::is_valid_hash(&u.password_hash) {
                return Err(Error::invalid(format!(
                    "auth.users `{}`: password_hash is not an argon2 PHC string (make one with `sluice auth hash-password`)",
                    u.name
                )));
            }
            let p = principal(&u.name, Kind::User, &u.grants, &u.cidrs, Origin::Config);
            users.insert(u.name.clone(), entry(p, u.password_hash.clone()));
        }
        for k in &config.keys {
            let secret = match (&k.secret, &k.secret_env) {
                (Some(s), None) => s.clone(),
                (None, Some(var)) => std::env::var(var).map_err(|_| {
                    Error::invalid(format!(
                        "auth.keys `{}`: environment variable {var} is not set",
                        k.access_key_id
                    ))
                })?,
                _ => {
                    return Err(Error::invalid(format!(
                        "auth.keys `{}`: give exactly one of secret and secret_env",
                        k.access_key_id
                    )));
                }
            };
            check_key_id(&k.access_key_id)?;
            // The AWS shape, which SigV4 verification expects (AWS secrets are 40 characters).
            if secret.len() != SECRET_LEN || !secret.is_ascii() {
                return Err(Error::invalid(format!(
                    "auth.keys `{}`: the secret must be {SECRET_LEN} ASCII characters, as an AWS secret access key",
                    k.access_key_id
                )));
            }
            let p = principal(&k.access_key_id, Kind::Key, &k.grants, &k.cidrs, Origin::Config);
            keys.insert(k.access_key_id.clone(), entry(p, secret));
        }
        for u in store::users(&catalog)? {
            if users.contains_key(&u.name) {
                continue;
            }
            let p = principal(&u.name, Kind::User, &u.grants, &u.cidrs, Origin::Api);
            let mut e = entry(p, u.password_hash);
            e.created_at = Some(Timestamp::from_micros(u.created_at_us));
            users.insert(u.name, e);
        }
        for k in store::keys(&catalog)? {
            if keys.contains_key(&k.access_key_id) {
                continue;
            }
            let secret = sealer.open(&k.secret_sealed)?;
            let p = principal(&k.access_key_id, Kind::Key, &k.grants, &k.cidrs, Origin::Api);
            let mut e = entry(p, secret);
            e.description = k.description;
            e.created_at = Some(Timestamp::from_micros(k.created_at_us));
            e.rotated_at = k.rotated_at_us.map(Timestamp::from_micros);
            keys.insert(k.access_key_id, e);
        }
        Ok(Auth {
            config: config.clone(),
            users: RwLock::new(users),
            keys: RwLock::new(keys),
            catalog,
            playback: playback::PlaybackTokens::new(sealer.derive("sluice playback sessions")),
            sealer,
            verifier: password::Verifier::default(),
            failures: Mutex::new(HashMap::new()),
            any_failures: AtomicBool::new(false),
            clock,
        })
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Who sent a request carrying `authorization` (the header's value) from `remote`. No header
    /// is anonymous; a header that does not authenticate is a failure, counted against `remote`.
    pub fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        remote: IpAddr,
    ) -> Result<Identity, Failure> {
        let Some(header) = authorization else { return Ok(Identity::Anonymous) };
        self.check_throttle(remote)?;
        let result = self.verify_header(header, remote);
        if let Err(f) = &result
            && *f != Failure::SourceNotAllowed
        {
            self.record_failure(remote);
        }
        result
    }

    fn verify_header(&self, header: &[u8], remote: IpAddr) -> Result<Identity, Failure> {
        let (id, secret) = credentials(header)?;
        let p = self.check_secret(&id, &secret)?;
        if !p.cidrs.is_empty() && !p.cidrs.iter().any(|n| n.contains(&remote)) {
            return Err(Failure::SourceNotAllowed);
        }
        Ok(Identity::Principal(p))
    }

    /// The principal a refused `Authorization` header claimed to be, for the audit trail: only
    /// a user or key that exists, never the text of an unknown one (people type passwords into
    /// user-name fields).
    pub fn claimed(&self, header: &[u8]) -> Option<String> {
        let (id, _) = credentials(header).ok()?;
        let known = read(&self.keys).contains_key(&id) || read(&self.users).contains_key(&id);
        known.then_some(id)
    }

    /// The principal named `id` (an access key id, else a user name) if `secret` is its secret.
    pub fn check_secret(&self, id: &str, secret: &str) -> Result<Arc<Principal>, Failure> {
        if let Some(e) = read(&self.keys).get(id) {
            return if same(&e.secret, secret) {
                Ok(e.principal.clone())
            } else {
                Err(Failure::BadSecret)
            };
        }
        let (p, hash) = {
            let users = read(&self.users);
            let e = users.get(id).ok_or(Failure::UnknownPrincipal)?;
            (e.principal.clone(), e.secret.clone())
        };
        if self.verifier.verify(id, secret, &hash) { Ok(p) } else { Err(Failure::BadSecret) }
    }

    /// An access key's principal and secret, for SigV4.
    pub fn key_secret(&self, access_key_id: &str) -> Option<(Arc<Principal>, String)> {
        read(&self.keys).get(access_key_id).map(|e| (e.principal.clone(), e.secret.clone()))
    }

    /// Whether `who` may do `action` on `stream` (`None`: on the server as a whole, which needs a
    /// grant for all streams). Always true with auth disabled.
    pub fn allows(&self, who: &Identity, action: Action, stream: Option<&str>) -> bool {
        if !self.enabled() {
            return true;
        }
        self.grants(who).iter().any(|g| {
            g.action.covers(action)
                && match stream {
                    Some(s) => g.streams.matches(s),
                    None => g.streams == StreamPattern::All,
                }
        })
    }

    /// Whether `who` may do anything at all with `stream` (to see it listed or described).
    pub fn sees(&self, who: &Identity, stream: &str) -> bool {
        !self.enabled() || self.grants(who).iter().any(|g| g.streams.matches(stream))
    }

    fn grants<'a>(&'a self, who: &'a Identity) -> &'a [Grant] {
        match who {
            Identity::Anonymous => &self.config.anonymous,
            Identity::Principal(p) => &p.grants,
        }
    }

    /// Refuses an address that failed too often in the last minute.
    pub fn check_throttle(&self, remote: IpAddr) -> Result<(), Failure> {
        if !self.any_failures.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&(start, n)) = failures.get(&remote) {
            let age = start.elapsed();
            if age < FAILURE_WINDOW {
                if n >= self.config.failures_per_minute {
                    return Err(Failure::Throttled { retry_after: FAILURE_WINDOW - age });
                }
            } else {
                failures.remove(&remote);
            }
        }
        if failures.is_empty() {
            self.any_failures.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// Counts a failed authentication from `remote`.
    pub fn record_failure(&self, remote: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        self.any_failures.store(true, Ordering::Release);
        if failures.len() > 100_000 {
            failures.retain(|_, (start, _)| start.elapsed() < FAILURE_WINDOW);
        }
        let e = failures.entry(remote).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= FAILURE_WINDOW {
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
    }

    // --- The admin API ---

    pub fn list_users(&self) -> Vec<UserView> {
        let mut v: Vec<UserView> = read(&self.users).values().map(user_view).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn list_keys(&self) -> Vec<KeyView> {
        let mut v: Vec<KeyView> = read(&self.keys).values().map(key_view).collect();
        v.sort_by(|a, b| a.access_key_id.cmp(&b.access_key_id));
        v
    }

    /// Creates a user, or replaces the password, grants and networks of one the API created.
    pub fn put_user(
        &self,
        name: &str,
        password: &str,
        grants: Vec<Grant>,
        cidrs: Vec<IpNet>,
    ) -> Result<(UserView, bool)> {
        check_user_name(name)?;
        if password.len() < 8 {
            return Err(Error::invalid("password: at least 8 characters"));
        }
        if read(&self.users).get(name).is_some_and(|e| e.principal.origin == Origin::Config) {
            return Err(Error::conflict(format!("user `{name}` is defined in the configuration")));
        }
        let created = !store::user_exists(&self.catalog, name)?;
        let hash = password::hash(password);
        let now = self.clock.now();
        store::put_user(
            &self.catalog,
            &store::UserRow {
                name: name.to_owned(),
                password_hash: hash.clone(),
                grants: grants.clone(),
                cidrs: cidrs.clone(),
                created_at_us: now.as_micros(),
            },
        )?;
        let mut e = entry(principal(name, Kind::User, &grants, &cidrs, Origin::Api), hash);
        e.created_at = Some(now);
        let view = user_view(&e);
        write(&self.users).insert(name.to_owned(), e);
        Ok((view, created))
    }

    /// Creates an access key; its secret is returned once, here.
    pub fn create_key(
        &self,
        grants: Vec<Grant>,
        cidrs: Vec<IpNet>,
        description: String,
    ) -> Result<(KeyView, String)> {
        let id = new_key_id();
        self.store_key(&id, grants, cidrs, description, None)
    }

    /// Gives an API-created key a new secret (returned once); the old one stops working now.
    pub fn rotate_key(&self, id: &str) -> Result<(KeyView, String)> {
        let (grants, cidrs, description, created) = {
            let keys = read(&self.keys);
            let e =
                keys.get(id).ok_or_else(|| Error::not_found(format!("no access key `{id}`")))?;
            if e.principal.origin == Origin::Config {
                return Err(Error::conflict(format!(
                    "access key `{id}` is defined in the configuration; change it there"
                )));
            }
            (
                e.principal.grants.clone(),
                e.principal.cidrs.clone(),
                e.description.clone(),
                e.created_at,
            )
        };
        self.store_key(id, grants, cidrs, description, created)
    }

    fn store_key(
        &self,
        id: &str,
        grants: Vec<Grant>,
        cidrs: Vec<IpNet>,
        description: String,
        created: Option<Timestamp>,
    ) -> Result<(KeyView, String)> {
        let secret = new_secret();
        let now = self.clock.now();
        let created_at = created.unwrap_or(now);
        let rotated_at = created.map(|_| now);
        store::put_key(
            &self.catalog,
            &store::KeyRow {
                access_key_id: id.to_owned(),
                secret_sealed: self.sealer.seal(&secret),
                grants: grants.clone(),
                cidrs: cidrs.clone(),
                description: description.clone(),
                created_at_us: created_at.as_micros(),
                rotated_at_us: rotated_at.map(Timestamp::as_micros),
            },
        )?;
        let mut e = entry(principal(id, Kind::Key, &grants, &cidrs, Origin::Api), secret.clone());
        e.description = description;
        e.created_at = Some(created_at);
        e.rotated_at = rotated_at;
        let view = key_view(&e);
        write(&self.keys).insert(id.to_owned(), e);
        Ok((view, secret))
    }

    /// Deletes an API-created user (`user = true`) or access key.
    pub fn delete(&self, user: bool, id: &str) -> Result<()> {
        let map = if user { &self.users } else { &self.keys };
        let what = if user { "user" } else { "access key" };
        match read(map).get(id) {
            None => return Err(Error::not_found(format!("no {what} `{id}`"))),
            Some(e) if e.principal.origin == Origin::Config => {
                return Err(Error::conflict(format!(
                    "{what} `{id}` is defined in the configuration; remove it there"
                )));
            }
            Some(_) => {}
        }
        store::delete(&self.catalog, user, id)?;
        write(map).remove(id);
        Ok(())
    }
}

fn principal(
    name: &str,
    kind: Kind,
    grants: &[Grant],
    cidrs: &[IpNet],
    origin: Origin,
) -> Arc<Principal> {
    Arc::new(Principal {
        name: name.to_owned(),
        kind,
        grants: grants.to_vec(),
        cidrs: cidrs.to_vec(),
        origin,
    })
}

fn entry(principal: Arc<Principal>, secret: String) -> Entry {
    Entry { principal, secret, description: String::new(), created_at: None, rotated_at: None }
}

fn user_view(e: &Entry) -> UserView {
    UserView {
        name: e.principal.name.clone(),
        grants: e.principal.grants.clone(),
        cidrs: e.principal.cidrs.clone(),
        origin: e.principal.origin,
        created_at: e.created_at.map(Timestamp::to_rfc3339),
    }
}

fn key_view(e: &Entry) -> KeyView {
    KeyView {
        access_key_id: e.principal.name.clone(),
        grants: e.principal.grants.clone(),
        cidrs: e.principal.cidrs.clone(),
        description: e.description.clone(),
        origin: e.principal.origin,
        created_at: e.created_at.map(Timestamp::to_rfc3339),
        rotated_at: e.rotated_at.map(Timestamp::to_rfc3339),
    }
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `SLK` + 17 base32 characters: 20 characters, like an AWS access key id.
fn new_key_id() -> String {
    let mut b = [0u8; 17];
    getrandom::fill(&mut b).expect("the OS random source");
    let mut id = String::from("SLK");
    id.extend(b.iter().map(|x| KEY_ALPHABET[usize::from(x & 31)] as char));
    id
}

/// 40 characters from 30 random bytes, like an AWS secret access key.
fn new_secret() -> String {
    let mut b = [0u8; 30];
    getrandom::fill(&mut b).expect("the OS random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn check_key_id(id: &str) -> Result<()> {
    if (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Error::invalid(format!("access key id `{id}`: 16–128 letters and digits (as AWS's)")))
    }
}

fn check_user_name(name: &str) -> Result<()> {
    if (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b))
    {
        Ok(())
    } else {
        Err(Error::invalid("name: 1–64 letters, digits, `_`, `.`, `@` or `-`"))
    }
}

#[cfg(test)]
mod tests;
