//! The built-in package feed: uploading package files (`packages/raw`), listing, reading,
//! downloading and deleting them, the feed resources, package versions, and build information.
//!
//! An upload streams the multipart field `fileToUpload` to a temporary file while hashing it
//! (never holding the body in memory), takes the package id and version from the file name,
//! checks the archive with `cuttle-packages` off the async threads, and only then stores the
//! blob (by SHA-256) and the package record. Anything refused leaves neither behind.
//!
//! Lists filter and sort in memory over the space's package records, like deployments do; a
//! table of their own is the next step when feeds hold many thousands of packages.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::SecondsFormat;
use cuttle_api::packages::{FeedResource, PackageResource, PackageVersionResource};
use cuttle_api::{Links, Resource as WireResource};
use cuttle_domain::packages::PACKAGE_ID_PREFIX;
use cuttle_domain::{
    BUILT_IN_FEED_ID, BuildInformation, Package, Resource as _, Space, package_document_id,
    package_resource_id,
};
use cuttle_packages::{ArchiveError, ExtractionLimits, parse_package_file_name};
use cuttle_pipeline::parse_release_version;
use cuttle_store::{Change, DocumentQuery, StoreError, document_from_resource};
use serde::Deserialize;

use crate::auth::{Caller, Permission};
use crate::blobs::{BlobStore, FinishedUpload};
use crate::error::ApiError;
use crate::extract::{ApiJson, ListParameters};
use crate::routes::crud::{collection, require_space};
use crate::state::AppState;

/// Octopus's answer to a duplicate upload with `FailIfExists`.
const PACKAGE_EXISTS_MESSAGE: &str = "A package with the same ID and version already exists. To proceed anyway, specify an overwriteMode of OverwriteExisting or IgnoreIfExists.";

/// Octopus's answer to duplicate build information with `FailIfExists`.
const BUILD_INFORMATION_EXISTS_MESSAGE: &str =
    "Metadata for the specified Package ID and version already exists.";

/// Room for the multipart framing around the file, on top of the package size limit.
const MULTIPART_OVERHEAD_BYTES: u64 = 1024 * 1024;

/// The longest non-file form field read (`overwriteMode`).
const MAXIMUM_FORM_FIELD_BYTES: usize = 1024;

/// The multipart field that carries the file, as the Octopus client sends it.
const FILE_FIELD: &str = "fileToUpload";

/// Answers an upload with `Connection: close`. The official client's multipart upload never
/// releases its socket, so a kept-alive connection holds a `push-package` process open until
/// the server's idle timeout; closing after the answer lets it exit at once. Uploads are one
/// big request each, so the lost connection reuse costs nothing.
async fn close_after_upload(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

pub(crate) fn routes(max_package_size: u64) -> axum::Router<AppState> {
    let upload_body_limit =
        usize::try_from(max_package_size.saturating_add(MULTIPART_OVERHEAD_BYTES))
            .unwrap_or(usize::MAX);
    axum::Router::new()
        .route(
            "/api/{space_id}/packages/raw",
            post(upload_in_space)
                .layer(DefaultBodyLimit::max(upload_body_limit))
                .layer(axum::middleware::map_response(close_after_upload)),
        )
        .route(
            "/api/packages/raw",
            post(upload_in_default_space)
                .layer(DefaultBodyLimit::max(upload_body_limit))
                .layer(axum::middleware::map_response(close_after_upload)),
        )
        .route("/api/{space_id}/packages", get(list_packages))
        .route(
            "/api/{space_id}/packages/{id}",
            get(get_package).delete(delete_package),
        )
        .route("/api/{space_id}/packages/{id}/raw", get(download_package))
        .route("/api/{space_id}/feeds", get(list_feeds))
        .route("/api/{space_id}/feeds/{feed_id}", get(get_feed))
        .route(
            "/api/{space_id}/feeds/{feed_id}/packages/versions",
            get(list_package_versions),
        )
        .route(
            "/api/{space_id}/build-information",
            post(create_build_information),
        )
        .route(
            "/api/{space_id}/build-information/{id}",
            get(get_build_information),
        )
}

/// What to do when the package (or build information) already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OverwriteMode {
    FailIfExists,
    OverwriteExisting,
    IgnoreIfExists,
}

