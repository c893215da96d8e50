//! The agent's side of the protocol: an axum [`Router`] that answers the RPC set of
//! [`crate::protocol`] with a [`cuttle_exec::Executor`] and a [`FileStore`].
//!
//! The same router serves both modes: a listening agent serves it on the connections it
//! accepts (`crate::listening`), a polling agent on the connection it opened to the server
//! (`crate::polling`). It knows nothing of TLS or of who the caller is: only a peer that passed
//! the pinned mutual TLS handshake ever reaches it.
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
use axum::routing::{get, post};
use bytes::Bytes;
use cuttle_exec::{ExecError, Executor, ScriptRequest, ScriptStatus, ScriptSyntax};
use serde::de::DeserializeOwned;

use crate::files::{FileError, FileStore};
use crate::protocol::{
    self, ARTIFACTS_PATH, CANCEL_SCRIPT_PATH, CAPABILITIES_PATH, COMPLETE_SCRIPT_PATH,
    Capabilities, CompleteScriptRequest, Empty, ErrorResponse, FILES_PATH, MAX_JSON_BODY,
    SCRIPT_STATUS_PATH, SHA256_HEADER, START_SCRIPT_PATH, ScriptTicketRequest, StartScriptResponse,
    UploadedFile,
};

/// What the router serves with. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentService {
    executor: Executor,
    files: FileStore,
    capabilities: Arc<Capabilities>,
}

impl AgentService {
    /// A service running scripts with `executor` and storing files in `files`. The shells
    /// listed in its capabilities are looked up on `PATH` now.
    pub fn new(
        executor: Executor,
        files: FileStore,
        subscription_id: Option<String>,
    ) -> AgentService {
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
            ]
            .map(str::to_owned)
            .to_vec(),
            subscription_id,
        };
        AgentService {
            executor,
            files,
            capabilities: Arc::new(capabilities),
        }
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
    // The same for a package deployment's package.
    if let Some(deployment) = &mut request.package_deployment
        && deployment.package_path.is_relative()
    {
        let name = deployment.package_path.to_str().ok_or_else(|| {
            ServiceError::bad_request("a package deployment's PackagePath must be valid UTF-8")
        })?;
        deployment.package_path = service.files.path_of(name)?;
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

async fn not_found() -> ServiceError {
    ServiceError {
        status: StatusCode::NOT_FOUND,
        message: "no such agent call".to_owned(),
    }
}
