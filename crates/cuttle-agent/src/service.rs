//! The agent's side of the protocol: an axum [`Router`] that answers the RPC set of
//! [`crate::protocol`] with a [`cuttle_exec::Executor`] and a [`FileStore`].
//!
//! The same router serves both modes: a listening agent serves it on the connections it
//! accepts (`crate::listening`), a polling agent on the connection it opened to the server
//! (`crate::polling`). It knows nothing of TLS or of who the caller is: only a peer that passed
//! the pinned mutual TLS handshake ever reaches it.
//!
//! The package cache calls store into a [`PackageCache`] (`<agent home>/packages`): uploads
//! stream through a [`FileStore`] over the cache's directory (so they appear only whole and
//! verified), then the cache records them.
//!
//! Errors answer `{ErrorMessage, Errors}`: 400 for a bad request, 404 for an unknown ticket,
//! file or artifact, 409 for a ticket run by another process, 413 for a file over the bound, 500 for the
//! agent's own disk failures (logged). The trusted server gets the detail of a 500 too: it is
//! the agent's only caller, and the operator reads it in the task log.

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use cuttle_exec::{
    CachedPackage, ExecError, Executor, PackageCache, PackageCacheError, ScriptRequest,
    ScriptStatus, ScriptSyntax,
};
use serde::de::DeserializeOwned;

use crate::files::{FileError, FileStore};
use crate::protocol::{
    self, APPLY_PACKAGE_DELTA_PATH, ARTIFACTS_PATH, ApplyPackageDeltaRequest, CANCEL_SCRIPT_PATH,
    CAPABILITIES_PATH, COMPLETE_SCRIPT_PATH, CachedPackages, Capabilities, CompleteScriptRequest,
    Empty, ErrorResponse, FILES_PATH, LIST_PACKAGES_PATH, ListPackagesRequest, MAX_JSON_BODY,
    PACKAGE_ID_HEADER, PACKAGE_SIGNATURE_PATH, PACKAGE_VERSION_HEADER, PACKAGES_PATH,
    SCRIPT_STATUS_PATH, SHA256_HEADER, START_SCRIPT_PATH, ScriptTicketRequest, StartScriptResponse,
    UploadedFile,
};

/// What the router serves with. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentService {
    executor: Executor,
    files: FileStore,
    package_cache: PackageCache,
    /// Streams package uploads into the cache's directory, verified.
    package_uploads: FileStore,
    capabilities: Arc<Capabilities>,
}

impl AgentService {
    /// A service running scripts with `executor`, storing files in `files` and packages in
    /// `package_cache` (files up to the file store's bound). The shells listed in its
    /// capabilities are looked up on `PATH` now.
    pub fn new(
        executor: Executor,
        files: FileStore,
        package_cache: PackageCache,
        subscription_id: Option<String>,
    ) -> Result<AgentService, FileError> {
        let package_uploads = FileStore::open(package_cache.directory(), files.max_length())?;
        let capabilities = Capabilities {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            os: std::env::consts::OS.to_owned(),
            architecture: std::env::consts::ARCH.to_owned(),
            shells: detect_shells(),
            features: [
                protocol::features::SCRIPTS,
                protocol::features::FILE_TRANSFER,
                protocol::features::STAGED_FILES_FROM_STORE,
                protocol::features::ARTIFACTS,
                protocol::features::PACKAGE_DEPLOYMENT,
                protocol::features::PACKAGE_CACHE,
            ]
            .map(str::to_owned)
            .to_vec(),
            subscription_id,
        };
        Ok(AgentService {
            executor,
            files,
            package_cache,
            package_uploads,
            capabilities: Arc::new(capabilities),
        })
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    pub fn files(&self) -> &FileStore {
        &self.files
    }

    pub fn package_cache(&self) -> &PackageCache {
        &self.package_cache
    }

    /// The router answering every call of the protocol.
    pub fn router(&self) -> Router {
        Router::new()
            .route(CAPABILITIES_PATH, post(capabilities))
            .route(START_SCRIPT_PATH, post(start_script))
            .route(SCRIPT_STATUS_PATH, post(script_status))
            .route(CANCEL_SCRIPT_PATH, post(cancel_script))
            .route(COMPLETE_SCRIPT_PATH, post(complete_script))
            .route(
                &format!("{FILES_PATH}/{{name}}"),
                get(download_file).put(upload_file),
            )
            .route(
                &format!("{ARTIFACTS_PATH}/{{ticket}}/{{name}}"),
                get(download_artifact),
            )
            .route(LIST_PACKAGES_PATH, post(list_packages))
            .route(APPLY_PACKAGE_DELTA_PATH, post(apply_package_delta))
            .route(&format!("{PACKAGES_PATH}/{{name}}"), put(upload_package))
            .route(
                &format!("{PACKAGE_SIGNATURE_PATH}/{{sha256}}"),
                get(package_signature),
            )
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
            .with_state(self.clone())
    }
}

/// The script syntaxes whose interpreter (`bash`, `sh`, `python3`, `pwsh`) is on `PATH`.
pub fn detect_shells() -> Vec<ScriptSyntax> {
    let directories: Vec<std::path::PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let found = |program: &str| {
        directories.iter().any(|directory| {
            let candidate = directory.join(program);
            is_executable(&candidate)
                || (cfg!(windows) && is_executable(&candidate.with_extension("exe")))
        })
    };
    [
        (ScriptSyntax::Bash, "bash"),
        (ScriptSyntax::Sh, "sh"),
        (ScriptSyntax::Python, "python3"),
        (ScriptSyntax::PowerShell, "pwsh"),
    ]
    .into_iter()
    .filter(|(_, program)| found(program))
    .map(|(syntax, _)| syntax)
    .collect()
}

fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}

