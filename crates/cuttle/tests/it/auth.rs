//! Authentication: API keys in every accepted place, revocation, and browser sessions.

use cuttle_client::ClientError;
use cuttle_test_support::{TEST_ADMIN_PASSWORD, TEST_API_KEY};
use reqwest::Method;

use super::{assert_error, send, send_as, server};

#[tokio::test]
async fn api_calls_need_a_valid_key() {
    let server = server().await;
    let anonymous = server.client.with_api_key(None);
    for path in ["/api/spaces", "/api/Spaces-1/environments", "/api/users/me"] {
        let response = anonymous.raw(Method::GET, path, None).await.unwrap();
        assert_error(&response, 401, "API key");
    }
    let wrong = server
        .client
        .with_api_key(Some(format!("API-{}", "X".repeat(30))));
    let response = wrong.raw(Method::GET, "/api/spaces", None).await.unwrap();
    assert_error(&response, 401, "not valid");
    let malformed = server.client.with_api_key(Some("hello".to_owned()));
    let response = malformed
        .raw(Method::GET, "/api/spaces", None)
        .await
        .unwrap();
    assert_error(&response, 401, "not valid");
}

#[tokio::test]
async fn the_key_may_come_in_the_query_string_or_as_a_bearer_token() {
    let server = server().await;
    let anonymous = server.client.with_api_key(None);
    let response = anonymous
        .raw(
            Method::GET,
            &format!("/api/users/me?apikey={TEST_API_KEY}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);

    let response = reqwest::Client::new()
        .get(format!("{}/api/users/me", server.base_url))
        .bearer_auth(TEST_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn api_keys_are_shown_once_listed_without_the_key_and_revocable() {
    let server = server().await;
    let created = server
        .client
        .create_api_key("me", "CI pipeline")
        .await
        .unwrap();
    assert!(created.api_key.starts_with("API-"));
    let body_length = created.api_key.len() - 4;
    assert!(body_length >= 26);
    assert!(
        created.api_key[4..]
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
    );

    let listed = send(&server, "GET", "/api/users/me/apikeys", None).await;
    assert_eq!(listed.status, 200);
    assert!(
        !listed.body.contains(&created.api_key),
        "a listed key shows the key"
    );
    let page: serde_json::Value = listed.json().unwrap();
    assert_eq!(page["TotalResults"], 2, "{page}");

    let ci_client = server.client.with_api_key(Some(created.api_key.clone()));
    assert_eq!(ci_client.current_user().await.unwrap().username, "admin");

    server
        .client
        .revoke_api_key(&created.user_id, &created.id)
        .await
        .unwrap();
    let error = ci_client.current_user().await.unwrap_err();
    assert_eq!(error.status().map(|status| status.as_u16()), Some(401));

    let response = send(
        &server,
        "POST",
        "/api/users/me/apikeys",
        Some(r#"{"Purpose":" "}"#),
    )
    .await;
    assert_error(&response, 400, "Purpose");
    let response = send(
        &server,
        "POST",
        "/api/users/me/apikeys",
        Some(r#"{"Purpose":"old","Expires":"2001-01-01T00:00:00Z"}"#),
    )
    .await;
    assert_error(&response, 400, "future");
}

#[tokio::test]
async fn password_sign_in_gives_a_session_that_needs_its_csrf_token_to_write() {
    let server = server().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base_url);

    let response = http
        .post(url("/api/users/login"))
        .json(&serde_json::json!({"Username": "admin", "Password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = http
        .post(url("/api/users/login"))
        .json(&serde_json::json!({"Username": "nobody", "Password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let response = http
        .post(url("/api/users/login"))
        .json(&serde_json::json!({"Username": "ADMIN", "Password": TEST_ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookies: Vec<String> = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    let session_cookie = cookies
        .iter()
        .find(|cookie| cookie.starts_with("cuttle-session="))
        .expect("session cookie");
    assert!(session_cookie.contains("HttpOnly"));
    assert!(session_cookie.contains("SameSite=Lax"));
    let cookie_value = |cookie: &str| cookie.split(';').next().unwrap().to_owned();
    let session = cookie_value(session_cookie);
    let csrf_pair = cookie_value(
        cookies
            .iter()
            .find(|cookie| cookie.starts_with("Octopus-Csrf-Token="))
            .expect("CSRF cookie"),
    );
    let csrf_token = csrf_pair.split_once('=').unwrap().1.to_owned();
    let cookie_header = format!("{session}; {csrf_pair}");

    let me = http
        .get(url("/api/users/me"))
        .header("Cookie", &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let forged = http
        .post(url("/api/Spaces-1/environments"))
        .header("Cookie", &cookie_header)
        .json(&serde_json::json!({"Name": "Forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    let allowed = http
        .post(url("/api/Spaces-1/environments"))
        .header("Cookie", &cookie_header)
        .header("X-Octopus-Csrf-Token", &csrf_token)
        .json(&serde_json::json!({"Name": "From the browser"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 201);

    let logout = http
        .post(url("/api/users/logout"))
        .header("Cookie", &cookie_header)
        .header("X-Octopus-Csrf-Token", &csrf_token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let after = http
        .get(url("/api/users/me"))
        .header("Cookie", &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn client_errors_keep_the_server_message() {
    let server = server().await;
    let error = server
        .client
        .get::<serde_json::Value>("/api/Spaces-1/environments/Environments-404")
        .await
        .unwrap_err();
    match error {
        ClientError::Api { status, body } => {
            assert_eq!(status, 404);
            assert!(body.error_message.contains("Environments-404"), "{body:?}");
        }
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn administrators_manage_users_and_everyone_else_only_views() {
    let server = server().await;
    let admin = &server.client;

    // Creating: a password is required and checked; names are unique; service accounts have none.
    let response = send_as(
        admin,
        "POST",
        "/api/users",
        Some(&serde_json::json!({"Username": "vera", "Password": "short"}).to_string()),
    )
    .await;
    assert_error(&response, 400, "Password must be 8 to 256 characters long");
    let response = send_as(
        admin,
        "POST",
        "/api/users",
        Some(&serde_json::json!({"Username": "vera"}).to_string()),
    )
    .await;
    assert_error(&response, 400, "Password is required");
    let response = send_as(admin, "POST", "/api/users", Some(&serde_json::json!({"Username": "bot", "IsService": true, "Password": "not allowed here"}).to_string()))
    .await;
    assert_error(&response, 400, "a service account has no password");
    let vera: serde_json::Value = admin
        .post("/api/users", &serde_json::json!({"Username": "vera", "DisplayName": "Vera", "Password": "first password"}))
        .await
        .expect("create a user");
    assert_eq!(
        (
            vera["IsActive"].as_bool(),
            vera["IsAdministrator"].as_bool()
        ),
        (Some(true), Some(false)),
        "{vera}"
    );
    assert!(
        vera.get("Password").is_none() && !vera.to_string().contains("argon2"),
        "{vera}"
    );
    let vera_id = vera["Id"].as_str().expect("an id").to_owned();
    let response = send_as(
        admin,
        "POST",
        "/api/users",
        Some(&serde_json::json!({"Username": "VERA", "Password": "another one"}).to_string()),
    )
    .await;
    assert_eq!(response.status.as_u16(), 409, "{}", response.body);

    // Vera reads, but does not change configuration or other users, nor raise her own rights.
    let key = admin
        .create_api_key(&vera_id, "Vera's key")
        .await
        .expect("a key for Vera")
        .api_key;
    let as_vera = admin.with_api_key(Some(key));
    let _: serde_json::Value = as_vera
        .get("/api/Spaces-1/environments")
        .await
        .expect("Vera reads");
    let response = send_as(
        &as_vera,
        "POST",
        "/api/Spaces-1/environments",
        Some(&serde_json::json!({"Name": "Mine"}).to_string()),
    )
    .await;
    assert_error(
        &response,
        403,
        "vera does not have the EditConfiguration permission",
    );
    let response = send_as(&as_vera, "GET", "/api/users", None).await;
    assert_eq!(response.status.as_u16(), 403);
    let response = send_as(
        &as_vera,
        "PUT",
        "/api/users/me",
        Some(&serde_json::json!({"IsAdministrator": true}).to_string()),
    )
    .await;
    assert_error(
        &response,
        403,
        "may change their own display name, email address and password only",
    );
    let response = send_as(
        &as_vera,
        "PUT",
        &format!("/api/users/{}", server_admin_id(admin).await),
        Some(&serde_json::json!({"DisplayName": "x"}).to_string()),
    )
    .await;
    assert_eq!(response.status.as_u16(), 403, "{}", response.body);

    // She changes her own details, and her password only with the old one.
    let mut resource: serde_json::Value = as_vera.get("/api/users/me").await.expect("read herself");
    resource["DisplayName"] = "Vera V.".into();
    resource["EmailAddress"] = "vera@example.com".into();
    let updated: serde_json::Value = as_vera
        .put("/api/users/me", &resource)
        .await
        .expect("a full PUT of her own resource");
    assert_eq!(updated["DisplayName"], "Vera V.");
    let response = send_as(
        &as_vera,
        "PUT",
        "/api/users/me",
        Some(&serde_json::json!({"Password": "second password"}).to_string()),
    )
    .await;
    assert_error(&response, 400, "give your current password");
    let _: serde_json::Value = as_vera
        .put(
            "/api/users/me",
            &serde_json::json!({"Password": "second password", "OldPassword": "first password"}),
        )
        .await
        .expect("change her password");
    let response = send_as(
        admin,
        "POST",
        "/api/users/login",
        Some(&serde_json::json!({"Username": "vera", "Password": "second password"}).to_string()),
    )
    .await;
    assert_eq!(response.status.as_u16(), 200, "{}", response.body);

    // Changing her password in one browser signs her out of the others.
    let first_browser = sign_in(&server, "vera", "second password").await;
    let second_browser = sign_in(&server, "vera", "second password").await;
    let http = reqwest::Client::new();
    let changed = http
        .put(format!("{}/api/users/me", server.base_url))
        .header("Cookie", &first_browser.cookie_header)
        .header("X-Octopus-Csrf-Token", &first_browser.csrf_token)
        .json(&serde_json::json!({"Password": "third password", "OldPassword": "second password"}))
        .send()
        .await
        .expect("change the password");
    assert_eq!(changed.status(), 200);
    for (browser, expected) in [(&first_browser, 200), (&second_browser, 401)] {
        let me = http
            .get(format!("{}/api/users/me", server.base_url))
            .header("Cookie", &browser.cookie_header)
            .send()
            .await
            .expect("read herself");
        assert_eq!(me.status().as_u16(), expected);
    }

    // The last active administrator stays one, and nobody deletes themselves.
    let response = send_as(
        admin,
        "PUT",
        "/api/users/me",
        Some(&serde_json::json!({"IsAdministrator": false}).to_string()),
    )
    .await;
    assert_error(&response, 400, "last active administrator");
    let response = send_as(admin, "DELETE", "/api/users/me", None).await;
    assert_error(&response, 400, "cannot delete yourself");

    // Deactivated, her key stops working; deleted, she and her keys are gone.
    let _: serde_json::Value = admin
        .put(
            &format!("/api/users/{vera_id}"),
            &serde_json::json!({"IsActive": false}),
        )
        .await
        .expect("deactivate Vera");
    let response = send_as(&as_vera, "GET", "/api/users/me", None).await;
    assert_error(&response, 401, "disabled");
    admin
        .delete(&format!("/api/users/{vera_id}"))
        .await
        .expect("delete Vera");
    let response = send_as(&as_vera, "GET", "/api/users/me", None).await;
    assert_eq!(response.status.as_u16(), 401);
    let response = send_as(admin, "GET", &format!("/api/users/{vera_id}"), None).await;
    assert_eq!(response.status.as_u16(), 404);
    server.cleanup().await.expect("clean up");
}

/// A browser session: its cookies and CSRF token.
struct BrowserSession {
    cookie_header: String,
    csrf_token: String,
}

async fn sign_in(
    server: &cuttle_test_support::TestServer,
    username: &str,
    password: &str,
) -> BrowserSession {
    let response = reqwest::Client::new()
        .post(format!("{}/api/users/login", server.base_url))
        .json(&serde_json::json!({"Username": username, "Password": password}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), 200);
    let pairs: Vec<String> = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect();
    let csrf_token = pairs
        .iter()
        .find_map(|pair| pair.strip_prefix("Octopus-Csrf-Token="))
        .expect("a CSRF cookie")
        .to_owned();
    BrowserSession {
        cookie_header: pairs.join("; "),
        csrf_token,
    }
}

async fn server_admin_id(client: &cuttle_client::Client) -> String {
    client.current_user().await.expect("the admin").id
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_username_but_not_its_api_keys() {
    let server = server().await;
    let sign_in = |username: &str, password: &str| {
        let body = serde_json::json!({"Username": username, "Password": password}).to_string();
        let client = &server.client;
        async move { send_as(client, "POST", "/api/users/login", Some(&body)).await }
    };
    // Unknown names lock the same way, so the answers do not tell which names exist.
    for username in ["admin", "nobody"] {
        for _ in 0..5 {
            let response = sign_in(username, "guess").await;
            assert_error(&response, 400, "Invalid username or password");
        }
        assert_eq!(sign_in(username, "guess").await.status.as_u16(), 429);
    }
    // Locked: even the right password waits, and says for how long.
    assert_error(
        &sign_in("admin", TEST_ADMIN_PASSWORD).await,
        429,
        "Too many failed sign-ins for admin: try again in",
    );
    // API keys are not passwords: automation keeps working.
    let admin = server.client.current_user().await.expect("the admin");
    assert_eq!(admin.username, "admin");
    server.cleanup().await.expect("clean up");
}
