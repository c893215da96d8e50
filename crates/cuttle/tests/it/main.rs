//! End-to-end tests: the real `cuttle` binary on an ephemeral port, driven over HTTP through
//! `cuttle-client`, as users and CI drive it.

mod agents;
mod api_client;
mod auth;
mod bad_input;
mod cli;
mod deployments;
mod layout;
mod package_deployments;
mod packages;
mod portal;
mod postgres;
mod resources;
mod retention;
mod startup;
mod tasks;
mod variables;

use std::path::Path;

use cuttle_client::RawResponse;
use cuttle_test_support::{ServerOptions, TestServer};

/// A fresh server on SQLite with the test admin credentials.
async fn server() -> TestServer {
    server_with(ServerOptions::default()).await
}

async fn server_with(options: ServerOptions) -> TestServer {
    TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_cuttle")), options)
        .await
        .expect("start the cuttle server")
}

/// Sends a JSON body (given as text, so tests can send broken JSON) with the admin key.
async fn send(server: &TestServer, method: &str, path: &str, body: Option<&str>) -> RawResponse {
    send_as(&server.client, method, path, body).await
}

/// [`send`] with `client`'s credentials.
async fn send_as(
    client: &cuttle_client::Client,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> RawResponse {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
    client
        .raw(method, path, body.map(|text| text.as_bytes().to_vec()))
        .await
        .expect("send request")
}

/// Asserts an error answer: the status, JSON `{ErrorMessage, Errors}`, and that the joined
/// message contains `expected`.
#[track_caller]
fn assert_error(response: &RawResponse, status: u16, expected: &str) {
    assert_eq!(
        response.status.as_u16(),
        status,
        "unexpected status; body: {}",
        response.body
    );
    let body: serde_json::Value = serde_json::from_str(&response.body)
        .unwrap_or_else(|error| panic!("error body is not JSON ({error}): {}", response.body));
    let message = body["ErrorMessage"]
        .as_str()
        .unwrap_or_else(|| panic!("ErrorMessage is missing: {body}"));
    assert!(!message.is_empty());
    let errors = body["Errors"]
        .as_array()
        .unwrap_or_else(|| panic!("Errors is not an array: {body}"));
    let joined = std::iter::once(message.to_owned())
        .chain(
            errors
                .iter()
                .filter_map(|error| error.as_str().map(str::to_owned)),
        )
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        joined.contains(expected),
        "expected the error to mention {expected:?}, got: {joined}"
    );
}
