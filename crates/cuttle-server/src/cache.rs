//! Caches in front of the store, valid while the store's change generation stands still.
//!
//! Reads far outnumber writes in a CD server (dashboards, CI polling, the official client
//! listing projects by name), so authenticated `GET` answers and credential lookups are kept
//! in memory and reused until anything is committed, here or (PostgreSQL) on another node.
//! An entry remembers the generation it was computed at; a different current generation makes
//! it stale. Writes therefore never wait on the caches, and a reader never sees an answer
//! older than the last change this node knew of when the request started.
//!
//! Both caches are bounded: past their limits they start over empty.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cuttle_domain::User;

use crate::auth::authenticate;
use crate::state::AppState;

/// The largest answer kept, and the most bytes kept in all.
const MAX_CACHED_RESPONSE_BYTES: usize = 512 * 1024;
const MAX_CACHED_TOTAL_BYTES: usize = 16 * 1024 * 1024;

/// What a credential (API key or session token, by hash) authenticated as.
#[derive(Debug, Clone)]
pub(crate) struct CachedCredential {
    pub(crate) user: User,
    pub(crate) expires: Option<DateTime<Utc>>,
    /// Sessions only: the CSRF token unsafe requests must repeat.
    pub(crate) csrf_token: Option<String>,
}

/// Values by key, each valid only at the generation it was stored with.
#[derive(Debug)]
pub(crate) struct GenerationCache<V> {
    entries: Mutex<HashMap<String, (u64, V)>>,
    max_entries: usize,
}

impl<V: Clone> GenerationCache<V> {
    pub(crate) fn new(max_entries: usize) -> GenerationCache<V> {
        GenerationCache {
            entries: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    /// The value for `key` if it was stored at `generation`.
    pub(crate) fn get(&self, key: &str, generation: u64) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(stored_generation, _)| *stored_generation == generation)
            .map(|(_, value)| value.clone())
    }

    pub(crate) fn put(&self, key: String, generation: u64, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.max_entries {
                entries.clear();
            }
            entries.insert(key, (generation, value));
        }
    }
}

/// The credential cache's size: enough for every key of a large installation.
pub(crate) const MAX_CREDENTIALS: usize = 4_096;
/// The space cache's size.
pub(crate) const MAX_SPACES: usize = 1_024;

struct CachedResponse {
    generation: u64,
    body: Bytes,
}

#[derive(Default)]
pub(crate) struct ResponseCache {
    entries: Mutex<ResponseEntries>,
}

#[derive(Default)]
struct ResponseEntries {
    by_key: HashMap<String, CachedResponse>,
    total_bytes: usize,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ResponseCache")
    }
}

impl ResponseCache {
    fn get(&self, key: &str, generation: u64) -> Option<Bytes> {
        let entries = self.entries.lock().ok()?;
        entries
            .by_key
            .get(key)
            .filter(|entry| entry.generation == generation)
            .map(|entry| entry.body.clone())
    }

    fn put(&self, key: String, generation: u64, body: Bytes) {
        if body.len() > MAX_CACHED_RESPONSE_BYTES {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.total_bytes + body.len() > MAX_CACHED_TOTAL_BYTES {
                entries.by_key.clear();
                entries.total_bytes = 0;
            }
            entries.total_bytes += body.len();
            if let Some(replaced) = entries
                .by_key
                .insert(key, CachedResponse { generation, body })
            {
                entries.total_bytes = entries.total_bytes.saturating_sub(replaced.body.len());
            }
        }
    }
}

/// Middleware: answers an authenticated `GET` from the cache when the store has not changed
/// since the same caller asked the same thing; otherwise runs the handler and keeps a 200 JSON
/// answer. Authentication always runs first, so an expired or revoked credential is refused.
pub(crate) async fn cache_get_responses(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // Tasks change while they run without moving the store's generation: never cache them.
    let is_task_route = request
        .uri()
        .path()
        .split('/')
        .any(|segment| segment == "tasks");
    if request.method() != Method::GET || is_task_route {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    // Read the generation before anything else: an answer computed while a write commits is
    // stored under the older generation and never served after it.
    let generation = state.store().change_generation();
    let caller = match authenticate(&state, &parts).await {
        Ok(caller) => caller,
        // Let the handler answer (401, or the anonymous root document).
        Err(_) => return next.run(Request::from_parts(parts, body)).await,
    };
    let key = format!("{}\n{}", caller.user.id, parts.uri);
    if let Some(cached) = state.response_cache.get(&key, generation) {
        return json_response(cached);
    }
    parts.extensions.insert(caller);
    let response = next.run(Request::from_parts(parts, body)).await;
    let is_cacheable = response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !is_cacheable {
        return response;
    }
    // Only bodies of a known, small size are kept; others stream through untouched.
    let fits = response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|length| length <= MAX_CACHED_RESPONSE_BYTES as u64);
    if !fits {
        return response;
    }
    let (response_parts, response_body) = response.into_parts();
    match axum::body::to_bytes(response_body, MAX_CACHED_RESPONSE_BYTES).await {
        Ok(bytes) => {
            state.response_cache.put(key, generation, bytes.clone());
            Response::from_parts(response_parts, Body::from(bytes))
        }
        Err(error) => {
            tracing::error!("failed to buffer an answer of known size: {error}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn json_response(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
