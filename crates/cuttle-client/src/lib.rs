//! A typed client for Cuttle's REST API, used by the `cuttle` CLI commands and by tests.
//!
//! It speaks the same wire types as the server (`cuttle-api`), so a field renamed on one side
//! fails to compile on the other. Errors keep the server's `{ErrorMessage, Errors}` body and
//! status, so callers can tell "not found" from "invalid" from "unauthorized".
//!
//! Beyond JSON calls it streams what should not sit in memory: package uploads are read from
//! disk as they are sent (`push_package`), and a task's live log is read event by event from
//! the server's Server-Sent Events (`task_events`).

mod events;

pub use events::{TaskEvent, TaskEvents, TaskLogLine};

use std::path::Path;

use cuttle_api::packages::PackageResource;
use futures::StreamExt as _;

use cuttle_api::{
    API_KEY_HEADER, ApiKeyCreatedResource, ApiKeyResource, ApiResource, Collection,
    CreateApiKeyRequest, ErrorBody, Resource, RootDocument, UserResource,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server answered {status}: {}", describe(.body))]
    Api { status: StatusCode, body: ErrorBody },
    #[error("the server answered {status} with a body that is not an error document: {text}")]
    UnexpectedBody { status: StatusCode, text: String },
    #[error("could not read the server's answer: {0}")]
    Decode(#[source] serde_json::Error),
    #[error("could not reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("invalid server URL '{0}'")]
    InvalidUrl(String),
    #[error("could not read {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server's event stream is malformed: {0}")]
    EventStream(String),
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } | ClientError::UnexpectedBody { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

fn describe(body: &ErrorBody) -> String {
    let mut text = body.error_message.clone();
    for error in &body.errors {
        if *error != body.error_message {
            text.push_str("; ");
            text.push_str(error);
        }
    }
    text
}

/// An answer as it came: status and body text, for callers that check either.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: StatusCode,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl RawResponse {
    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_str(&self.body).map_err(ClientError::Decode)
    }
}

/// Paging and filters of a list call.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub skip: Option<i64>,
    pub take: Option<i64>,
    pub ids: Vec<String>,
    pub partial_name: Option<String>,
}

impl ListOptions {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(skip) = self.skip {
            query.push(("skip", skip.to_string()));
        }
        if let Some(take) = self.take {
            query.push(("take", take.to_string()));
        }
        if !self.ids.is_empty() {
            query.push(("ids", self.ids.join(",")));
        }
        if let Some(partial_name) = &self.partial_name {
            query.push(("partialName", partial_name.clone()));
        }
        query
    }
}

/// A connection to one Cuttle server, optionally with an API key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
}

impl Client {
    /// A client for the server at `base_url` (`http://host:8050`, with or without `/api`).
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Client, ClientError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/api").unwrap_or(trimmed);
        if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
            return Err(ClientError::InvalidUrl(base_url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("cuttle-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base_url: trimmed.to_owned(),
            api_key,
        })
    }