/// A failed call: its status and message.
#[derive(Debug)]
struct ServiceError {
    status: StatusCode,
    message: String,
}

impl ServiceError {
    fn bad_request(message: impl Into<String>) -> ServiceError {
        ServiceError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "agent call failed: {}", self.message);
        } else {
            tracing::debug!(status = %self.status, "agent call refused: {}", self.message);
        }
        let body = ErrorResponse {
            errors: vec![self.message.clone()],
            error_message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ExecError> for ServiceError {
    fn from(error: ExecError) -> ServiceError {
        let status = match &error {
            ExecError::InvalidTicket { .. } | ExecError::InvalidRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ExecError::UnknownTicket(_) => StatusCode::NOT_FOUND,
            ExecError::StillRunning(_) => StatusCode::CONFLICT,
            ExecError::Io { .. } | ExecError::Damaged { .. } | ExecError::Secret(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ServiceError {
            status,
            message: error.to_string(),
        }
    }
}

impl From<PackageCacheError> for ServiceError {
    fn from(error: PackageCacheError) -> ServiceError {
        let status = match &error {
            PackageCacheError::Invalid(_)
            | PackageCacheError::ChecksumMismatch { .. }
            | PackageCacheError::Delta(_) => StatusCode::BAD_REQUEST,
            PackageCacheError::NotCached(_) => StatusCode::NOT_FOUND,
            PackageCacheError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ServiceError {
            status,
            message: error.to_string(),
        }
    }
}

/// Runs blocking cache work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ServiceError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("a package cache task failed: {error}"),
        })?
}

impl From<FileError> for ServiceError {
    fn from(error: FileError) -> ServiceError {
        let status = match &error {
            FileError::InvalidName(_)
            | FileError::InvalidChecksum { .. }
            | FileError::ChecksumMismatch { .. }
            | FileError::Interrupted { .. } => StatusCode::BAD_REQUEST,
            FileError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            FileError::NotFound(_) => StatusCode::NOT_FOUND,
            FileError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ServiceError {
            status,
            message: error.to_string(),
        }
    }
}

/// Parses a JSON body, answering 400 with serde's message (it names the field) on failure.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ServiceError> {
    serde_json::from_slice(body)
        .map_err(|error| ServiceError::bad_request(format!("invalid request body: {error}")))
}

async fn capabilities(State(service): State<AgentService>) -> Json<Capabilities> {
    Json(service.capabilities.as_ref().clone())
}

async fn start_script(
    State(service): State<AgentService>,
    body: Bytes,
) -> Result<Json<StartScriptResponse>, ServiceError> {
    let mut request: ScriptRequest = parse(&body)?;
    // A relative source names a file of the store, so the server need not know its layout.
    for file in &mut request.files {
        if file.source.is_relative() {
            let name = file.source.to_str().ok_or_else(|| {
                ServiceError::bad_request("a staged file's Source must be valid UTF-8")
            })?;
            file.source = service.files.path_of(name)?;
        }
    }
    // The same for a package deployment's package: a cached package's file name
    // (`<sha256><ext>`) first, else a file of the store.
    if let Some(deployment) = &mut request.package_deployment
        && deployment.package_path.is_relative()
    {
        let name = deployment.package_path.to_str().ok_or_else(|| {
            ServiceError::bad_request("a package deployment's PackagePath must be valid UTF-8")
        })?;
        deployment.package_path = match service.package_cache.resolve_file_name(name) {
            Some(path) => path,
            None => service.files.path_of(name)?,
        };
    }
    let ticket = request.ticket.clone();
    let outcome = service.executor.start(request).await?;
    tracing::info!(%ticket, ?outcome, "start script");
    Ok(Json(StartScriptResponse { outcome }))
}

async fn script_status(
    State(service): State<AgentService>,
    body: Bytes,
) -> Result<Json<ScriptStatus>, ServiceError> {
    let request: ScriptTicketRequest = parse(&body)?;
    let status = service
        .executor
        .status(&request.ticket, request.after_sequence)
        .await?;
    Ok(Json(status))
}

async fn cancel_script(
    State(service): State<AgentService>,
    body: Bytes,
) -> Result<Json<ScriptStatus>, ServiceError> {
    let request: ScriptTicketRequest = parse(&body)?;
    tracing::info!(ticket = %request.ticket, "cancel script");
    service.executor.cancel(&request.ticket).await?;
    let status = service
        .executor
        .status(&request.ticket, request.after_sequence)
        .await?;
    Ok(Json(status))
}

async fn complete_script(
    State(service): State<AgentService>,
    body: Bytes,
) -> Result<Json<Empty>, ServiceError> {
    let request: CompleteScriptRequest = parse(&body)?;
    service.executor.complete(&request.ticket).await?;
    tracing::debug!(ticket = %request.ticket, "completed script");
    Ok(Json(Empty {}))
}

async fn upload_file(
    State(service): State<AgentService>,
    name: Result<axum::extract::Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<UploadedFile>, ServiceError> {
    let axum::extract::Path(name) =
        name.map_err(|rejection| ServiceError::bad_request(rejection.body_text()))?;
    let checksum = headers
        .get(SHA256_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            ServiceError::bad_request(format!(
                "an upload needs the {SHA256_HEADER} header: the SHA-256 of its bytes in hex"
            ))
        })?;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let chunks = body.into_data_stream();
    let uploaded = service
        .files
        .write(&name, checksum, declared_length, chunks)
        .await?;
    tracing::info!(name = %uploaded.name, length = uploaded.length, "received a file");
    Ok(Json(uploaded))
}

async fn download_file(
    State(service): State<AgentService>,
    name: Result<axum::extract::Path<String>, PathRejection>,
) -> Result<Response, ServiceError> {
    let axum::extract::Path(name) =
        name.map_err(|rejection| ServiceError::bad_request(rejection.body_text()))?;
    let opened = service.files.open_file(&name).await?;
    file_response(opened)
}

async fn download_artifact(
    State(service): State<AgentService>,
    names: Result<axum::extract::Path<(String, String)>, PathRejection>,
) -> Result<Response, ServiceError> {
    let axum::extract::Path((ticket, name)) =
        names.map_err(|rejection| ServiceError::bad_request(rejection.body_text()))?;
    let status = service.executor.status(&ticket, u64::MAX).await?;
    // Only a file the script declared as an artifact can be fetched, by its declared name.
    let artifact = status
        .artifacts
        .iter()
        .rev()
        .find(|artifact| artifact.name == name)
        .ok_or_else(|| ServiceError {
            status: StatusCode::NOT_FOUND,
            message: format!("the ticket {ticket:?} has no artifact named {name:?}"),
        })?;
    let opened = crate::files::open_hashed(&artifact.path, &name).await?;
    file_response(opened)
}

/// Streams an opened file with its length and checksum.
fn file_response(opened: crate::files::OpenedFile) -> Result<Response, ServiceError> {
    let checksum = HeaderValue::from_str(&opened.sha256).map_err(|error| ServiceError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: error.to_string(),
    })?;
    let stream = tokio_util::io::ReaderStream::with_capacity(opened.file, 64 * 1024);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(SHA256_HEADER, checksum);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(opened.length));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ServiceError> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            ServiceError::bad_request(format!("a package upload needs the {name} header"))
        })
}

