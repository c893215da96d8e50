//! The stylesheet and the script, compiled into the binary and served with an ETag.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

pub(crate) const STYLESHEET_PATH: &str = "/app/assets/portal.css";
pub(crate) const SCRIPT_PATH: &str = "/app/assets/portal.js";

const STYLESHEET: &str = include_str!("assets/portal.css");
const SCRIPT: &str = include_str!("assets/portal.js");

/// Content hashes: browsers revalidate and get 304 until a new binary changes the file.
static STYLESHEET_ETAG: LazyLock<String> = LazyLock::new(|| etag(STYLESHEET));
static SCRIPT_ETAG: LazyLock<String> = LazyLock::new(|| etag(SCRIPT));

fn etag(content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    format!("\"{}\"", hex::encode(&digest[..12]))
}

pub(crate) async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let (content, content_type, etag) = match name.as_str() {
        "portal.css" => (STYLESHEET, "text/css; charset=utf-8", &*STYLESHEET_ETAG),
        "portal.js" => (SCRIPT, "text/javascript; charset=utf-8", &*SCRIPT_ETAG),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
    ];
    let presented = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok());
    if presented == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, [(header::CONTENT_TYPE, content_type)], content).into_response()
}
