//! Starting, bootstrapping, restarting and stopping the server.

use cuttle_api::RootDocument;
use cuttle_domain::{Lifecycle, ProjectGroup, Space, WorkerPool};
use cuttle_test_support::ServerOptions;

use super::{send, server, server_with};

#[tokio::test]
async fn root_document_answers_anonymously_with_a_strict_semver_version() {
    let server = server().await;
    let anonymous = server.client.with_api_key(None);
    let root = anonymous.root().await.expect("GET /api");
    assert_eq!(root.version, "2025.1.0");
    assert_eq!(root.api_version, "3.0.0");
    assert_eq!(
        root.installation_id.len(),
        36,
        "a GUID: {}",
        root.installation_id
    );
    assert_eq!(root.links["Self"], "/api");

    // `/api/` and any letter case answer the same document, with no redirect.
    for path in ["/api/", "/API", "//api"] {
        let response = anonymous
            .raw(reqwest::Method::GET, path, None)
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{path}");
        let document: RootDocument = response.json().unwrap();
        assert_eq!(document, root);
    }
    // An empty API key header counts as anonymous, as the official client sends it.
    let response = server
        .client
        .with_api_key(Some(String::new()))
        .raw(reqwest::Method::GET, "/api", None)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn first_start_creates_the_defaults_and_the_admin() {
    let server = server().await;
    let client = &server.client;
    let spaces = client.list_all::<Space>(None).await.unwrap();
    assert_eq!(spaces.len(), 1);
    assert_eq!(spaces[0].id, "Spaces-1");
    assert_eq!(spaces[0].name, "Default");
    assert!(spaces[0].is_default);

    let space = Some("Spaces-1");
    let lifecycles = client.list_all::<Lifecycle>(space).await.unwrap();
    assert_eq!(lifecycles.len(), 1);
    assert_eq!(lifecycles[0].name, "Default Lifecycle");
    assert!(lifecycles[0].phases.is_empty());
    let groups = client.list_all::<ProjectGroup>(space).await.unwrap();
    assert_eq!(groups[0].name, "Default Project Group");
    let pools = client.list_all::<WorkerPool>(space).await.unwrap();
    assert_eq!(pools[0].name, "Default Worker Pool");
    assert!(pools[0].is_default);

    let me = client.current_user().await.unwrap();
    assert_eq!(me.username, "admin");
    assert!(me.is_administrator);
}

#[tokio::test]
async fn generated_credentials_are_printed_once_and_work() {
    let mut server = server_with(ServerOptions {
        bootstrap_credentials: false,
        ..ServerOptions::default()
    })
    .await;
    let lines = server.stdout_lines();
    let api_key = lines
        .iter()
        .find_map(|line| line.trim().strip_prefix("API key:"))
        .map(|key| key.trim().to_owned())
        .unwrap_or_else(|| panic!("no API key printed: {lines:?}"));
    let password = lines
        .iter()
        .find_map(|line| line.trim().strip_prefix("Password:"))
        .map(|password| password.trim().to_owned())
        .unwrap_or_else(|| panic!("no password printed: {lines:?}"));
    assert!(
        api_key.starts_with("API-") && api_key.len() >= 30,
        "{api_key}"
    );
    assert!(password.len() >= 16);

    let client = server.client.with_api_key(Some(api_key.clone()));
    assert_eq!(client.current_user().await.unwrap().username, "admin");

    // The key and the password are stored hashed only.
    let database = std::fs::read(server.data_directory().join("cuttle.sqlite3")).unwrap();
    let wal = std::fs::read(server.data_directory().join("cuttle.sqlite3-wal")).unwrap_or_default();
    for secret in [&api_key, &password] {
        let needle = secret.as_bytes();
        for bytes in [&database, &wal] {
            assert!(
                !bytes.windows(needle.len()).any(|window| window == needle),
                "a credential is stored in clear"
            );
        }
    }

    // A second start prints no credentials and keeps the installation id.
    let installation_id = client.root().await.unwrap().installation_id;
    server.restart().unwrap();
    let lines = server.stdout_lines();
    assert!(
        !lines.iter().any(|line| line.contains("API key")),
        "credentials printed again: {lines:?}"
    );
    let client = server.client.with_api_key(Some(api_key));
    assert_eq!(
        client.root().await.unwrap().installation_id,
        installation_id
    );
    assert_eq!(client.current_user().await.unwrap().username, "admin");
}

#[tokio::test]
async fn a_short_bootstrap_api_key_is_refused_at_start() {
    let result = cuttle_test_support::TestServer::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_cuttle")),
        ServerOptions {
            bootstrap_credentials: false,
            environment: vec![(
                "CUTTLE_BOOTSTRAP_API_KEY".to_owned(),
                "API-TOOSHORT".to_owned(),
            )],
            ..ServerOptions::default()
        },
    )
    .await;
    let error = result
        .err()
        .expect("the server must refuse to start")
        .to_string();
    assert!(error.contains("CUTTLE_BOOTSTRAP_API_KEY"), "{error}");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_data_survives() {
    let mut server = server().await;
    let created = send(
        &server,
        "POST",
        "/api/Spaces-1/environments",
        Some(r#"{"Name":"Survivor"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let status = server.terminate().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(server.log().contains("server stopped"), "{}", server.log());

    server.restart().unwrap();
    let response = send(
        &server,
        "GET",
        "/api/Spaces-1/environments?partialName=surv",
        None,
    )
    .await;
    let page: serde_json::Value = response.json().unwrap();
    assert_eq!(page["TotalResults"], 1);
}

#[tokio::test]
async fn the_server_certificate_thumbprint_is_shown_by_the_api_and_the_command() {
    let mut server = server().await;
    let certificate: serde_json::Value = server
        .client
        .get("/api/certificates/certificate-global")
        .await
        .unwrap();
    let thumbprint = certificate["Thumbprint"].as_str().unwrap().to_owned();
    assert_eq!(thumbprint.len(), 64);
    assert!(thumbprint.bytes().all(|byte| byte.is_ascii_hexdigit()));

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cuttle"))
        .args(["server", "show-thumbprint", "--data-dir"])
        .arg(server.data_directory())
        .env_remove("CUTTLE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), thumbprint);

    // The certificate is kept: a restart shows the same thumbprint.
    server.restart().unwrap();
    let again: serde_json::Value = server
        .client
        .get("/api/certificates/certificate-global")
        .await
        .unwrap();
    assert_eq!(again["Thumbprint"], thumbprint.as_str());
}
