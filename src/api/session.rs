//! Sign-in, sign-out and the signed-in user's own settings.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ErrorBody};
use crate::auth::{self, Authenticated};
use crate::i18n::Lang;
use crate::startup::{AppState, PeerAddr};
use crate::store::{now_ms, User};

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer <token>`.
    pub token: String,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_at: i64,
    pub user: User,
}

/// What a sign-in attempt came to.
pub enum LoginOutcome {
    Success(LoginResponse),
    Refused(ApiError),
}

/// Checks credentials with throttling and, on success, opens a session.
/// Shared by the API and the console sign-in form.
pub async fn attempt_login(
    state: &AppState,
    username: &str,
    password: &str,
    peer: Option<SocketAddr>,
) -> Result<LoginOutcome, ApiError> {
    let addr = peer.map(|p| p.ip());
    let username = username.trim();
    if let Err(wait) = state.throttle.check(username, addr, Instant::now()) {
        tracing::warn!(peer = ?addr, "sign-in refused: throttled");
        metrics::counter!("etahoiva_logins_total", "outcome" => "throttled").increment(1);
        return Ok(LoginOutcome::Refused(ApiError::TooManyRequests {
            retry_after_secs: wait.as_secs().max(1),
        }));
    }
    let credentials = state.store.user_credentials(username).await?;
    let (user_id, stored) = match &credentials {
        Some((id, hash)) => (Some(id.clone()), hash.clone()),
        None => (None, auth::decoy_hash().to_string()),
    };
    let given = password.to_string();
    let matches = tokio::task::spawn_blocking(move || auth::verify_password(&given, &stored))
        .await
        .map_err(|e| ApiError::Internal(format!("password check failed: {e}")))?;
    let Some(user_id) = user_id.filter(|_| matches) else {
        let lock = state.throttle.failed(username, addr, Instant::now());
        tracing::warn!(peer = ?addr, locked = ?lock, "sign-in failed");
        metrics::counter!("etahoiva_logins_total", "outcome" => "failed").increment(1);
        if let Err(e) = state
            .store
            .audit(
                None,
                "login.failed",
                None,
                Some(&format!("username={username:?}")),
            )
            .await
        {
            tracing::error!(error = %e, "cannot write audit entry");
        }
        return Ok(LoginOutcome::Refused(ApiError::InvalidCredentials));
    };
    state.throttle.succeeded(username);
    let token = auth::new_token();
    let expires_at = now_ms() + (state.settings.session_ttl_secs as i64) * 1000;
    state
        .store
        .create_session(&auth::token_hash(&token), &user_id, expires_at)
        .await?;
    state
        .store
        .audit(Some(&user_id), "login", None, None)
        .await?;
    metrics::counter!("etahoiva_logins_total", "outcome" => "success").increment(1);
    tracing::info!(user_id = %user_id, "signed in");
    let user = state.store.get_user(&user_id).await?;
    Ok(LoginOutcome::Success(LoginResponse {
        token,
        expires_at,
        user,
    }))
}

/// Sign in with a user name and password.
///
/// Returns a bearer token and also sets the console session cookie.
/// Repeated failures for one user name or address are throttled (429).
#[utoipa::path(
    post,
    path = "/login",
    tag = "session",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, description = "Wrong user name or password", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    match attempt_login(
        &state,
        &request.username,
        &request.password,
        peer.map(|p| p.0 .0),
    )
    .await?
    {
        LoginOutcome::Success(ok) => {
            let cookie = auth::session_cookie(&ok.token, state.settings.session_ttl_secs);
            Ok(([(header::SET_COOKIE, cookie)], axum::Json(ok)).into_response())
        }
        LoginOutcome::Refused(err) => Err(err),
    }
}

/// Sign out: the token stops working at once and the cookie is cleared.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    Authenticated(session): Authenticated,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = auth::request_token(&headers) {
        state
            .store
            .delete_session(&auth::token_hash(&token))
            .await?;
    }
    state
        .store
        .audit(Some(&session.user.id), "logout", None, None)
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::cleared_session_cookie())],
    )
        .into_response())
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/me",
    tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in user", body = User),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn me(Authenticated(session): Authenticated) -> ApiJson<User> {
    ApiJson(session.user)
}

#[derive(Deserialize, ToSchema)]
pub struct LanguageSetting {
    /// `fi`, `sv`, `en`, or null to follow the browser.
    pub language: Option<String>,
}

/// Set the signed-in user's interface language.
#[utoipa::path(
    put,
    path = "/me/language",
    tag = "session",
    security(("bearer" = [])),
    request_body = LanguageSetting,
    responses(
        (status = 200, description = "Saved", body = User),
        (status = 400, description = "Unknown language", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn set_language(
    State(state): State<AppState>,
    Authenticated(session): Authenticated,
    ApiJson(setting): ApiJson<LanguageSetting>,
) -> Result<ApiJson<User>, ApiError> {
    let language = match setting.language.as_deref() {
        None => None,
        Some(code) => Some(
            Lang::parse(code)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("unknown language {code:?}; use fi, sv or en"))
                })?
                .code(),
        ),
    };
    state
        .store
        .set_user_language(&session.user.id, language)
        .await?;
    Ok(ApiJson(state.store.get_user(&session.user.id).await?))
}
