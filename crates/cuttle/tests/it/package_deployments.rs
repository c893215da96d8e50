//! Deploying packages end to end: the built-in feed, a release pinning a package version, two
//! real listening agents over mutual TLS, acquisition (full package, then a delta, then found
//! in the cache) and the deploy-a-package conventions on each agent, with the installed files
//! checked on disk.

use std::path::Path;

use cuttle_test_support::TestServer;
use serde_json::{Value, json};

use super::deployments::{
    create_environments, create_project, deploy, raw_log, save_process, server_step, wait_for_task,
};
use super::packages::{assert_uploaded, upload, zip_with};
use super::{send, server};

/// Bytes that do not compress, so a small change stays a small part of the archive and the
/// delta has something to save.
fn noise(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..length)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state.to_le_bytes()[7]
        })
        .collect()
}

/// `hello-web` at `version`: a packaged `Deploy.sh`, a page with `#{…}` to substitute, a
/// structured `config.json`, and 256 KiB of assets the versions share.
fn hello_web(version: &str) -> Vec<u8> {
    let assets = noise(256 * 1024, 7);
    let page = format!(
        "<h1>hello-web {version} in #{{Octopus.Environment.Name}} on #{{Octopus.Machine.Name}}</h1>\n"
    );
    zip_with(&[
        (
            "Deploy.sh",
            b"echo \"Deploy.sh ran for $(get_octopusvariable Octopus.Machine.Name)\"\n",
        ),
        ("index.html", page.as_bytes()),
        (
            "config.json",
            br#"{"Database": {"Host": "localhost", "Port": 5432}, "Greeting": "hello"}"#,
        ),
        ("assets/site.bin", &assets),
    ])
}

fn package_step() -> Value {
    json!({
        "Name": "Deploy web",
        "Properties": {"Octopus.Action.TargetRoles": "web"},
        "Actions": [{
            "Name": "Deploy web",
            "ActionType": "Octopus.TentaclePackage",
            "Packages": [{"Name": "", "PackageId": "hello-web", "FeedId": "feeds-builtin",
                          "AcquisitionLocation": "Server"}],
            "Properties": {
                "Octopus.Action.Package.PackageId": "hello-web",
                "Octopus.Action.Package.FeedId": "feeds-builtin",
                "Octopus.Action.SubstituteInFiles.Enabled": "True",
                "Octopus.Action.SubstituteInFiles.TargetFiles": "index.html",
                "Octopus.Action.StructuredConfigurationVariables.Enabled": "True",
                "Octopus.Action.StructuredConfigurationVariables.Targets": "config.json",
                "Octopus.Action.CustomScripts.PostDeploy.sh": "echo \"configured PostDeploy for #{Octopus.Environment.Name}\""
            }
        }]
    })
}

async fn set_project_variables(server: &TestServer, project: &Value, variables: Value) {
    let path = format!(
        "/api/Spaces-1/variables/{}",
        project["VariableSetId"].as_str().expect("variable set id")
    );
    let current: Value = server.client.get(&path).await.expect("read variables");
    let _: Value = server
        .client
        .put(
            &path,
            &json!({"Version": current["Version"], "Variables": variables}),
        )
        .await
        .expect("save variables");
}

/// Creates release `version` of the project; the package version is the feed's newest.
async fn create_release(server: &TestServer, project: &str, version: &str) -> Value {
    server
        .client
        .post(
            "/api/Spaces-1/releases/create/v1",
            &json!({"ProjectName": project, "ReleaseVersion": version}),
        )
        .await
        .expect("create a release")
}

