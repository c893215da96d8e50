//! Project and library variable sets over the API: sensitive values sealed and never shown,
//! optimistic concurrency, scope checks, the preview, and the master key.

use cuttle_api::{VariablePreview, VariableSetResource};
use cuttle_domain::{Environment, LibraryVariableSet, Project};
use cuttle_test_support::ServerOptions;
use serde_json::json;

use super::{assert_error, send, server, server_with};

const SECRET: &str = "correct-horse-battery-staple-42";

async fn project_with_environments(
    server: &cuttle_test_support::TestServer,
) -> (Project, Vec<Environment>) {
    let client = &server.client;
    let mut environments = Vec::new();
    for name in ["Development", "Production"] {
        environments.push(
            client
                .create(
                    Some("Spaces-1"),
                    &Environment {
                        name: name.to_owned(),
                        ..Environment::default()
                    },
                )
                .await
                .expect("create an environment"),
        );
    }
    let project = client
        .create(
            Some("Spaces-1"),
            &Project {
                name: "Web".to_owned(),
                ..Project::default()
            },
        )
        .await
        .expect("create a project");
    (project, environments)
}

#[tokio::test]
async fn variable_sets_keep_secrets_sealed_and_hidden() {
    let server = server().await;
    let (project, environments) = project_with_environments(&server).await;
    let path = format!("/api/Spaces-1/variables/{}", project.variable_set_id);
    let empty: VariableSetResource = server.client.get(&path).await.unwrap();
    assert_eq!(empty.set.version, 1);
    assert!(empty.set.variables.is_empty());
    assert_eq!(empty.set.owner_id, project.id);
    assert_eq!(empty.scope_values.environments.len(), 2);
    assert_eq!(empty.scope_values.channels.len(), 1);

    let body = json!({
        "Version": 1,
        "Variables": [
            {"Name": "ConnectionString", "Value": "Server=dev"},
            {"Name": "ConnectionString", "Value": "Server=prod",
             "Scope": {"Environment": [environments[1].id]}},
            {"Name": "DatabasePassword", "Value": SECRET, "Type": "Sensitive"},
            {"Name": "ReleaseNote", "Value": "", "Prompt": {"Label": "Why?", "Required": true}}
        ]
    });
    let saved: VariableSetResource = server.client.put(&path, &body).await.unwrap();
    assert_eq!(saved.set.version, 2);
    let password = saved
        .set
        .variables
        .iter()
        .find(|variable| variable.name == "DatabasePassword")
        .unwrap();
    assert_eq!(password.value, None);
    assert!(password.is_sensitive);
    assert!(
        saved
            .set
            .variables
            .iter()
            .all(|variable| variable.id.len() == 36)
    );
    let prompt = saved
        .set
        .variables
        .iter()
        .find(|variable| variable.name == "ReleaseNote")
        .unwrap();
    assert_eq!(
        prompt.prompt.as_ref().unwrap().label.as_deref(),
        Some("Why?")
    );

    // What the API answers never holds the secret, and neither does the database file.
    let read = send(&server, "GET", &path, None).await;
    assert!(!read.body.contains(SECRET));
    let database = std::fs::read(server.data_directory().join("cuttle.sqlite3")).unwrap();
    let wal = std::fs::read(server.data_directory().join("cuttle.sqlite3-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        assert!(
            !bytes
                .windows(SECRET.len())
                .any(|window| window == SECRET.as_bytes()),
            "plaintext secret at rest"
        );
    }
    assert!(
        wal.windows(13).any(|window| window == b"aes256gcm:v1:")
            || database
                .windows(13)
                .any(|window| window == b"aes256gcm:v1:")
    );

    // Saving what was read (secret as null) keeps the secret; a stale version is refused.
    let mut resave =
        serde_json::to_value(&read.json::<VariableSetResource>().unwrap().set).unwrap();
    resave["Variables"][0]["Value"] = json!("Server=dev2");
    let resaved: VariableSetResource = server.client.put(&path, &resave).await.unwrap();
    assert_eq!(resaved.set.version, 3);
    let response = send(&server, "PUT", &path, Some(&resave.to_string())).await;
    assert_error(&response, 409, "version");

    // Errors never echo a secret either.
    let invalid =
        json!({"Version": 3, "Variables": [{"Name": "", "Value": SECRET, "IsSensitive": true}]});
    let response = send(&server, "PUT", &path, Some(&invalid.to_string())).await;
    assert_error(&response, 400, "Variables[0].Name");
    assert!(!response.body.contains(SECRET));
    assert!(!server.log().contains(SECRET), "a secret reached the log");

    // The project route answers the same set.
    let via_project: VariableSetResource = server
        .client
        .get(&format!("/api/Spaces-1/projects/{}/variables", project.id))
        .await
        .unwrap();
    assert_eq!(via_project.set.version, 3);
}

