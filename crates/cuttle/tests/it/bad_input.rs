//! Bad input gets a clear 4xx with `{ErrorMessage, Errors}`, never a 500, and loses nothing.

use cuttle_domain::Environment;

use super::{assert_error, send, server};

#[tokio::test]
async fn malformed_and_mistyped_bodies_name_the_problem() {
    let server = server().await;
    let path = "/api/Spaces-1/environments";
    assert_error(
        &send(&server, "POST", path, Some("{\"Name\": ")).await,
        400,
        "not valid JSON",
    );
    assert_error(&send(&server, "POST", path, Some("")).await, 400, "empty");
    assert_error(
        &send(&server, "POST", path, Some(r#""text""#)).await,
        400,
        "wrong shape",
    );
    assert_error(
        &send(&server, "POST", path, Some("[]")).await,
        400,
        "Name is required",
    );
    assert_error(
        &send(&server, "POST", path, Some(r#"{"Name": 42}"#)).await,
        400,
        "Name: invalid type",
    );
    assert_error(
        &send(
            &server,
            "POST",
            path,
            Some(r#"{"Name": "Dev", "SortOrder": "first"}"#),
        )
        .await,
        400,
        "SortOrder",
    );
    assert_error(
        &send(&server, "POST", path, Some(r#"{"Description": "no name"}"#)).await,
        400,
        "Name is required",
    );
    assert_error(
        &send(
            &server,
            "POST",
            "/api/Spaces-1/lifecycles",
            Some(r#"{"Name":"L","Phases":[{"Name":7}]}"#),
        )
        .await,
        400,
        "Phases[0].Name",
    );
    assert_error(
        &send(
            &server,
            "POST",
            "/api/Spaces-1/projects",
            Some(r#"{"Name":"P","LifecycleId":"Lifecycles-77"}"#),
        )
        .await,
        400,
        "LifecycleId",
    );
    // Unknown fields are ignored and null means "not set".
    let response = send(
        &server,
        "POST",
        path,
        Some(r#"{"Name": "Dev", "Description": null, "SomethingNew": {"x": 1}, "spaceId": "Spaces-1"}"#),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.body);
}

#[tokio::test]
async fn names_are_bounded_trimmed_unicode_and_unique_ignoring_case() {
    let server = server().await;
    let path = "/api/Spaces-1/environments";
    let long_name = format!(r#"{{"Name": "{}"}}"#, "x".repeat(10_000));
    assert_error(
        &send(&server, "POST", path, Some(&long_name)).await,
        400,
        "at most 200 characters",
    );

    for name in ["Produktion Österreich", "生产环境", "Prod 🚀"] {
        let created: Environment = server
            .client
            .create(
                Some("Spaces-1"),
                &Environment {
                    name: name.to_owned(),
                    ..Environment::default()
                },
            )
            .await
            .unwrap();
        let read = server
            .client
            .get_resource::<Environment>(Some("Spaces-1"), &created.id)
            .await
            .unwrap();
        assert_eq!(read.name, name);
    }
    let response = send(
        &server,
        "POST",
        path,
        Some(r#"{"Name": "PRODUKTION ÖSTERREICH"}"#),
    )
    .await;
    assert_error(&response, 409, "already exists");
    let response = send(&server, "POST", path, Some(r#"{"Name": "  Staging  "}"#)).await;
    let created: serde_json::Value = response.json().unwrap();
    assert_eq!(created["Name"], "Staging");
    let response = send(&server, "POST", path, Some(r#"{"Name": "staging"}"#)).await;
    assert_error(&response, 409, "staging");

    // Renaming onto a taken name is a conflict too.
    let id = created["Id"].as_str().unwrap();
    let response = send(
        &server,
        "PUT",
        &format!("{path}/{id}"),
        Some(r#"{"Name": "生产环境"}"#),
    )
    .await;
    assert_error(&response, 409, "already exists");
}

#[tokio::test]
async fn twenty_concurrent_creates_of_one_name_make_exactly_one() {
    let server = server().await;
    let attempts = (0..20).map(|_| {
        send(
            &server,
            "POST",
            "/api/Spaces-1/environments",
            Some(r#"{"Name": "Race"}"#),
        )
    });
    let responses = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = responses
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
    let page: serde_json::Value = send(
        &server,
        "GET",
        "/api/Spaces-1/environments?partialName=race",
        None,
    )
    .await
    .json()
    .unwrap();
    assert_eq!(page["TotalResults"], 1);
}

#[tokio::test]
async fn sql_metacharacters_are_only_data() {
    let server = server().await;
    let hostile = [
        "Robert'); DROP TABLE documents;--",
        "100% _sure_",
        "\" OR 1=1 --",
    ];
    for name in hostile {
        let body = serde_json::json!({ "Name": name }).to_string();
        let response = send(&server, "POST", "/api/Spaces-1/environments", Some(&body)).await;
        assert_eq!(response.status, 201, "{name}: {}", response.body);
    }
    for (query, expected_total) in [
        ("partialName=%25", 1),
        ("partialName=_", 1),
        ("partialName=%27%29%3B%20DROP", 1),
        ("ids=%27%20OR%20%271%27%3D%271", 0),
        ("partialName=%22%20OR%201%3D1", 1),
    ] {
        let response = send(
            &server,
            "GET",
            &format!("/api/Spaces-1/environments?{query}"),
            None,
        )
        .await;
        assert_eq!(response.status, 200, "{query}: {}", response.body);
        let page: serde_json::Value = response.json().unwrap();
        assert_eq!(page["TotalResults"], expected_total, "{query}");
    }
    let page: serde_json::Value = send(&server, "GET", "/api/Spaces-1/environments", None)
        .await
        .json()
        .unwrap();
    assert_eq!(page["TotalResults"], 3, "nothing was dropped");
}

#[tokio::test]
async fn paging_parameters_are_checked_and_the_largest_take_works() {
    let server = server().await;
    for name in ["A", "B", "C"] {
        let body = serde_json::json!({ "Name": name }).to_string();
        send(&server, "POST", "/api/Spaces-1/environments", Some(&body)).await;
    }
    for query in ["take=-1", "skip=abc", "take=99999999999", "skip=-5"] {
        let response = send(
            &server,
            "GET",
            &format!("/api/Spaces-1/environments?{query}"),
            None,
        )
        .await;
        assert_error(&response, 400, query.split('=').next().unwrap());
    }
    let page: serde_json::Value = send(
        &server,
        "GET",
        "/api/Spaces-1/environments?skip=2147483647&take=2147483647",
        None,
    )
    .await
    .json()
    .unwrap();
    assert_eq!(page["TotalResults"], 3);
    assert_eq!(page["Items"].as_array().unwrap().len(), 0);

    let page: serde_json::Value = send(
        &server,
        "GET",
        "/api/Spaces-1/environments?SKIP=1&Take=1",
        None,
    )
    .await
    .json()
    .unwrap();
    assert_eq!(page["Items"][0]["Name"], "B");
    assert_eq!(page["ItemsPerPage"], 1);
    assert_eq!(page["NumberOfPages"], 3);
    assert_eq!(page["LastPageNumber"], 2);
    assert_eq!(page["ItemType"], "Environment");

    // Unknown ids are absent, not an error; empty elements are ignored.
    let response = send(
        &server,
        "GET",
        "/api/Spaces-1/environments?ids=Environments-1,Environments-404,&take=1",
        None,
    )
    .await;
    let page: serde_json::Value = response.json().unwrap();
    assert_eq!(page["TotalResults"], 1, "{page}");
    assert_eq!(page["Items"][0]["Id"], "Environments-1");
    // More ids than `take` is the caller's choice; `take` is not raised behind its back.
    let page: serde_json::Value = send(
        &server,
        "GET",
        "/api/Spaces-1/environments?ids=environments-1,ENVIRONMENTS-2",
        None,
    )
    .await
    .json()
    .unwrap();
    assert_eq!(page["TotalResults"], 2, "ids match in any case");
}

#[tokio::test]
async fn unknown_routes_resources_and_methods_answer_json() {
    let server = server().await;
    assert_error(
        &send(&server, "GET", "/api/Spaces-1/nothing-here", None).await,
        404,
        "/api/Spaces-1/nothing-here",
    );
    assert_error(
        &send(&server, "GET", "/api/Spaces-99/environments", None).await,
        404,
        "Spaces-99",
    );
    assert_error(
        &send(&server, "GET", "/api/not-a-space/environments", None).await,
        404,
        "not-a-space",
    );
    assert_error(
        &send(
            &server,
            "GET",
            "/api/Spaces-1/projects/Projects-12345",
            None,
        )
        .await,
        404,
        "Projects-12345",
    );
    assert_error(
        &send(
            &server,
            "PUT",
            "/api/Spaces-1/projects/Projects-12345",
            Some(r#"{"Name":"x"}"#),
        )
        .await,
        404,
        "Projects-12345",
    );
    assert_error(
        &send(
            &server,
            "DELETE",
            "/api/Spaces-1/projects/Projects-12345",
            None,
        )
        .await,
        404,
        "Projects-12345",
    );
    assert_error(
        &send(&server, "PATCH", "/api/Spaces-1/environments", Some("{}")).await,
        405,
        "PATCH",
    );
    // Routes match in any case.
    let response = send(&server, "GET", "/API/SPACES-1/ENVIRONMENTS", None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let response = send(
        &server,
        "GET",
        "/api/spaces-1/projectGroups/projectgroups-1",
        None,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let server = server().await;
    let huge = format!(
        r#"{{"Name": "big", "Description": "{}"}}"#,
        "x".repeat(11 * 1024 * 1024)
    );
    let response = send(&server, "POST", "/api/Spaces-1/environments", Some(&huge)).await;
    assert_error(&response, 413, "limit");
    let response = send(
        &server,
        "GET",
        "/api/Spaces-1/environments?partialName=big",
        None,
    )
    .await;
    let page: serde_json::Value = response.json().unwrap();
    assert_eq!(page["TotalResults"], 0);
    // Just under the limit but over the description bound: a 400, not a 413 or 500.
    let large = format!(
        r#"{{"Name": "big", "Description": "{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    assert_error(
        &send(&server, "POST", "/api/Spaces-1/environments", Some(&large)).await,
        400,
        "Description",
    );
}

#[tokio::test]
async fn the_server_log_has_no_errors_after_bad_input() {
    let server = server().await;
    for body in ["{", "[]", r#"{"Name": 1}"#, r#"{"Name": ""}"#] {
        send(&server, "POST", "/api/Spaces-1/projects", Some(body)).await;
    }
    send(&server, "GET", "/api/Spaces-1/environments?take=-1", None).await;
    let log = server.log();
    assert!(
        !log.contains("ERROR"),
        "bad input is not a server error:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}
