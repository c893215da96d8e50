//! The built-in feed end to end: uploads as the Octopus client sends them (multipart
//! `fileToUpload`), overwrite modes, lists, versions, downloads, deletes, refusals that leave
//! nothing on disk, build information and authentication.

use std::io::Write;
use std::path::{Path, PathBuf};

use cuttle_test_support::{Backend, ServerOptions, TEST_API_KEY, TestServer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::postgres::postgres_configured;
use super::{assert_error, send, server, server_with};

const BOUNDARY: &str = "--------------------------65ad097ddb29341da18da158";

/// A multipart/form-data body with the file in `fileToUpload` and any other text fields.
fn multipart_body(file_name: &str, content: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"fileToUpload\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Value,
    pub(super) text: String,
}

async fn post_multipart(
    server: &TestServer,
    path: &str,
    body: Vec<u8>,
    api_key: Option<&str>,
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.base_url))
        .header(
            reqwest::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    if let Some(api_key) = api_key {
        request = request.header("X-Octopus-ApiKey", api_key);
    }
    let response = request.send().await.expect("send the upload");
    let status = response.status().as_u16();
    let text = response.text().await.expect("read the answer");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, body, text }
}

pub(super) async fn upload(
    server: &TestServer,
    file_name: &str,
    content: &[u8],
    query: &str,
) -> Answer {
    post_multipart(
        server,
        &format!("/api/Spaces-1/packages/raw{query}"),
        multipart_body(file_name, content, &[]),
        Some(TEST_API_KEY),
    )
    .await
}

#[track_caller]
pub(super) fn assert_uploaded(answer: &Answer) -> &Value {
    assert_eq!(answer.status, 200, "upload failed: {}", answer.text);
    &answer.body
}

pub(super) async fn get_json(server: &TestServer, path: &str) -> Value {
    let response = send(server, "GET", path, None).await;
    assert_eq!(
        response.status.as_u16(),
        200,
        "GET {path}: {}",
        response.body
    );
    serde_json::from_str(&response.body).expect("JSON answer")
}

pub(super) fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in entries {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("start a zip entry");
        writer.write_all(content).expect("write a zip entry");
    }
    writer.finish().expect("finish the zip").into_inner()
}

fn tar_gz_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (name, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, *content)
            .expect("append a tar entry");
    }
    builder
        .into_inner()
        .and_then(|encoder| encoder.finish())
        .expect("finish the tar.gz")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every regular file under the server's blob directory (committed blobs and leftovers).