async fn list_packages(
    State(service): State<AgentService>,
    body: Bytes,
) -> Result<Json<CachedPackages>, ServiceError> {
    let request: ListPackagesRequest = parse(&body)?;
    let cache = service.package_cache.clone();
    let packages = blocking(move || Ok(cache.list(&request.package_id))).await?;
    Ok(Json(CachedPackages { packages }))
}

async fn upload_package(
    State(service): State<AgentService>,
    name: Result<axum::extract::Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CachedPackage>, ServiceError> {
    let axum::extract::Path(name) =
        name.map_err(|rejection| ServiceError::bad_request(rejection.body_text()))?;
    let sha256 = crate::files::parse_sha256(header_text(&headers, SHA256_HEADER)?)?;
    let file_extension = name
        .strip_prefix(sha256.as_str())
        .ok_or_else(|| {
            ServiceError::bad_request(format!(
                "a package upload is named <sha256><extension> after its {SHA256_HEADER}, not {name:?}"
            ))
        })?
        .to_owned();
    let package = CachedPackage {
        package_id: header_text(&headers, PACKAGE_ID_HEADER)?.to_owned(),
        version: header_text(&headers, PACKAGE_VERSION_HEADER)?.to_owned(),
        file_extension,
        sha256,
        length: 0,
    };
    package.validate()?;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let uploaded = service
        .package_uploads
        .write(
            &package.file_name(),
            &package.sha256,
            declared_length,
            body.into_data_stream(),
        )
        .await?;
    let stored = CachedPackage {
        length: uploaded.length,
        ..package
    };
    let cache = service.package_cache.clone();
    let recorded = stored.clone();
    blocking(move || Ok(cache.record(&recorded)?)).await?;
    tracing::info!(package_id = %stored.package_id, version = %stored.version, length = stored.length, "cached a package");
    Ok(Json(stored))
}

async fn package_signature(
    State(service): State<AgentService>,
    sha256: Result<axum::extract::Path<String>, PathRejection>,
) -> Result<Response, ServiceError> {
    let axum::extract::Path(sha256) =
        sha256.map_err(|rejection| ServiceError::bad_request(rejection.body_text()))?;
    let cache = service.package_cache.clone();
    let signature = blocking(move || Ok(cache.signature(&sha256)?)).await?;
    let checksum =
        HeaderValue::from_str(&crate::files::sha256_hex(&signature)).map_err(|error| {
            ServiceError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: error.to_string(),
            }
        })?;
    let length = signature.len();
    let mut response = Response::new(Body::from(signature));
    let headers = response.headers_mut();
    headers.insert(SHA256_HEADER, checksum);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

async fn apply_package_delta(
    State(service): State<AgentService>,
    body: Bytes,
) -> Result<Json<CachedPackage>, ServiceError> {
    let request: ApplyPackageDeltaRequest = parse(&body)?;
    let delta = service.files.path_of(&request.delta_file_name)?;
    let cache = service.package_cache.clone();
    let ApplyPackageDeltaRequest {
        basis_sha256,
        package,
        ..
    } = request;
    let delta_path = delta.clone();
    let applied =
        blocking(move || Ok(cache.apply_delta(&basis_sha256, &delta_path, &package)?)).await;
    // The delta is of no use after one try: a failed patch means the server sends the full
    // package instead.
    if let Err(error) = tokio::fs::remove_file(&delta).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %delta.display(), "could not remove a used delta file: {error}");
    }
    let applied = applied?;
    tracing::info!(package_id = %applied.package_id, version = %applied.version, length = applied.length, "patched a package from a delta");
    Ok(Json(applied))
}

async fn not_found() -> ServiceError {
    ServiceError {
        status: StatusCode::NOT_FOUND,
        message: "no such agent call".to_owned(),
    }
}
