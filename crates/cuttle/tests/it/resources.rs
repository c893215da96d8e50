//! Create, read, update, delete and list each configuration resource.

use cuttle_client::ListOptions;
use cuttle_domain::{
    Channel, ChannelVersionRule, DeploymentTarget, Endpoint, Environment, HealthStatus,
    LibraryVariableSet, Lifecycle, Phase, Project, ProjectGroup, RetentionPolicy, RetentionUnit,
    Space, Worker, WorkerPool,
};

use super::{assert_error, send, server};

const SPACE: Option<&str> = Some("Spaces-1");

fn environment(name: &str) -> Environment {
    Environment {
        name: name.to_owned(),
        ..Environment::default()
    }
}

#[tokio::test]
async fn environments_are_ordered_and_can_be_reordered() {
    let server = server().await;
    let client = &server.client;
    let mut ids = Vec::new();
    for name in ["Development", "Test", "Production"] {
        ids.push(client.create(SPACE, &environment(name)).await.unwrap().id);
    }
    let names = |environments: Vec<Environment>| {
        environments
            .into_iter()
            .map(|environment| environment.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(client.list_all::<Environment>(SPACE).await.unwrap()),
        ["Development", "Test", "Production"]
    );

    let reordered: serde_json::Value = client
        .put(
            "/api/Spaces-1/environments/sortorder",
            &vec![ids[2].clone(), ids[0].clone()],
        )
        .await
        .unwrap();
    assert_eq!(reordered.as_array().unwrap().len(), 3);
    assert_eq!(
        names(client.list_all::<Environment>(SPACE).await.unwrap()),
        ["Production", "Development", "Test"]
    );

    let response = send(
        &server,
        "PUT",
        "/api/Spaces-1/environments/sortorder",
        Some(r#"["Environments-999"]"#),
    )
    .await;
    assert_error(&response, 400, "Environments-999");

    // The v2 listing the deploy action uses.
    let v2: serde_json::Value = client
        .get(&format!(
            "/api/Spaces-1/environments/v2?ids={}&skip=0&take=1",
            ids[1]
        ))
        .await
        .unwrap();
    assert_eq!(v2["Items"][0]["Name"], "Test");
    assert_eq!(v2["Items"][0]["Type"], "Static");

    let mut production = client
        .get_resource::<Environment>(SPACE, &ids[2])
        .await
        .unwrap();
    production.description = Some("Live".to_owned());
    production.use_guided_failure = true;
    let modified = client.modify(SPACE, &production).await.unwrap();
    assert_eq!(modified.description.as_deref(), Some("Live"));
    assert_eq!(modified.sort_order, production.sort_order);

    client
        .delete_resource::<Environment>(SPACE, &ids[1])
        .await
        .unwrap();
    let response = send(
        &server,
        "GET",
        &format!("/api/Spaces-1/environments/{}", ids[1]),
        None,
    )
    .await;
    assert_error(&response, 404, &ids[1]);
}

#[tokio::test]
async fn lifecycles_keep_phases_and_retention_and_protect_their_environments() {
    let server = server().await;
    let client = &server.client;
    let development = client
        .create(SPACE, &environment("Development"))
        .await
        .unwrap();
    let test = client.create(SPACE, &environment("Test")).await.unwrap();
    let production = client
        .create(SPACE, &environment("Production"))
        .await
        .unwrap();
    let lifecycle = Lifecycle {
        name: "Standard".to_owned(),
        phases: vec![
            Phase {
                name: "Dev".to_owned(),
                automatic_deployment_targets: vec![development.id.clone()],
                ..Phase::default()
            },
            Phase {
                name: "QA".to_owned(),
                optional_deployment_targets: vec![test.id.clone()],
                minimum_environments_before_promotion: 1,
                is_optional_phase: true,
                ..Phase::default()
            },
            Phase {
                name: "Live".to_owned(),
                optional_deployment_targets: vec![production.id.clone()],
                release_retention_policy: Some(RetentionPolicy {
                    unit: RetentionUnit::Items,
                    quantity_to_keep: 5,
                    should_keep_forever: false,
                }),
                ..Phase::default()
            },
        ],
        release_retention_policy: RetentionPolicy {
            unit: RetentionUnit::Days,
            quantity_to_keep: 30,
            should_keep_forever: false,
        },
        ..Lifecycle::default()
    };
    let created = client.create(SPACE, &lifecycle).await.unwrap();
    assert_eq!(created.phases.len(), 3);
    assert!(created.phases.iter().all(|phase| phase.id.len() == 36));
    assert!(created.phases[1].is_optional_phase);
    assert_eq!(
        created.phases[2]
            .release_retention_policy
            .as_ref()
            .unwrap()
            .quantity_to_keep,
        5
    );
    assert_eq!(created.release_retention_policy.quantity_to_keep, 30);

    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/environments/{}", test.id),
        None,
    )
    .await;
    assert_error(&response, 400, "lifecycle 'Standard'");

    let unknown = Lifecycle {
        name: "Broken".to_owned(),
        phases: vec![Phase {
            name: "Only".to_owned(),
            automatic_deployment_targets: vec!["Environments-999".to_owned()],
            ..Phase::default()
        }],
        ..Lifecycle::default()
    };
    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/lifecycles",
        Some(&serde_json::to_string(&unknown).unwrap()),
    )
    .await;
    assert_error(&response, 400, "Phases[0].AutomaticDeploymentTargets[0]");

    // Phase ids survive an update that sends them back.
    let mut renamed = created.clone();
    renamed.phases[0].name = "Development".to_owned();
    let modified = client.modify(SPACE, &renamed).await.unwrap();
    assert_eq!(modified.phases[0].id, created.phases[0].id);
}

