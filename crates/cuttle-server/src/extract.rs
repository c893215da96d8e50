//! Request extractors that turn bad input into clear 400s instead of framework defaults.
//!
//! - [`ApiJson`] reads a JSON body within the size limit, treats `null` members as absent (Go
//!   clients send `null` for "not set"), and names the field when a type is wrong.
//! - [`ListParameters`] reads `skip`, `take`, `ids`, `partialName` and `name`, in any case.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;
use cuttle_domain::parse_resource_id;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body deserialized into `T`.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(crate::state::DEFAULT_JSON_BODY_LIMIT)
                } else {
                    ApiError::bad_request(format!(
                        "the request body could not be read: {}",
                        rejection.body_text()
                    ))
                }
            })?;
        parse_json_body(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body into `T`, naming the field of any type error.
pub(crate) fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; a JSON object is expected",
        ));
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|error| {
        ApiError::bad_request(format!("the request body is not valid JSON: {error}"))
    })?;
    remove_null_members(&mut value);
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            ApiError::bad_request(format!("the request body has the wrong shape: {inner}"))
        } else {
            ApiError::bad_request(format!("{path}: {inner}"))
        }
    })
}

/// Drops object members whose value is `null`, at any depth, so they take their defaults.
fn remove_null_members(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(members) => {
            members.retain(|_, member| !member.is_null());
            members.values_mut().for_each(remove_null_members);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(remove_null_members),
        _ => {}
    }
}

/// The largest `skip` or `take` a client may send: Octopus's are 32-bit.
const MAX_PAGE_NUMBER: i64 = i32::MAX as i64;

/// The paging and filtering parameters every list route takes.
#[derive(Debug, Clone)]
pub(crate) struct ListParameters {
    pub(crate) skip: i64,
    pub(crate) take: i64,
    pub(crate) ids: Option<Vec<String>>,
    pub(crate) partial_name: Option<String>,
    pub(crate) name: Option<String>,
}

pub(crate) const DEFAULT_TAKE: i64 = 30;

impl ListParameters {
    pub(crate) fn parse(query: Option<&str>) -> Result<ListParameters, ApiError> {
        let mut all = HashMap::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            all.insert(name.to_lowercase(), value.into_owned());
        }
        let skip = parse_page_number(&all, "skip", 0)?;
        let take = parse_page_number(&all, "take", DEFAULT_TAKE)?;
        // An empty `ids` means "no filter": the official client omits empty arrays, and a
        // trailing comma (`ids=Tenants-1,`) must not become an id.
        let ids = all
            .get("ids")
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(|id| {
                        parse_resource_id(id)
                            .map_or_else(|| id.to_owned(), |(_, canonical)| canonical)
                    })
                    .collect::<Vec<String>>()
            })
            .filter(|ids| !ids.is_empty());
        let non_empty = |name: &str| all.get(name).filter(|value| !value.is_empty()).cloned();
        Ok(ListParameters {
            skip,
            take,
            ids,
            partial_name: non_empty("partialname"),
            name: non_empty("name"),
        })
    }
}

fn parse_page_number(
    all: &HashMap<String, String>,
    name: &str,
    default: i64,
) -> Result<i64, ApiError> {
    let Some(text) = all.get(name).filter(|text| !text.is_empty()) else {
        return Ok(default);
    };
    match text.trim().parse::<i64>() {
        Ok(number) if (0..=MAX_PAGE_NUMBER).contains(&number) => Ok(number),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be a whole number from 0 to {MAX_PAGE_NUMBER}, not '{text}'"
        ))),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListParameters {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        ListParameters::parse(parts.uri.query())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cuttle_domain::Environment;

    fn errors_of(result: Result<Environment, ApiError>) -> Vec<String> {
        match result {
            Err(ApiError::BadRequest { errors, .. }) => errors,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn type_errors_name_the_field() {
        let errors = errors_of(parse_json_body(br#"{"Name": 5}"#));
        assert_eq!(
            errors,
            vec!["Name: invalid type: integer `5`, expected a string"]
        );
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let errors = errors_of(parse_json_body(b"{\"Name\": "));
        assert!(
            errors[0].starts_with("the request body is not valid JSON"),
            "{errors:?}"
        );
        let errors = errors_of(parse_json_body(b"\"text\""));
        assert!(
            errors[0].starts_with("the request body has the wrong shape"),
            "{errors:?}"
        );
        let errors = errors_of(parse_json_body(b" "));
        assert!(errors[0].contains("empty"), "{errors:?}");
    }

    #[test]
    fn null_members_take_their_defaults() {
        let environment: Environment =
            parse_json_body(br#"{"Name": "Dev", "Description": null, "SortOrder": null}"#).unwrap();
        assert_eq!(environment.description, None);
        assert_eq!(environment.sort_order, 0);
    }

    #[test]
    fn list_parameters_accept_any_case_and_the_largest_take() {
        let parameters = ListParameters::parse(Some(
            "Skip=2&TAKE=2147483647&partialName=Hello%20World&ids=environments-1,,Nope",
        ))
        .unwrap();
        assert_eq!(parameters.skip, 2);
        assert_eq!(parameters.take, 2_147_483_647);
        assert_eq!(parameters.partial_name.as_deref(), Some("Hello World"));
        assert_eq!(
            parameters.ids,
            Some(vec!["Environments-1".to_owned(), "Nope".to_owned()])
        );
    }

    #[test]
    fn bad_paging_is_refused() {
        for query in ["take=-1", "skip=abc", "take=2147483648", "skip=1.5"] {
            assert!(ListParameters::parse(Some(query)).is_err(), "{query}");
        }
        assert_eq!(ListParameters::parse(Some("ids=")).unwrap().ids, None);
    }
}
