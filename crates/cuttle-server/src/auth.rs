//! Who is calling, and whether they may: API keys, browser sessions, passwords, permissions.
//!
//! [`Caller`] is the one place a request is authenticated: an API key (`X-Octopus-ApiKey`
//! header, `apikey` query parameter, or `Authorization: Bearer API-…`) or a session cookie.
//! [`Caller::require`] is the one place a permission is checked, so roles and teams can grow
//! there without touching handlers.
//!
//! Credentials are stored hashed: API keys (high-entropy) with SHA-256, so they can be looked
//! up by hash; passwords with argon2.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use chrono::Utc;
use cuttle_api::{API_KEY_HEADER, CSRF_HEADER};
use cuttle_domain::User;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::cache::CachedCredential;
use crate::error::ApiError;
use crate::state::AppState;

/// The browser session cookie (HttpOnly).
pub(crate) const SESSION_COOKIE: &str = "cuttle-session";
/// The cookie carrying the CSRF token that scripts echo in [`CSRF_HEADER`].
pub(crate) const CSRF_COOKIE: &str = "Octopus-Csrf-Token";

/// The smallest number of characters after `API-` in a key.
pub(crate) const MIN_API_KEY_BODY_CHARS: usize = 26;
/// How many characters after `API-` a generated key has.
const GENERATED_API_KEY_BODY_CHARS: usize = 30;

/// What a caller may do. Administrators may do everything; other users may view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permission {
    /// Read configuration: spaces, environments, projects, targets…
    ViewConfiguration,
    /// Create, change and delete configuration in a space.
    EditConfiguration,
    /// Create, change and delete spaces.
    ManageSpaces,
    /// See and manage other users and their API keys.
    ManageUsers,
}

/// The authenticated user behind a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user: User,
}

impl Caller {
    /// Refuses with 403 unless the caller has `permission`.
    pub(crate) fn require(&self, permission: Permission) -> Result<(), ApiError> {
        let allowed = self.user.is_administrator || permission == Permission::ViewConfiguration;
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} does not have the {permission:?} permission",
                self.user.username
            )))
        }
    }

    /// Refuses with 403 unless the caller is `user_id` or may manage users.
    pub(crate) fn require_self_or(&self, user_id: &str) -> Result<(), ApiError> {
        if self.user.id == user_id {
            Ok(())
        } else {
            self.require(Permission::ManageUsers)
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The response cache authenticates GETs before routing; reuse its answer.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        authenticate(state, parts).await
    }
}

/// Authenticates a request by its API key or session cookie; 401 without a valid one.
pub(crate) async fn authenticate(state: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    if let Some(api_key) = presented_api_key(parts) {
        return authenticate_api_key(state, &api_key).await;
    }
    if let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) {
        return authenticate_session(state, &token, &parts.method, &parts.headers).await;
    }
    Err(ApiError::Unauthorized(
        "You must sign in or send an API key in the X-Octopus-ApiKey header to do this.".to_owned(),
    ))
}

/// The presented key, looked up by hash: from the cache while the store is unchanged.
async fn authenticate_api_key(state: &AppState, api_key: &str) -> Result<Caller, ApiError> {
    let invalid = || ApiError::Unauthorized("The API key you provided was not valid.".to_owned());
    if !is_well_formed_api_key(api_key) {
        return Err(invalid());
    }
    let key_hash = hash_api_key(api_key);
    let generation = state.store().change_generation();
    let credential = match state.credential_cache.get(&key_hash, generation) {
        Some(credential) => credential,
        None => {
            let record = state
                .store()
                .find_api_key_by_hash(&key_hash)
                .await?
                .ok_or_else(invalid)?;
            let user = load_user(state, &record.user_id).await?;
            let credential = CachedCredential {
                user,
                expires: record.expires,
                csrf_token: None,
            };
            state
                .credential_cache
                .put(key_hash, generation, credential.clone());
            credential
        }
    };
    if credential
        .expires
        .is_some_and(|expires| expires <= Utc::now())
    {
        return Err(ApiError::Unauthorized(
            "The API key you provided has expired.".to_owned(),
        ));
    }
    active(credential.user)
}

