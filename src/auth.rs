//! Staff authentication: password hashing, session tokens, sign-in throttling
//! and the extractors that guard every route by role.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::startup::AppState;
use crate::store::{now_ms, Role, SessionUser, Store, StoreError};

/// Name of the session cookie used by the web consoles.
pub const SESSION_COOKIE: &str = "etahoiva_session";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the password must be at least {0} characters long")]
    WeakPassword(usize),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

pub const MIN_PASSWORD_LEN: usize = 10;

/// Hashes a password with Argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AuthError::WeakPassword(MIN_PASSWORD_LEN));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the user name is unknown
/// so that a failed sign-in takes as long whether or not the account exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

/// A new random session token (256 bits, URL-safe base64).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A random password for accounts created without one.
pub fn new_password() -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens are stored only as their SHA-256 digest.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bearer token of a request, from the `Authorization` header or the session cookie.
pub fn request_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
            return Some(token.trim().to_string());
        }
        return None;
    }
    cookie_value(headers, SESSION_COOKIE)
}

/// The value of one cookie of a request.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that carries a session to the web consoles.
pub fn session_cookie(token: &str, max_age_secs: u64) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age_secs}; Secure; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that ends the console session.
pub fn cleared_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict")
}

/// Why a request carries no valid session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoSession {
    Missing,
    InvalidOrExpired,
}

/// Looks up the session of a request.
pub async fn session_of(
    store: &Store,
    headers: &HeaderMap,
) -> Result<Result<SessionUser, NoSession>, StoreError> {
    let Some(token) = request_token(headers) else {
        return Ok(Err(NoSession::Missing));
    };
    Ok(store
        .session_user(&token_hash(&token), now_ms())
        .await?
        .ok_or(NoSession::InvalidOrExpired))
}

/// The path as the client sent it (nested routers see only their part).
fn original_path(parts: &Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.path().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string())
}

/// A request from a signed-in staff member, any role.
#[derive(Clone, Debug)]
pub struct Authenticated(pub SessionUser);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match session_of(&state.store, &parts.headers).await? {
            Ok(user) => Ok(Authenticated(user)),
            Err(why) => {
                tracing::warn!(path = %original_path(parts), reason = ?why, "unauthenticated request refused");
                metrics::counter!("etahoiva_auth_refusals_total", "status" => "401").increment(1);
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// A role as a type, so routes name the role they require.
pub trait RoleMarker: Send + Sync + 'static {
    const ROLE: Role;
}
pub struct Admin;
pub struct Nurse;
pub struct Patrol;
pub struct Supervisor;
impl RoleMarker for Supervisor {
    const ROLE: Role = Role::Supervisor;
}
impl RoleMarker for Admin {
    const ROLE: Role = Role::Admin;
}
impl RoleMarker for Nurse {
    const ROLE: Role = Role::Nurse;
}
impl RoleMarker for Patrol {
    const ROLE: Role = Role::Patrol;
}

/// One role, or a tuple of roles any of which is enough.
pub trait RoleSet: Send + Sync + 'static {
    fn allows(held: &[Role]) -> bool;
    fn describe() -> String;
}

impl<R: RoleMarker> RoleSet for R {
    fn allows(held: &[Role]) -> bool {
        held.contains(&R::ROLE)
    }
    fn describe() -> String {
        R::ROLE.to_string()
    }
}

impl<A: RoleMarker, B: RoleMarker> RoleSet for (A, B) {
    fn allows(held: &[Role]) -> bool {
        held.contains(&A::ROLE) || held.contains(&B::ROLE)
    }
    fn describe() -> String {
        format!("{} or {}", A::ROLE, B::ROLE)
    }
}

impl<A: RoleMarker, B: RoleMarker, C: RoleMarker> RoleSet for (A, B, C) {
    fn allows(held: &[Role]) -> bool {
        held.contains(&A::ROLE) || held.contains(&B::ROLE) || held.contains(&C::ROLE)
    }
    fn describe() -> String {
        format!("{}, {} or {}", A::ROLE, B::ROLE, C::ROLE)
    }
}

impl<A: RoleMarker, B: RoleMarker, C: RoleMarker, D: RoleMarker> RoleSet for (A, B, C, D) {
    fn allows(held: &[Role]) -> bool {
        <(A, B, C)>::allows(held) || held.contains(&D::ROLE)
    }
    fn describe() -> String {
        format!("{}, {}, {} or {}", A::ROLE, B::ROLE, C::ROLE, D::ROLE)
    }
}

/// A request from a signed-in staff member holding a role of `R`.
pub struct RequireRole<R: RoleSet>(pub SessionUser, pub PhantomData<R>);