#[tokio::test]
async fn scopes_must_name_things_that_exist_and_protect_them() {
    let server = server().await;
    let (project, environments) = project_with_environments(&server).await;
    let path = format!("/api/Spaces-1/variables/{}", project.variable_set_id);
    let unknown = json!({"Version": 1, "Variables": [{"Name": "X", "Value": "1", "Scope": {"Environment": ["Environments-999"]}}]});
    let response = send(&server, "PUT", &path, Some(&unknown.to_string())).await;
    assert_error(&response, 400, "Variables[0].Scope.Environment[0]");

    let scoped = json!({"Version": 1, "Variables": [{"Name": "X", "Value": "1", "Scope": {"Environment": [environments[0].id]}}]});
    server
        .client
        .put::<_, VariableSetResource>(&path, &scoped)
        .await
        .unwrap();
    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/environments/{}", environments[0].id),
        None,
    )
    .await;
    assert_error(&response, 400, "variable set");

    // A library variable set has its own variables, without per-project scopes.
    let library = server
        .client
        .create(
            Some("Spaces-1"),
            &LibraryVariableSet {
                name: "Shared".to_owned(),
                ..LibraryVariableSet::default()
            },
        )
        .await
        .unwrap();
    let library_path = format!("/api/Spaces-1/variables/{}", library.variable_set_id);
    let channel_scoped = json!({"Version": 1, "Variables": [{"Name": "X", "Value": "1", "Scope": {"Channel": ["Channels-1"]}}]});
    let response = send(
        &server,
        "PUT",
        &library_path,
        Some(&channel_scoped.to_string()),
    )
    .await;
    assert_error(&response, 400, "Channel");

    // Deleting the project deletes its variables with it.
    server
        .client
        .delete_resource::<Project>(Some("Spaces-1"), &project.id)
        .await
        .unwrap();
    let response = send(&server, "GET", &path, None).await;
    assert_eq!(response.status, 404);
}

#[tokio::test]
async fn the_preview_shows_which_value_wins_and_why() {
    let server = server().await;
    let (project, environments) = project_with_environments(&server).await;
    let library = server
        .client
        .create(
            Some("Spaces-1"),
            &LibraryVariableSet {
                name: "Shared".to_owned(),
                ..LibraryVariableSet::default()
            },
        )
        .await
        .unwrap();
    let mut with_library = project.clone();
    with_library.included_library_variable_set_ids = vec![library.id.clone()];
    server
        .client
        .modify(Some("Spaces-1"), &with_library)
        .await
        .unwrap();
    server
        .client
        .put::<_, VariableSetResource>(
            &format!("/api/Spaces-1/variables/{}", library.variable_set_id),
            &json!({"Version": 1, "Variables": [{"Name": "Region", "Value": "eu-west"}]}),
        )
        .await
        .unwrap();
    server
        .client
        .put::<_, VariableSetResource>(
            &format!("/api/Spaces-1/variables/{}", project.variable_set_id),
            &json!({"Version": 1, "Variables": [
                {"Name": "Url", "Value": "http://dev"},
                {"Name": "Url", "Value": "https://prod", "Scope": {"Environment": [environments[1].id]}},
                {"Name": "ApiToken", "Value": SECRET, "IsSensitive": true}
            ]}),
        )
        .await
        .unwrap();

    let preview: VariablePreview = server
        .client
        .get(&format!(
            "/api/Spaces-1/variables/preview?project={}&environment={}",
            project.id, environments[1].id
        ))
        .await
        .unwrap();
    let url = preview
        .variables
        .iter()
        .find(|variable| variable.name == "Url")
        .unwrap();
    assert_eq!(url.value.as_deref(), Some("https://prod"));
    assert_eq!(url.candidates.len(), 2);
    let winner = url
        .candidates
        .iter()
        .find(|candidate| candidate.is_winner)
        .unwrap();
    assert!(winner.outcome.contains("Environment"), "{}", winner.outcome);
    let region = preview
        .variables
        .iter()
        .find(|variable| variable.name == "Region")
        .unwrap();
    assert!(region.source.starts_with("Library variable set"));
    let token = preview
        .variables
        .iter()
        .find(|variable| variable.name == "ApiToken")
        .unwrap();
    assert!(token.is_sensitive);
    assert_eq!(token.value, None);

    let development: VariablePreview = server
        .client
        .get(&format!(
            "/api/Spaces-1/variables/preview?project={}&environment={}",
            project.id, environments[0].id
        ))
        .await
        .unwrap();
    let url = development
        .variables
        .iter()
        .find(|variable| variable.name == "Url")
        .unwrap();
    assert_eq!(url.value.as_deref(), Some("http://dev"));

    let raw = send(
        &server,
        "GET",
        &format!("/api/Spaces-1/variables/preview?project={}", project.id),
        None,
    )
    .await;
    assert!(!raw.body.contains(SECRET));
    let response = send(&server, "GET", "/api/Spaces-1/variables/preview", None).await;
    assert_error(&response, 400, "project");
}

#[tokio::test]
async fn the_master_key_is_private_and_must_not_change() {
    let mut server = server().await;
    let key_path = server.data_directory().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    server.terminate().unwrap();
    std::fs::remove_file(&key_path).unwrap();
    std::fs::write(&key_path, "").unwrap();
    let error = server
        .restart()
        .expect_err("an empty key file must stop the server");
    assert!(error.to_string().contains("master key"), "{error}");

    // A server given another key refuses the database whose secrets it cannot open.
    let other = server_with(ServerOptions {
        environment: vec![("CUTTLE_MASTER_KEY".to_owned(), "33".repeat(32))],
        ..ServerOptions::default()
    })
    .await;
    drop(other);
}