fn installed(home: &Path, directory: &str, file: &str) -> String {
    let path = home
        .join("Applications/Production/hello-web")
        .join(directory)
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

#[tokio::test]
async fn packages_reach_two_agents_in_full_then_as_deltas_then_from_their_caches() {
    let server = server().await;
    create_environments(&server, &["Production"]).await;
    let homes: Vec<tempfile::TempDir> = (0..2)
        .map(|_| tempfile::tempdir().expect("agent home"))
        .collect();
    for (index, home) in homes.iter().enumerate() {
        super::agents::register_listening(&server, home.path(), &format!("web0{}", index + 1));
    }
    let _agents: Vec<_> = homes
        .iter()
        .map(|home| super::agents::run_agent(home.path(), "Cuttle agent is listening on"))
        .collect();
    assert_uploaded(&upload(&server, "hello-web.1.0.0.zip", &hello_web("1.0.0"), "").await);

    let project = create_project(&server, "Hello Web").await;
    set_project_variables(
        &server,
        &project,
        json!([{"Name": "Database:Host", "Value": "db.#{Octopus.Environment.Name}"}]),
    )
    .await;
    save_process(
        &server,
        &project,
        vec![
            package_step(),
            server_step(
                "Report",
                "echo \"installed at #{Octopus.Action[Deploy web].Output[web01].Octopus.Action.Package.InstallationDirectoryPath}\"",
                false,
            ),
        ],
    )
    .await;

    // 1.0.0: sent whole to both agents, installed, substituted and replaced.
    let created = create_release(&server, "Hello Web", "1.0.0").await;
    let release: Value = server
        .client
        .get(&format!(
            "/api/Spaces-1/releases/{}",
            created["ReleaseId"].as_str().expect("release id")
        ))
        .await
        .expect("read the release");
    assert_eq!(
        release["SelectedPackages"][0]["Version"], "1.0.0",
        "{release}"
    );
    let task_id = deploy(&server, "Hello Web", "1.0.0", "Production").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    for (index, home) in homes.iter().enumerate() {
        let name = format!("web0{}", index + 1);
        assert!(
            log.contains(&format!("{name}: hello-web 1.0.0: Full package, ")),
            "{log}"
        );
        assert!(log.contains(&format!("Deploy.sh ran for {name}")), "{log}");
        assert_eq!(
            installed(home.path(), "1.0.0", "index.html"),
            format!("<h1>hello-web 1.0.0 in Production on {name}</h1>\n")
        );
        let config: Value =
            serde_json::from_str(&installed(home.path(), "1.0.0", "config.json")).expect("JSON");
        assert_eq!(
            config,
            json!({"Database": {"Host": "db.Production", "Port": 5432}, "Greeting": "hello"})
        );
    }
    assert!(
        log.contains("configured PostDeploy for Production"),
        "{log}"
    );
    let web01_installation = homes[0]
        .path()
        .join("Applications/Production/hello-web/1.0.0");
    assert!(
        log.contains(&format!("installed at {}", web01_installation.display())),
        "{log}"
    );
    let details: Value = server
        .client
        .get(&format!("/api/Spaces-1/tasks/{task_id}/details"))
        .await
        .expect("task details");
    assert_eq!(
        details["ActivityLogs"][0]["Children"][0]["Name"], "Acquire packages",
        "{details}"
    );
    // A string even when unknown: the official client's type declares it one.
    assert_eq!(
        details["Progress"]["EstimatedTimeRemaining"], "",
        "{details}"
    );

    // 1.0.1 with a small change: a delta to each agent, patched and installed.
    let mut changed = hello_web("1.0.1");
    assert_eq!(changed.len(), hello_web("1.0.0").len());
    assert_uploaded(&upload(&server, "hello-web.1.0.1.zip", &changed, "").await);
    create_release(&server, "Hello Web", "1.0.1").await;
    let task_id = deploy(&server, "Hello Web", "1.0.1", "Production").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    for (index, home) in homes.iter().enumerate() {
        let name = format!("web0{}", index + 1);
        assert!(
            log.contains(&format!("{name}: hello-web 1.0.1: Delta of ")),
            "{log}"
        );
        assert_eq!(
            installed(home.path(), "1.0.1", "index.html"),
            format!("<h1>hello-web 1.0.1 in Production on {name}</h1>\n")
        );
        // The cache holds both versions, each whole.
        let cached = std::fs::read_dir(home.path().join("packages"))
            .expect("the package cache")
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".zip"))
            .count();
        assert_eq!(cached, 2);
    }
    changed.clear();

    // The same release again: nothing is sent.
    let task_id = deploy(&server, "Hello Web", "1.0.1", "Production").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Success", "{log}");
    for name in ["web01", "web02"] {
        assert!(
            log.contains(&format!("{name}: hello-web 1.0.1: Found in cache")),
            "{log}"
        );
    }
    server.cleanup().await.expect("clean up");
}

#[tokio::test]
async fn a_deployment_fails_clearly_when_its_package_left_the_feed() {
    let server = server().await;
    create_environments(&server, &["Production"]).await;
    assert_uploaded(&upload(&server, "hello-web.1.0.0.zip", &hello_web("1.0.0"), "").await);
    let project = create_project(&server, "Gone").await;
    save_process(
        &server,
        &project,
        vec![
            package_step(),
            server_step("After", "echo after the package", false),
        ],
    )
    .await;
    create_release(&server, "Gone", "1.0.0").await;
    let deleted = send(
        &server,
        "DELETE",
        "/api/Spaces-1/packages/packages-hello-web.1.0.0",
        None,
    )
    .await;
    assert!(deleted.status.is_success(), "{}", deleted.body);
    let task_id = deploy(&server, "Gone", "1.0.0", "Production").await;
    let task = wait_for_task(&server, &task_id).await;
    let log = raw_log(&server, &task_id).await;
    assert_eq!(task.state, "Failed", "{log}");
    assert!(
        log.contains(
            "the package hello-web version 1.0.0, which release 1.0.0 deploys, is no longer in the built-in feed"
        ),
        "{log}"
    );
    assert!(!log.contains("after the package"), "{log}");
    server.cleanup().await.expect("clean up");
}
