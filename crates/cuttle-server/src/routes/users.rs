//! `/api/users`: users (administrators manage them; everyone edits their own name, email and
//! password), API keys, and signing in and out with a password.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use cuttle_api::{
    ApiKeyCreatedResource, ApiKeyResource, CreateApiKeyRequest, Links, LoginRequest, UserRequest,
    UserResource,
};
use cuttle_domain::{Resource as _, ResourceKind, User};
use cuttle_store::{ApiKeyRecord, Change, DocumentQuery, SessionRecord};

use super::crud::{collection, document_query};
use crate::auth::{
    CSRF_COOKIE, Caller, Permission, SESSION_COOKIE, cookie_value, generate_api_key,
    generate_token, hash_api_key, hash_password, hash_secret, verify_password,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ListParameters};
use crate::state::AppState;

/// How long a browser session lasts, and with "remember me".
const SESSION_HOURS: i64 = 12;
const REMEMBERED_SESSION_DAYS: i64 = 20;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/users", get(list_users).post(create_user))
        .route("/api/users/login", post(login))
        .route("/api/users/logout", post(logout))
        .route(
            "/api/users/{user_id}",
            get(get_user).put(modify_user).delete(delete_user),
        )
        .route(
            "/api/users/{user_id}/apikeys",
            get(list_api_keys).post(create_api_key),
        )
        .route(
            "/api/users/{user_id}/apikeys/{key_id}",
            delete(revoke_api_key),
        )
}

fn user_resource(user: &User) -> UserResource {
    UserResource {
        id: user.id.clone(),
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        email_address: user.email_address.clone(),
        is_active: user.is_active,
        is_service: user.is_service,
        is_administrator: user.is_administrator,
        can_password_be_edited: !user.is_service,
        is_requestor: false,
        identities: Vec::new(),
        links: Links::from([
            ("Self".to_owned(), format!("/api/users/{}", user.id)),
            (
                "ApiKeys".to_owned(),
                format!("/api/users/{}/apikeys", user.id),
            ),
        ]),
    }
}

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageUsers)?;
    let page = state
        .store()
        .list_resources::<User>(&document_query(&parameters))
        .await?;
    let items: Vec<UserResource> = page.items.iter().map(user_resource).collect();
    Ok(Json(collection(
        "User",
        page.total,
        items,
        &parameters,
        "/api/users",
    ))
    .into_response())
}

/// `me` stands for the caller wherever a user id goes.
fn resolve_user_id(caller: &Caller, user_id: &str) -> String {
    if user_id.eq_ignore_ascii_case("me") {
        caller.user.id.clone()
    } else {
        user_id.to_owned()
    }
}

