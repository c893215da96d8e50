//! Reading the REST API in-process, as the signed-in user.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt as _;

use super::PageError;

/// The largest API answer a page reads (a space's whole dashboard fits easily).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The API as the user behind one browser request: their cookies travel with every call.
#[derive(Clone)]
pub(crate) struct PortalApi {
    api: Router,
    cookie: Option<HeaderValue>,
}

impl PortalApi {
    pub(crate) fn new(api: Router, headers: &HeaderMap) -> PortalApi {
        PortalApi {
            api,
            cookie: headers.get(header::COOKIE).cloned(),
        }
    }

    /// `GET path` (with its query): the JSON answer, or the API's error as a page error.
    pub(crate) async fn get(&self, path_and_query: &str) -> Result<Value, PageError> {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(path_and_query)
            .body(Body::empty())
            .map_err(|error| internal(&error))?;
        if let Some(cookie) = &self.cookie {
            request.headers_mut().insert(header::COOKIE, cookie.clone());
        }
        let response = self
            .api
            .clone()
            .oneshot(request)
            .await
            .map_err(|error| internal(&error))?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|error| internal(&error))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            let message = body
                .get("ErrorMessage")
                .and_then(Value::as_str)
                .unwrap_or("The API could not answer.")
                .to_owned();
            Err(PageError { status, message })
        }
    }

    /// Several independent reads at once: a page's data arrives in one round of waiting.
    pub(crate) async fn get_all<const N: usize>(
        &self,
        paths: [&str; N],
    ) -> Result<[Value; N], PageError> {
        let answers = futures::future::join_all(paths.iter().map(|path| self.get(path))).await;
        let mut values = Vec::with_capacity(N);
        for answer in answers {
            values.push(answer?);
        }
        values.try_into().map_err(|_| internal(&std::fmt::Error))
    }

    /// Every item of a paged collection (`take=2147483647`), as the portal lists show all.
    pub(crate) async fn items(&self, path: &str) -> Result<Vec<Value>, PageError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let page = self
            .get(&format!("{path}{separator}take=2147483647"))
            .await?;
        Ok(items_of(page))
    }
}

/// The `Items` of a paged answer (or the answer itself when it is already a list).
pub(crate) fn items_of(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("Items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn internal(error: &dyn std::fmt::Display) -> PageError {
    tracing::error!(%error, "the portal could not call the API");
    PageError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: "The server could not build this page. The details are in the server's log."
            .to_owned(),
    }
}

/// Reading fields of API answers without ceremony: missing or mistyped fields read as empty.
pub(crate) trait Field {
    fn text(&self, name: &str) -> &str;
    fn flag(&self, name: &str) -> bool;
    fn number(&self, name: &str) -> i64;
    fn list(&self, name: &str) -> &[Value];
    fn strings(&self, name: &str) -> Vec<&str>;
}

impl Field for Value {
    fn text(&self, name: &str) -> &str {
        self.get(name).and_then(Value::as_str).unwrap_or_default()
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    fn number(&self, name: &str) -> i64 {
        self.get(name).and_then(Value::as_i64).unwrap_or(0)
    }

    fn list(&self, name: &str) -> &[Value] {
        self.get(name)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn strings(&self, name: &str) -> Vec<&str> {
        self.list(name).iter().filter_map(Value::as_str).collect()
    }
}