impl OverwriteMode {
    fn parse(text: &str) -> Result<OverwriteMode, ApiError> {
        match text.to_ascii_lowercase().as_str() {
            "failifexists" => Ok(OverwriteMode::FailIfExists),
            "overwriteexisting" => Ok(OverwriteMode::OverwriteExisting),
            "ignoreifexists" => Ok(OverwriteMode::IgnoreIfExists),
            _ => Err(clear_bad_request(format!(
                "'{text}' is not an overwriteMode; use FailIfExists, OverwriteExisting or IgnoreIfExists"
            ))),
        }
    }

    /// From the query: `overwriteMode`, or the legacy `replace=true`; `None` when neither.
    fn from_query(options: &HashMap<String, String>) -> Result<Option<OverwriteMode>, ApiError> {
        if let Some(text) = options.get("overwritemode").filter(|text| !text.is_empty()) {
            return OverwriteMode::parse(text).map(Some);
        }
        Ok(options
            .get("replace")
            .filter(|text| text.eq_ignore_ascii_case("true"))
            .map(|_| OverwriteMode::OverwriteExisting))
    }
}

/// A 400 whose `ErrorMessage` is the detail itself, so clients that show only the message
/// (the Octopus client joins them) say what is wrong.
fn clear_bad_request(message: String) -> ApiError {
    ApiError::BadRequest {
        errors: vec![message.clone()],
        message,
    }
}

/// Query parameters by lower-cased name (Octopus binds them case-insensitively).
fn query_options(query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(name, value)| (name.to_lowercase(), value.into_owned()))
        .collect()
}

fn blob_store(state: &AppState) -> Result<&BlobStore, ApiError> {
    state
        .blob_store
        .as_deref()
        .ok_or_else(|| ApiError::internal_message("the server was started without a blob store"))
}

async fn upload_in_space(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    upload(
        &state,
        &caller,
        &space_id,
        query.as_deref(),
        &headers,
        multipart,
    )
    .await
}

async fn upload_in_default_space(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let space_id = default_space_id(&state).await?;
    upload(
        &state,
        &caller,
        &space_id,
        query.as_deref(),
        &headers,
        multipart,
    )
    .await
}

/// The default space's id (`Spaces-1` unless it was replaced).
async fn default_space_id(state: &AppState) -> Result<String, ApiError> {
    let spaces = state
        .store()
        .list_resources::<Space>(&DocumentQuery::default())
        .await?;
    spaces
        .items
        .into_iter()
        .find(|space| space.is_default)
        .map(|space| space.id)
        .ok_or_else(|| ApiError::NotFound("there is no default space".to_owned()))
}