async fn load_user(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    state
        .store()
        .get_resource::<User>(user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {user_id} was not found")))
}

async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<UserResource>, ApiError> {
    let user_id = resolve_user_id(&caller, &user_id);
    caller.require_self_or(&user_id)?;
    Ok(Json(user_resource(&load_user(&state, &user_id).await?)))
}

/// Passwords are at least this long, and at most [`MAXIMUM_PASSWORD_LENGTH`].
const MINIMUM_PASSWORD_LENGTH: usize = 8;
const MAXIMUM_PASSWORD_LENGTH: usize = 256;

/// The argon2 hash of an acceptable password, or why it is not acceptable.
async fn new_password_hash(password: &str) -> Result<String, ApiError> {
    let length = password.chars().count();
    if !(MINIMUM_PASSWORD_LENGTH..=MAXIMUM_PASSWORD_LENGTH).contains(&length) {
        return Err(ApiError::bad_request(format!(
            "Password must be {MINIMUM_PASSWORD_LENGTH} to {MAXIMUM_PASSWORD_LENGTH} characters long"
        )));
    }
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?
}

/// Whether `password` matches the stored hash, checked off the async threads (argon2 is slow
/// on purpose).
async fn password_matches(password: &str, password_hash: &str) -> Result<bool, ApiError> {
    let (password, password_hash) = (password.to_owned(), password_hash.to_owned());
    tokio::task::spawn_blocking(move || verify_password(&password, &password_hash))
        .await
        .map_err(ApiError::internal)
}

/// Applies a request's fields to `user` (all of them: the caller checked who may set what).
async fn apply_user_request(user: &mut User, request: &UserRequest) -> Result<(), ApiError> {
    if let Some(username) = &request.username {
        user.username.clone_from(username);
    }
    if let Some(display_name) = &request.display_name {
        user.display_name.clone_from(display_name);
    }
    if let Some(email) = &request.email_address {
        let email = email.trim();
        user.email_address = (!email.is_empty()).then(|| email.to_owned());
    }
    if let Some(is_active) = request.is_active {
        user.is_active = is_active;
    }
    if let Some(is_service) = request.is_service {
        user.is_service = is_service;
    }
    if let Some(is_administrator) = request.is_administrator {
        user.is_administrator = is_administrator;
    }
    if user.is_service {
        if request.password.is_some() {
            return Err(ApiError::bad_request(
                "Password: a service account has no password; it signs in with API keys",
            ));
        }
        user.password_hash = None;
    } else if let Some(password) = &request.password {
        user.password_hash = Some(new_password_hash(password).await?);
    } else if user.password_hash.is_none() {
        return Err(ApiError::bad_request(
            "Password is required for a user who signs in (or set IsService for an account that uses API keys only)",
        ));
    }
    if user
        .email_address
        .as_ref()
        .is_some_and(|email| email.chars().count() > 256)
    {
        return Err(ApiError::bad_request(
            "EmailAddress must be at most 256 characters long",
        ));
    }
    let errors = user.normalize_and_validate();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Refuses a change that would leave no active administrator who can sign in to fix things.
async fn keep_an_administrator(
    state: &AppState,
    changed_id: &str,
    after: Option<&User>,
) -> Result<(), ApiError> {
    if after.is_some_and(|user| user.is_active && user.is_administrator) {
        return Ok(());
    }
    let users = state
        .store()
        .list_resources::<User>(&DocumentQuery {
            take: i64::MAX,
            ..DocumentQuery::default()
        })
        .await?;
    let others = users
        .items
        .iter()
        .filter(|user| user.id != changed_id && user.is_active && user.is_administrator)
        .count();
    if others == 0 {
        return Err(ApiError::bad_request(
            "This is the last active administrator: make another user an administrator first",
        ));
    }
    Ok(())
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<UserRequest>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageUsers)?;
    let mut user = User {
        is_active: true,
        ..User::default()
    };
    if request
        .username
        .as_deref()
        .is_none_or(|name| name.trim().is_empty())
    {
        return Err(ApiError::bad_request("Username is required"));
    }
    apply_user_request(&mut user, &request).await?;
    user.id = state.store().allocate_id(ResourceKind::User).await?;
    state.store().insert_resource(&user).await?;
    Ok((StatusCode::CREATED, Json(user_resource(&user))).into_response())
}

/// Administrators change anything; users change their own name, email address and password
/// (with their old password).
async fn modify_user(
    State(state): State<AppState>,
    caller: Caller,
    request_headers: HeaderMap,
    Path(user_id): Path<String>,
    ApiJson(request): ApiJson<UserRequest>,
) -> Result<Json<UserResource>, ApiError> {
    let user_id = resolve_user_id(&caller, &user_id);
    caller.require_self_or(&user_id)?;
    let stored = load_user(&state, &user_id).await?;
    let mut user = stored.clone();
    if caller.require(Permission::ManageUsers).is_err() {
        let changes_rights = [
            request.is_active.map(|value| value != stored.is_active),
            request.is_service.map(|value| value != stored.is_service),
            request
                .is_administrator
                .map(|value| value != stored.is_administrator),
        ]
        .into_iter()
        .flatten()
        .any(|changed| changed)
            || request
                .username
                .as_deref()
                .is_some_and(|name| name.trim() != stored.username);
        if changes_rights {
            return Err(ApiError::Forbidden(format!(
                "{} may change their own display name, email address and password only",
                caller.user.username
            )));
        }
        if request.password.is_some() {
            let old_password = request.old_password.as_deref().unwrap_or_default();
            let stored_hash = stored.password_hash.as_deref().unwrap_or_default();
            if !password_matches(old_password, stored_hash).await? {
                return Err(ApiError::bad_request(
                    "OldPassword: give your current password to change it",
                ));
            }
        }
    }
    apply_user_request(&mut user, &request).await?;
    if stored.is_active && stored.is_administrator {
        keep_an_administrator(&state, &user.id, Some(&user)).await?;
    }
    state.store().update_resource(&user).await?;
    if !user.is_active {
        state.store().delete_user_sessions(&user.id, None).await?;
    } else if request.password.is_some() {
        // A new password signs out the user's other browsers; the one that changed it stays.
        let own_session = cookie_value(&request_headers, SESSION_COOKIE)
            .filter(|_| caller.user.id == user.id)
            .map(|token| hash_secret(&token));
        state
            .store()
            .delete_user_sessions(&user.id, own_session.as_deref())
            .await?;
    }
    Ok(Json(user_resource(&user)))
}

async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageUsers)?;
    let user_id = resolve_user_id(&caller, &user_id);
    if user_id == caller.user.id {
        return Err(ApiError::bad_request(
            "You cannot delete yourself; another administrator can",
        ));
    }
    let user = load_user(&state, &user_id).await?;
    if user.is_active && user.is_administrator {
        keep_an_administrator(&state, &user.id, None).await?;
    }
    // The user's keys and sessions go with them.
    for key in state.store().list_api_keys(&user.id).await? {
        state.store().delete_api_key(&user.id, &key.id).await?;
    }
    state.store().delete_user_sessions(&user.id, None).await?;
    state
        .store()
        .write(&[Change::Delete {
            kind: ResourceKind::User,
            id: user.id.clone(),
        }])
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn api_key_resource(record: &ApiKeyRecord) -> ApiKeyResource {
    ApiKeyResource {
        id: record.id.clone(),
        purpose: record.purpose.clone(),
        user_id: record.user_id.clone(),
        created: format_time(record.created),
        expires: record.expires.map(format_time),
        links: Links::from([(
            "Self".to_owned(),
            format!("/api/users/{}/apikeys/{}", record.user_id, record.id),
        )]),
    }
}

