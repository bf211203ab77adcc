//! The one authorization point of the HTTP surfaces: every route has a rule in [`RULES`], and the
//! middleware [`authorize`] applies it before the handler runs: it authenticates the request
//! (`Authorization: Basic` or `Bearer`), checks the grant the rule asks for on the stream the path
//! names, and answers 401 (no or bad credentials, with `WWW-Authenticate`), 403 (valid but not
//! granted) or 429 (too many failures from the address) in the API's JSON error shape. CORS
//! preflights are never authenticated. The Kinesis API on `POST /` and the KVS API on
//! `POST /<operation>` verify SigV4 themselves (`crate::api::kinesis`, `crate::api::kvs`), under
//! the same grants.
//!
//! A route without a rule is refused when auth is on, and `tests/auth.rs` checks that every
//! endpoint of docs/api.md has one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;
use crate::auth::playback::TokenError;
use crate::auth::{Failure, Identity};
use crate::config::Action;
use crate::error::Error;
use crate::events::sink::Denial;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `action` on the stream named by the path parameter `param`.
    Stream(Action, &'static str),
    /// Any grant on the stream named by `param` (describe: what players and producers read
    /// before they start).
    SeeStream(&'static str),
    /// `action` on some stream; the handler checks the one the body names (create).
    SomeStream(Action),
    /// Any identity; the handler shows only the streams it may see (list).
    Listed,
    /// Anyone, anonymous included; credentials that are sent must be valid (who am I).
    Identify,
    /// `action` on the server as a whole (a grant for `*`), or loopback when the config opens
    /// metrics there.
    Server(Action),
    /// `/healthz`: like `/metrics`.
    Health,
    /// Authenticated by the surface itself (SigV4 on the Kinesis API).
    SelfAuthenticated,
    /// Open to everyone: the web UI's page and assets (`crate::web`, outside this middleware);
    /// what the UI then shows goes through the API's rules.
    Public,
}

/// Every HTTP route of the API and the grant it needs: (method, route pattern, rule).
pub const RULES: &[(&str, &str, Rule)] = &[
    ("GET", "/", Rule::Public),
    ("GET", "/ui/{file}", Rule::Public),
    ("GET", "/vendor/{file}", Rule::Public),
    ("GET", "/healthz", Rule::Health),
    ("GET", "/metrics", Rule::Server(Action::Metrics)),
    ("POST", "/", Rule::SelfAuthenticated),
    // The KVS control plane (`crate::api::kvs`): SigV4, service `kinesisvideo`.
    ("POST", "/createStream", Rule::SelfAuthenticated),
    ("POST", "/describeStream", Rule::SelfAuthenticated),
    ("POST", "/listStreams", Rule::SelfAuthenticated),
    ("POST", "/updateStream", Rule::SelfAuthenticated),
    ("POST", "/deleteStream", Rule::SelfAuthenticated),
    ("POST", "/updateDataRetention", Rule::SelfAuthenticated),
    ("POST", "/getDataEndpoint", Rule::SelfAuthenticated),
    ("POST", "/tagStream", Rule::SelfAuthenticated),
    ("POST", "/untagStream", Rule::SelfAuthenticated),
    ("POST", "/listTagsForStream", Rule::SelfAuthenticated),
    ("POST", "/TagResource", Rule::SelfAuthenticated),
    ("POST", "/UntagResource", Rule::SelfAuthenticated),
    ("POST", "/ListTagsForResource", Rule::SelfAuthenticated),
    ("POST", "/updateImageGenerationConfiguration", Rule::SelfAuthenticated),
    ("POST", "/describeImageGenerationConfiguration", Rule::SelfAuthenticated),
    ("POST", "/updateNotificationConfiguration", Rule::SelfAuthenticated),
    ("POST", "/describeNotificationConfiguration", Rule::SelfAuthenticated),
    ("POST", "/listFragments", Rule::SelfAuthenticated),
    ("POST", "/getHLSStreamingSessionURL", Rule::SelfAuthenticated),
    ("POST", "/getDASHStreamingSessionURL", Rule::SelfAuthenticated),
    ("POST", "/getClip", Rule::SelfAuthenticated),
    ("POST", "/getImages", Rule::SelfAuthenticated),
    ("POST", "/getMediaForFragmentList", Rule::SelfAuthenticated),
    ("POST", "/getMedia", Rule::SelfAuthenticated),
    ("POST", "/putMedia", Rule::SelfAuthenticated),
    ("GET", "/v1/delivery-streams", Rule::Listed),
    ("POST", "/v1/delivery-streams", Rule::SomeStream(Action::Admin)),
    ("GET", "/v1/delivery-streams/{name}", Rule::Stream(Action::Read, "name")),
    ("DELETE", "/v1/delivery-streams/{name}", Rule::Stream(Action::Admin, "name")),
    ("POST", "/v1/delivery-streams/{name}/records", Rule::Stream(Action::Publish, "name")),
    // The Firehose HTTP endpoint protocol carries its own key (`X-Amz-Firehose-Access-Key`).
    ("POST", "/v1/firehose-endpoint/{stream}", Rule::SelfAuthenticated),
    ("GET", "/v1/streams", Rule::Listed),
    ("POST", "/v1/streams", Rule::SomeStream(Action::Admin)),
    ("GET", "/v1/streams/{name}", Rule::SeeStream("name")),
    ("PATCH", "/v1/streams/{name}", Rule::Stream(Action::Admin, "name")),
    ("DELETE", "/v1/streams/{name}", Rule::Stream(Action::Admin, "name")),
    ("GET", "/v1/streams/{name}/fragments", Rule::Stream(Action::Read, "name")),
    ("GET", "/v1/streams/{name}/fragments/{number}/media", Rule::Stream(Action::Read, "name")),
    ("GET", "/v1/streams/{name}/timeline", Rule::Stream(Action::Read, "name")),
    ("GET", "/v1/streams/{name}/images", Rule::Stream(Action::Read, "name")),
    ("GET", "/v1/streams/{name}/events", Rule::Stream(Action::Read, "name")),
    ("POST", "/v1/streams/{name}/events", Rule::Stream(Action::Publish, "name")),
    ("GET", "/v1/streams/{name}/media", Rule::Stream(Action::Read, "name")),
    ("PUT", "/v1/streams/{name}/media", Rule::Stream(Action::Publish, "name")),
    ("POST", "/v1/streams/{name}/media", Rule::Stream(Action::Publish, "name")),
    ("POST", "/v1/streams/{name}/whip", Rule::Stream(Action::Publish, "name")),
    ("PATCH", "/v1/streams/{name}/whip/{session}", Rule::Stream(Action::Publish, "name")),
    ("DELETE", "/v1/streams/{name}/whip/{session}", Rule::Stream(Action::Publish, "name")),
    ("GET", "/v1/streams/{name}/frame.jpg", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/frame.png", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/clip.mp4", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/hls/master.m3u8", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/hls/live.m3u8", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/hls/index.m3u8", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/hls/replay.m3u8", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/hls/init/{id}/{file}", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/hls/seg/{id}/{file}", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/hls/part/{id}/{file}", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/dash/manifest.mpd", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/dash/init/{id}/{file}", Rule::Stream(Action::Playback, "name")),
    ("GET", "/v1/streams/{name}/dash/seg/{id}/{file}", Rule::Stream(Action::Playback, "name")),
    (
        "GET",
        "/v1/streams/{name}/dash/seg/{id}/{init}/{file}",
        Rule::Stream(Action::Playback, "name"),
    ),
    ("POST", "/v1/streams/{name}/playback-sessions", Rule::Stream(Action::Playback, "name")),
    (
        "GET",
        "/v1/data-streams/{stream}/shards/{shard}/records",
        Rule::Stream(Action::Read, "stream"),
    ),
    ("GET", "/v1/auth/users", Rule::Server(Action::Admin)),
    ("PUT", "/v1/auth/users/{user}", Rule::Server(Action::Admin)),
    ("DELETE", "/v1/auth/users/{user}", Rule::Server(Action::Admin)),
    ("GET", "/v1/auth/keys", Rule::Server(Action::Admin)),
    ("POST", "/v1/auth/keys", Rule::Server(Action::Admin)),
    ("POST", "/v1/auth/keys/{key}/rotate", Rule::Server(Action::Admin)),
    ("DELETE", "/v1/auth/keys/{key}", Rule::Server(Action::Admin)),
    ("GET", "/v1/auth/whoami", Rule::Identify),
];

/// The rule for a request, `HEAD` following `GET`.
pub fn rule(method: &Method, route: &str) -> Option<Rule> {
    static BY_ROUTE: std::sync::OnceLock<HashMap<(&'static str, &'static str), Rule>> =
        std::sync::OnceLock::new();
    let table =
        BY_ROUTE.get_or_init(|| RULES.iter().map(|(m, r, rule)| ((*m, *r), *rule)).collect());
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    table.get(&(method, route)).copied()
}

/// The middleware: authenticates, applies the route's rule, and leaves the [`Identity`] in the
/// request's extensions for handlers that filter or check a name from the body.
pub async fn authorize(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let remote = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    // `MatchedPath` holds an `Arc<str>`: a clone, not a copy of the text.
    let route = parts.extensions.get::<MatchedPath>().cloned();
    let auth = &state.auth;
    // A playback-session token in the query stands in for credentials on playback routes.
    if let Some(token) = take_query_param(&mut parts.uri, "token") {
        let route = route.as_ref().map(MatchedPath::as_str);
        return with_session(&state, parts, body, next, route, token, remote).await;
    }
    if !auth.enabled() {
        // Without credentials to protect it, a Sluice answers only requests addressed to it by
        // an IP, `localhost` or a configured name: a page that rebinds its own name to 127.0.0.1
        // gets nothing.
        if let Some(host) = foreign_host(&parts, &state.config.server.allowed_hosts) {
            record(&state, "host_not_allowed", "", None, "", remote);
            return refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                &format!(
                    "requests for host `{host}` are refused while [auth] is off; add it to [server] allowed_hosts or turn [auth] on"
                ),
            );
        }
        parts.extensions.insert(Identity::Anonymous);
        return next.run(Request::from_parts(parts, body)).await;
    }
    let Some(rule) = route.as_ref().and_then(|r| rule(&parts.method, r.as_str())) else {
        return ApiError(Error::forbidden("this route has no access rule")).into_response();
    };
    if matches!(rule, Rule::SelfAuthenticated | Rule::Public) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let ip = remote.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let stream = match rule {
        Rule::Stream(_, p) | Rule::SeeStream(p) => {
            match RawPathParams::from_request_parts(&mut parts, &state).await {
                Ok(params) => params.iter().find(|(k, _)| *k == p).map(|(_, v)| v.to_owned()),
                Err(_) => None,
            }
        }
        _ => None,
    };
    let header = parts.headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    let who = match auth.authenticate(header, ip) {
        Ok(who) => who,
        Err(f) => {
            let claimed = header.and_then(|h| auth.claimed(h)).unwrap_or_default();
            let denial = deny(
                &state,
                &(f.reason(), claimed),
                None,
                stream.as_deref().unwrap_or(""),
                remote,
                Some(f),
            );
            return no_prompt(&parts, denial);
        }
    };
    let loopback = remote.is_some_and(|a| a.is_loopback());
    let allowed = match rule {
        Rule::Stream(action, _) => auth.allows(&who, action, stream.as_deref()),
        Rule::SeeStream(_) => stream.as_deref().is_some_and(|s| auth.sees(&who, s)),
        Rule::SomeStream(action) => who_has(auth, &who, action),
        Rule::Listed => {
            matches!(who, Identity::Principal(_)) || !auth.config().anonymous.is_empty()
        }
        Rule::Server(Action::Metrics) | Rule::Health => {
            (loopback && auth.config().loopback_metrics) || auth.allows(&who, Action::Metrics, None)
        }
        Rule::Server(action) => auth.allows(&who, action, None),
        Rule::SelfAuthenticated | Rule::Public | Rule::Identify => true,
    };
    if !allowed {
        let action = match rule {
            Rule::Stream(a, _) | Rule::SomeStream(a) | Rule::Server(a) => Some(a.name()),
            _ => None,
        };
        let reason = if matches!(who, Identity::Anonymous) { "missing" } else { "not_granted" };
        let resp = deny(
            &state,
            &(reason, who.name().to_owned()),
            action,
            stream.as_deref().unwrap_or(""),
            remote,
            None,
        );
        return no_prompt(&parts, resp);
    }
    parts.extensions.insert(who);
    next.run(Request::from_parts(parts, body)).await
}

/// Serves a request carrying a playback-session token: checked by its MAC (with auth on) against
/// the stream the path names; playlists and MPDs in the answer get the token on every URI.
async fn with_session(
    state: &ApiState,
    mut parts: axum::http::request::Parts,
    body: axum::body::Body,
    next: Next,
    route: Option<&str>,
    token: String,
    remote: Option<IpAddr>,
) -> Response {
    if state.auth.enabled() {
        let Some(Rule::Stream(Action::Playback, p)) = route.and_then(|r| rule(&parts.method, r))
        else {
            record(state, "bad_token", "session", None, "", remote);
            return refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "a playback session opens only playback (HLS, clip, frame)",
            );
        };
        // Every playback route is `/v1/streams/{name}/…`: the name is read from the path itself
        // (an escaped one goes through the router's decoding).
        let plain = parts.uri.path().strip_prefix("/v1/streams/").and_then(|r| r.split('/').next());
        let stream = match plain {
            Some(n) if p == "name" && !n.contains('%') => n.to_owned(),
            _ => match RawPathParams::from_request_parts(&mut parts, state).await {
                Ok(params) => params.iter().find(|(k, _)| *k == p).map(|(_, v)| v.to_owned()),
                Err(_) => None,
            }
            .unwrap_or_default(),
        };
        if let Err(e) = state.auth.playback.verify(&token, &stream, state.video.clock().now()) {
            let reason = if e == TokenError::Expired { "expired_token" } else { "bad_token" };
            record(state, reason, "session", Some("playback"), &stream, remote);
            return refuse(StatusCode::FORBIDDEN, "AccessDenied", e.message());
        }
    }
    parts.extensions.insert(Identity::Anonymous);
    let resp = next.run(Request::from_parts(parts, body)).await;
    let content_type = resp.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes().to_vec());
    let is_playlist =
        content_type.as_ref().is_some_and(|v| v.starts_with(b"application/vnd.apple.mpegurl"));
    let is_mpd = content_type.as_ref().is_some_and(|v| v.starts_with(b"application/dash+xml"));
    if !(is_playlist || is_mpd) || !resp.status().is_success() {
        return resp;
    }
    let (mut head, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return ApiError(Error::internal("playlist body")).into_response();
    };
    let param = format!("token={token}");
    let text = if is_mpd {
        // Every URL of Sluice's MPDs is an attribute ending in `.mp4"` or `.m4s"`.
        String::from_utf8_lossy(&bytes)
            .replace(".mp4\"", &format!(".mp4?{param}\""))
            .replace(".m4s\"", &format!(".m4s?{param}\""))
    } else {
        crate::media::hls_query::with_query(&String::from_utf8_lossy(&bytes), &param)
    };
    head.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(head, axum::body::Body::from(text))
}