    /// The same server with another API key (or none).
    pub fn with_api_key(&self, api_key: Option<String>) -> Client {
        Client {
            api_key,
            ..self.clone()
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends a request and returns the answer whatever its status.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse, ClientError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(api_key) = &self.api_key {
            request = request.header(API_KEY_HEADER, api_key);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await?;
        Ok(RawResponse {
            status,
            body,
            headers,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let response = self.raw(method, path, body).await?;
        decode_answer(response.status, &response.body)
    }

    /// A request to `path` with the API key, if any.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match &self.api_key {
            Some(api_key) => request.header(API_KEY_HEADER, api_key),
            None => request,
        }
    }

    /// `GET` a text answer (such as a task's raw log); an error status is an error.
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let response = self.raw(Method::GET, path, None).await?;
        if !response.status.is_success() {
            return Err(error_from_answer(response.status, response.body));
        }
        Ok(response.body)
    }

    /// Pushes a package file to the built-in feed of `space_id` (`POST …/packages/raw`).
    ///
    /// The file is read from disk while it is sent, never held in memory whole, so packages
    /// of any size can be pushed. `on_progress` is called with the bytes read so far.
    pub async fn push_package<F>(
        &self,
        space_id: &str,
        path: &Path,
        overwrite_mode: OverwriteMode,
        mut on_progress: F,
    ) -> Result<PackageResource, ClientError>
    where
        F: FnMut(u64) + Send + Sync + 'static,
    {
        let file_error = |source| ClientError::File {
            path: path.display().to_string(),
            source,
        };
        // The server takes the package id and version from the file's name.
        let file_name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| {
                file_error(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the path does not end in a file name",
                ))
            })?
            .to_owned();
        let file = tokio::fs::File::open(path).await.map_err(file_error)?;
        let length = file.metadata().await.map_err(file_error)?.len();
        let mut bytes_read = 0_u64;
        let chunks = tokio_util::io::ReaderStream::with_capacity(file, UPLOAD_CHUNK_BYTES).map(
            move |chunk| {
                if let Ok(bytes) = &chunk {
                    bytes_read += bytes.len() as u64;
                    on_progress(bytes_read);
                }
                chunk
            },
        );
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(chunks),
            length,
        )
        .file_name(file_name)
        .mime_str("application/octet-stream")?;
        let form = reqwest::multipart::Form::new().part("fileToUpload", part);
        let path = format!(
            "/api/{space_id}/packages/raw?overwriteMode={}",
            overwrite_mode.as_str()
        );
        let response = self
            .request(Method::POST, &path)
            .multipart(form)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        decode_answer(status, &body)
    }

    /// Opens a task's live log (`GET /api/[{space}/]tasks/{id}/events`), starting after log
    /// line `after` (0 for the whole log).
    pub async fn task_events(
        &self,
        space_id: Option<&str>,
        task_id: &str,
        after: i64,
    ) -> Result<TaskEvents, ClientError> {
        let path = match space_id {
            Some(space_id) => format!("/api/{space_id}/tasks/{task_id}/events?after={after}"),
            None => format!("/api/tasks/{task_id}/events?after={after}"),
        };
        let response = self
            .request(Method::GET, &path)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await?;
            return Err(error_from_answer(status, body));
        }
        Ok(TaskEvents::new(response))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(ClientError::Decode)?;
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(ClientError::Decode)?;
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(Method::DELETE, path, None)
            .await
            .map(drop)
    }

    /// `GET /api`.
    pub async fn root(&self) -> Result<RootDocument, ClientError> {
        self.get("/api").await
    }

    /// `GET /api/users/me`.
    pub async fn current_user(&self) -> Result<UserResource, ClientError> {
        self.get("/api/users/me").await
    }

    fn collection_path<T: ApiResource>(space_id: Option<&str>) -> String {
        match space_id {
            Some(space_id) => format!("/api/{space_id}/{}", T::COLLECTION),
            None => format!("/api/{}", T::COLLECTION),
        }
    }

    /// Lists resources of `T` in a space (`None` for global ones such as spaces).
    pub async fn list<T: ApiResource>(
        &self,
        space_id: Option<&str>,
        options: &ListOptions,
    ) -> Result<Collection<Resource<T>>, ClientError> {
        let query = options.query();
        let mut path = Client::collection_path::<T>(space_id);
        if !query.is_empty() {
            let encoded: Vec<String> = query
                .iter()
                .map(|(name, value)| format!("{name}={}", encode_query_value(value)))
                .collect();
            path.push('?');
            path.push_str(&encoded.join("&"));
        }
        self.get(&path).await
    }

    /// Every resource of `T` in a space, in one call.
    pub async fn list_all<T: ApiResource>(
        &self,
        space_id: Option<&str>,
    ) -> Result<Vec<T>, ClientError> {
        let options = ListOptions {
            take: Some(i64::from(i32::MAX)),
            ..ListOptions::default()
        };
        let page = self.list::<T>(space_id, &options).await?;
        Ok(page.items.into_iter().map(|item| item.resource).collect())
    }

    pub async fn get_resource<T: ApiResource>(
        &self,
        space_id: Option<&str>,
        id: &str,
    ) -> Result<T, ClientError> {
        let path = format!("{}/{id}", Client::collection_path::<T>(space_id));
        Ok(self.get::<Resource<T>>(&path).await?.resource)
    }

    pub async fn create<T: ApiResource>(
        &self,
        space_id: Option<&str>,
        resource: &T,
    ) -> Result<T, ClientError> {
        let path = Client::collection_path::<T>(space_id);
        Ok(self.post::<T, Resource<T>>(&path, resource).await?.resource)
    }

    pub async fn modify<T: ApiResource>(
        &self,
        space_id: Option<&str>,
        resource: &T,
    ) -> Result<T, ClientError> {
        let path = format!(
            "{}/{}",
            Client::collection_path::<T>(space_id),
            resource.id()
        );
        Ok(self.put::<T, Resource<T>>(&path, resource).await?.resource)
    }

    pub async fn delete_resource<T: ApiResource>(
        &self,
        space_id: Option<&str>,
        id: &str,
    ) -> Result<(), ClientError> {
        let path = format!("{}/{id}", Client::collection_path::<T>(space_id));
        self.delete(&path).await
    }

    /// Creates an API key for a user (`me` for oneself); the answer holds the key, once.
    pub async fn create_api_key(
        &self,
        user_id: &str,
        purpose: &str,
    ) -> Result<ApiKeyCreatedResource, ClientError> {
        let request = CreateApiKeyRequest {
            purpose: purpose.to_owned(),
            expires: None,
        };
        self.post(&format!("/api/users/{user_id}/apikeys"), &request)
            .await
    }

    pub async fn list_api_keys(
        &self,
        user_id: &str,
    ) -> Result<Collection<ApiKeyResource>, ClientError> {
        self.get(&format!("/api/users/{user_id}/apikeys")).await
    }

    pub async fn revoke_api_key(&self, user_id: &str, key_id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/api/users/{user_id}/apikeys/{key_id}"))
            .await
    }
}