async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    let user_id = resolve_user_id(&caller, &user_id);
    caller.require_self_or(&user_id)?;
    load_user(&state, &user_id).await?;
    let keys = state.store().list_api_keys(&user_id).await?;
    let total = i64::try_from(keys.len()).unwrap_or(i64::MAX);
    let items: Vec<ApiKeyResource> = keys
        .iter()
        .skip(usize::try_from(parameters.skip).unwrap_or(usize::MAX))
        .take(usize::try_from(parameters.take).unwrap_or(usize::MAX))
        .map(api_key_resource)
        .collect();
    let base_path = format!("/api/users/{user_id}/apikeys");
    Ok(Json(collection("ApiKey", total, items, &parameters, &base_path)).into_response())
}

/// Creates a key and shows it, the only time it is ever shown.
async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    ApiJson(request): ApiJson<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    let user_id = resolve_user_id(&caller, &user_id);
    caller.require_self_or(&user_id)?;
    load_user(&state, &user_id).await?;
    let purpose = request.purpose.trim().to_owned();
    if purpose.is_empty() {
        return Err(ApiError::bad_request(
            "Purpose is required: say what the key is for",
        ));
    }
    if purpose.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "Purpose must be at most 200 characters long",
        ));
    }
    let now = Utc::now();
    let expires = match request
        .expires
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
    {
        None => None,
        Some(text) => {
            let expires = DateTime::parse_from_rfc3339(text)
                .map_err(|error| {
                    ApiError::bad_request(format!(
                        "Expires must be an ISO-8601 date and time such as 2030-01-31T00:00:00Z: {error}"
                    ))
                })?
                .with_timezone(&Utc);
            if expires <= now {
                return Err(ApiError::bad_request("Expires must be in the future"));
            }
            Some(expires)
        }
    };
    let api_key = generate_api_key();
    let record = ApiKeyRecord {
        id: state.store().allocate_id(ResourceKind::ApiKey).await?,
        user_id,
        purpose,
        key_hash: hash_api_key(&api_key),
        created: now,
        expires,
    };
    state.store().insert_api_key(&record).await?;
    let listed = api_key_resource(&record);
    let created = ApiKeyCreatedResource {
        id: listed.id,
        purpose: listed.purpose,
        user_id: listed.user_id,
        created: listed.created,
        expires: listed.expires,
        api_key,
        links: listed.links,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((user_id, key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user_id = resolve_user_id(&caller, &user_id);
    caller.require_self_or(&user_id)?;
    if state.store().delete_api_key(&user_id, &key_id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!(
            "user {user_id} has no API key {key_id}"
        )))
    }
}