async fn upload(
    state: &AppState,
    caller: &Caller,
    space_id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(state, space_id).await?;
    let blobs = blob_store(state)?;
    let too_large = || {
        ApiError::TooLarge(format!(
            "The package file is larger than the limit of {} bytes (the server's --max-package-size).",
            state.max_package_size
        ))
    };
    // Refuse an announced oversize body before reading any of it.
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if content_length.is_some_and(|length| {
        length
            > state
                .max_package_size
                .saturating_add(MULTIPART_OVERHEAD_BYTES)
    }) {
        return Err(too_large());
    }

    let started = std::time::Instant::now();
    let mut overwrite_mode = OverwriteMode::from_query(&query_options(query))?;
    let mut received: Option<(String, FinishedUpload)> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let field_name = field.name().unwrap_or_default().to_owned();
        if field_name.eq_ignore_ascii_case(FILE_FIELD) {
            if received.is_some() {
                return Err(clear_bad_request(format!(
                    "Send exactly one file in the multipart field {FILE_FIELD}."
                )));
            }
            let file_name = field.file_name().unwrap_or_default().to_owned();
            if file_name.is_empty() {
                return Err(clear_bad_request(format!(
                    "The multipart field {FILE_FIELD} has no file name; the package id and version come from it."
                )));
            }
            // Check the name before reading the content: a bad name needs no upload.
            parse_package_file_name(&file_name)
                .map_err(|error| clear_bad_request(error.to_string()))?;
            let mut upload = blobs.start_upload().map_err(ApiError::internal)?;
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if upload.n_bytes() + chunk.len() as u64 > state.max_package_size {
                    // Dropping the upload removes its temporary file.
                    return Err(too_large());
                }
                upload.write(&chunk).await.map_err(ApiError::internal)?;
            }
            let finished = upload.finish().await.map_err(ApiError::internal)?;
            received = Some((file_name, finished));
        } else if field_name.eq_ignore_ascii_case("overwriteMode") {
            let text = read_small_field(&mut field).await?;
            if overwrite_mode.is_none() && !text.is_empty() {
                overwrite_mode = Some(OverwriteMode::parse(&text)?);
            }
        } else {
            // Other fields are read and dropped, never buffered.
            while field.chunk().await.map_err(multipart_error)?.is_some() {}
        }
    }
    let Some((file_name, finished)) = received else {
        return Err(clear_bad_request(format!(
            "The request has no file: send the package as the multipart/form-data field {FILE_FIELD}."
        )));
    };
    let overwrite_mode = overwrite_mode.unwrap_or(OverwriteMode::FailIfExists);
    let package_name = parse_package_file_name(&file_name)
        .map_err(|error| clear_bad_request(error.to_string()))?;

    // The whole archive is read once before anything is stored: a package that cannot be
    // deployed is refused now, not at deployment time.
    let received_at = std::time::Instant::now();
    let archive_path = finished.path().to_owned();
    let format = package_name.format;
    let validation = tokio::task::spawn_blocking(move || {
        cuttle_packages::validate(&archive_path, format, &ExtractionLimits::default())
    })
    .await
    .map_err(ApiError::internal)?;
    if let Err(error) = validation {
        return Err(archive_refusal(&error, finished.path(), &file_name));
    }

    let package = Package {
        document_id: package_document_id(space_id, &package_name.package_id, &package_name.version),
        id: package_resource_id(&package_name.package_id, &package_name.version),
        space_id: space_id.to_owned(),
        package_id: package_name.package_id,
        version: package_name.version,
        file_extension: format.extension().to_owned(),
        published: chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        package_size_bytes: finished.n_bytes,
        hash: finished.hash.clone(),
        ..Package::default()
    };
    let validated_at = std::time::Instant::now();
    let stored = store_package(state, package, finished, overwrite_mode).await?;
    // Where an upload's time goes: receiving (network, hashing, writing, fsync), reading the
    // archive through, storing.
    tracing::info!(
        package = %stored.id,
        space = %stored.space_id,
        bytes = stored.package_size_bytes,
        receive_ms = (received_at - started).as_millis(),
        validate_ms = (validated_at - received_at).as_millis(),
        store_ms = validated_at.elapsed().as_millis(),
        "package uploaded"
    );
    let build_information = find_build_information(state, &stored).await?;
    Ok(Json(PackageResource::from_package(&stored, build_information)).into_response())
}

/// Reads a short text field, refusing long ones instead of buffering them.
async fn read_small_field(
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAXIMUM_FORM_FIELD_BYTES {
            return Err(clear_bad_request(format!(
                "The form field {} is longer than {MAXIMUM_FORM_FIELD_BYTES} bytes.",
                field.name().unwrap_or_default()
            )));
        }
    }
    Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(format!(
            "The package upload is too large: {}",
            error.body_text()
        ))
    } else {
        clear_bad_request(format!(
            "The multipart/form-data body could not be read: {}",
            error.body_text()
        ))
    }
}

/// A refused archive as the client sees it: named by its file name, not the temporary path.
fn archive_refusal(
    error: &ArchiveError,
    temporary_path: &std::path::Path,
    file_name: &str,
) -> ApiError {
    let message = error
        .to_string()
        .replace(&temporary_path.display().to_string(), file_name);
    match error {
        ArchiveError::Read { .. }
        | ArchiveError::Write { .. }
        | ArchiveError::DestinationExists { .. } => ApiError::internal_message(&message),
        _ => clear_bad_request(message),
    }
}

/// Stores the blob and the record under the package lock, as the overwrite mode says.
async fn store_package(
    state: &AppState,
    mut package: Package,
    finished: FinishedUpload,
    overwrite_mode: OverwriteMode,
) -> Result<Package, ApiError> {
    let blobs = blob_store(state)?;
    let _guard = state.package_lock.lock().await;
    let existing = state
        .store()
        .find_resource_by_name::<Package>(Some(&package.space_id), package.name())
        .await?;
    let change = match (&existing, overwrite_mode) {
        (Some(_), OverwriteMode::FailIfExists) => {
            return Err(ApiError::Conflict(PACKAGE_EXISTS_MESSAGE.to_owned()));
        }
        (Some(existing), OverwriteMode::IgnoreIfExists) => return Ok(existing.clone()),
        (Some(existing), OverwriteMode::OverwriteExisting) => {
            // The record keeps its ids (and their spelling); everything about the file changes.
            package.document_id.clone_from(&existing.document_id);
            package.id.clone_from(&existing.id);
            Change::Update(document_from_resource(&package)?)
        }
        (None, _) => Change::Insert(document_from_resource(&package)?),
    };
    let hash = finished.hash.clone();
    let blob_is_new = blobs.commit(finished).await.map_err(ApiError::internal)?;
    if let Err(error) = state.store().write(&[change]).await {
        if blob_is_new {
            remove_blob_logged(blobs, &hash).await;
        }
        return Err(match error {
            StoreError::NameTaken { .. } => ApiError::Conflict(PACKAGE_EXISTS_MESSAGE.to_owned()),
            other => other.into(),
        });
    }
    if let Some(existing) = existing
        && existing.hash != package.hash
    {
        remove_blob_if_unreferenced(state, blobs, &existing.hash).await?;
    }
    Ok(package)
}

