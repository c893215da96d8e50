//! The same server on PostgreSQL: start, bootstrap, CRUD, the race for a name, restart.
//!
//! Needs `CUTTLE_TEST_DATABASE_URL`; without it each test notes the skip on stderr, except under
//! `CI=true`, where it fails.

use cuttle_domain::{Environment, Project};
use cuttle_test_support::{Backend, ServerOptions, test_database_url};

use super::{assert_error, send, server_with};

#[expect(
    clippy::print_stderr,
    reason = "a skipped test says so where the tester looks"
)]
pub(super) fn postgres_configured() -> bool {
    match test_database_url() {
        Ok(Some(_)) => true,
        Ok(None) => {
            eprintln!(
                "note: CUTTLE_TEST_DATABASE_URL is not set; PostgreSQL end-to-end test not run"
            );
            false
        }
        Err(error) => panic!("{error}"),
    }
}

#[tokio::test]
async fn the_server_runs_on_postgresql() {
    if !postgres_configured() {
        return;
    }
    let mut server = server_with(ServerOptions {
        backend: Backend::Postgres,
        ..ServerOptions::default()
    })
    .await;
    let client = server.client.clone();
    let root = client.root().await.unwrap();
    assert_eq!(root.version, "2025.1.0");
    assert_eq!(client.current_user().await.unwrap().username, "admin");

    let development = client
        .create(
            Some("Spaces-1"),
            &Environment {
                name: "Development".to_owned(),
                ..Environment::default()
            },
        )
        .await
        .unwrap();
    let project = client
        .create(
            Some("Spaces-1"),
            &Project {
                name: "Web".to_owned(),
                ..Project::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(project.lifecycle_id, "Lifecycles-1");

    let attempts = (0..20).map(|_| {
        send(
            &server,
            "POST",
            "/api/Spaces-1/environments",
            Some(r#"{"Name": "Race"}"#),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|response| response.status.as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|status| **status == 409).count(),
        19,
        "{statuses:?}"
    );

    let response = send(
        &server,
        "DELETE",
        "/api/Spaces-1/lifecycles/Lifecycles-1",
        None,
    )
    .await;
    assert_error(&response, 400, "project 'Web'");
    let response = send(
        &server,
        "GET",
        "/api/Spaces-1/environments?partialName=%27%3B%20DROP%20TABLE%20documents%3B--",
        None,
    )
    .await;
    assert_eq!(response.status, 200);

    server.restart().unwrap();
    let read = server
        .client
        .get_resource::<Environment>(Some("Spaces-1"), &development.id)
        .await
        .unwrap();
    assert_eq!(read.name, "Development");
    assert_eq!(
        server.client.root().await.unwrap().installation_id,
        root.installation_id
    );
    server.cleanup().await.unwrap();
}

#[tokio::test]
async fn two_nodes_on_one_database_see_each_others_changes() {
    if !postgres_configured() {
        return;
    }
    let first = server_with(ServerOptions {
        backend: Backend::Postgres,
        ..ServerOptions::default()
    })
    .await;
    let second = first.start_peer().expect("start a second node");
    // Both nodes bootstrapped one installation: the same id, one default space.
    let first_root = first.client.root().await.unwrap();
    assert_eq!(
        second.client.root().await.unwrap().installation_id,
        first_root.installation_id
    );

    // Warm the second node's caches, then change the data through the first.
    let listed = "/api/Spaces-1/environments?partialName=shared";
    let before: serde_json::Value = second.client.get(listed).await.unwrap();
    assert_eq!(before["TotalResults"], 0);
    first
        .client
        .create(
            Some("Spaces-1"),
            &Environment {
                name: "Shared".to_owned(),
                ..Environment::default()
            },
        )
        .await
        .unwrap();
    // The second node learns of it by notification: poll briefly, never forever.
    let mut seen = false;
    for _ in 0..100 {
        let after: serde_json::Value = second.client.get(listed).await.unwrap();
        if after["TotalResults"] == 1 {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen, "the second node kept serving a stale answer");

    // A key revoked on one node stops working on the other.
    let created = first
        .client
        .create_api_key("me", "short-lived")
        .await
        .unwrap();
    let on_second = second.client.with_api_key(Some(created.api_key.clone()));
    assert_eq!(on_second.current_user().await.unwrap().username, "admin");
    first
        .client
        .revoke_api_key(&created.user_id, &created.id)
        .await
        .unwrap();
    let mut refused = false;
    for _ in 0..100 {
        if on_second.current_user().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "a revoked key still worked on the other node");
    drop(second);
    first.cleanup().await.unwrap();
}