/// Signs in with a username and password; answers the user and sets the session cookies.
async fn login(
    State(state): State<AppState>,
    request_headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let invalid = || ApiError::bad_request("Invalid username or password.");
    let username = request.username.trim();
    if username.is_empty() || request.password.is_empty() {
        return Err(invalid());
    }
    let throttle = &state.sign_in_throttle;
    if let Err(wait) = throttle.check(username, std::time::Instant::now()) {
        return Err(ApiError::TooManyRequests(format!(
            "Too many failed sign-ins for {username}: try again in {} seconds.",
            wait.as_secs().max(1)
        )));
    }
    let user = state
        .store()
        .find_resource_by_name::<User>(None, username)
        .await?;
    let stored_hash = user
        .as_ref()
        .and_then(|user| user.password_hash.as_deref())
        // Verify against a real hash even for unknown users, so timing does not tell.
        .unwrap_or(DUMMY_PASSWORD_HASH);
    let verified = password_matches(&request.password, stored_hash).await?;
    let user = match user {
        Some(user) if verified && user.is_active && user.password_hash.is_some() => user,
        _ => {
            throttle.record_failure(username, std::time::Instant::now());
            return Err(invalid());
        }
    };
    throttle.record_success(username);

    let token = generate_token();
    let csrf_token = generate_token();
    let now = Utc::now();
    let lifetime = if request.remember_me {
        Duration::days(REMEMBERED_SESSION_DAYS)
    } else {
        Duration::hours(SESSION_HOURS)
    };
    state
        .store()
        .insert_session(&SessionRecord {
            token_hash: hash_secret(&token),
            user_id: user.id.clone(),
            csrf_token: csrf_token.clone(),
            created: now,
            expires: now + lifetime,
        })
        .await?;
    let max_age = if request.remember_me {
        format!("; Max-Age={}", lifetime.num_seconds())
    } else {
        String::new()
    };
    // Behind a TLS-terminating proxy the browser speaks HTTPS: keep the cookies off plain HTTP.
    let secure = if served_over_tls(&request_headers) {
        "; Secure"
    } else {
        ""
    };
    let mut headers = HeaderMap::new();
    for cookie in [
        format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{max_age}{secure}"),
        format!("{CSRF_COOKIE}={csrf_token}; Path=/; SameSite=Strict{max_age}{secure}"),
    ] {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
        );
    }
    Ok((headers, Json(user_resource(&user))).into_response())
}

/// Whether the browser reached the server over TLS, as a reverse proxy in front of it reports.
fn served_over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|protocol| protocol.trim().eq_ignore_ascii_case("https"))
}

/// Ends the browser session, if any, and clears its cookies.
async fn logout(
    State(state): State<AppState>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = cookie_value(&request_headers, SESSION_COOKIE) {
        state.store().delete_session(&hash_secret(&token)).await?;
    }
    let mut headers = HeaderMap::new();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0"))
                .map_err(ApiError::internal)?,
        );
    }
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// The argon2 hash of a random password nobody knows, for constant-time failed sign-ins.
const DUMMY_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$2S3S2jB3Q1VY0m6WcCq4mQ0l1p4n5vPp8m3KXh2u0Zk";
