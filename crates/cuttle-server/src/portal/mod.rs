//! The web portal: server-rendered pages under `/app`, built from the REST API's own answers.
//!
//! Pages read through [`api::PortalApi`], which sends the request to the in-process API router
//! with the browser's own session cookie: the portal sees exactly what the API would answer
//! that user (permissions, redaction of sensitive values, the response cache), and there is no
//! second path to the store to keep in step. Pages write the same way, from the browser:
//! `portal.js` turns a form into the API's JSON, sends it with the session's CSRF token, and
//! shows each `Errors` line next to the field it names. So every form is CSRF-protected by the
//! API's own check, and validation lives in one place.
//!
//! Markup is compiled with `maud` (escaped by default); the stylesheet and script are compiled
//! into the binary, so `cargo run` is the whole setup.

mod api;
mod assets;
mod dashboard;
mod infrastructure;
mod layout;
mod library;
mod projects;
mod releases;
mod settings;
mod sign_in;
mod tasks;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower::ServiceExt as _;

use crate::auth::{Caller, authenticate};
use crate::state::AppState;

pub(crate) use api::PortalApi;

/// What every portal handler gets: the app state and the API to read through.
#[derive(Clone)]
pub(crate) struct PortalState {
    pub(crate) app: AppState,
    /// The API router (with its response cache), called in-process.
    pub(crate) api: Router,
}

/// The portal's routes; `api` is the `/api` router the pages read through.
///
/// Every other request goes on to the API; unknown `/app` paths get a page, not JSON.
pub(crate) fn router(app: AppState, api: Router) -> Router {
    let state = PortalState {
        app,
        api: api.clone(),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/app") }))
        .route("/app", get(dashboard::default_space))
        .route("/app/assets/{name}", get(assets::asset))
        .route("/app/sign-in", get(sign_in::page).post(sign_in::submit))
        .merge(dashboard::routes())
        .merge(tasks::routes())
        .merge(projects::routes())
        .merge(releases::routes())
        .merge(infrastructure::routes())
        .merge(library::routes())
        .merge(settings::routes())
        .fallback(move |request: axum::extract::Request| {
            let api = api.clone();
            async move {
                let path = request.uri().path();
                if path == "/app" || path.starts_with("/app/") {
                    return unknown_page().await;
                }
                match api.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        })
        .with_state(state)
}

/// The signed-in user viewing a page, with the API as that user.
///
/// Pages extract this instead of [`Caller`]: a browser without a session is sent to the
/// sign-in page (and back afterwards) rather than answered with a JSON 401.
pub(crate) struct Viewer {
    pub(crate) caller: Caller,
    pub(crate) api: PortalApi,
}

impl FromRequestParts<PortalState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Self, Self::Rejection> {
        match authenticate(&state.app, parts).await {
            Ok(caller) => Ok(Viewer {
                caller,
                api: PortalApi::new(state.api.clone(), &parts.headers),
            }),
            Err(_) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/app", |path| path.as_str());
                let target = format!(
                    "/app/sign-in?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

/// A page that could not be shown: an API error, shown as a page with the API's message.
#[derive(Debug)]
pub(crate) struct PageError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl PageError {
    pub(crate) fn not_found(message: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = layout::bare_page(
            "Something went wrong",
            maud::html! {
                main.narrow {
                    h1 { "Something went wrong" }
                    p.error role="alert" { (self.message) }
                    p { a href="/app" { "Back to the dashboard" } }
                }
            },
        );
        (self.status, page).into_response()
    }
}

/// A 404 page for `/app` paths nothing answers.
pub(crate) async fn unknown_page() -> Response {
    PageError::not_found("There is no page at this address.").into_response()
}

/// Makes a `Location` safe to redirect to after sign-in: only paths inside the portal.
pub(crate) fn safe_return_path(next: Option<&str>) -> String {
    match next {
        Some(next)
            if (next == "/app" || next.starts_with("/app/") || next.starts_with("/app?"))
                && !next.contains("//")
                && !next.contains('\\') =>
        {
            next.to_owned()
        }
        _ => "/app".to_owned(),
    }
}

/// Headers that keep portal pages out of shared caches and frames.
pub(crate) fn page_headers() -> [(header::HeaderName, &'static str); 3] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ]
}

#[cfg(test)]
mod tests {
    use super::safe_return_path;

    #[test]
    fn sign_in_returns_only_to_portal_paths() {
        assert_eq!(
            safe_return_path(Some("/app/Spaces-1/projects")),
            "/app/Spaces-1/projects"
        );
        assert_eq!(safe_return_path(Some("/app?x=1")), "/app?x=1");
        assert_eq!(safe_return_path(Some("https://evil.example/app")), "/app");
        assert_eq!(safe_return_path(Some("//evil.example/app/")), "/app");
        assert_eq!(safe_return_path(Some("/app//evil.example")), "/app");
        assert_eq!(safe_return_path(Some("/api/users")), "/app");
        assert_eq!(safe_return_path(None), "/app");
    }
}
