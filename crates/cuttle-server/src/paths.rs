//! Case-insensitive routing: requests are rewritten to one canonical spelling before routing.
//!
//! Octopus binds routes case-insensitively and clients differ (`runbookRuns`, `projectgroups`).
//! Route words (letters and dashes only) are lower-cased, and resource ids in any case get their
//! canonical spelling (`environments-1` → `Environments-1`). Other segments (names, package ids,
//! git refs) are left alone, because their case can matter.

use axum::extract::Request;
use axum::http::Uri;
use axum::http::uri::PathAndQuery;
use cuttle_domain::parse_resource_id;

/// Rewrites the request's path to its canonical spelling.
pub(crate) fn normalize_request_path(mut request: Request) -> Request {
    if let Some(uri) = canonical_uri(request.uri()) {
        *request.uri_mut() = uri;
    }
    request
}

fn canonical_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let canonical_path = canonical_path(path)?;
    let path_and_query = match uri.query() {
        Some(query) => format!("{canonical_path}?{query}"),
        None => canonical_path,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}

/// The canonical spelling of `path`, or `None` when it already is canonical.
///
/// Empty segments go too: `//api` (clients joining URLs) and `/api/` route like `/api`.
fn canonical_path(path: &str) -> Option<String> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(canonical_segment)
        .collect();
    let canonical = format!("/{}", segments.join("/"));
    (canonical != path).then_some(canonical)
}

fn canonical_segment(segment: &str) -> String {
    if !segment.is_empty()
        && segment
            .bytes()
            .all(|byte| byte.is_ascii_alphabetic() || byte == b'-')
    {
        return segment.to_ascii_lowercase();
    }
    match parse_resource_id(segment) {
        Some((_, canonical)) => canonical,
        None => segment.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_words_and_ids_get_one_spelling() {
        assert_eq!(
            canonical_path("/API/spaces-1/Environments/environments-2").as_deref(),
            Some("/api/Spaces-1/environments/Environments-2")
        );
        assert_eq!(
            canonical_path("/api/Spaces-1/runbookRuns").as_deref(),
            Some("/api/Spaces-1/runbookruns")
        );
    }

    #[test]
    fn canonical_paths_are_left_alone() {
        assert_eq!(canonical_path("/api/Spaces-1/environments"), None);
        assert_eq!(canonical_path("/api"), None);
    }

    #[test]
    fn trailing_and_duplicate_slashes_are_dropped() {
        assert_eq!(canonical_path("/api/").as_deref(), Some("/api"));
        assert_eq!(
            canonical_path("//api/spaces").as_deref(),
            Some("/api/spaces")
        );
    }

    #[test]
    fn other_segments_keep_their_case() {
        assert_eq!(
            canonical_path("/api/Spaces-1/packages/packages-My.App.1.0.0"),
            None
        );
        assert_eq!(
            canonical_path("/api/Spaces-1/projects/Projects-1/refs%2Fheads%2FMain/runbooks"),
            None
        );
    }
}