pub(super) fn blob_files(server: &TestServer) -> Vec<PathBuf> {
    fn walk(directory: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(directory) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("read a directory entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&server.data_directory().join("blobs"), &mut files);
    files.sort();
    files
}

fn ids_of(collection: &Value) -> Vec<String> {
    collection["Items"]
        .as_array()
        .expect("Items")
        .iter()
        .map(|item| item["Id"].as_str().expect("Id").to_owned())
        .collect()
}

#[tokio::test]
async fn uploaded_packages_are_listed_downloaded_and_deleted() {
    let server = server().await;
    let web_zip = zip_with(&[("index.html", b"<h1>1.0.0</h1>")]);
    let answer = upload(&server, "Acme.Web.1.0.0.zip", &web_zip, "").await;
    let package = assert_uploaded(&answer);
    assert_eq!(package["Id"], "packages-Acme.Web.1.0.0");
    assert_eq!(package["PackageId"], "Acme.Web");
    assert_eq!(package["Version"], "1.0.0");
    assert_eq!(package["FeedId"], "feeds-builtin");
    assert_eq!(package["FileExtension"], ".zip");
    assert_eq!(package["PackageSizeBytes"], web_zip.len());
    assert_eq!(package["Hash"], sha256_hex(&web_zip).as_str());
    assert!(
        package["Published"]
            .as_str()
            .is_some_and(|text| text.ends_with('Z'))
    );

    let newer_zip = zip_with(&[("index.html", b"<h1>1.10.0</h1>")]);
    assert_uploaded(&upload(&server, "Acme.Web.1.10.0.zip", &newer_zip, "").await);
    let beta_zip = zip_with(&[("index.html", b"<h1>beta</h1>")]);
    assert_uploaded(&upload(&server, "Acme.Web.1.10.0-beta.2.zip", &beta_zip, "").await);
    let worker_tgz = tar_gz_with(&[("run.sh", b"echo hi\n")]);
    let worker = upload(&server, "acme-worker.2.0.0.tgz", &worker_tgz, "").await;
    assert_eq!(assert_uploaded(&worker)["FileExtension"], ".tar.gz");
    let nupkg = zip_with(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("Tools.nuspec", b"<package/>"),
        ("tools/tool.ps1", b"Write-Host hi"),
    ]);
    // The default space's route, as older clients use it.
    let tools = post_multipart(
        &server,
        "/api/packages/raw",
        multipart_body("Tools.3.1.0.nupkg", &nupkg, &[]),
        Some(TEST_API_KEY),
    )
    .await;
    assert_eq!(assert_uploaded(&tools)["Id"], "packages-Tools.3.1.0");

    let all = get_json(&server, "/api/Spaces-1/packages").await;
    assert_eq!(all["TotalResults"], 5);
    assert_eq!(
        ids_of(&all),
        [
            "packages-acme-worker.2.0.0",
            "packages-Acme.Web.1.10.0",
            "packages-Acme.Web.1.10.0-beta.2",
            "packages-Acme.Web.1.0.0",
            "packages-Tools.3.1.0",
        ]
    );
    let filtered = get_json(&server, "/api/Spaces-1/packages?filter=ACME.w&take=2").await;
    assert_eq!(filtered["TotalResults"], 3);
    assert_eq!(
        ids_of(&filtered),
        [
            "packages-Acme.Web.1.10.0",
            "packages-Acme.Web.1.10.0-beta.2"
        ]
    );
    let latest = get_json(&server, "/api/Spaces-1/packages?latest=true").await;
    assert_eq!(
        ids_of(&latest),
        [
            "packages-acme-worker.2.0.0",
            "packages-Acme.Web.1.10.0",
            "packages-Tools.3.1.0"
        ]
    );
    let exact = get_json(
        &server,
        "/api/Spaces-1/packages?nuGetPackageId=acme.web&skip=1",
    )
    .await;
    assert_eq!(exact["TotalResults"], 3);
    assert_eq!(
        ids_of(&exact),
        ["packages-Acme.Web.1.10.0-beta.2", "packages-Acme.Web.1.0.0"]
    );

    let versions = get_json(
        &server,
        "/api/Spaces-1/feeds/feeds-builtin/packages/versions?packageId=Acme.Web&take=2",
    )
    .await;
    assert_eq!(versions["TotalResults"], 3);
    let first_version = &versions["Items"][0];
    assert_eq!(first_version["Version"], "1.10.0");
    assert_eq!(first_version["PackageId"], "Acme.Web");
    assert_eq!(first_version["FeedId"], "feeds-builtin");
    assert_eq!(first_version["SizeBytes"], newer_zip.len());
    assert_eq!(versions["Items"][1]["Version"], "1.10.0-beta.2");

    let feeds = get_json(&server, "/api/Spaces-1/feeds").await;
    assert_eq!(ids_of(&feeds), ["feeds-builtin"]);
    let feed = get_json(&server, "/api/Spaces-1/feeds/feeds-builtin").await;
    assert_eq!(feed["FeedType"], "BuiltIn");
    assert_error(
        &send(&server, "GET", "/api/Spaces-1/feeds/feeds-1001", None).await,
        404,
        "feeds-1001",
    );

    // Ids are case-insensitive, as Octopus's are.
    let read = get_json(&server, "/api/Spaces-1/packages/packages-acme.web.1.0.0").await;
    assert_eq!(read["Id"], "packages-Acme.Web.1.0.0");
    let download = reqwest::Client::new()
        .get(format!(
            "{}/api/Spaces-1/packages/packages-Acme.Web.1.0.0/raw",
            server.base_url
        ))
        .header("X-Octopus-ApiKey", TEST_API_KEY)
        .send()
        .await
        .expect("download");
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(
        download.headers()[reqwest::header::CONTENT_LENGTH],
        web_zip.len().to_string().as_str()
    );
    assert_eq!(
        download.headers()[reqwest::header::CONTENT_DISPOSITION],
        "attachment; filename=\"Acme.Web.1.0.0.zip\""
    );
    assert_eq!(
        download.bytes().await.expect("download body").as_ref(),
        web_zip
    );

    assert_eq!(blob_files(&server).len(), 5);
    let deleted = send(
        &server,
        "DELETE",
        "/api/Spaces-1/packages/packages-Acme.Web.1.0.0",
        None,
    )
    .await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.body);
    assert_error(
        &send(
            &server,
            "GET",
            "/api/Spaces-1/packages/packages-Acme.Web.1.0.0",
            None,
        )
        .await,
        404,
        "packages-Acme.Web.1.0.0",
    );
    assert_eq!(blob_files(&server).len(), 4);
}

