//! Staff accounts, their roles and their sessions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{execute, new_id, now_ms, with_pool, Store, StoreError, StoreResult};

/// What a staff member may do. A user may hold several roles.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Nurse,
    Patrol,
    /// Receives alarms nobody acknowledged, after the escalation chain.
    Supervisor,
    /// A doctor, physiotherapist, social worker or interpreter who joins a
    /// nurse's video visit when invited.
    Professional,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Nurse,
        Role::Patrol,
        Role::Supervisor,
        Role::Professional,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Nurse => "nurse",
            Role::Patrol => "patrol",
            Role::Supervisor => "supervisor",
            Role::Professional => "professional",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "nurse" => Ok(Role::Nurse),
            "patrol" => Ok(Role::Patrol),
            "supervisor" => Ok(Role::Supervisor),
            "professional" => Ok(Role::Professional),
            other => Err(format!(
                "unknown role {other:?}; the roles are admin, nurse, patrol, supervisor and professional"
            )),
        }
    }
}

/// A staff account as shown to administrators (never with its password hash).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    /// Preferred user-interface language (`fi`, `sv` or `en`); unset follows the browser.
    pub language: Option<String>,
    pub disabled: bool,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub language: Option<String>,
}

/// The user behind a valid session token.
#[derive(Clone, Debug)]
pub struct SessionUser {
    pub user: User,
    pub expires_at: i64,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    username: String,
    display_name: String,
    language: Option<String>,
    disabled: bool,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    user_id: String,
    role: String,
}

fn assemble(rows: Vec<UserRow>, roles: Vec<RoleRow>) -> StoreResult<Vec<User>> {
    let mut users: Vec<User> = rows
        .into_iter()
        .map(|r| User {
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            roles: Vec::new(),
            language: r.language,
            disabled: r.disabled,
            created_at: r.created_at,
        })
        .collect();
    for row in roles {
        let role: Role = row.role.parse().map_err(StoreError::Corrupt)?;
        if let Some(user) = users.iter_mut().find(|u| u.id == row.user_id) {
            user.roles.push(role);
        }
    }
    for user in &mut users {
        user.roles.sort();
    }
    Ok(users)
}

const USER_COLUMNS: &str = "id, username, display_name, language, disabled, created_at";

impl Store {
    #[tracing::instrument(skip_all, fields(username = %new.username))]
    pub async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        let id = new_id();
        let created_at = now_ms();
        let mut roles = new.roles.clone();
        roles.sort();
        roles.dedup();
        with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO users (id, username, display_name, password_hash, language, disabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, FALSE, $6)",
            )
            .bind(&id)
            .bind(&new.username)
            .bind(&new.display_name)
            .bind(&new.password_hash)
            .bind(&new.language)
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
            for role in &roles {
                sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(role.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "user"))?;
        Ok(User {
            id,
            username: new.username,
            display_name: new.display_name,
            roles,
            language: new.language,
            disabled: false,
            created_at,
        })
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let (rows, roles) = with_pool!(self, pool => async {
            let rows = sqlx::query_as::<_, UserRow>(&sql).fetch_all(pool).await?;
            let roles = sqlx::query_as::<_, RoleRow>("SELECT user_id, role FROM user_roles")
                .fetch_all(pool)
                .await?;
            Ok::<_, sqlx::Error>((rows, roles))
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "user"))?;
        assemble(rows, roles)
    }

    pub async fn get_user(&self, id: &str) -> StoreResult<User> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let (rows, roles) = with_pool!(self, pool => async {
            let rows = sqlx::query_as::<_, UserRow>(&sql).bind(id).fetch_all(pool).await?;
            let roles = sqlx::query_as::<_, RoleRow>("SELECT user_id, role FROM user_roles WHERE user_id = $1")
                .bind(id)
                .fetch_all(pool)
                .await?;
            Ok::<_, sqlx::Error>((rows, roles))
        }
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "user"))?;
        assemble(rows, roles)?
            .pop()
            .ok_or(StoreError::NotFound("user"))
    }

    /// The account and password hash for a sign-in attempt.
    pub async fn user_credentials(&self, username: &str) -> StoreResult<Option<(String, String)>> {
        with_pool!(self, pool => sqlx::query_as::<_, (String, String)>(
            "SELECT id, password_hash FROM users WHERE username = $1 AND NOT disabled",
        )
        .bind(username)
        .fetch_optional(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "user"))
    }

    pub async fn set_user_language(
        &self,
        user_id: &str,
        language: Option<&str>,
    ) -> StoreResult<()> {
        let done =
            execute!(self, pool => sqlx::query("UPDATE users SET language = $1 WHERE id = $2")
            .bind(language)
            .bind(user_id)
            .execute(pool)
            .await)
            .map_err(|e| StoreError::from_sqlx(e, "user"))?;
        if done == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        execute!(self, pool => sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now_ms())
        .bind(expires_at)
        .execute(pool)
        .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "session"))
    }

    /// The user of an unexpired session of an enabled account.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<SessionUser>> {
        let found = with_pool!(self, pool => sqlx::query_as::<_, (String, i64)>(
            "SELECT s.user_id, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT u.disabled",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)
        .map_err(|e| StoreError::from_sqlx(e, "session"))?;
        match found {
            None => Ok(None),
            Some((user_id, expires_at)) => Ok(Some(SessionUser {
                user: self.get_user(&user_id).await?,
                expires_at,
            })),
        }
    }

    pub async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        execute!(self, pool => sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(pool)
            .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "session"))
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_sessions(&self, now: i64) -> StoreResult<u64> {
        execute!(self, pool => sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await)
        .map_err(|e| StoreError::from_sqlx(e, "session"))
    }
}
