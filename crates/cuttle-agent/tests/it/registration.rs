//! Registration against a stand-in for the server's REST API: what is sent (endpoint shape,
//! thumbprints, resolved ids) and what `agent.json` remembers; deregistration undoes it.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use cuttle_agent::registration::{
    ConnectionMode, MachineRole, RegisterOptions, RegistrationError, deregister, register,
};
use cuttle_agent::{AgentHome, AgentMode, MachineKind};
use serde_json::{Value, json};

const API_KEY: &str = "API-TEST";

/// What the stand-in server received: `(method and path, body)`.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

fn collection(item_type: &str, items: Value) -> Json<Value> {
    let count = items.as_array().map_or(0, Vec::len);
    Json(json!({
        "ItemType": item_type, "TotalResults": count, "ItemsPerPage": 30,
        "NumberOfPages": 1, "LastPageNumber": 0, "Items": items, "Links": {}
    }))
}

fn authorized(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    if headers
        .get("X-Octopus-ApiKey")
        .and_then(|value| value.to_str().ok())
        == Some(API_KEY)
    {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"ErrorMessage": "bad key", "Errors": []})),
        ))
    }
}

/// Serves the few routes registration uses; returns its URL and what it received.
async fn stand_in_server() -> (String, Received) {
    let received: Received = Arc::default();
    let router = Router::new()
        .route(
            "/api/certificates/certificate-global",
            get(|headers: HeaderMap| async move {
                authorized(&headers)?;
                Ok::<_, (StatusCode, Json<Value>)>(Json(
                    json!({"Id": "certificate-global", "Thumbprint": "ab".repeat(32)}),
                ))
            }),
        )
        .route(
            "/api/spaces",
            get(|| async {
                collection(
                    "Space",
                    json!([
                        {"Id": "Spaces-1", "Name": "Default", "IsDefault": true},
                        {"Id": "Spaces-2", "Name": "Team B", "IsDefault": false}
                    ]),
                )
            }),
        )
        .route(
            "/api/{space}/environments",
            get(|| async {
                collection(
                    "Environment",
                    json!([
                        {"Id": "Environments-1", "Name": "Development"},
                        {"Id": "Environments-2", "Name": "Production"}
                    ]),
                )
            }),
        )
        .route(
            "/api/{space}/workerpools",
            get(|| async {
                collection(
                    "WorkerPool",
                    json!([{"Id": "WorkerPools-1", "Name": "Default Worker Pool"}]),
                )
            }),
        )
        .route(
            "/api/{space}/{collection}",
            axum::routing::post(
                |State(received): State<Received>,
                 axum::extract::Path((space, collection)): axum::extract::Path<(
                    String,
                    String,
                )>,
                 Json(mut body): Json<Value>| async move {
                    received
                        .lock()
                        .expect("the record")
                        .push((format!("POST /api/{space}/{collection}"), body.clone()));
                    let id = if collection == "workers" {
                        "Workers-7"
                    } else {
                        "Machines-7"
                    };
                    body["Id"] = json!(id);
                    (StatusCode::CREATED, Json(body))
                },
            ),
        )
        .route(
            "/api/{space}/{collection}/{id}",
            delete(
                |State(received): State<Received>,
                 axum::extract::Path((space, collection, id)): axum::extract::Path<(
                    String,
                    String,
                    String,
                )>| async move {
                    received.lock().expect("the record").push((
                        format!("DELETE /api/{space}/{collection}/{id}"),
                        Value::Null,
                    ));
                    Json(json!({}))
                },
            ),
        )
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _served = axum::serve(listener, router).await;
    });
    (format!("http://{address}"), received)
}

fn options(server_url: &str, role: MachineRole, mode: ConnectionMode) -> RegisterOptions {
    RegisterOptions {
        server_url: server_url.to_owned(),
        api_key: API_KEY.to_owned(),
        space: None,
        name: Some("web01".to_owned()),
        role,
        mode,
        public_hostname: Some("web01.example.com".to_owned()),
    }
}

