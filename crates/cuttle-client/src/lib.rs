//! A typed client for Cuttle's REST API, used by the `cuttle` CLI commands and by tests.
//!
//! It speaks the same wire types as the server (`cuttle-api`), so a field renamed on one side
//! fails to compile on the other. Errors keep the server's `{ErrorMessage, Errors}` body and
//! status, so callers can tell "not found" from "invalid" from "unauthorized".

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
        if !response.status.is_success() {
            return Err(match serde_json::from_str::<ErrorBody>(&response.body) {
                Ok(body) => ClientError::Api {
                    status: response.status,
                    body,
                },
                Err(_) => ClientError::UnexpectedBody {
                    status: response.status,
                    text: response.body,
                },
            });
        }
        let text = if response.body.is_empty() {
            "null"
        } else {
            &response.body
        };
        serde_json::from_str(text).map_err(ClientError::Decode)
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