#[tokio::test]
async fn a_blob_shared_by_two_packages_outlives_the_first_delete() {
    let server = server().await;
    let content = zip_with(&[("same.txt", b"same bytes")]);
    assert_uploaded(&upload(&server, "first.1.0.0.zip", &content, "").await);
    assert_uploaded(&upload(&server, "second.1.0.0.zip", &content, "").await);
    assert_eq!(blob_files(&server).len(), 1);
    send(
        &server,
        "DELETE",
        "/api/Spaces-1/packages/packages-first.1.0.0",
        None,
    )
    .await;
    assert_eq!(blob_files(&server).len(), 1);
    let download = reqwest::Client::new()
        .get(format!(
            "{}/api/Spaces-1/packages/packages-second.1.0.0/raw",
            server.base_url
        ))
        .header("X-Octopus-ApiKey", TEST_API_KEY)
        .send()
        .await
        .expect("download");
    assert_eq!(download.bytes().await.expect("body").as_ref(), content);
    send(
        &server,
        "DELETE",
        "/api/Spaces-1/packages/packages-second.1.0.0",
        None,
    )
    .await;
    assert_eq!(blob_files(&server), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn deleting_a_space_removes_its_packages_and_files_no_other_space_shares() {
    let server = server().await;
    let space = server
        .client
        .create(
            None,
            &cuttle_domain::Space {
                name: "Team B".to_owned(),
                ..cuttle_domain::Space::default()
            },
        )
        .await
        .expect("create a space");
    let shared = zip_with(&[("shared.txt", b"in both spaces")]);
    let own = zip_with(&[("own.txt", b"only in Team B")]);
    let space_upload = |file_name: &'static str, content: Vec<u8>| {
        let path = format!("/api/{}/packages/raw", space.id);
        let server = &server;
        async move {
            post_multipart(
                server,
                &path,
                multipart_body(file_name, &content, &[]),
                Some(TEST_API_KEY),
            )
            .await
        }
    };
    assert_uploaded(&space_upload("shared.1.0.0.zip", shared.clone()).await);
    assert_uploaded(&space_upload("own.1.0.0.zip", own.clone()).await);
    // The same id and version in another space is another package.
    assert_uploaded(&upload(&server, "shared.1.0.0.zip", &shared, "").await);
    assert_eq!(blob_files(&server).len(), 2);

    let mut stopped = space.clone();
    stopped.task_queue_stopped = true;
    server
        .client
        .modify(None, &stopped)
        .await
        .expect("stop the task queue");
    server
        .client
        .delete_resource::<cuttle_domain::Space>(None, &space.id)
        .await
        .expect("delete the space");
    let blobs = blob_files(&server);
    assert_eq!(blobs.len(), 1);
    assert_eq!(std::fs::read(&blobs[0]).expect("read the blob"), shared);
    let listed = get_json(&server, "/api/Spaces-1/packages").await;
    assert_eq!(ids_of(&listed), ["packages-shared.1.0.0"]);
}

#[tokio::test]
async fn duplicates_follow_the_overwrite_mode() {
    let server = server().await;
    let original = zip_with(&[("version.txt", b"original")]);
    let replacement = zip_with(&[("version.txt", b"replacement")]);
    assert_uploaded(&upload(&server, "app.1.0.0.zip", &original, "").await);

    let duplicate = upload(&server, "app.1.0.0.zip", &replacement, "").await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert_eq!(
        duplicate.body["ErrorMessage"],
        "A package with the same ID and version already exists. To proceed anyway, specify an overwriteMode of OverwriteExisting or IgnoreIfExists."
    );
    // Ids compare ignoring case, so a differently spelled name is the same package.
    let differently_spelled = upload(
        &server,
        "APP.1.0.0.zip",
        &replacement,
        "?overwriteMode=FailIfExists",
    )
    .await;
    assert_eq!(
        differently_spelled.status, 409,
        "{}",
        differently_spelled.text
    );

    let ignored = upload(
        &server,
        "app.1.0.0.zip",
        &replacement,
        "?overwriteMode=IgnoreIfExists",
    )
    .await;
    assert_eq!(
        assert_uploaded(&ignored)["Hash"],
        sha256_hex(&original).as_str()
    );
    assert_eq!(blob_files(&server).len(), 1);

    let overwritten = upload(
        &server,
        "app.1.0.0.zip",
        &replacement,
        "?overwriteMode=OverwriteExisting",
    )
    .await;
    assert_eq!(
        assert_uploaded(&overwritten)["Hash"],
        sha256_hex(&replacement).as_str()
    );
    // The replaced file's blob went with it.
    let blobs = blob_files(&server);
    assert_eq!(blobs.len(), 1);
    assert_eq!(
        std::fs::read(&blobs[0]).expect("read the blob"),
        replacement
    );

    // The mode may also come as a form field, and older clients send `replace=true`.
    let as_field = post_multipart(
        &server,
        "/api/Spaces-1/packages/raw",
        multipart_body(
            "app.1.0.0.zip",
            &original,
            &[("overwriteMode", "OverwriteExisting")],
        ),
        Some(TEST_API_KEY),
    )
    .await;
    assert_eq!(
        assert_uploaded(&as_field)["Hash"],
        sha256_hex(&original).as_str()
    );
    let legacy = upload(&server, "app.1.0.0.zip", &replacement, "?replace=true").await;
    assert_eq!(
        assert_uploaded(&legacy)["Hash"],
        sha256_hex(&replacement).as_str()
    );

    let unknown_mode = upload(
        &server,
        "app.1.0.0.zip",
        &replacement,
        "?overwriteMode=Sometimes",
    )
    .await;
    assert_eq!(unknown_mode.status, 400, "{}", unknown_mode.text);
}

#[tokio::test]
async fn bad_packages_are_refused_with_clear_messages_and_leave_nothing() {
    let server = server().await;
    let corrupt = upload(
        &server,
        "broken.1.0.0.zip",
        b"this is not a zip file at all",
        "",
    )
    .await;
    assert_eq!(corrupt.status, 400, "{}", corrupt.text);
    let message = corrupt.body["ErrorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("broken.1.0.0.zip"), "{message}");
    assert!(message.contains("not a valid zip archive"), "{message}");
    assert!(
        !message.contains("/tmp/"),
        "the temporary path leaked: {message}"
    );

    let mut traversal = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let evil_name = b"../../escaped.txt";
    header.as_old_mut().name[..evil_name.len()].copy_from_slice(evil_name);
    header.set_size(4);
    header.set_mode(0o644);
    header.set_cksum();
    traversal
        .append(&header, b"evil".as_slice())
        .expect("append");
    let traversal = traversal.into_inner().expect("finish the tar");
    let refused = upload(&server, "evil.1.0.0.tar", &traversal, "").await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    let message = refused.body["ErrorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("'..'"), "{message}");

    let unnamed = upload(&server, "no-version.zip", &zip_with(&[("a", b"a")]), "").await;
    assert_eq!(unnamed.status, 400, "{}", unnamed.text);
    assert!(unnamed.text.contains("has no version"), "{}", unnamed.text);
    let unknown_type = upload(&server, "app.1.0.0.rar", b"rar!", "").await;
    assert_eq!(unknown_type.status, 400, "{}", unknown_type.text);
    assert!(
        unknown_type.text.contains("not a supported package file"),
        "{}",
        unknown_type.text
    );

    let without_file = post_multipart(
        &server,
        "/api/Spaces-1/packages/raw",
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n").into_bytes(),
        Some(TEST_API_KEY),
    )
    .await;
    assert_eq!(without_file.status, 400, "{}", without_file.text);
    assert!(
        without_file.text.contains("fileToUpload"),
        "{}",
        without_file.text
    );

    let listed = get_json(&server, "/api/Spaces-1/packages").await;
    assert_eq!(listed["TotalResults"], 0);
    assert_eq!(blob_files(&server), Vec::<PathBuf>::new());
    assert!(!server.data_directory().join("escaped.txt").exists());
}

#[tokio::test]
async fn packages_over_the_size_limit_are_refused_and_removed() {
    let server = server_with(ServerOptions {
        arguments: vec!["--max-package-size".to_owned(), "65536".to_owned()],
        ..ServerOptions::default()
    })
    .await;
    let fits = zip_with(&[("small.txt", b"small")]);
    assert_uploaded(&upload(&server, "small.1.0.0.zip", &fits, "").await);

    // Random-ish bytes, stored: well over the limit, well under what the body limit allows.
    let large: Vec<u8> = (0..200_000_u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let too_large = upload(&server, "large.1.0.0.zip", &large, "").await;
    assert_eq!(too_large.status, 413, "{}", too_large.text);
    let message = too_large.body["ErrorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("65536"), "{message}");

    let listed = get_json(&server, "/api/Spaces-1/packages").await;
    assert_eq!(ids_of(&listed), ["packages-small.1.0.0"]);
    // Only the small package's blob: the large upload's temporary file is gone.
    assert_eq!(blob_files(&server).len(), 1);
}

#[tokio::test]
async fn build_information_is_stored_shown_and_duplicates_conflict() {
    let server = server().await;
    assert_uploaded(
        &upload(
            &server,
            "hello-web.1.0.0.zip",
            &zip_with(&[("a", b"a")]),
            "",
        )
        .await,
    );
    let body = r#"{"spaceId":"Spaces-1","spaceName":"Default","PackageId":"hello-web","Version":"1.0.0",
        "OctopusBuildInformation":{"Branch":"main","BuildEnvironment":"GitHub Actions","BuildNumber":"42",
        "BuildUrl":"https://github.com/o/r/actions/runs/42","Commits":[{"Id":"abc","Comment":"msg"}],
        "VcsCommitNumber":"abc","VcsRoot":"https://github.com/o/r","VcsType":"Git"}}"#;
    let created = send(
        &server,
        "POST",
        "/api/Spaces-1/build-information",
        Some(body),
    )
    .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);
    let created: Value = serde_json::from_str(&created.body).expect("JSON");
    assert_eq!(created["PackageId"], "hello-web");
    let self_link = created["Links"]["Self"]
        .as_str()
        .expect("Self link")
        .to_owned();
    assert_eq!(get_json(&server, &self_link).await["Version"], "1.0.0");

    assert_error(
        &send(
            &server,
            "POST",
            "/api/Spaces-1/build-information?overwriteMode=FailIfExists",
            Some(body),
        )
        .await,
        409,
        "Metadata for the specified Package ID and version already exists.",
    );
    let replaced = body.replace("\"42\"", "\"43\"");
    let overwritten = send(
        &server,
        "POST",
        "/api/Spaces-1/build-information?overwriteMode=OverwriteExisting",
        Some(&replaced),
    )
    .await;
    assert_eq!(overwritten.status.as_u16(), 200, "{}", overwritten.body);

    let package = get_json(&server, "/api/Spaces-1/packages/packages-hello-web.1.0.0").await;
    assert_eq!(
        package["PackageVersionBuildInformation"]["BuildNumber"],
        "43"
    );
    assert_error(
        &send(
            &server,
            "POST",
            "/api/Spaces-1/build-information",
            Some(r#"{"Version":"1.0.0"}"#),
        )
        .await,
        400,
        "PackageId is required",
    );
}

#[tokio::test]
async fn package_routes_need_an_api_key() {
    let server = server().await;
    let content = zip_with(&[("a", b"a")]);
    let anonymous = post_multipart(
        &server,
        "/api/Spaces-1/packages/raw",
        multipart_body("app.1.0.0.zip", &content, &[]),
        None,
    )
    .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    let wrong_key = post_multipart(
        &server,
        "/api/Spaces-1/packages/raw",
        multipart_body("app.1.0.0.zip", &content, &[]),
        Some("API-WRONGKEY00000000000000000000000001"),
    )
    .await;
    assert_eq!(wrong_key.status, 401, "{}", wrong_key.text);
    assert_uploaded(&upload(&server, "app.1.0.0.zip", &content, "").await);
    for path in [
        "/api/Spaces-1/packages",
        "/api/Spaces-1/packages/packages-app.1.0.0",
        "/api/Spaces-1/packages/packages-app.1.0.0/raw",
        "/api/Spaces-1/feeds",
    ] {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", server.base_url))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 401, "{path}");
    }
    assert_eq!(blob_files(&server).len(), 1);
}

#[tokio::test]
async fn the_built_in_feed_works_on_postgresql() {
    if !postgres_configured() {
        return;
    }
    let server = server_with(ServerOptions {
        backend: Backend::Postgres,
        ..ServerOptions::default()
    })
    .await;
    let content = zip_with(&[("index.html", b"<h1>pg</h1>")]);
    assert_uploaded(&upload(&server, "Acme.Web.1.0.0.zip", &content, "").await);
    assert_uploaded(&upload(&server, "Acme.Web.2.0.0.zip", &content, "").await);
    let duplicate = upload(&server, "acme.web.1.0.0.zip", &content, "").await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    let latest = get_json(&server, "/api/Spaces-1/packages?latest=true").await;
    assert_eq!(ids_of(&latest), ["packages-Acme.Web.2.0.0"]);
    let deleted = send(
        &server,
        "DELETE",
        "/api/Spaces-1/packages/packages-Acme.Web.2.0.0",
        None,
    )
    .await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.body);
    // The other version still holds the shared blob.
    assert_eq!(blob_files(&server).len(), 1);
    let all = get_json(&server, "/api/Spaces-1/packages").await;
    assert_eq!(ids_of(&all), ["packages-Acme.Web.1.0.0"]);
}