#[tokio::test]
async fn projects_get_a_default_channel_and_default_lifecycle_and_group() {
    let server = server().await;
    let client = &server.client;
    let project = client
        .create(
            SPACE,
            &Project {
                name: "Hello World".to_owned(),
                description: Some("A web site".to_owned()),
                ..Project::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(project.slug, "hello-world");
    assert_eq!(project.lifecycle_id, "Lifecycles-1");
    assert_eq!(project.project_group_id, "ProjectGroups-1");
    assert_eq!(
        project.deployment_process_id,
        format!("deploymentprocess-{}", project.id)
    );
    assert_eq!(
        project.variable_set_id,
        format!("variableset-{}", project.id)
    );

    let channels: serde_json::Value = client
        .get(&format!("/api/Spaces-1/projects/{}/channels", project.id))
        .await
        .unwrap();
    assert_eq!(channels["TotalResults"], 1);
    assert_eq!(channels["Items"][0]["Name"], "Default");
    assert_eq!(channels["Items"][0]["IsDefault"], true);
    let default_channel_id = channels["Items"][0]["Id"].as_str().unwrap().to_owned();

    // A second channel with rules and its own lifecycle, made the default.
    let lifecycle = client
        .create(
            SPACE,
            &Lifecycle {
                name: "Hotfix".to_owned(),
                ..Lifecycle::default()
            },
        )
        .await
        .unwrap();
    let hotfix = client
        .create(
            SPACE,
            &Channel {
                name: "Hotfix".to_owned(),
                project_id: project.id.clone(),
                lifecycle_id: Some(lifecycle.id.clone()),
                is_default: true,
                rules: vec![ChannelVersionRule {
                    version_range: Some("[1.0,2.0)".to_owned()),
                    tag: Some("^hotfix".to_owned()),
                    ..ChannelVersionRule::default()
                }],
                ..Channel::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(hotfix.rules[0].id.len(), 36);
    let old_default = client
        .get_resource::<Channel>(SPACE, &default_channel_id)
        .await
        .unwrap();
    assert!(
        !old_default.is_default,
        "only one default channel per project"
    );

    // Channel names are unique per project, not per space.
    let other_project = client
        .create(
            SPACE,
            &Project {
                name: "Other".to_owned(),
                ..Project::default()
            },
        )
        .await
        .unwrap();
    client
        .create(
            SPACE,
            &Channel {
                name: "Hotfix".to_owned(),
                project_id: other_project.id.clone(),
                ..Channel::default()
            },
        )
        .await
        .unwrap();

    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/channels/{}", hotfix.id),
        None,
    )
    .await;
    assert_error(&response, 400, "default channel");
    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/lifecycles/{}", lifecycle.id),
        None,
    )
    .await;
    assert_error(&response, 400, "channel 'Hotfix'");

    // Deleting the project deletes its channels.
    client
        .delete_resource::<Project>(SPACE, &project.id)
        .await
        .unwrap();
    let response = send(
        &server,
        "GET",
        &format!("/api/Spaces-1/channels/{}", hotfix.id),
        None,
    )
    .await;
    assert_eq!(response.status, 404);
    client
        .delete_resource::<Lifecycle>(SPACE, &lifecycle.id)
        .await
        .unwrap();

    // The default lifecycle is in use by the other project.
    let response = send(
        &server,
        "DELETE",
        "/api/Spaces-1/lifecycles/Lifecycles-1",
        None,
    )
    .await;
    assert_error(&response, 400, "project 'Other'");
}

#[tokio::test]
async fn project_groups_and_library_variable_sets_round_trip() {
    let server = server().await;
    let client = &server.client;
    let group = client
        .create(
            SPACE,
            &ProjectGroup {
                name: "Web sites".to_owned(),
                ..ProjectGroup::default()
            },
        )
        .await
        .unwrap();
    let library = client
        .create(
            SPACE,
            &LibraryVariableSet {
                name: "Shared settings".to_owned(),
                ..LibraryVariableSet::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        library.variable_set_id,
        format!("variableset-{}", library.id)
    );
    let project = client
        .create(
            SPACE,
            &Project {
                name: "Shop".to_owned(),
                project_group_id: group.id.clone(),
                included_library_variable_set_ids: vec![library.id.clone()],
                ..Project::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(project.project_group_id, group.id);
    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/libraryvariablesets/{}", library.id),
        None,
    )
    .await;
    assert_error(&response, 400, "project 'Shop'");
    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/projectgroups/{}", group.id),
        None,
    )
    .await;
    assert_error(&response, 400, "project 'Shop'");
}

#[tokio::test]
async fn deployment_targets_take_every_endpoint_kind_and_health_is_the_servers() {
    let server = server().await;
    let client = &server.client;
    let production = client
        .create(SPACE, &environment("Production"))
        .await
        .unwrap();
    let account: serde_json::Value = client
        .post(
            "/api/Spaces-1/accounts",
            &serde_json::json!({"Name": "deploy", "AccountType": "UsernamePassword", "Username": "deploy", "Password": {"NewValue": "s3cret-pass"}}),
        )
        .await
        .unwrap();
    let account_id = account["Id"].as_str().unwrap().to_owned();
    let thumbprint = "ab".repeat(32);
    let endpoints = [
        Endpoint::Listening {
            uri: "https://web01:10933/".to_owned(),
            thumbprint: thumbprint.clone(),
        },
        Endpoint::Polling {
            uri: "poll://abcdef0123456789/".to_owned(),
            thumbprint: thumbprint.clone(),
        },
        Endpoint::Ssh {
            host: "db01.example.com".to_owned(),
            port: 2222,
            account_id: account_id.clone(),
            fingerprint: "SHA256:abc".to_owned(),
        },
    ];
    for (index, endpoint) in endpoints.into_iter().enumerate() {
        let target = DeploymentTarget {
            name: format!("target-{index}"),
            environment_ids: vec![production.id.clone()],
            roles: vec!["web".to_owned(), "api".to_owned()],
            endpoint: endpoint.clone(),
            health_status: HealthStatus::Healthy,
            ..DeploymentTarget::default()
        };
        let created = client.create(SPACE, &target).await.unwrap();
        assert_eq!(
            created.health_status,
            HealthStatus::Unknown,
            "health is observed, not declared"
        );
        assert_eq!(created.roles, ["web", "api"]);
        if let Some(thumbprint) = created.endpoint.thumbprint() {
            assert_eq!(thumbprint, "AB".repeat(32));
        }
        let read: serde_json::Value = client
            .get(&format!("/api/Spaces-1/machines/{}", created.id))
            .await
            .unwrap();
        let style = read["Endpoint"]["CommunicationStyle"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(style, ["TentaclePassive", "TentacleActive", "Ssh"][index]);

        let mut disabled = created.clone();
        disabled.is_disabled = true;
        disabled.health_status = HealthStatus::Healthy;
        let modified = client.modify(SPACE, &disabled).await.unwrap();
        assert!(modified.is_disabled);
        assert_eq!(modified.health_status, HealthStatus::Unknown);
    }

    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/machines",
        Some(r#"{"Name":"bad","EnvironmentIds":[],"Roles":[],"Endpoint":{"CommunicationStyle":"TentaclePassive","Uri":"http://x","Thumbprint":"zz"}}"#),
    )
    .await;
    assert_error(&response, 400, "EnvironmentIds");
    assert_error(&response, 400, "Roles");
    assert_error(&response, 400, "Endpoint.Uri");
    assert_error(&response, 400, "Endpoint.Thumbprint");

    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/environments/{}", production.id),
        None,
    )
    .await;
    assert_error(&response, 400, "deployment target 'target-0'");
}

#[tokio::test]
async fn worker_pools_and_workers() {
    let server = server().await;
    let client = &server.client;
    let pool = client
        .create(
            SPACE,
            &WorkerPool {
                name: "Linux workers".to_owned(),
                ..WorkerPool::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(pool.worker_pool_type, "StaticWorkerPool");
    let worker = client
        .create(
            SPACE,
            &Worker {
                name: "worker-01".to_owned(),
                worker_pool_ids: vec![pool.id.clone()],
                endpoint: Endpoint::Polling {
                    uri: "poll://worker01/".to_owned(),
                    thumbprint: "CD".repeat(32),
                },
                ..Worker::default()
            },
        )
        .await
        .unwrap();
    let workers: serde_json::Value = client
        .get(&format!("/api/Spaces-1/workerpools/{}/workers", pool.id))
        .await
        .unwrap();
    assert_eq!(workers["Items"][0]["Id"], worker.id.as_str());

    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/workerpools/{}", pool.id),
        None,
    )
    .await;
    assert_error(&response, 400, "worker 'worker-01'");
    let response = send(
        &server,
        "DELETE",
        "/api/Spaces-1/workerpools/WorkerPools-1",
        None,
    )
    .await;
    assert_error(&response, 400, "default worker pool");

    // Making the new pool the default moves the flag.
    let mut new_default = pool.clone();
    new_default.is_default = true;
    client.modify(SPACE, &new_default).await.unwrap();
    let old_default = client
        .get_resource::<WorkerPool>(SPACE, "WorkerPools-1")
        .await
        .unwrap();
    assert!(!old_default.is_default);
}

#[tokio::test]
async fn spaces_are_separate_and_deleting_one_needs_its_queue_stopped() {
    let server = server().await;
    let client = &server.client;
    let space = client
        .create(
            None,
            &Space {
                name: "Team B".to_owned(),
                ..Space::default()
            },
        )
        .await
        .unwrap();
    let other = Some(space.id.as_str());
    // A new space starts with its own defaults.
    let lifecycles = client.list_all::<Lifecycle>(other).await.unwrap();
    assert_eq!(lifecycles.len(), 1);
    // The same name in another space is fine; resources of one space are not seen in another.
    let development = client
        .create(other, &environment("Development"))
        .await
        .unwrap();
    client
        .create(SPACE, &environment("Development"))
        .await
        .unwrap();
    let response = send(
        &server,
        "GET",
        &format!("/api/Spaces-1/environments/{}", development.id),
        None,
    )
    .await;
    assert_eq!(response.status, 404);
    // References must stay inside the space.
    let project = Project {
        name: "Cross".to_owned(),
        lifecycle_id: "Lifecycles-1".to_owned(),
        ..Project::default()
    };
    let response = send(
        &server,
        "POST",
        &format!("/api/{}/projects", space.id),
        Some(&serde_json::to_string(&project).unwrap()),
    )
    .await;
    assert_error(&response, 400, "another space");

    let response = send(
        &server,
        "DELETE",
        &format!("/api/spaces/{}", space.id),
        None,
    )
    .await;
    assert_error(&response, 400, "TaskQueueStopped");
    let mut stopped = space.clone();
    stopped.task_queue_stopped = true;
    client.modify(None, &stopped).await.unwrap();
    client
        .delete_resource::<Space>(None, &space.id)
        .await
        .unwrap();
    let response = send(
        &server,
        "GET",
        &format!("/api/{}/environments", space.id),
        None,
    )
    .await;
    assert_error(&response, 404, &space.id);
    let response = send(&server, "DELETE", "/api/spaces/Spaces-1", None).await;
    assert_error(&response, 400, "default space");

    // Paging over spaces, by ids and by partial name.
    let page = client
        .list::<Space>(
            None,
            &ListOptions {
                partial_name: Some("defa".to_owned()),
                ..ListOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total_results, 1);
}

#[tokio::test]
async fn accounts_keep_their_secrets_sealed_and_out_of_every_answer() {
    let server = server().await;
    let client = &server.client;
    let private_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-but-secret-42\n-----END OPENSSH PRIVATE KEY-----";
    let created: serde_json::Value = client
        .post(
            "/api/Spaces-1/accounts",
            &serde_json::json!({"Name": "Linux deploy", "AccountType": "SshKeyPair", "Username": "deploy",
                "PrivateKeyFile": {"NewValue": private_key}, "PrivateKeyPassphrase": {"HasValue": false}}),
        )
        .await
        .unwrap();
    assert_eq!(
        created["PrivateKeyFile"],
        serde_json::json!({"HasValue": true})
    );
    assert_eq!(
        created["PrivateKeyPassphrase"],
        serde_json::json!({"HasValue": false})
    );
    let id = created["Id"].as_str().unwrap();
    let listed = send(&server, "GET", "/api/Spaces-1/accounts", None).await;
    assert!(!listed.body.contains("not-a-real-key"), "{}", listed.body);
    assert!(!listed.body.contains("aes256gcm"), "{}", listed.body);

    // Saving what was read keeps the key; a client cannot plant a sealed value.
    let mut read: serde_json::Value = client
        .get(&format!("/api/Spaces-1/accounts/{id}"))
        .await
        .unwrap();
    read["Description"] = serde_json::json!("renamed");
    read["PrivateKeyFile"]["SealedValue"] = serde_json::json!("aes256gcm:v1:forged");
    let saved: serde_json::Value = client
        .put(&format!("/api/Spaces-1/accounts/{id}"), &read)
        .await
        .unwrap();
    assert_eq!(saved["PrivateKeyFile"]["HasValue"], true);
    let database = std::fs::read(server.data_directory().join("cuttle.sqlite3")).unwrap();
    let wal = std::fs::read(server.data_directory().join("cuttle.sqlite3-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        assert!(
            !bytes.windows(12).any(|window| window == b"not-a-real-k"),
            "a secret stored in clear"
        );
    }

    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/accounts",
        Some(r#"{"Name": "empty", "AccountType": "SshKeyPair", "Username": "u"}"#),
    )
    .await;
    assert_error(&response, 400, "PrivateKeyFile");
    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/accounts",
        Some(r#"{"Name": "x", "AccountType": "Azure", "Username": "u"}"#),
    )
    .await;
    assert_error(&response, 400, "AccountType");

    // Targets must name an existing account, which then cannot be deleted.
    let production = client
        .create(SPACE, &environment("Production"))
        .await
        .unwrap();
    let target = serde_json::json!({"Name": "db01", "EnvironmentIds": [production.id], "Roles": ["db"],
        "Endpoint": {"CommunicationStyle": "Ssh", "Host": "db01", "Port": 22, "AccountId": "Accounts-999", "Fingerprint": "SHA256:abc"}});
    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/machines",
        Some(&target.to_string()),
    )
    .await;
    assert_error(&response, 400, "Endpoint.AccountId");
    let mut target = target;
    target["Endpoint"]["AccountId"] = serde_json::json!(id);
    let response = send(
        &server,
        "POST",
        "/api/Spaces-1/machines",
        Some(&target.to_string()),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.body);
    let response = send(
        &server,
        "DELETE",
        &format!("/api/Spaces-1/accounts/{id}"),
        None,
    )
    .await;
    assert_error(&response, 400, "deployment target 'db01'");
}
