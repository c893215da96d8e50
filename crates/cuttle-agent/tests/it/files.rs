//! File transfer in both modes: bytes, streamed files, checksums checked both ways, names that
//! try to leave the store refused, and the size bound.

use bytes::Bytes;
use cuttle_agent::AgentError;
use cuttle_agent::files::sha256_hex;

use crate::helpers::{Fixture, MAX_TEST_FILE, Mode, within};

/// Bytes that are not all alike, so a misplaced chunk would show.
fn content(length: usize) -> Bytes {
    (0..length)
        .map(|index| u8::try_from(index % 251).expect("below 251"))
        .collect::<Vec<u8>>()
        .into()
}

fn status_of(error: &AgentError) -> Option<u16> {
    error.status().map(|status| status.as_u16())
}

in_both_modes!(files_go_up_and_come_down_unchanged);
async fn files_go_up_and_come_down_unchanged(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    let bytes = content(300_000);
    let uploaded = within(connection.upload("package.1.0.0.zip", bytes.clone()))
        .await
        .expect("uploaded");
    assert_eq!(uploaded.name, "package.1.0.0.zip");
    assert_eq!(uploaded.length, 300_000);
    assert_eq!(uploaded.sha256, sha256_hex(&bytes));
    let downloaded = within(connection.download("package.1.0.0.zip"))
        .await
        .expect("downloaded");
    assert_eq!(downloaded, bytes);

    // From and to local files, streamed.
    let local = fixture.home.path().join("local-source.bin");
    std::fs::write(&local, content(70_000)).expect("a local file");
    let uploaded = within(connection.upload_file("from-disk.bin", &local))
        .await
        .expect("uploaded from disk");
    assert_eq!(uploaded.length, 70_000);
    let destination = fixture.home.path().join("local-copy.bin");
    let downloaded = within(connection.download_to("from-disk.bin", &destination))
        .await
        .expect("downloaded to disk");
    assert_eq!(downloaded.length, 70_000);
    assert_eq!(downloaded.sha256, uploaded.sha256);
    assert_eq!(
        std::fs::read(&destination).expect("the copy"),
        std::fs::read(&local).expect("the original")
    );

    // A new upload replaces the file.
    within(connection.upload("package.1.0.0.zip", Bytes::from_static(b"v2")))
        .await
        .expect("replaced");
    assert_eq!(
        within(connection.download("package.1.0.0.zip"))
            .await
            .expect("downloaded"),
        Bytes::from_static(b"v2")
    );
}

in_both_modes!(a_file_that_does_not_match_its_checksum_is_refused);
async fn a_file_that_does_not_match_its_checksum_is_refused(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    let wrong_sha = sha256_hex(b"something else");
    let chunks = futures::stream::iter([
        Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
        Ok(Bytes::from_static(b"world")),
    ]);
    let error = within(connection.upload_stream("greeting.txt", &wrong_sha, None, chunks))
        .await
        .expect_err("the checksum does not match");
    assert_eq!(status_of(&error), Some(400), "{error}");
    assert!(
        error.to_string().contains("does not match its checksum"),
        "{error}"
    );
    let error = within(connection.download("greeting.txt"))
        .await
        .expect_err("nothing was stored");
    assert_eq!(status_of(&error), Some(404), "{error}");
    let leftovers: Vec<_> = std::fs::read_dir(fixture.service.files().directory())
        .expect("the store")
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"x"))]);
    let error = within(connection.upload_stream("x.txt", "not-a-sha", None, chunks))
        .await
        .expect_err("not a checksum");
    assert_eq!(status_of(&error), Some(400), "{error}");
}