async fn authenticate_session(
    state: &AppState,
    token: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let expired =
        || ApiError::Unauthorized("Your session has ended; please sign in again.".to_owned());
    let token_hash = hash_secret(token);
    let generation = state.store().change_generation();
    let credential = match state.credential_cache.get(&token_hash, generation) {
        Some(credential) => credential,
        None => {
            let session = state
                .store()
                .find_session(&token_hash)
                .await?
                .ok_or_else(expired)?;
            let user = load_user(state, &session.user_id).await?;
            let credential = CachedCredential {
                user,
                expires: Some(session.expires),
                csrf_token: Some(session.csrf_token),
            };
            state
                .credential_cache
                .put(token_hash, generation, credential.clone());
            credential
        }
    };
    if credential
        .expires
        .is_some_and(|expires| expires <= Utc::now())
    {
        return Err(expired());
    }
    let is_safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !is_safe {
        let presented = headers
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let expected = credential.csrf_token.as_deref().unwrap_or_default();
        if expected.is_empty() || !constant_time_equal(presented.as_bytes(), expected.as_bytes()) {
            return Err(ApiError::Forbidden(format!(
                "A request made with a browser session must repeat its CSRF token in the {CSRF_HEADER} header."
            )));
        }
    }
    active(credential.user)
}

async fn load_user(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    state.store().get_resource(user_id).await?.ok_or_else(|| {
        ApiError::Unauthorized("The user of this credential no longer exists.".to_owned())
    })
}

fn active(user: User) -> Result<Caller, ApiError> {
    if !user.is_active {
        return Err(ApiError::Unauthorized(format!(
            "The user {} is disabled.",
            user.username
        )));
    }
    Ok(Caller { user })
}

/// The API key the request carries, from the header, the query string or a bearer token.
fn presented_api_key(parts: &Parts) -> Option<String> {
    let from_header = parts
        .headers
        .get(API_KEY_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_owned);
    let from_query = || {
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .find(|(name, _)| name.eq_ignore_ascii_case("apikey"))
            .map(|(_, value)| value.trim().to_owned())
            .filter(|key| !key.is_empty())
    };
    let from_bearer = || {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| token.starts_with("API-"))
            .map(str::to_owned)
    };
    from_header.or_else(from_query).or_else(from_bearer)
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| value.to_owned())
}

/// `API-` followed by at least 26 upper-case letters and digits.
pub fn is_well_formed_api_key(api_key: &str) -> bool {
    api_key.strip_prefix("API-").is_some_and(|body| {
        body.len() >= MIN_API_KEY_BODY_CHARS
            && body.len() <= 200
            && body
                .bytes()
                .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
    })
}

/// A new random API key: `API-` and 30 upper-case letters and digits (about 155 bits).
pub fn generate_api_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..GENERATED_API_KEY_BODY_CHARS)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("API-{body}")
}

/// A new random token for sessions and CSRF, hex-encoded (256 bits).
pub(crate) fn generate_token() -> String {
    let bytes: [u8; 32] = rand::rngs::OsRng.r#gen();
    hex::encode(bytes)
}

/// The stored form of an API key.
pub fn hash_api_key(api_key: &str) -> String {
    hash_secret(api_key)
}

/// SHA-256 in hex, for high-entropy secrets that are looked up by hash.
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| ApiError::Internal(error.to_string().into()))
}

/// Whether `password` matches the stored PHC string. A malformed hash never matches.
pub(crate) fn verify_password(password: &str, password_hash: &str) -> bool {
    PasswordHash::new(password_hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let first = generate_api_key();
        assert!(is_well_formed_api_key(&first), "{first}");
        assert_eq!(first.len(), 4 + 30);
        assert_ne!(first, generate_api_key());
    }

    #[test]
    fn key_format_is_checked() {
        assert!(is_well_formed_api_key(&format!("API-{}", "A1".repeat(13))));
        assert!(!is_well_formed_api_key(&format!("API-{}", "A".repeat(25))));
        assert!(!is_well_formed_api_key(&format!("API-{}", "a".repeat(30))));
        assert!(!is_well_formed_api_key(&format!("KEY-{}", "A".repeat(30))));
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn cookies_are_read_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; cuttle-session=abc".parse().unwrap());
        assert_eq!(
            cookie_value(&headers, SESSION_COOKIE).as_deref(),
            Some("abc")
        );
        assert_eq!(cookie_value(&headers, "missing"), None);
    }
}
