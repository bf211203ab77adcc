//! The admin API of principals: `/v1/auth/users` and `/v1/auth/keys` (create, list, rotate,
//! delete; a key's secret is shown once, at creation or rotation), and `/v1/auth/whoami`. Every
//! change is a `PrincipalChanged` event naming who made it. The rules are in `super::access`
//! (`admin` on `*`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use super::error::{ApiJson, ApiResult};
use crate::auth::Identity;
use crate::config::{Action, Grant};
use crate::error::Error;
use crate::events::EventDetails;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/auth/users", get(list_users))
        .route("/v1/auth/users/{user}", put(put_user).delete(delete_user))
        .route("/v1/auth/keys", get(list_keys).post(create_key))
        .route("/v1/auth/keys/{key}/rotate", post(rotate_key))
        .route("/v1/auth/keys/{key}", delete(delete_key))
        .route("/v1/auth/whoami", get(whoami))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserBody {
    password: String,
    #[serde(default)]
    grants: Vec<Grant>,
    #[serde(default)]
    cidrs: Vec<IpNet>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyBody {
    #[serde(default)]
    grants: Vec<Grant>,
    #[serde(default)]
    cidrs: Vec<IpNet>,
    #[serde(default)]
    description: String,
}

fn changed(state: &ApiState, change: &'static str, kind: &'static str, name: &str, by: &Identity) {
    state.video.events().emit(
        "",
        EventDetails::PrincipalChanged {
            change,
            kind,
            name: name.to_owned(),
            by: by.name().to_owned(),
        },
    );
}

/// Runs an admin operation (catalog writes, password hashing) on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> ApiResult<T> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("admin task: {e}")))??)
}

async fn list_users(State(state): State<ApiState>) -> impl IntoResponse {
    Json(json!({ "users": state.auth.list_users() }))
}

async fn put_user(
    State(state): State<ApiState>,
    Extension(by): Extension<Identity>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UserBody>,
) -> ApiResult<impl IntoResponse> {
    let auth = state.clone();
    let n = name.clone();
    let (view, created) =
        blocking(move || auth.auth.put_user(&n, &body.password, body.grants, body.cidrs)).await?;
    changed(&state, if created { "created" } else { "updated" }, "user", &name, &by);
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view)))
}

async fn delete_user(
    State(state): State<ApiState>,
    Extension(by): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let auth = state.clone();
    let n = name.clone();
    blocking(move || auth.auth.delete(true, &n)).await?;
    changed(&state, "deleted", "user", &name, &by);
    Ok(StatusCode::NO_CONTENT)
}

async fn list_keys(State(state): State<ApiState>) -> impl IntoResponse {
    Json(json!({ "keys": state.auth.list_keys() }))
}

async fn create_key(
    State(state): State<ApiState>,
    Extension(by): Extension<Identity>,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    // The body is optional: an empty one makes a key without grants.
    let body: KeyBody = if body.iter().all(u8::is_ascii_whitespace) {
        KeyBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::invalid(format!("body: {e}")))?
    };
    let auth = state.clone();
    let (view, secret) =
        blocking(move || auth.auth.create_key(body.grants, body.cidrs, body.description)).await?;
    changed(&state, "created", "key", &view.access_key_id, &by);
    Ok((StatusCode::CREATED, Json(with_secret(&view, secret))))
}

async fn rotate_key(
    State(state): State<ApiState>,
    Extension(by): Extension<Identity>,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let auth = state.clone();
    let i = id.clone();
    let (view, secret) = blocking(move || auth.auth.rotate_key(&i)).await?;
    changed(&state, "rotated", "key", &id, &by);
    Ok(Json(with_secret(&view, secret)))
}

async fn delete_key(
    State(state): State<ApiState>,
    Extension(by): Extension<Identity>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let auth = state.clone();
    let i = id.clone();
    blocking(move || auth.auth.delete(false, &i)).await?;
    changed(&state, "deleted", "key", &id, &by);
    Ok(StatusCode::NO_CONTENT)
}

/// The key's view with its secret, the only time the secret is shown.
fn with_secret(view: &crate::auth::KeyView, secret: String) -> serde_json::Value {
    let mut v = serde_json::to_value(view).unwrap_or_default();
    v["secretAccessKey"] = secret.into();
    v
}

/// Who the credentials belong to and what they may do.
async fn whoami(
    State(state): State<ApiState>,
    Extension(who): Extension<Identity>,
) -> impl IntoResponse {
    let grants: Vec<Grant> = match &who {
        Identity::Anonymous => state.auth.config().anonymous.clone(),
        Identity::Principal(p) => p.grants.clone(),
    };
    let admin = state.auth.allows(&who, Action::Admin, None);
    // A client without credentials that may watch nothing: it should ask for them (the web UI
    // shows its sign-in form).
    let watches = grants.iter().any(|g| g.action.covers(Action::Playback));
    let sign_in_required = state.auth.enabled() && matches!(who, Identity::Anonymous) && !watches;
    Json(json!({
        "authEnabled": state.auth.enabled(),
        "signInRequired": sign_in_required,
        "principal": who.name(),
        "grants": grants,
        "admin": admin,
    }))
}