in_both_modes!(names_that_leave_the_store_are_refused);
async fn names_that_leave_the_store_are_refused(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    std::fs::write(fixture.home.path().join("secret.txt"), "secret").expect("a file");
    for name in [
        "../secret.txt",
        "..",
        ".",
        "a/b",
        ".hidden",
        "a\\b",
        "../../etc/passwd",
        "",
    ] {
        let error = within(connection.upload(name, Bytes::from_static(b"x")))
            .await
            .expect_err("refused");
        assert!(
            matches!(status_of(&error), Some(400 | 404 | 405)),
            "upload {name:?}: {error}"
        );
        let error = within(connection.download(name))
            .await
            .expect_err("refused");
        assert!(
            matches!(status_of(&error), Some(400 | 404 | 405)),
            "download {name:?}: {error}"
        );
    }
    // The agent's own check, not only routing, refuses them.
    let error = within(connection.download("../secret.txt"))
        .await
        .expect_err("refused");
    assert_eq!(status_of(&error), Some(400), "{error}");
    assert!(error.to_string().contains("invalid file name"), "{error}");
    assert!(!fixture.home.path().join("x").exists());
}

in_both_modes!(files_over_the_bound_are_refused);
async fn files_over_the_bound_are_refused(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    let too_large = usize::try_from(MAX_TEST_FILE).expect("small") + 1;
    let error = within(connection.upload("big.bin", content(too_large)))
        .await
        .expect_err("too large");
    assert_eq!(status_of(&error), Some(413), "{error}");
    // Without a declared length, the agent stops reading at the bound.
    let bytes = content(too_large);
    let sha = sha256_hex(&bytes);
    let chunks = futures::stream::iter(
        bytes
            .chunks(64 * 1024)
            .map(|chunk| Ok::<_, std::io::Error>(Bytes::copy_from_slice(chunk)))
            .collect::<Vec<_>>(),
    );
    let error = within(connection.upload_stream("big.bin", &sha, None, chunks))
        .await
        .expect_err("too large");
    assert_eq!(status_of(&error), Some(413), "{error}");
    let at_bound = usize::try_from(MAX_TEST_FILE).expect("small");
    within(connection.upload("big.bin", content(at_bound)))
        .await
        .expect("a file at the bound is accepted");
}

in_both_modes!(artifacts_a_script_collected_can_be_downloaded);
async fn artifacts_a_script_collected_can_be_downloaded(mode: Mode) {
    let fixture = Fixture::start(mode).await;
    let connection = &fixture.connection;
    let request = cuttle_exec::ScriptRequest::new(
        "ticket-artifact",
        cuttle_exec::ScriptSyntax::Bash,
        "printf 'the report' > report.txt\nnew_octopusartifact report.txt \"Report 1.txt\"",
    );
    within(connection.start_script(&request))
        .await
        .expect("started");
    let (status, _) = crate::helpers::wait_until_finished(connection, "ticket-artifact").await;
    assert_eq!(
        status.state,
        cuttle_exec::ScriptState::Complete { exit_code: 0 }
    );
    assert_eq!(status.artifacts.len(), 1, "{status:?}");
    assert_eq!(status.artifacts[0].name, "Report 1.txt");
    let content = within(connection.download_artifact("ticket-artifact", "Report 1.txt"))
        .await
        .expect("downloaded");
    assert_eq!(content, Bytes::from_static(b"the report"));
    let destination = fixture.home.path().join("report-copy.txt");
    let downloaded =
        within(connection.download_artifact_to("ticket-artifact", "Report 1.txt", &destination))
            .await
            .expect("downloaded to disk");
    assert_eq!(downloaded.sha256, sha256_hex(b"the report"));
    assert_eq!(
        std::fs::read(&destination).expect("the copy"),
        b"the report"
    );
    // Only declared artifacts, of a known ticket.
    for (ticket, name) in [
        ("ticket-artifact", "report.txt"),
        ("ticket-artifact", "../../agent.json"),
        ("no-such-ticket", "Report 1.txt"),
    ] {
        let error = within(connection.download_artifact(ticket, name))
            .await
            .expect_err("not an artifact");
        assert_eq!(status_of(&error), Some(404), "{ticket} {name}: {error}");
    }
}
