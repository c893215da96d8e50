//! The server's side of the protocol: [`AgentConnection`], typed calls to one agent over one
//! multiplexed HTTP/2 connection.
//!
//! A connection is made in one of two ways, and is used the same way after:
//! - [`AgentConnection::connect_listening`]: the server dials a listening agent (TCP, TLS
//!   pinned to the agent's thumbprint, HTTP/2 handshake); the connection task is spawned.
//! - [`AgentConnection::serve_polling`]: a polling agent dialled the server, which accepted
//!   the TLS connection; the server is the HTTP/2 *client* on that stream, so its calls travel
//!   over the connection the agent opened, with no polling delay.
//!
//! Clones share the connection; any number of calls may be in flight at once (HTTP/2
//! streams). Keep-alive pings notice a dead peer; a closed connection is never reopened here
//! (the caller dials again, or waits for the polling agent to come back).
//!
//! Errors say who failed and whether retrying may help ([`AgentError::is_retryable`]): the
//! network ([`AgentError::Unreachable`]), a certificate one side does not trust
//! ([`AgentError::Refused`]), the agent refusing the call ([`AgentError::Agent`], with its
//! `{ErrorMessage, Errors}`), or an answer that makes no sense ([`AgentError::Protocol`],
//! [`AgentError::ChecksumMismatch`]).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use bytes::Bytes;
use cuttle_exec::{CachedPackage, ScriptRequest, ScriptStatus, StartOutcome};
use cuttle_pki::UntrustedPeer;
use cuttle_pki::rustls::ClientConfig;
use cuttle_pki::rustls::pki_types::ServerName;
use futures::{Stream, StreamExt as _};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connection::{
    CONNECT_TIMEOUT, Failure, TLS_HANDSHAKE_TIMEOUT, classify, client_builder, describe_chain,
};
use crate::files::{parse_sha256, sha256_hex};
use crate::protocol::{
    APPLY_PACKAGE_DELTA_PATH, ARTIFACTS_PATH, ApplyPackageDeltaRequest, CANCEL_SCRIPT_PATH,
    CAPABILITIES_PATH, COMPLETE_SCRIPT_PATH, CachedPackages, Capabilities, CompleteScriptRequest,
    DEFAULT_LISTEN_PORT, Empty, ErrorResponse, FILES_PATH, LIST_PACKAGES_PATH, ListPackagesRequest,
    PACKAGE_ID_HEADER, PACKAGE_SIGNATURE_PATH, PACKAGE_VERSION_HEADER, PACKAGES_PATH,
    SCRIPT_STATUS_PATH, SHA256_HEADER, START_SCRIPT_PATH, ScriptTicketRequest, StartScriptResponse,
    UploadedFile,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// How long a call (not an upload or download) may take by default, answer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest JSON answer read, in bytes.
const MAX_ANSWER_LENGTH: usize = 256 << 20;
/// The largest file [`AgentConnection::download`] holds in memory, in bytes; larger files go
/// through [`AgentConnection::download_to`].
pub const MAX_IN_MEMORY_DOWNLOAD: usize = 256 << 20;

/// Why a call to an agent failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent could not be reached: the connection could not be made, timed out, or
    /// closed. Retrying may help (the ticket makes retrying a start safe).
    #[error("could not reach the agent at {peer}: {reason}")]
    Unreachable { peer: String, reason: String },
    /// The TLS handshake was refused: this side does not trust the agent's certificate
    /// (`untrusted` holds its thumbprint), or the agent does not trust ours. Retrying will
    /// not help until the trust is fixed.
    #[error("the connection to the agent at {peer} was refused: {reason}")]
    Refused {
        peer: String,
        reason: String,
        untrusted: Option<UntrustedPeer>,
    },
    /// The agent refused the call: a 4xx or 5xx with its `{ErrorMessage, Errors}`.
    #[error("the agent at {peer} answered {status}: {message}")]
    Agent {
        peer: String,
        status: StatusCode,
        message: String,
        errors: Vec<String>,
    },
    /// The agent's answer could not be understood.
    #[error("the agent at {peer} sent an answer that could not be read: {reason}")]
    Protocol { peer: String, reason: String },
    /// A downloaded file does not match the checksum the agent sent with it.
    #[error(
        "the file {name:?} from the agent at {peer} does not match its checksum: expected \
         {expected}, received {actual}"
    )]
    ChecksumMismatch {
        peer: String,
        name: String,
        expected: String,
        actual: String,
    },
    /// The address is not `https://host[:port]/`.
    #[error("invalid agent address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    /// A local file to upload or to download into could not be read or written.
    #[error("could not {action} {path}: {source}")]
    LocalFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl AgentError {
    /// Whether the same call may succeed later without anyone changing anything: the network
    /// failed, or the agent failed on its side (5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            AgentError::Unreachable { .. } => true,
            AgentError::Agent { status, .. } => status.is_server_error(),
            _ => false,
        }
    }

    /// The agent's HTTP status, when it answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            AgentError::Agent { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn from_failure(peer: &str, failure: Failure) -> AgentError {
        match failure {
            Failure::Refused { reason, untrusted } => AgentError::Refused {
                peer: peer.to_owned(),
                reason,
                untrusted,
            },
            Failure::Unreachable { reason } => AgentError::Unreachable {
                peer: peer.to_owned(),
                reason,
            },
        }
    }
}