/// The request's host when it is a name Sluice was not configured for (`None`: an IP literal,
/// `localhost`, a configured name, or no host at all).
fn foreign_host(parts: &axum::http::request::Parts, allowed: &[String]) -> Option<String> {
    let host = match parts.uri.host() {
        Some(h) => h.to_owned(),
        None => {
            let h = parts.headers.get(header::HOST)?.to_str().ok()?;
            // `name:port`, `[v6]:port`, `v4:port`.
            match h.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or("").to_owned(),
                None => h.rsplit_once(':').map_or(h, |(n, _)| n).to_owned(),
            }
        }
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let lower = bare.to_ascii_lowercase();
    let ok = bare.parse::<IpAddr>().is_ok()
        || lower == "localhost"
        || lower.ends_with(".localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(&lower));
    (!ok).then_some(host)
}

/// Removes `name=…` from the URI's query and returns its value.
fn take_query_param(uri: &mut axum::http::Uri, name: &str) -> Option<String> {
    let query = uri.query()?;
    let mut value = None;
    let mut rest = String::new();
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some((k, v)) if k == name && value.is_none() => value = Some(v.to_owned()),
            _ => {
                rest.push(if rest.is_empty() { '?' } else { '&' });
                rest.push_str(kv);
            }
        }
    }
    let value = value?;
    let pq = format!("{}{rest}", uri.path());
    let mut p = uri.clone().into_parts();
    p.path_and_query = pq.parse().ok();
    if let Ok(u) = axum::http::Uri::from_parts(p) {
        *uri = u;
    }
    Some(value)
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// Counts a refusal and writes its `AccessDenied` event.
fn record(
    state: &ApiState,
    reason: &'static str,
    principal: &str,
    action: Option<&'static str>,
    stream: &str,
    remote: Option<IpAddr>,
) {
    let d = Denial { surface: "http", reason, principal, action, stream, remote };
    state.video.events().denied(&state.metrics, d);
}