impl<R: RoleSet> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(session) = Authenticated::from_request_parts(parts, state).await?;
        if R::allows(&session.user.roles) {
            return Ok(RequireRole(session, PhantomData));
        }
        let detail = format!(
            "{} {} requires {}",
            parts.method,
            parts.uri.path(),
            R::describe()
        );
        tracing::warn!(user_id = %session.user.id, %detail, "request refused: role missing");
        metrics::counter!("etahoiva_auth_refusals_total", "status" => "403").increment(1);
        if let Err(e) = state
            .store
            .audit(Some(&session.user.id), "access.denied", None, Some(&detail))
            .await
        {
            tracing::error!(error = %e, "cannot write audit entry for a denied request");
        }
        Err(ApiError::Forbidden)
    }
}

/// Throttles repeated failed sign-ins per user name and per client address.
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    lockout: Duration,
    entries: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

/// Addresses tolerate more failures than one user name: a care unit's
/// workstations may share one address.
const ADDRESS_FACTOR: u32 = 4;
const MAX_TRACKED: usize = 100_000;

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration, lockout: Duration) -> LoginThrottle {
        LoginThrottle {
            max_failures: max_failures.max(1),
            window,
            lockout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, addr: Option<IpAddr>) -> Vec<(String, u32)> {
        let mut keys = vec![(format!("user:{}", username.to_lowercase()), 1)];
        if let Some(addr) = addr {
            keys.push((format!("addr:{addr}"), ADDRESS_FACTOR));
        }
        keys
    }

    /// `Err(wait)` while a sign-in for this user name or address is locked out.
    pub fn check(
        &self,
        username: &str,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let wait = Self::keys(username, addr)
            .iter()
            .filter_map(|(key, _)| entries.get(key)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failure; returns the lockout it started, if any.
    pub fn failed(&self, username: &str, addr: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_TRACKED {
            let window = self.window;
            entries.retain(|_, f| {
                now.duration_since(f.first) < window || f.locked_until.is_some_and(|u| u > now)
            });
        }
        let mut longest = None;
        for (key, factor) in Self::keys(username, addr) {
            let entry = entries.entry(key).or_insert(Failures {
                count: 0,
                first: now,
                locked_until: None,
            });
            if now.duration_since(entry.first) >= self.window {
                *entry = Failures {
                    count: 0,
                    first: now,
                    locked_until: None,
                };
            }
            entry.count += 1;
            let limit = self.max_failures * factor;
            if entry.count >= limit {
                let doublings = (entry.count - limit).min(16);
                let lock = (self.lockout * 2u32.pow(doublings)).min(self.window.max(self.lockout));
                entry.locked_until = Some(now + lock);
                longest = longest.max(Some(lock));
            }
        }
        longest
    }

    /// A successful sign-in clears the user name's failures (not the address's).
    pub fn succeeded(&self, username: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&format!("user:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip_and_rejections() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(AuthError::WeakPassword(_))
        ));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn bearer_header_wins_over_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=b; etahoiva_session=fromcookie".parse().unwrap(),
        );
        assert_eq!(request_token(&headers).as_deref(), Some("fromcookie"));
        headers.insert(header::AUTHORIZATION, "Bearer fromheader".parse().unwrap());
        assert_eq!(request_token(&headers).as_deref(), Some("fromheader"));
        headers.insert(header::AUTHORIZATION, "Basic xyz".parse().unwrap());
        assert_eq!(request_token(&headers), None);
    }

    #[test]
    fn throttle_locks_after_limit_and_doubles() {
        let t = LoginThrottle::new(3, Duration::from_secs(900), Duration::from_secs(10));
        let now = Instant::now();
        let addr: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        assert_eq!(t.failed("anna", addr, now), None);
        assert_eq!(t.failed("Anna", addr, now), None);
        assert_eq!(t.failed("anna", addr, now), Some(Duration::from_secs(10)));
        assert_eq!(t.check("ANNA", None, now), Err(Duration::from_secs(10)));
        assert!(t.check("other", None, now).is_ok());
        assert_eq!(t.failed("anna", addr, now), Some(Duration::from_secs(20)));
        assert!(t.check("anna", addr, now + Duration::from_secs(21)).is_ok());
        // The window resets the count.
        let later = now + Duration::from_secs(901);
        assert_eq!(t.failed("anna", None, later), None);
        t.succeeded("anna");
        assert!(t.check("anna", None, later).is_ok());
    }

    #[test]
    fn address_is_locked_after_many_user_names() {
        let t = LoginThrottle::new(2, Duration::from_secs(900), Duration::from_secs(5));
        let now = Instant::now();
        let addr: Option<IpAddr> = Some("198.51.100.7".parse().unwrap());
        for i in 0..8 {
            t.failed(&format!("user{i}"), addr, now);
        }
        assert!(t.check("fresh-name", addr, now).is_err());
        assert!(t.check("fresh-name", None, now).is_ok());
    }
}