/// One HTTP/2 connection to one agent. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct AgentConnection {
    sender: SendRequest<RequestBody>,
    /// `https://host:port`, the prefix of every request's URI.
    base: Arc<str>,
    /// Who the agent is, for error messages.
    label: Arc<str>,
    /// Why the connection closed, once it has.
    closed: watch::Receiver<Option<Failure>>,
    request_timeout: Duration,
}

impl std::fmt::Debug for AgentConnection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AgentConnection")
            .field("agent", &self.label)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// The task driving a polling agent's connection: completes when the connection closes, with
/// why it closed. Dropping it leaves the connection running; [`ConnectionTask::abort`] closes
/// it.
#[derive(Debug)]
pub struct ConnectionTask {
    handle: JoinHandle<Result<(), Failure>>,
    label: Arc<str>,
}

impl ConnectionTask {
    /// Closes the connection at once (calls in flight fail as unreachable).
    pub fn abort(&self) {
        self.handle.abort();
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl std::future::Future for ConnectionTask {
    type Output = Result<(), AgentError>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let label = Arc::clone(&self.label);
        Pin::new(&mut self.handle)
            .poll(context)
            .map(|joined| match joined {
                Ok(Ok(())) => Ok(()),
                Ok(Err(failure)) => Err(AgentError::from_failure(&label, failure)),
                Err(join_error) => Err(AgentError::Unreachable {
                    peer: label.to_string(),
                    reason: if join_error.is_cancelled() {
                        "the connection was closed by this side".to_owned()
                    } else {
                        format!("the connection task failed: {join_error}")
                    },
                }),
            })
    }
}

/// What [`AgentConnection::download_to`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedFile {
    pub path: PathBuf,
    pub length: u64,
    /// Lower-case hex, checked against the agent's.
    pub sha256: String,
}

