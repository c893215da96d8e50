//! The sign-in page. It is a plain form (it works before any script loads) that signs in
//! through `POST /api/users/login` in-process and passes the session cookies on.

use axum::Form;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use tower::ServiceExt as _;

use super::layout::bare_page;
use super::{PortalState, safe_return_path};
use crate::auth::authenticate;

#[derive(Debug, Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    username: String,
    password: String,
    next: Option<String>,
    remember: Option<String>,
}

pub(crate) async fn page(
    State(state): State<PortalState>,
    Query(query): Query<SignInQuery>,
    request: Request,
) -> Response {
    let next = safe_return_path(query.next.as_deref());
    let (parts, _) = request.into_parts();
    if authenticate(&state.app, &parts).await.is_ok() {
        return Redirect::to(&next).into_response();
    }
    form_page(&next, "", None, StatusCode::OK)
}

fn form_page(next: &str, username: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        main.narrow {
            h1 { "Sign in to Cuttle" }
            form method="post" action="/app/sign-in" {
                @if let Some(error) = error {
                    div.form-errors role="alert" { (error) }
                }
                input type="hidden" name="next" value=(next);
                div.field {
                    label for="username" { "Username" }
                    input #username name="username" type="text" autocomplete="username"
                        value=(username) required autofocus[username.is_empty()];
                }
                div.field {
                    label for="password" { "Password" }
                    input #password name="password" type="password" autocomplete="current-password"
                        required autofocus[!username.is_empty()];
                }
                div.field.check {
                    input #remember name="remember" type="checkbox" value="true";
                    label for="remember" { "Keep me signed in for 20 days" }
                }
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    (status, bare_page("Sign in", body)).into_response()
}

/// Whether a form post comes from this site: browsers send `Origin` on posts, and a page on
/// another site must not sign a visitor in to an account of its choosing.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

pub(crate) async fn submit(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let next = safe_return_path(form.next.as_deref());
    if !same_origin(&headers) {
        return form_page(
            &next,
            &form.username,
            Some("This sign-in came from another site and was refused."),
            StatusCode::FORBIDDEN,
        );
    }
    let body = serde_json::json!({
        "Username": form.username,
        "Password": form.password,
        "RememberMe": form.remember.is_some(),
    });
    let mut request = match Request::builder()
        .method(Method::POST)
        .uri("/api/users/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
    {
        Ok(request) => request,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    // The API marks cookies Secure when the browser reached us over TLS (via a proxy).
    if let Some(protocol) = headers.get("x-forwarded-proto") {
        request
            .headers_mut()
            .insert("x-forwarded-proto", protocol.clone());
    }
    let response = match state.api.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if !response.status().is_success() {
        let status = response.status();
        let message = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|body| {
                body.get("Errors")
                    .and_then(|errors| errors.get(0))
                    .and_then(|error| error.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "Invalid username or password.".to_owned());
        let status = if status.is_client_error() {
            StatusCode::UNAUTHORIZED
        } else {
            status
        };
        return form_page(&next, &form.username, Some(&message), status);
    }
    let mut redirect = Redirect::to(&next).into_response();
    for cookie in response.headers().get_all(header::SET_COOKIE) {
        redirect
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    redirect
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::same_origin;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    #[test]
    fn sign_in_posts_must_come_from_this_site() {
        assert!(same_origin(&headers(None, "127.0.0.1:8050")));
        assert!(same_origin(&headers(
            Some("http://127.0.0.1:8050"),
            "127.0.0.1:8050"
        )));
        assert!(!same_origin(&headers(
            Some("https://evil.example"),
            "127.0.0.1:8050"
        )));
        assert!(!same_origin(&headers(Some("null"), "127.0.0.1:8050")));
    }
}