/// Removes a blob no package record points at any more. Call with the package lock held.
async fn remove_blob_if_unreferenced(
    state: &AppState,
    blobs: &BlobStore,
    hash: &str,
) -> Result<(), ApiError> {
    remove_unreferenced(state, blobs, &[hash.to_owned()]).await
}

/// The content hashes of a space's packages, to remove after the space is deleted.
pub(crate) async fn package_hashes_in_space(
    state: &AppState,
    space_id: &str,
) -> Result<Vec<String>, ApiError> {
    let mut hashes: Vec<String> = space_packages(state, space_id)
        .await?
        .into_iter()
        .map(|package| package.hash)
        .collect();
    hashes.sort();
    hashes.dedup();
    Ok(hashes)
}

/// Removes those of `hashes` that no package record points at any more. Call with the
/// package lock held. Without a blob store there is nothing to remove.
pub(crate) async fn remove_blobs_if_unreferenced(
    state: &AppState,
    hashes: &[String],
) -> Result<(), ApiError> {
    match state.blob_store.as_deref() {
        Some(blobs) if !hashes.is_empty() => remove_unreferenced(state, blobs, hashes).await,
        _ => Ok(()),
    }
}

async fn remove_unreferenced(
    state: &AppState,
    blobs: &BlobStore,
    hashes: &[String],
) -> Result<(), ApiError> {
    // Blobs are shared across spaces, so every space's records count.
    let all_packages = state
        .store()
        .list_resources::<Package>(&DocumentQuery::default())
        .await?;
    for hash in hashes {
        if all_packages
            .items
            .iter()
            .all(|package| package.hash != *hash)
        {
            remove_blob_logged(blobs, hash).await;
        }
    }
    Ok(())
}

/// A blob that cannot be removed wastes space but breaks nothing: log it, carry on.
async fn remove_blob_logged(blobs: &BlobStore, hash: &str) {
    if let Err(error) = blobs.remove(hash).await {
        tracing::warn!(%hash, "failed to remove an unreferenced package blob: {error}");
    }
}

/// The package with Octopus's id `id` (`packages-Acme.1.0.0`, any case) in the space, or 404.
async fn find_package(state: &AppState, space_id: &str, id: &str) -> Result<Package, ApiError> {
    let not_found = || ApiError::NotFound(format!("package {id} was not found"));
    let has_prefix = id
        .get(..PACKAGE_ID_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(PACKAGE_ID_PREFIX));
    if !has_prefix {
        return Err(not_found());
    }
    state
        .store()
        .find_resource_by_name::<Package>(Some(space_id), &id[PACKAGE_ID_PREFIX.len()..])
        .await?
        .ok_or_else(not_found)
}

async fn find_build_information(
    state: &AppState,
    package: &Package,
) -> Result<Option<serde_json::Value>, ApiError> {
    Ok(state
        .store()
        .find_resource_by_name::<BuildInformation>(Some(&package.space_id), package.name())
        .await?
        .map(|build_information| build_information.octopus_build_information))
}

async fn get_package(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let package = find_package(&state, &space_id, &id).await?;
    let build_information = find_build_information(&state, &package).await?;
    Ok(Json(PackageResource::from_package(&package, build_information)).into_response())
}