impl AgentConnection {
    /// Dials a listening agent at `uri` (`https://host[:10933]/`), whose certificate `tls`
    /// pins (see `cuttle_pki::client_config`), and spawns the connection's task.
    ///
    /// A certificate the agent does not trust is only noticed at the first call (TLS 1.3
    /// checks the client's certificate after the client considers the handshake done): that
    /// call fails with [`AgentError::Refused`].
    pub async fn connect_listening(
        uri: &str,
        tls: Arc<ClientConfig>,
    ) -> Result<AgentConnection, AgentError> {
        let invalid = |reason: &str| AgentError::InvalidAddress {
            address: uri.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed: Uri = uri
            .trim()
            .parse()
            .map_err(|_| invalid("not a URI such as https://web01:10933/"))?;
        if parsed.scheme_str() != Some("https") {
            return Err(invalid("a listening agent's address starts with https://"));
        }
        let host = parsed.host().ok_or_else(|| invalid("no host name"))?;
        let port = parsed.port_u16().unwrap_or(DEFAULT_LISTEN_PORT);
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let label: Arc<str> = Arc::from(format!("https://{host}:{port}/"));
        let unreachable = |reason: String| AgentError::Unreachable {
            peer: label.to_string(),
            reason,
        };
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((bare_host, port)),
        )
        .await
        .map_err(|_| unreachable(format!("no TCP connection within {CONNECT_TIMEOUT:?}")))?
        .map_err(|error| unreachable(describe_chain(&error)))?;
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {error}");
        }
        let server_name = ServerName::try_from(bare_host.to_owned())
            .map_err(|_| invalid("the host is neither a DNS name nor an IP address"))?;
        let tls_stream = tokio::time::timeout(
            TLS_HANDSHAKE_TIMEOUT,
            tokio_rustls::TlsConnector::from(tls).connect(server_name, tcp),
        )
        .await
        .map_err(|_| unreachable(format!("no TLS handshake within {TLS_HANDSHAKE_TIMEOUT:?}")))?
        .map_err(|error| AgentError::from_failure(&label, classify(&error)))?;
        let (connection, _task) =
            AgentConnection::handshake(tls_stream, format!("https://{host}:{port}"), label).await?;
        Ok(connection)
    }

    /// Serves a polling agent that dialled the server: `stream` is the accepted connection
    /// (tokio-rustls' server stream, the agent's certificate already checked against the
    /// trusted thumbprints), on which the server is the HTTP/2 client. Returns the connection
    /// and the task driving it, which completes when the agent goes away.
    pub async fn serve_polling<S>(
        stream: S,
    ) -> Result<(AgentConnection, ConnectionTask), AgentError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        AgentConnection::handshake(
            stream,
            "https://polling-agent".to_owned(),
            Arc::from("a polling agent"),
        )
        .await
    }

    async fn handshake<S>(
        stream: S,
        base: String,
        label: Arc<str>,
    ) -> Result<(AgentConnection, ConnectionTask), AgentError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = client_builder()
            .handshake::<_, RequestBody>(TokioIo::new(stream))
            .await
            .map_err(|error| AgentError::from_failure(&label, classify(&error)))?;
        let (closed_sender, closed) = watch::channel(None);
        let task_label = Arc::clone(&label);
        let handle = tokio::spawn(async move {
            let result = connection.await.map_err(|error| classify(&error));
            let failure = match &result {
                Ok(()) => {
                    tracing::debug!(agent = %task_label, "the agent connection closed");
                    Failure::Unreachable {
                        reason: "the connection was closed".to_owned(),
                    }
                }
                Err(failure @ Failure::Refused { .. }) => {
                    tracing::warn!(agent = %task_label, "the agent connection was refused: {}", failure.reason());
                    failure.clone()
                }
                Err(failure) => {
                    tracing::info!(agent = %task_label, "the agent connection failed: {}", failure.reason());
                    failure.clone()
                }
            };
            closed_sender.send_replace(Some(failure));
            result
        });
        let connection = AgentConnection {
            sender,
            base: Arc::from(base),
            label: Arc::clone(&label),
            closed,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        };
        Ok((connection, ConnectionTask { handle, label }))
    }

    /// The same connection, named `label` in errors (a machine's name, say).
    pub fn with_label(mut self, label: &str) -> AgentConnection {
        self.label = Arc::from(label);
        self
    }

    /// The same connection, with calls (not uploads or downloads) timing out after `timeout`.
    pub fn with_request_timeout(mut self, timeout: Duration) -> AgentConnection {
        self.request_timeout = timeout;
        self
    }

    /// Whether the connection has closed; a closed connection stays closed.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed() || self.closed.borrow().is_some()
    }

    /// Completes when the connection closes, with why.
    pub async fn closed(&self) -> AgentError {
        let mut closed = self.closed.clone();
        let failure = match closed.wait_for(Option::is_some).await {
            Ok(failure) => failure.clone(),
            Err(_) => None,
        };
        AgentError::from_failure(
            &self.label,
            failure.unwrap_or(Failure::Unreachable {
                reason: "the connection was closed".to_owned(),
            }),
        )
    }

    /// `POST /agent/capabilities`.
    pub async fn capabilities(&self) -> Result<Capabilities, AgentError> {
        self.call(CAPABILITIES_PATH, &Empty {}).await
    }

    /// Starts the ticket's script; starting a ticket again runs nothing and answers
    /// [`StartOutcome::AlreadyStarted`], so retrying after a network failure is safe.
    pub async fn start_script(&self, request: &ScriptRequest) -> Result<StartOutcome, AgentError> {
        let response: StartScriptResponse = self.call(START_SCRIPT_PATH, request).await?;
        Ok(response.outcome)
    }

    /// The ticket's state and its log lines after `after_sequence` (0 for all); pass the
    /// answer's `next_sequence` next time.
    pub async fn script_status(
        &self,
        ticket: &str,
        after_sequence: u64,
    ) -> Result<ScriptStatus, AgentError> {
        let request = ScriptTicketRequest {
            ticket: ticket.to_owned(),
            after_sequence,
        };
        self.call(SCRIPT_STATUS_PATH, &request).await
    }

    /// Asks the ticket's script to stop and answers its status; keep asking for the status
    /// until it is finished.
    pub async fn cancel_script(
        &self,
        ticket: &str,
        after_sequence: u64,
    ) -> Result<ScriptStatus, AgentError> {
        let request = ScriptTicketRequest {
            ticket: ticket.to_owned(),
            after_sequence,
        };
        self.call(CANCEL_SCRIPT_PATH, &request).await
    }

    /// Forgets the ticket: its workspace and log are deleted on the agent.
    pub async fn complete_script(&self, ticket: &str) -> Result<(), AgentError> {
        let request = CompleteScriptRequest {
            ticket: ticket.to_owned(),
        };
        let _empty: Empty = self.call(COMPLETE_SCRIPT_PATH, &request).await?;
        Ok(())
    }

    /// Stores `content` as the agent's file `name`.
    pub async fn upload(&self, name: &str, content: Bytes) -> Result<UploadedFile, AgentError> {
        let sha256 = sha256_hex(&content);
        let length = content.len() as u64;
        let body = Full::new(content)
            .map_err(|never| match never {})
            .boxed_unsync();
        self.upload_body(name, &sha256, Some(length), body).await
    }

    /// Streams the local file at `path` to the agent as `name` (it is read twice: once for
    /// its checksum, once to send it).
    pub async fn upload_file(&self, name: &str, path: &Path) -> Result<UploadedFile, AgentError> {
        let local = |action: &'static str| {
            move |source| AgentError::LocalFile {
                action,
                path: path.to_owned(),
                source,
            }
        };
        let mut file = tokio::fs::File::open(path).await.map_err(local("open"))?;
        let mut hasher = Sha256::new();
        let mut length: u64 = 0;
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = file.read(&mut buffer).await.map_err(local("read"))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            length += read as u64;
        }
        let sha256 = hex::encode(hasher.finalize());
        let file = tokio::fs::File::open(path).await.map_err(local("open"))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
        self.upload_stream(name, &sha256, Some(length), stream)
            .await
    }

    /// Streams `chunks` to the agent as `name`; `sha256` (hex) must be their checksum, or the
    /// agent refuses the file. `length`, when given, must be exact.
    pub async fn upload_stream<S>(
        &self,
        name: &str,
        sha256: &str,
        length: Option<u64>,
        chunks: S,
    ) -> Result<UploadedFile, AgentError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let body =
            StreamBody::new(chunks.map(|chunk| chunk.map(Frame::data).map_err(BoxError::from)))
                .boxed_unsync();
        self.upload_body(name, sha256, length, body).await
    }

    async fn upload_body(
        &self,
        name: &str,
        sha256: &str,
        length: Option<u64>,
        body: RequestBody,
    ) -> Result<UploadedFile, AgentError> {
        let mut request = Request::builder()
            .method(Method::PUT)
            .uri(self.file_uri(name))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(SHA256_HEADER, sha256);
        if let Some(length) = length {
            request = request.header(header::CONTENT_LENGTH, length);
        }
        let request = request.body(body).map_err(|error| self.protocol(error))?;
        let response = self.send(request).await?;
        let uploaded: UploadedFile = self.read_json(response).await?;
        if !uploaded.sha256.eq_ignore_ascii_case(sha256.trim()) {
            return Err(self.protocol(format!(
                "the agent stored {name:?} with checksum {}, not {sha256}",
                uploaded.sha256
            )));
        }
        Ok(uploaded)
    }

    /// `POST /agent/packages/list`: the cached versions of `package_id`.
    pub async fn cached_packages(
        &self,
        package_id: &str,
    ) -> Result<Vec<CachedPackage>, AgentError> {
        let request = ListPackagesRequest {
            package_id: package_id.to_owned(),
        };
        let answer: CachedPackages = self.call(LIST_PACKAGES_PATH, &request).await?;
        Ok(answer.packages)
    }

    /// Streams the local file at `path` into the agent's package cache as `package` (whose
    /// `Sha256` the agent checks; `Length` is taken from the file).
    pub async fn upload_package(
        &self,
        package: &CachedPackage,
        path: &Path,
    ) -> Result<CachedPackage, AgentError> {
        let local = |action: &'static str| {
            move |source| AgentError::LocalFile {
                action,
                path: path.to_owned(),
                source,
            }
        };
        let file = tokio::fs::File::open(path).await.map_err(local("open"))?;
        let length = file.metadata().await.map_err(local("read"))?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        let body =
            StreamBody::new(stream.map(|chunk| chunk.map(Frame::data).map_err(BoxError::from)))
                .boxed_unsync();
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!(
                "{}{PACKAGES_PATH}/{}",
                self.base,
                percent_encode(&package.file_name())
            ))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, length)
            .header(SHA256_HEADER, &package.sha256)
            .header(PACKAGE_ID_HEADER, &package.package_id)
            .header(PACKAGE_VERSION_HEADER, &package.version)
            .body(body)
            .map_err(|error| self.protocol(error))?;
        let response = self.send(request).await?;
        self.read_json(response).await
    }

    /// `GET /agent/packages/signature/{sha256}`: the delta signature of a cached package.
    pub async fn package_signature(&self, sha256: &str) -> Result<Bytes, AgentError> {
        let uri = format!(
            "{}{PACKAGE_SIGNATURE_PATH}/{}",
            self.base,
            percent_encode(sha256)
        );
        self.download_uri(uri, "the package signature").await
    }

    /// Uploads `delta` to the file store and has the agent patch the cached package
    /// `basis_sha256` with it into its cache as `package`.
    pub async fn apply_package_delta(
        &self,
        basis_sha256: &str,
        delta: Bytes,
        package: &CachedPackage,
    ) -> Result<CachedPackage, AgentError> {
        let delta_file_name = format!("{}.cuttledelta", package.sha256);
        self.upload(&delta_file_name, delta).await?;
        let request = ApplyPackageDeltaRequest {
            basis_sha256: basis_sha256.to_owned(),
            delta_file_name,
            package: package.clone(),
        };
        self.call(APPLY_PACKAGE_DELTA_PATH, &request).await
    }

    /// Downloads the agent's file `name` into memory (at most [`MAX_IN_MEMORY_DOWNLOAD`]
    /// bytes), checked against the agent's checksum.
    pub async fn download(&self, name: &str) -> Result<Bytes, AgentError> {
        self.download_uri(self.file_uri(name), name).await
    }

    /// Streams the agent's file `name` into `destination`, which appears only once the bytes
    /// match the agent's checksum (a file already there is replaced).
    pub async fn download_to(
        &self,
        name: &str,
        destination: &Path,
    ) -> Result<DownloadedFile, AgentError> {
        self.download_uri_to(self.file_uri(name), name, destination)
            .await
    }

    /// Downloads the artifact `name` that the ticket's script collected (one of its status'
    /// `artifacts`) into memory, checked against the agent's checksum.
    pub async fn download_artifact(&self, ticket: &str, name: &str) -> Result<Bytes, AgentError> {
        self.download_uri(self.artifact_uri(ticket, name), name)
            .await
    }

    /// Streams the artifact `name` of the ticket into `destination`, which appears only once
    /// the bytes match the agent's checksum.
    pub async fn download_artifact_to(
        &self,
        ticket: &str,
        name: &str,
        destination: &Path,
    ) -> Result<DownloadedFile, AgentError> {
        self.download_uri_to(self.artifact_uri(ticket, name), name, destination)
            .await
    }

    async fn download_uri(&self, uri: String, name: &str) -> Result<Bytes, AgentError> {
        let (expected, body) = self.open_download(uri).await?;
        let collected = Limited::new(body, MAX_IN_MEMORY_DOWNLOAD)
            .collect()
            .await
            .map_err(|error| match error.downcast::<hyper::Error>() {
                Ok(error) => self.unreachable(&*error),
                Err(error) => self.protocol(error),
            })?;
        let content = collected.to_bytes();
        let actual = sha256_hex(&content);
        if actual != expected {
            return Err(self.checksum_mismatch(name, expected, actual));
        }
        Ok(content)
    }

    async fn download_uri_to(
        &self,
        uri: String,
        name: &str,
        destination: &Path,
    ) -> Result<DownloadedFile, AgentError> {
        let (expected, mut body) = self.open_download(uri).await?;
        let file_name = destination
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = destination.with_file_name(format!(
            ".{file_name}.{:016x}.download",
            rand::random::<u64>()
        ));
        let local = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| AgentError::LocalFile {
                action,
                path,
                source,
            }
        };
        let mut file = tokio::fs::File::create(&temporary)
            .await
            .map_err(local("create", &temporary))?;
        let written = async {
            let mut hasher = Sha256::new();
            let mut length: u64 = 0;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|error| self.unreachable(&error))?;
                if let Ok(data) = frame.into_data() {
                    hasher.update(&data);
                    length += data.len() as u64;
                    file.write_all(&data)
                        .await
                        .map_err(local("write", &temporary))?;
                }
            }
            file.flush().await.map_err(local("write", &temporary))?;
            file.sync_all().await.map_err(local("sync", &temporary))?;
            let actual = hex::encode(hasher.finalize());
            if actual != expected {
                return Err(self.checksum_mismatch(name, expected.clone(), actual));
            }
            tokio::fs::rename(&temporary, destination)
                .await
                .map_err(local("rename into place", destination))?;
            Ok(DownloadedFile {
                path: destination.to_owned(),
                length,
                sha256: actual,
            })
        }
        .await;
        if written.is_err() {
            let _ignored = tokio::fs::remove_file(&temporary).await;
        }
        written
    }

    async fn open_download(&self, uri: String) -> Result<(String, Incoming), AgentError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .body(empty_body())
            .map_err(|error| self.protocol(error))?;
        let response = self.send(request).await?;
        if !response.status().is_success() {
            return Err(self
                .read_json::<Empty>(response)
                .await
                .err()
                .unwrap_or_else(|| self.protocol("an error status with a success body")));
        }
        let expected = response
            .headers()
            .get(SHA256_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_sha256(value).ok())
            .ok_or_else(|| self.protocol(format!("a download without a valid {SHA256_HEADER}")))?;
        Ok((expected, response.into_body()))
    }

    fn file_uri(&self, name: &str) -> String {
        format!("{}{FILES_PATH}/{}", self.base, percent_encode(name))
    }

    fn artifact_uri(&self, ticket: &str, name: &str) -> String {
        format!(
            "{}{ARTIFACTS_PATH}/{}/{}",
            self.base,
            percent_encode(ticket),
            percent_encode(name)
        )
    }

    /// A JSON call: `POST path` with `body`, answered with `T`, within the request timeout.
    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, AgentError> {
        let json = serde_json::to_vec(body).map_err(|error| self.protocol(error))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.base))
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(
                Full::new(Bytes::from(json))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .map_err(|error| self.protocol(error))?;
        let timeout = self.request_timeout;
        tokio::time::timeout(timeout, async {
            let response = self.send(request).await?;
            self.read_json(response).await
        })
        .await
        .map_err(|_| AgentError::Unreachable {
            peer: self.label.to_string(),
            reason: format!("no answer to {path} within {timeout:?}"),
        })?
    }

    async fn send(&self, request: Request<RequestBody>) -> Result<Response<Incoming>, AgentError> {
        let mut sender = self.sender.clone();
        let sent = async {
            sender.ready().await?;
            sender.send_request(request).await
        }
        .await;
        match sent {
            Ok(response) => Ok(response),
            Err(error) => Err(self.transport_error(&error).await),
        }
    }

    /// Classifies a failed request. A call that fails because the connection died says only
    /// "closed"; the connection's own error (a refused certificate, say) is the better answer,
    /// so wait briefly for it.
    async fn transport_error(&self, error: &hyper::Error) -> AgentError {
        let failure = classify(error);
        if let Failure::Refused { .. } = failure {
            return AgentError::from_failure(&self.label, failure);
        }
        let mut closed = self.closed.clone();
        let closed_reason =
            tokio::time::timeout(Duration::from_millis(500), closed.wait_for(Option::is_some))
                .await
                .ok()
                .and_then(Result::ok)
                .and_then(|reason| reason.clone());
        match closed_reason {
            Some(refused @ Failure::Refused { .. }) => {
                AgentError::from_failure(&self.label, refused)
            }
            _ => AgentError::from_failure(&self.label, failure),
        }
    }

    async fn read_json<T: DeserializeOwned>(
        &self,
        response: Response<Incoming>,
    ) -> Result<T, AgentError> {
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_LENGTH)
            .collect()
            .await
            .map_err(|error| match error.downcast::<hyper::Error>() {
                Ok(error) => self.unreachable(&*error),
                Err(error) => self.protocol(error),
            })?
            .to_bytes();
        if !status.is_success() {
            let (message, errors) = match serde_json::from_slice::<ErrorResponse>(&body) {
                Ok(error) => (error.error_message, error.errors),
                Err(_) => (String::from_utf8_lossy(&body).into_owned(), Vec::new()),
            };
            return Err(AgentError::Agent {
                peer: self.label.to_string(),
                status,
                message,
                errors,
            });
        }
        serde_json::from_slice(&body).map_err(|error| self.protocol(error))
    }

    fn unreachable(&self, error: &(dyn std::error::Error + 'static)) -> AgentError {
        AgentError::from_failure(&self.label, classify(error))
    }

    fn protocol(&self, reason: impl std::fmt::Display) -> AgentError {
        AgentError::Protocol {
            peer: self.label.to_string(),
            reason: reason.to_string(),
        }
    }

    fn checksum_mismatch(&self, name: &str, expected: String, actual: String) -> AgentError {
        AgentError::ChecksumMismatch {
            peer: self.label.to_string(),
            name: name.to_owned(),
            expected,
            actual,
        }
    }
}

fn empty_body() -> RequestBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Percent-encodes a path segment, so any name reaches the agent, which decides whether it
/// is acceptable.
fn percent_encode(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'+') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_encoded_into_one_segment() {
        assert_eq!(percent_encode("app.1.0+b.zip"), "app.1.0+b.zip");
        assert_eq!(percent_encode("../etc/passwd"), "..%2Fetc%2Fpasswd");
        assert_eq!(percent_encode("a b"), "a%20b");
    }
}