#[tokio::test]
async fn a_listening_target_registers_and_deregisters() {
    let (url, received) = stand_in_server().await;
    let directory = tempfile::tempdir().expect("a home");
    let home = AgentHome::new(directory.path());
    let role = MachineRole::DeploymentTarget {
        environments: vec!["production".to_owned(), "Environments-1".to_owned()],
        roles: vec!["web".to_owned()],
    };
    let outcome = register(
        &home,
        options(
            &url,
            role.clone(),
            ConnectionMode::Listening { port: 10999 },
        ),
    )
    .await
    .expect("registered");
    assert_eq!(outcome.registration.id, "Machines-7");
    assert_eq!(outcome.registration.kind, MachineKind::DeploymentTarget);
    assert_eq!(outcome.endpoint_uri, "https://web01.example.com:10999/");
    assert_eq!(outcome.space_name, "Default");
    let (identity, _) = home.identity("unused").expect("the identity");
    assert_eq!(outcome.agent_thumbprint, identity.thumbprint());

    let (request, body) = received.lock().expect("the record")[0].clone();
    assert_eq!(request, "POST /api/Spaces-1/machines");
    assert_eq!(body["Name"], "web01");
    assert_eq!(
        body["EnvironmentIds"],
        json!(["Environments-2", "Environments-1"])
    );
    assert_eq!(body["Roles"], json!(["web"]));
    assert_eq!(
        body["Endpoint"],
        json!({
            "CommunicationStyle": "TentaclePassive",
            "Uri": "https://web01.example.com:10999/",
            "Thumbprint": identity.thumbprint()
        })
    );

    let config = home.load_config().expect("the configuration");
    assert_eq!(config.mode, AgentMode::Listening);
    assert_eq!(config.listen_port, 10999);
    assert_eq!(config.trusted_server_thumbprints, vec!["AB".repeat(32)]);
    assert_eq!(config.server_url.as_deref(), Some(url.as_str()));

    let error = register(
        &home,
        options(&url, role, ConnectionMode::Listening { port: 10999 }),
    )
    .await
    .expect_err("registered already");
    assert!(
        matches!(error, RegistrationError::AlreadyRegistered { .. }),
        "{error}"
    );

    let registration = deregister(&home, None, API_KEY)
        .await
        .expect("deregistered");
    assert_eq!(registration.id, "Machines-7");
    assert_eq!(
        received.lock().expect("the record")[1].0,
        "DELETE /api/Spaces-1/machines/Machines-7"
    );
    let config = home.load_config().expect("the configuration");
    assert!(config.registration.is_none());
    assert!(config.trusted_server_thumbprints.is_empty());
}

#[tokio::test]
async fn a_polling_worker_registers_with_a_subscription_and_the_default_comms_address() {
    let (url, received) = stand_in_server().await;
    let directory = tempfile::tempdir().expect("a home");
    let home = AgentHome::new(directory.path());
    let role = MachineRole::Worker {
        worker_pools: vec!["default worker pool".to_owned()],
    };
    let mut options = options(
        &url,
        role,
        ConnectionMode::Polling {
            server_comms_address: None,
        },
    );
    options.space = Some("Spaces-1".to_owned());
    let outcome = register(&home, options).await.expect("registered");
    assert_eq!(outcome.registration.id, "Workers-7");
    assert_eq!(outcome.mode, AgentMode::Polling);
    assert_eq!(
        outcome.server_comms_address.as_deref(),
        Some("127.0.0.1:10943")
    );
    let subscription = outcome
        .endpoint_uri
        .strip_prefix("poll://")
        .and_then(|rest| rest.strip_suffix('/'))
        .expect("a poll:// address");
    assert!(
        !subscription.is_empty()
            && subscription
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit()),
        "{subscription}"
    );
    let (request, body) = received.lock().expect("the record")[0].clone();
    assert_eq!(request, "POST /api/Spaces-1/workers");
    assert_eq!(body["WorkerPoolIds"], json!(["WorkerPools-1"]));
    assert_eq!(body["Endpoint"]["CommunicationStyle"], "TentacleActive");
    assert_eq!(body["Endpoint"]["Uri"], outcome.endpoint_uri);
    let config = home.load_config().expect("the configuration");
    assert_eq!(config.subscription_id.as_deref(), Some(subscription));
    assert_eq!(
        config.server_comms_address.as_deref(),
        Some("127.0.0.1:10943")
    );
}

#[tokio::test]
async fn registration_failures_change_nothing() {
    let (url, received) = stand_in_server().await;
    let directory = tempfile::tempdir().expect("a home");
    let home = AgentHome::new(directory.path());
    let role = MachineRole::DeploymentTarget {
        environments: vec!["Staging".to_owned()],
        roles: vec!["web".to_owned()],
    };
    let error = register(
        &home,
        options(&url, role.clone(), ConnectionMode::Listening { port: 1 }),
    )
    .await
    .expect_err("no such environment");
    assert_eq!(
        error.to_string(),
        "no environment named \"Staging\" on the server; it has: Development, Production"
    );
    let mut wrong_key = options(&url, role.clone(), ConnectionMode::Listening { port: 1 });
    wrong_key.api_key = "API-WRONG".to_owned();
    let error = register(&home, wrong_key).await.expect_err("unauthorized");
    assert!(matches!(error, RegistrationError::Server { .. }), "{error}");
    let mut other_space = options(&url, role, ConnectionMode::Listening { port: 1 });
    other_space.space = Some("Nowhere".to_owned());
    let error = register(&home, other_space)
        .await
        .expect_err("no such space");
    assert!(
        matches!(error, RegistrationError::NotFound { what: "space", .. }),
        "{error}"
    );
    assert!(received.lock().expect("the record").is_empty());
    assert!(!home.config_path().exists());
}
