//! `/api/users`: the current user, API keys, and signing in and out with a password.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use cuttle_api::{
    ApiKeyCreatedResource, ApiKeyResource, CreateApiKeyRequest, Links, LoginRequest, UserResource,
};
use cuttle_domain::{ResourceKind, User};
use cuttle_store::{ApiKeyRecord, SessionRecord};

use super::crud::{collection, document_query};
use crate::auth::{
    CSRF_COOKIE, Caller, Permission, SESSION_COOKIE, cookie_value, generate_api_key,
    generate_token, hash_api_key, hash_secret, verify_password,
};
use crate::error::ApiError;
use crate::extract::{ApiJson, ListParameters};
use crate::state::AppState;

/// How long a browser session lasts, and with "remember me".
const SESSION_HOURS: i64 = 12;
const REMEMBERED_SESSION_DAYS: i64 = 20;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/users", get(list_users))
        .route("/api/users/me", get(current_user))
        .route("/api/users/login", post(login))
        .route("/api/users/logout", post(logout))
        .route("/api/users/{user_id}", get(get_user))
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

async fn current_user(caller: Caller) -> Json<UserResource> {
    Json(user_resource(&caller.user))
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
    let user = state
        .store()
        .find_resource_by_name::<User>(None, username)
        .await?;
    let password = request.password.clone();
    let stored_hash = user
        .as_ref()
        .and_then(|user| user.password_hash.clone())
        // Verify against a real hash even for unknown users, so timing does not tell.
        .unwrap_or_else(|| DUMMY_PASSWORD_HASH.to_owned());
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, &stored_hash))
        .await
        .map_err(ApiError::internal)?;
    let user = match user {
        Some(user) if verified && user.is_active && user.password_hash.is_some() => user,
        _ => return Err(invalid()),
    };

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