async fn delete_package(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let blobs = blob_store(&state)?;
    let _guard = state.package_lock.lock().await;
    let package = find_package(&state, &space_id, &id).await?;
    state
        .store()
        .write(&[Change::Delete {
            kind: Package::KIND,
            id: package.document_id.clone(),
        }])
        .await?;
    remove_blob_if_unreferenced(&state, blobs, &package.hash).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn download_package(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let blobs = blob_store(&state)?;
    let package = find_package(&state, &space_id, &id).await?;
    let path = blobs
        .path_of(&package.hash)
        .ok_or_else(|| ApiError::internal_message("a package record has a malformed hash"))?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    let length = file.metadata().await.map_err(ApiError::internal)?.len();
    let file_name = format!(
        "{}.{}{}",
        package.package_id, package.version, package.file_extension
    );
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    // Ids and versions are letters, digits, `.`, `-`, `_` and `+`: safe inside quotes.
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// Newest first: by parsed version, then by the text for versions that tie or do not parse.
fn newest_first(left: &Package, right: &Package) -> Ordering {
    match (
        parse_release_version(&left.version),
        parse_release_version(&right.version),
    ) {
        (Ok(left_version), Ok(right_version)) => right_version
            .cmp(&left_version)
            .then_with(|| right.version.cmp(&left.version)),
        _ => right.version.cmp(&left.version),
    }
}

async fn space_packages(state: &AppState, space_id: &str) -> Result<Vec<Package>, ApiError> {
    Ok(state
        .store()
        .list_resources::<Package>(&DocumentQuery::in_space(space_id))
        .await?
        .items)
}

fn page<T>(items: Vec<T>, parameters: &ListParameters) -> Vec<T> {
    let skip = usize::try_from(parameters.skip.max(0)).unwrap_or(usize::MAX);
    let take = usize::try_from(parameters.take.max(0)).unwrap_or(usize::MAX);
    items.into_iter().skip(skip).take(take).collect()
}

/// `GET packages`: by package id (case-insensitive), each id's versions newest first.
async fn list_packages(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    parameters: ListParameters,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let options = query_options(query.as_deref());
    let exact_id = options
        .get("nugetpackageid")
        .filter(|text| !text.is_empty())
        .map(|text| text.to_lowercase());
    let filter = options
        .get("filter")
        .filter(|text| !text.is_empty())
        .map(|text| text.to_lowercase());
    let latest_only = options
        .get("latest")
        .is_some_and(|text| text.eq_ignore_ascii_case("true"));

    let mut packages: Vec<Package> = space_packages(&state, &space_id)
        .await?
        .into_iter()
        .filter(|package| {
            let lower_id = package.package_id.to_lowercase();
            exact_id.as_ref().is_none_or(|exact| lower_id == *exact)
                && filter
                    .as_ref()
                    .is_none_or(|part| lower_id.contains(part.as_str()))
        })
        .collect();
    packages.sort_by(|left, right| {
        left.package_id
            .to_lowercase()
            .cmp(&right.package_id.to_lowercase())
            .then_with(|| newest_first(left, right))
    });
    if latest_only {
        packages
            .dedup_by(|later, earlier| later.package_id.eq_ignore_ascii_case(&earlier.package_id));
    }
    let total = i64::try_from(packages.len()).unwrap_or(i64::MAX);
    let items: Vec<PackageResource> = page(packages, &parameters)
        .iter()
        .map(|package| PackageResource::from_package(package, None))
        .collect();
    let base_path = format!("/api/{space_id}/packages");
    Ok(Json(collection("Package", total, items, &parameters, &base_path)).into_response())
}

async fn list_feeds(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    parameters: ListParameters,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let feed = FeedResource::built_in(&space_id);
    let matches = parameters.ids.as_ref().is_none_or(|ids| {
        ids.iter()
            .any(|id| id.eq_ignore_ascii_case(BUILT_IN_FEED_ID))
    }) && parameters
        .partial_name
        .as_ref()
        .is_none_or(|part| feed.name.to_lowercase().contains(&part.to_lowercase()));
    let feeds = if matches { vec![feed] } else { Vec::new() };
    let total = i64::try_from(feeds.len()).unwrap_or(0);
    let base_path = format!("/api/{space_id}/feeds");
    Ok(Json(collection(
        "Feed",
        total,
        page(feeds, &parameters),
        &parameters,
        &base_path,
    ))
    .into_response())
}

fn require_built_in_feed(feed_id: &str) -> Result<(), ApiError> {
    if feed_id.eq_ignore_ascii_case(BUILT_IN_FEED_ID) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "feed {feed_id} was not found; this server has only the built-in feed, {BUILT_IN_FEED_ID}"
        )))
    }
}

async fn get_feed(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, feed_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    require_built_in_feed(&feed_id)?;
    Ok(Json(FeedResource::built_in(&space_id)).into_response())
}

