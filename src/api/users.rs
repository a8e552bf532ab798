//! Staff accounts, for administrators.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ErrorBody};
use crate::auth::{self, Admin, RequireRole};
use crate::i18n::Lang;
use crate::startup::AppState;
use crate::store::{NewUser, Role, User};

/// List every staff account.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All accounts", body = Vec<User>),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
) -> Result<ApiJson<Vec<User>>, ApiError> {
    let users = state.store.list_users().await?;
    state
        .store
        .audit(Some(&session.user.id), "users.list", None, None)
        .await?;
    Ok(ApiJson(users))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateUser {
    pub username: String,
    pub display_name: Option<String>,
    pub roles: Vec<Role>,
    /// At least 10 characters.
    pub password: String,
    pub language: Option<String>,
}

/// Validates a user name: 2-64 characters of letters, digits, `.`, `_`, `-`.
pub fn validate_username(name: &str) -> Result<(), String> {
    let ok_len = (2..=64).contains(&name.chars().count());
    let ok_chars = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "invalid user name {name:?}: use 2 to 64 letters, digits, '.', '_' or '-'"
        ))
    }
}

/// Builds a new account from its parts, checking each; shared by the API and the CLI.
pub fn new_user(
    username: &str,
    display_name: Option<&str>,
    roles: Vec<Role>,
    password: &str,
    language: Option<&str>,
) -> Result<NewUser, String> {
    validate_username(username)?;
    if roles.is_empty() {
        return Err("give at least one role: admin, nurse or patrol".into());
    }
    let language = match language {
        None => None,
        Some(code) => Some(
            Lang::parse(code)
                .ok_or_else(|| format!("unknown language {code:?}; use fi, sv or en"))?
                .code()
                .to_string(),
        ),
    };
    let password_hash = auth::hash_password(password).map_err(|e| e.to_string())?;
    Ok(NewUser {
        username: username.to_string(),
        display_name: display_name.unwrap_or(username).to_string(),
        password_hash,
        roles,
        language,
    })
}

/// Create a staff account.
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 400, description = "Invalid account", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 409, description = "The user name is taken", body = ErrorBody),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    RequireRole(session, ..): RequireRole<Admin>,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, ApiJson<User>), ApiError> {
    let new = tokio::task::spawn_blocking(move || {
        new_user(
            &body.username,
            body.display_name.as_deref(),
            body.roles,
            &body.password,
            body.language.as_deref(),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(ApiError::BadRequest)?;
    let user = state.store.create_user(new).await?;
    state
        .store
        .audit(Some(&session.user.id), "users.create", Some(&user.id), None)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(user)))
}
