//! `ApiError`: the one error type handlers return, and how each case is answered.
//!
//! Client mistakes carry their message to the client; store and internal failures are logged
//! with detail and answered with a generic 500, so nothing about the database leaks.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cuttle_api::ErrorBody;
use cuttle_domain::FieldError;
use cuttle_store::StoreError;

/// Octopus's message for a request that failed validation.
pub(crate) const PROBLEM_WITH_REQUEST: &str = "There was a problem with your request.";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        message: String,
        errors: Vec<String>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// A 413 with its own message (a package over the server's package size limit).
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A 429: the caller must wait (sign-ins locked after repeated failures).
    #[error("{0}")]
    TooManyRequests(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 400 with one detail line.
    pub(crate) fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            message: PROBLEM_WITH_REQUEST.to_owned(),
            errors: vec![detail.into()],
        }
    }

    /// A 400 listing every field problem, each naming its field.
    pub(crate) fn validation(field_errors: Vec<FieldError>) -> ApiError {
        let errors = field_errors
            .into_iter()
            .map(|error| {
                if error.message.starts_with(&error.field) {
                    error.message
                } else {
                    format!("{}: {}", error.field, error.message)
                }
            })
            .collect();
        ApiError::BadRequest {
            message: PROBLEM_WITH_REQUEST.to_owned(),
            errors,
        }
    }

    pub(crate) fn internal(error: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Internal(Box::new(error))
    }

    /// A 500 for stored data that breaks an invariant (a project without its variable set).
    pub(crate) fn internal_message(message: &str) -> ApiError {
        ApiError::Internal(message.into())
    }

    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) | ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NameTaken { .. } | StoreError::VersionConflict { .. } => {
                ApiError::Conflict(error.to_string())
            }
            StoreError::NotFound { .. } => ApiError::NotFound(error.to_string()),
            StoreError::InUse { .. } | StoreError::BrokenReference { .. } => {
                ApiError::bad_request(error.to_string())
            }
            StoreError::Corrupt { .. } | StoreError::Database(_) | StoreError::LeaseLost { .. } => {
                ApiError::Internal(Box::new(error))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = match self {
            ApiError::BadRequest { message, errors } => ErrorBody {
                error_message: message,
                errors,
            },
            ApiError::Internal(source) => {
                tracing::error!(error = %ErrorChain(&*source), "failed to answer a request");
                ErrorBody {
                    error_message: "The server could not complete the request. The details are in the server's log.".to_owned(),
                    errors: Vec::new(),
                }
            }
            other => {
                let message = other.to_string();
                ErrorBody {
                    error_message: message.clone(),
                    errors: vec![message],
                }
            }
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is not read, so this connection cannot carry another
            // request; say so, or a keep-alive client reuses it and fails its next call.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// Formats an error with its sources, `outer: inner: innermost`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(formatter, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