/// A 401 to a page's script (`fetch`, XHR: `Sec-Fetch-Dest: empty`) carries no `Basic`
/// challenge, which would make the browser pop up its own password dialog over the page (the
/// web UI asks with its form; a player gets the error). Other clients (curl, ffmpeg) need it.
fn no_prompt(parts: &axum::http::request::Parts, mut resp: Response) -> Response {
    let scripted = parts.headers.get("sec-fetch-dest").is_some_and(|v| v.as_bytes() == b"empty");
    if scripted && resp.status() == StatusCode::UNAUTHORIZED {
        let kept: Vec<HeaderValue> = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter(|v| !v.as_bytes().starts_with(b"Basic"))
            .cloned()
            .collect();
        resp.headers_mut().remove(header::WWW_AUTHENTICATE);
        for v in kept {
            resp.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

/// Whether `who` holds `action` on any stream at all.
fn who_has(auth: &crate::auth::Auth, who: &Identity, action: Action) -> bool {
    match who {
        Identity::Anonymous => auth.config().anonymous.iter().any(|g| g.action.covers(action)),
        Identity::Principal(p) => p.grants.iter().any(|g| g.action.covers(action)),
    }
}

/// Answers a refused request and records it (a counter and an `AccessDenied` event).
fn deny(
    state: &ApiState,
    (reason, principal): &(&'static str, String),
    action: Option<&'static str>,
    stream: &str,
    remote: Option<IpAddr>,
    failure: Option<Failure>,
) -> Response {
    record(state, reason, principal, action, stream, remote);
    let (status, code, message) = match (&failure, *reason) {
        (Some(Failure::Throttled { .. }), _) => (
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "too many failed authentications from this address; retry later".to_owned(),
        ),
        (Some(Failure::SourceNotAllowed), _) => (
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "these credentials may not be used from this address".to_owned(),
        ),
        (Some(_), _) => (
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "the credentials are not valid (Basic user:password, or Bearer accessKeyId:secret)"
                .to_owned(),
        ),
        (None, "missing") => (
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "credentials are required (Authorization: Basic or Bearer)".to_owned(),
        ),
        (None, _) => (
            StatusCode::FORBIDDEN,
            "AccessDenied",
            match action {
                Some(a) if stream.is_empty() => {
                    format!("`{principal}` has no `{a}` grant for this")
                }
                Some(a) => format!("`{principal}` has no `{a}` grant on `{stream}`"),
                None => format!("`{principal}` has no grant on `{stream}`"),
            },
        ),
    };
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sluice\", charset=\"UTF-8\""),
        );
        h.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"sluice\""));
    }
    if let Some(Failure::Throttled { retry_after }) = failure {
        h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    }
    resp
}

/// For handlers: `who` must hold `action` on `stream` (a name from the body), else 403.
pub fn require(
    state: &ApiState,
    who: &Identity,
    action: Action,
    stream: &str,
) -> Result<(), Error> {
    if state.auth.allows(who, action, Some(stream)) {
        Ok(())
    } else {
        Err(Error::forbidden(format!("`{}` has no `{action}` grant on `{stream}`", who.name())))
    }
}
