//! Retention on the server: a lifecycle's release retention policy deletes old releases with
//! their deployments, then the built-in feed's packages only those releases used; the current
//! and rollback releases, packages still pinned and packages never released stay.

use serde_json::{Value, json};

use super::deployments::{
    create_environments, create_project, deploy, package_step, save_process, wait_for_task,
};
use super::packages::{assert_uploaded, blob_files, get_json, upload, zip_with};
use super::{send, server};

async fn create_release(server: &cuttle_test_support::TestServer, version: &str, package: &str) {
    let answer = send(
        server,
        "POST",
        "/api/Spaces-1/releases/create/v1",
        Some(
            &json!({
                "spaceIdOrName": "Default", "ProjectName": "Retained",
                "ReleaseVersion": version, "Packages": [format!("web:{package}")]
            })
            .to_string(),
        ),
    )
    .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.body);
}

/// The sorted values of `field` in the array `items`.
fn sorted(items: &Value, field: &str) -> Vec<String> {
    let mut versions: Vec<String> = items
        .as_array()
        .expect("an array")
        .iter()
        .map(|item| item[field].as_str().expect("a string").to_owned())
        .collect();
    versions.sort();
    versions
}

#[tokio::test]
async fn retention_deletes_old_releases_and_the_packages_only_they_used() {
    let server = server().await;
    create_environments(&server, &["Development"]).await;
    for version in ["1.0.0", "1.0.1", "1.0.2", "9.9.9"] {
        let content = zip_with(&[("version.txt", version.as_bytes())]);
        assert_uploaded(&upload(&server, &format!("web.{version}.zip"), &content, "").await);
    }
    assert_eq!(blob_files(&server).len(), 4);
    let project = create_project(&server, "Retained").await;
    save_process(
        &server,
        &project,
        vec![package_step("Deploy web", "web", "feeds-builtin")],
    )
    .await;
    // The default lifecycle keeps one release per phase.
    let lifecycle_id = project["LifecycleId"].as_str().expect("a lifecycle id");
    let mut lifecycle =
        get_json(&server, &format!("/api/Spaces-1/lifecycles/{lifecycle_id}")).await;
    lifecycle["ReleaseRetentionPolicy"] =
        json!({"Unit": "Items", "QuantityToKeep": 1, "ShouldKeepForever": false});
    let _: Value = server
        .client
        .put(
            &format!("/api/Spaces-1/lifecycles/{lifecycle_id}"),
            &lifecycle,
        )
        .await
        .expect("save the lifecycle");

    let mut first_task = String::new();
    for (release, package) in [
        ("1", "1.0.0"),
        ("2", "1.0.1"),
        ("3", "1.0.1"),
        ("4", "1.0.2"),
    ] {
        create_release(&server, release, package).await;
        let task_id = deploy(&server, "Retained", release, "Development").await;
        let task = wait_for_task(&server, &task_id).await;
        assert_eq!(task.state, "Success", "release {release}");
        if first_task.is_empty() {
            first_task = task_id;
        }
    }
    // Never deployed, but the newest: kept by the policy's count of undeployed releases.
    create_release(&server, "5", "1.0.2").await;

    let report: Value = server
        .client
        .post("/api/retention/apply", &json!({}))
        .await
        .expect("apply retention");
    // 4 is the newest deployed and current, 3 the release to roll back to.
    assert_eq!(sorted(&report["DeletedReleases"], "Version"), ["1", "2"]);
    let reason = report["DeletedReleases"][0]["Reason"]
        .as_str()
        .expect("a reason");
    assert!(reason.contains("keep the newest 1"), "{reason}");
    // 1.0.1 is still pinned by release 3; 9.9.9 was never released.
    assert_eq!(report["DeletedPackages"], json!(["packages-web.1.0.0"]));

    let project_id = project["Id"].as_str().expect("project id");
    let releases = get_json(
        &server,
        &format!("/api/Spaces-1/projects/{project_id}/releases"),
    )
    .await;
    assert_eq!(sorted(&releases["Items"], "Version"), ["3", "4", "5"]);
    let packages = get_json(&server, "/api/Spaces-1/packages?take=100").await;
    assert_eq!(
        sorted(&packages["Items"], "Version"),
        ["1.0.1", "1.0.2", "9.9.9"]
    );
    assert_eq!(
        blob_files(&server).len(),
        3,
        "the deleted package's file is gone"
    );
    let deployments = get_json(&server, "/api/Spaces-1/deployments?take=100").await;
    assert_eq!(deployments["Items"].as_array().expect("Items").len(), 2);
    // The tasks stay: they are the audit trail.
    let task = send(&server, "GET", &format!("/api/tasks/{first_task}"), None).await;
    assert_eq!(task.status.as_u16(), 200, "{}", task.body);

    // A second pass finds nothing more to delete.
    let again: Value = server
        .client
        .post("/api/retention/apply", &json!({}))
        .await
        .expect("apply retention again");
    assert_eq!(again["DeletedReleases"], json!([]));
    assert_eq!(again["DeletedPackages"], json!([]));
    server.cleanup().await.expect("clean up");
}