/// `GET feeds/feeds-builtin/packages/versions?packageId=X`: X's versions, newest first.
async fn list_package_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, feed_id)): Path<(String, String)>,
    parameters: ListParameters,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    require_built_in_feed(&feed_id)?;
    let options = query_options(query.as_deref());
    let Some(package_id) = options.get("packageid").filter(|text| !text.is_empty()) else {
        return Err(clear_bad_request(
            "The packageId query parameter is required.".to_owned(),
        ));
    };
    let mut versions: Vec<Package> = space_packages(&state, &space_id)
        .await?
        .into_iter()
        .filter(|package| package.package_id.eq_ignore_ascii_case(package_id))
        .collect();
    versions.sort_by(newest_first);
    let total = i64::try_from(versions.len()).unwrap_or(i64::MAX);
    let items: Vec<PackageVersionResource> = page(versions, &parameters)
        .iter()
        .map(PackageVersionResource::from_package)
        .collect();
    let base_path = format!("/api/{space_id}/feeds/{BUILT_IN_FEED_ID}/packages/versions");
    Ok(Json(collection(
        "PackageVersion",
        total,
        items,
        &parameters,
        &base_path,
    ))
    .into_response())
}

/// The body push-build-information sends; its camelCase plumbing fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BuildInformationCommand {
    #[serde(default)]
    package_id: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    octopus_build_information: serde_json::Value,
}

async fn create_build_information(
    State(state): State<AppState>,
    caller: Caller,
    Path(space_id): Path<String>,
    RawQuery(query): RawQuery,
    ApiJson(command): ApiJson<BuildInformationCommand>,
) -> Result<Response, ApiError> {
    caller.require(Permission::EditConfiguration)?;
    require_space(&state, &space_id).await?;
    let overwrite_mode = OverwriteMode::from_query(&query_options(query.as_deref()))?
        .unwrap_or(OverwriteMode::FailIfExists);
    let mut build_information = BuildInformation {
        space_id: space_id.clone(),
        package_id: command.package_id,
        version: command.version,
        octopus_build_information: command.octopus_build_information,
        created: chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        ..BuildInformation::default()
    };
    let errors = build_information.normalize_and_validate();
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if let Err(problem) = parse_release_version(&build_information.version) {
        return Err(clear_bad_request(problem.to_string()));
    }
    let existing = state
        .store()
        .find_resource_by_name::<BuildInformation>(Some(&space_id), build_information.name())
        .await?;
    let (status, stored) = match (existing, overwrite_mode) {
        (Some(_), OverwriteMode::FailIfExists) => {
            return Err(ApiError::Conflict(
                BUILD_INFORMATION_EXISTS_MESSAGE.to_owned(),
            ));
        }
        (Some(existing), OverwriteMode::IgnoreIfExists) => (StatusCode::OK, existing),
        (Some(existing), OverwriteMode::OverwriteExisting) => {
            build_information.id = existing.id;
            state
                .store()
                .write(&[Change::Update(document_from_resource(&build_information)?)])
                .await?;
            (StatusCode::OK, build_information)
        }
        (None, _) => {
            build_information.id = state.store().allocate_id(BuildInformation::KIND).await?;
            state
                .store()
                .write(&[Change::Insert(document_from_resource(&build_information)?)])
                .await
                .map_err(|error| match error {
                    StoreError::NameTaken { .. } => {
                        ApiError::Conflict(BUILD_INFORMATION_EXISTS_MESSAGE.to_owned())
                    }
                    other => other.into(),
                })?;
            (StatusCode::CREATED, build_information)
        }
    };
    Ok((status, Json(build_information_with_links(stored))).into_response())
}

fn build_information_with_links(
    build_information: BuildInformation,
) -> WireResource<BuildInformation> {
    let links = Links::from([(
        "Self".to_owned(),
        format!(
            "/api/{}/build-information/{}",
            build_information.space_id, build_information.id
        ),
    )]);
    WireResource {
        resource: build_information,
        links,
    }
}

async fn get_build_information(
    State(state): State<AppState>,
    caller: Caller,
    Path((space_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ViewConfiguration)?;
    require_space(&state, &space_id).await?;
    let not_found = || ApiError::NotFound(format!("build information {id} was not found"));
    let build_information = state
        .store()
        .get_resource::<BuildInformation>(&id)
        .await?
        .filter(|build_information| build_information.space_id == space_id)
        .ok_or_else(not_found)?;
    Ok(Json(build_information_with_links(build_information)).into_response())
}