/// How much of a package file is read (and sent) at a time.
const UPLOAD_CHUNK_BYTES: usize = 256 * 1024;

/// What the built-in feed does with a package version it already holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OverwriteMode {
    /// Refuse the upload (`409`).
    #[default]
    FailIfExists,
    /// Replace the stored file.
    OverwriteExisting,
    /// Keep the stored file and answer with it.
    IgnoreIfExists,
}

impl OverwriteMode {
    /// The name the API takes in `overwriteMode`.
    pub fn as_str(self) -> &'static str {
        match self {
            OverwriteMode::FailIfExists => "FailIfExists",
            OverwriteMode::OverwriteExisting => "OverwriteExisting",
            OverwriteMode::IgnoreIfExists => "IgnoreIfExists",
        }
    }
}

/// A success answer parsed as `T` (an empty body as `null`), or the error it carries.
fn decode_answer<T: DeserializeOwned>(status: StatusCode, body: &str) -> Result<T, ClientError> {
    if !status.is_success() {
        return Err(error_from_answer(status, body.to_owned()));
    }
    let text = if body.is_empty() { "null" } else { body };
    serde_json::from_str(text).map_err(ClientError::Decode)
}

/// The error an unsuccessful answer means, keeping the server's error document when it sent one.
fn error_from_answer(status: StatusCode, body: String) -> ClientError {
    match serde_json::from_str::<ErrorBody>(&body) {
        Ok(body) => ClientError::Api { status, body },
        Err(_) => ClientError::UnexpectedBody { status, text: body },
    }
}

/// Percent-encodes a query value (spaces as `%20`, as the official client does).
fn encode_query_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b',') {
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
    fn base_urls_lose_a_trailing_api() {
        let client = Client::new("http://localhost:8050/api/", None).unwrap();
        assert_eq!(client.base_url(), "http://localhost:8050");
        assert!(Client::new("localhost:8050", None).is_err());
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value("Hello World&x=1"),
            "Hello%20World%26x%3D1"
        );
        assert_eq!(
            encode_query_value("Environments-1,Environments-2"),
            "Environments-1,Environments-2"
        );
    }
}
