//! The `cuttle` client commands as a user runs them: the real binary as a process against a
//! real server, with its own configuration directory, checking tables, JSON and exit codes;
//! and `cuttle quickstart` from start to "ready" to SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cuttle_test_support::{TEST_API_KEY, TestServer};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::deployments::{create_project, save_process, server_step};
use super::packages::zip_with;
use super::server;

const CUTTLE: &str = env!("CARGO_BIN_EXE_cuttle");

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }
}

/// A user of the CLI: a configuration directory of their own (as `XDG_CONFIG_HOME` and
/// `HOME`), and nothing inherited from the environment the tests run in.
struct User {
    home: tempfile::TempDir,
}

impl User {
    fn new() -> User {
        User {
            home: tempfile::tempdir().expect("create a home directory"),
        }
    }

    fn config_file(&self) -> PathBuf {
        self.home
            .path()
            .join("config")
            .join("cuttle")
            .join("config.toml")
    }

    /// Runs `cuttle <arguments>` with extra environment variables.
    async fn run_with(&self, arguments: &[&str], environment: &[(&str, &str)]) -> Run {
        let mut command = tokio::process::Command::new(CUTTLE);
        command
            .args(arguments)
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("HOME", self.home.path())
            .env_remove("CUTTLE_SERVER")
            .env_remove("CUTTLE_API_KEY")
            .env_remove("CUTTLE_SPACE")
            .env_remove("CUTTLE_LOG")
            .stdin(Stdio::null());
        for (name, value) in environment {
            command.env(name, value);
        }
        let output = command.output().await.expect("run cuttle");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn run(&self, arguments: &[&str]) -> Run {
        self.run_with(arguments, &[]).await
    }

    /// `cuttle login` with the test server's admin key.
    async fn login(&self, server: &TestServer) {
        self.run(&[
            "login",
            "--server",
            &server.base_url,
            "--api-key",
            TEST_API_KEY,
        ])
        .await
        .assert_code(0);
    }
}

#[tokio::test]
async fn login_checks_the_key_and_saves_a_private_configuration() {
    let server = server().await;
    let user = User::new();

    // Nothing configured: a usage error that says what to do.
    let run = user.run(&["environment", "list"]).await;
    run.assert_code(2);
    assert!(run.stderr.contains("cuttle login"), "{}", run.stderr);

    // A wrong key is refused and nothing is saved.
    let run = user
        .run(&[
            "login",
            "--server",
            &server.base_url,
            "--api-key",
            "API-WRONGWRONGWRONGWRONGWRONG0000",
        ])
        .await;
    run.assert_code(3);
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    assert!(!user.config_file().exists());

    let run = user
        .run(&[
            "login",
            "--server",
            &server.base_url,
            "--api-key",
            TEST_API_KEY,
        ])
        .await;
    run.assert_code(0);
    assert!(run.stdout.contains("as admin"), "{}", run.stdout);
    let saved = std::fs::read_to_string(user.config_file()).expect("the configuration file");
    assert!(
        saved.contains(TEST_API_KEY) && saved.contains(&server.base_url),
        "{saved}"
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&user.config_file()), 0o600);
        assert_eq!(mode(user.config_file().parent().expect("directory")), 0o700);
    }

    let run = user
        .run(&[
            "login",
            "--server",
            &server.base_url,
            "--api-key",
            TEST_API_KEY,
            "--space",
            "default",
            "--output",
            "json",
        ])
        .await;
    run.assert_code(0);
    let answer = run.json();
    assert_eq!(answer["Username"], json!("admin"));
    assert_eq!(answer["SpaceId"], json!("Spaces-1"));

    // Later commands use the saved server and key…
    user.run(&["environment", "list"]).await.assert_code(0);
    // …and the environment overrides them.
    let run = user
        .run_with(
            &["environment", "list"],
            &[("CUTTLE_API_KEY", "API-WRONGWRONGWRONGWRONGWRONG0000")],
        )
        .await;
    run.assert_code(3);
    assert!(
        run.stderr.contains("hint: check the API key"),
        "{}",
        run.stderr
    );
    let run = user
        .run(&["environment", "list", "--server", "http://127.0.0.1:1"])
        .await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("could not reach the server"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn configuration_commands_print_tables_and_json() {
    let server = server().await;
    let user = User::new();
    user.login(&server).await;

    let run = user.run(&["space", "list"]).await;
    run.assert_code(0);
    assert_eq!(
        run.stdout.lines().next(),
        Some("Id        Name     Default  Description")
    );
    assert!(
        run.stdout.contains("Spaces-1  Default  yes"),
        "{}",
        run.stdout
    );
    let spaces = user
        .run(&["space", "list", "--output", "json"])
        .await
        .json();
    assert_eq!(spaces[0]["Name"], json!("Default"));

    let run = user
        .run(&[
            "environment",
            "create",
            "Development",
            "--description",
            "first",
        ])
        .await;
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim(),
        "Created environment Development (Environments-1)."
    );
    let created = user
        .run(&["environment", "create", "Test", "--output", "json"])
        .await
        .json();
    assert_eq!(created["Name"], json!("Test"));
    // A taken name is a conflict: exit 1 with the server's message.
    let run = user.run(&["environment", "create", "development"]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("409"), "{}", run.stderr);
    let run = user.run(&["environment", "list"]).await;
    run.assert_code(0);
    let rows: Vec<&str> = run.stdout.lines().skip(2).collect();
    assert_eq!(
        rows,
        ["Environments-1  Development  first", "Environments-2  Test"]
    );
    let environments = user
        .run(&["environment", "list", "--output", "json"])
        .await
        .json();
    assert_eq!(environments.as_array().map(Vec::len), Some(2));

    user.run(&[
        "project",
        "create",
        "Hello World",
        "--lifecycle",
        "default lifecycle",
        "--description",
        "says hello",
    ])
    .await
    .assert_code(0);
    let run = user
        .run(&["project", "create", "Other", "--group", "No Such Group"])
        .await;
    run.assert_code(4);
    assert!(
        run.stderr.contains(
            "project group 'No Such Group' was not found; there are: Default Project Group"
        ),
        "{}",
        run.stderr
    );
    let run = user.run(&["project", "list"]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains(
            "Projects-1  Hello World  Default Lifecycle  Default Project Group  says hello"
        ),
        "{}",
        run.stdout
    );
    let projects = user
        .run(&["project", "list", "--output", "json"])
        .await
        .json();
    assert_eq!(projects[0]["Slug"], json!("hello-world"));
    // By slug, by id, by name in any case.
    for key in ["hello-world", "Projects-1", "HELLO WORLD"] {
        let run = user.run(&["project", "show", key]).await;
        run.assert_code(0);
        assert!(
            run.stdout.contains("Name:         Hello World"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("Lifecycle:    Default Lifecycle"),
            "{}",
            run.stdout
        );
    }
    let project = user
        .run(&["project", "show", "hello-world", "--output", "json"])
        .await
        .json();
    assert_eq!(project["Id"], json!("Projects-1"));
    let run = user.run(&["project", "show", "Nope"]).await;
    run.assert_code(4);
    assert!(
        run.stderr
            .contains("project 'Nope' was not found; there are: Hello World"),
        "{}",
        run.stderr
    );

    let run = user.run(&["target", "list"]).await;
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("Id  Name  Environments"),
        "{}",
        run.stdout
    );
    assert_eq!(
        user.run(&["target", "list", "--output", "json"])
            .await
            .json(),
        json!([])
    );
    user.run(&["target", "list", "--environment", "Nowhere"])
        .await
        .assert_code(4);

    let notes = tempfile::NamedTempFile::new().expect("a notes file");
    std::fs::write(notes.path(), "First release.\nWith two lines.").expect("write notes");
    let notes_path = notes.path().to_str().expect("UTF-8 path");
    let run = user
        .run(&[
            "release",
            "create",
            "--project",
            "hello-world",
            "--version",
            "1.0.0",
            "--release-notes-file",
            notes_path,
        ])
        .await;
    run.assert_code(0);
    assert_eq!(
        run.stdout.trim(),
        "Created release 1.0.0 of Hello World (Releases-1)."
    );
    let release = user
        .run(&[
            "release",
            "create",
            "--project",
            "Projects-1",
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(release["Version"], json!("1.0.1"));
    let run = user
        .run(&["release", "list", "--project", "Hello World"])
        .await;
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("Version  Id          Channel  Created"),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with("1.0.1    Releases-2  Default"),
        "{}",
        run.stdout
    );
    assert!(lines[3].ends_with("First release. …"), "{}", run.stdout);
    let releases = user
        .run(&[
            "release",
            "list",
            "--project",
            "Hello World",
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(
        releases[1]["ReleaseNotes"],
        json!("First release.\nWith two lines.")
    );
    user.run(&["release", "create", "--project", "Nope"])
        .await
        .assert_code(4);
    user.run(&[
        "release",
        "create",
        "--project",
        "Hello World",
        "--package",
        "nocolon",
    ])
    .await
    .assert_code(2);

    // The space: by name or id; an unknown one is not found.
    user.run(&["project", "list", "--space", "Spaces-1"])
        .await
        .assert_code(0);
    let run = user.run(&["project", "list", "--space", "Elsewhere"]).await;
    run.assert_code(4);
    assert!(
        run.stderr.contains("space 'Elsewhere' was not found"),
        "{}",
        run.stderr
    );

    // Usage errors are clap's: exit 2.
    user.run(&["deploy", "--project", "Hello World"])
        .await
        .assert_code(2);
    user.run(&["project", "list", "--output", "yaml"])
        .await
        .assert_code(2);
}

#[tokio::test]
async fn shell_completions_and_the_cli_reference_are_generated() {
    let user = User::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = user.run(&["completions", shell]).await;
        run.assert_code(0);
        assert!(run.stdout.contains("deploy"), "{shell}: {}", run.stdout);
        assert!(run.stdout.contains("overwrite-mode"), "{shell}");
    }
    let run = user.run(&["docs", "cli"]).await;
    run.assert_code(0);
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    let committed = std::fs::read_to_string(&committed_path).expect("read docs/cli.md");
    assert!(
        committed == run.stdout,
        "docs/cli.md is stale: run `cargo run -p cuttle -- docs cli > docs/cli.md` and commit it"
    );
    assert!(committed.contains("#### `cuttle package push`"));
    assert!(committed.contains("| 5 | a task waited for"));
}

/// A file `name` in `directory` holding a zip whose single entry is `content`.
fn package_file(directory: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, zip_with(&[("content.bin", content)])).expect("write a package");
    path
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(
        std::fs::read(path).expect("read the package"),
    ))
}

/// Bytes that do not compress, so a package of them is as large as asked.
fn incompressible(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test]
async fn package_push_follows_the_overwrite_mode() {
    let server = server().await;
    let user = User::new();
    user.login(&server).await;
    let files = tempfile::tempdir().expect("a directory");
    let first_directory = files.path().join("first");
    let second_directory = files.path().join("second");
    let third_directory = files.path().join("third");
    for directory in [&first_directory, &second_directory, &third_directory] {
        std::fs::create_dir(directory).expect("create a directory");
    }
    // Several MiB, so the upload streams in many chunks.
    let first = package_file(
        &first_directory,
        "Acme.Web.1.0.0.zip",
        &incompressible(5 * 1024 * 1024, 1),
    );
    let second = package_file(&second_directory, "Acme.Web.1.0.0.zip", b"second");
    let third = package_file(&third_directory, "Acme.Web.1.0.0.zip", b"third");

    let run = user
        .run(&["package", "push", first.to_str().expect("UTF-8")])
        .await;
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("Package   Version  Size     SHA-256"),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with("Acme.Web  1.0.0    5.0 MiB  "),
        "{}",
        run.stdout
    );
    assert!(lines[2].contains(&sha256_of(&first)), "{}", run.stdout);
    // No progress bar when stderr is not a terminal.
    assert_eq!(run.stderr, "");

    // FailIfExists (the default): refused, exit 1, the server's message.
    let run = user
        .run(&["package", "push", second.to_str().expect("UTF-8")])
        .await;
    run.assert_code(1);
    assert!(
        run.stderr.contains("409") && run.stderr.contains("already exists"),
        "{}",
        run.stderr
    );

    let pushed = user
        .run(&[
            "package",
            "push",
            second.to_str().expect("UTF-8"),
            "--overwrite-mode",
            "OverwriteExisting",
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(pushed[0]["Hash"], json!(sha256_of(&second)));

    let pushed = user
        .run(&[
            "package",
            "push",
            third.to_str().expect("UTF-8"),
            "--overwrite-mode",
            "IgnoreIfExists",
            "--output",
            "json",
        ])
        .await
        .json();
    // Ignored: the stored package is still the second one.
    assert_eq!(pushed[0]["Hash"], json!(sha256_of(&second)));
    assert_eq!(pushed[0]["Version"], json!("1.0.0"));

    // Several files at once.
    let other_one = package_file(files.path(), "Acme.Api.2.0.0.zip", b"api");
    let other_two = package_file(files.path(), "Acme.Api.2.1.0.zip", b"api 2");
    let pushed = user
        .run(&[
            "package",
            "push",
            other_one.to_str().expect("UTF-8"),
            other_two.to_str().expect("UTF-8"),
            "--output",
            "json",
        ])
        .await
        .json();
    let versions: Vec<&str> = pushed
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|package| package["Version"].as_str())
        .collect();
    assert_eq!(versions, ["2.0.0", "2.1.0"]);
    let feed: Value = server
        .client
        .get("/api/Spaces-1/packages?take=10")
        .await
        .expect("list packages");
    assert_eq!(feed["TotalResults"], json!(3));

    let run = user
        .run(&[
            "package",
            "push",
            files
                .path()
                .join("missing.1.0.0.zip")
                .to_str()
                .expect("UTF-8"),
        ])
        .await;
    run.assert_code(1);
    user.run(&[
        "package",
        "push",
        first.to_str().expect("UTF-8"),
        "--overwrite-mode",
        "Sometimes",
    ])
    .await
    .assert_code(2);
}

/// The task id in `deploy --output json`'s answer.
fn queued_task_id(answer: &Value) -> String {
    answer["DeploymentServerTasks"][0]["ServerTaskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task id in {answer}"))
        .to_owned()
}

#[tokio::test]
async fn deploy_wait_streams_the_log_and_exit_codes_say_how_tasks_ended() {
    let server = server().await;
    let user = User::new();
    user.login(&server).await;
    user.run(&["environment", "create", "Development"])
        .await
        .assert_code(0);
    let greeter = create_project(&server, "Greeter").await;
    // A prompted variable, answered with `--variable`, with a default for other deployments.
    let variables_path = format!(
        "/api/Spaces-1/variables/{}",
        greeter["VariableSetId"].as_str().expect("variable set id")
    );
    let mut variables: Value = server.client.get(&variables_path).await.expect("variables");
    variables["Variables"] = json!([
        {"Name": "Greeting", "Value": "Hello", "Prompt": {"Label": "Greeting?", "Required": false}},
    ]);
    let _: Value = server
        .client
        .put(&variables_path, &variables)
        .await
        .expect("save variables");
    save_process(
        &server,
        &greeter,
        vec![server_step(
            "Greet",
            "echo \"#{Greeting} from #{Octopus.Environment.Name}\"",
            false,
        )],
    )
    .await;
    let broken = create_project(&server, "Broken").await;
    save_process(
        &server,
        &broken,
        vec![server_step("Fail", "echo about to fail; exit 3", false)],
    )
    .await;
    let sleeper = create_project(&server, "Sleeper").await;
    save_process(
        &server,
        &sleeper,
        vec![server_step("Sleep", "echo sleeping; sleep 120", false)],
    )
    .await;
    let two_steps = create_project(&server, "Two Steps").await;
    save_process(
        &server,
        &two_steps,
        vec![
            server_step("First", "echo first step ran", false),
            server_step("Second", "echo second step ran", false),
        ],
    )
    .await;
    for project in ["Greeter", "Broken", "Sleeper", "Two Steps"] {
        user.run(&[
            "release",
            "create",
            "--project",
            project,
            "--version",
            "1.0.0",
        ])
        .await
        .assert_code(0);
    }

    let run = user
        .run(&[
            "deploy",
            "--project",
            "greeter",
            "--release",
            "1.0.0",
            "--environment",
            "development",
            "--wait",
        ])
        .await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("Info      Hello from Development"),
        "{}",
        run.stdout
    );
    let last_line = run.stdout.lines().last().unwrap_or_default();
    assert!(
        last_line.starts_with("ServerTasks-")
            && last_line.contains(" Deploy Greeter release 1.0.0 to Development: Success"),
        "{}",
        run.stdout
    );

    // Not found: the release, the environment, the project.
    let run = user
        .run(&[
            "deploy",
            "--project",
            "Greeter",
            "--release",
            "9.9.9",
            "--environment",
            "Development",
        ])
        .await;
    run.assert_code(4);
    assert!(
        run.stderr
            .contains("release 9.9.9 of project 'Greeter' was not found"),
        "{}",
        run.stderr
    );
    user.run(&[
        "deploy",
        "--project",
        "Greeter",
        "--release",
        "1.0.0",
        "--environment",
        "Mars",
    ])
    .await
    .assert_code(4);
    user.run(&[
        "deploy",
        "--project",
        "Nobody",
        "--release",
        "1.0.0",
        "--environment",
        "Development",
    ])
    .await
    .assert_code(4);

    // A failing deployment: its log is printed and the exit code says it failed.
    let run = user
        .run(&[
            "deploy",
            "--project",
            "Broken",
            "--release",
            "1.0.0",
            "--environment",
            "Development",
            "--wait",
        ])
        .await;
    run.assert_code(5);
    assert!(run.stdout.contains("about to fail"), "{}", run.stdout);
    let broken_tasks = user
        .run(&["task", "list", "--project", "Broken", "--output", "json"])
        .await
        .json();
    let broken_task = broken_tasks[0]["Id"]
        .as_str()
        .expect("a task id")
        .to_owned();
    assert!(
        run.stderr.contains(&format!("{broken_task} ended Failed")),
        "{}",
        run.stderr
    );
    let run = user.run(&["task", "log", &broken_task, "--follow"]).await;
    run.assert_code(5);
    assert!(run.stdout.contains("about to fail"), "{}", run.stdout);
    let run = user
        .run(&["task", "wait", &broken_task, "--output", "json"])
        .await;
    run.assert_code(5);
    assert_eq!(run.json()[0]["State"], json!("Failed"));

    // Without --wait: queued, then waited for.
    let answer = user
        .run(&[
            "deploy",
            "--project",
            "Greeter",
            "--release",
            "1.0.0",
            "--environment",
            "Development",
            "--variable",
            "Greeting=Howdy",
            "--output",
            "json",
        ])
        .await;
    answer.assert_code(0);
    let task_id = queued_task_id(&answer.json());
    let run = user.run(&["task", "wait", &task_id]).await;
    run.assert_code(0);
    assert!(run.stdout.contains(": Success"), "{}", run.stdout);
    let run = user.run(&["task", "log", &task_id, "--follow"]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("Howdy from Development"),
        "{}",
        run.stdout
    );
    let run = user.run(&["task", "log", &task_id]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("Howdy from Development"),
        "{}",
        run.stdout
    );
    let details = user
        .run(&["task", "log", &task_id, "--output", "json"])
        .await
        .json();
    assert_eq!(details["Task"]["Id"], json!(task_id));

    let run = user.run(&["task", "show", &task_id]).await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("State:          Success"),
        "{}",
        run.stdout
    );
    let shown = user
        .run(&["task", "show", &task_id, "--output", "json"])
        .await
        .json();
    assert_eq!(shown["IsCompleted"], json!(true));
    user.run(&["task", "show", "ServerTasks-999"])
        .await
        .assert_code(4);

    let run = user.run(&["task", "list", "--project", "Broken"]).await;
    run.assert_code(0);
    let rows: Vec<&str> = run.stdout.lines().skip(2).collect();
    assert_eq!(rows.len(), 1, "{}", run.stdout);
    assert!(
        rows[0].starts_with(&format!(
            "{broken_task}  Deploy  Deploy Broken release 1.0.0 to Development  Failed"
        )),
        "{}",
        run.stdout
    );
    let failed = user
        .run(&["task", "list", "--state", "Failed", "--output", "json"])
        .await
        .json();
    assert_eq!(failed.as_array().map(Vec::len), Some(1));
    let all = user.run(&["task", "list", "--output", "json"]).await.json();
    assert!(all.as_array().map(Vec::len) >= Some(3), "{all}");

    // --skip-step: the skipped step does not run.
    let run = user
        .run(&[
            "deploy",
            "--project",
            "Two Steps",
            "--release",
            "1.0.0",
            "--environment",
            "Development",
            "--skip-step",
            "Second",
            "--wait",
            "--output",
            "json",
        ])
        .await;
    run.assert_code(0);
    // With JSON output the log is not printed: stdout is the finished tasks.
    let finished = run.json();
    assert_eq!(finished[0]["State"], json!("Success"));
    let task_id = finished[0]["Id"].as_str().expect("a task id").to_owned();
    let log = user.run(&["task", "log", &task_id]).await;
    assert!(log.stdout.contains("first step ran"), "{}", log.stdout);
    assert!(!log.stdout.contains("second step ran"), "{}", log.stdout);
    // --machine names targets, which must exist.
    let run = user
        .run(&[
            "deploy",
            "--project",
            "Two Steps",
            "--release",
            "1.0.0",
            "--environment",
            "Development",
            "--machine",
            "web-01",
        ])
        .await;
    run.assert_code(4);
    assert!(
        run.stderr.contains("target 'web-01' was not found"),
        "{}",
        run.stderr
    );

    // --guided-failure: the failed step waits for a person instead of failing the task.
    let answer = user
        .run(&[
            "deploy",
            "--project",
            "Broken",
            "--release",
            "1.0.0",
            "--environment",
            "Development",
            "--guided-failure",
            "--output",
            "json",
        ])
        .await;
    answer.assert_code(0);
    let guided_task = queued_task_id(&answer.json());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = user
            .run(&["task", "show", &guided_task, "--output", "json"])
            .await
            .json();
        if shown["HasPendingInterruptions"] == json!(true) {
            break;
        }
        assert!(
            Instant::now() < deadline && shown["IsCompleted"] == json!(false),
            "no interruption: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run = user.run(&["task", "show", &guided_task]).await;
    assert!(
        run.stdout.contains("Interruptions:  pending"),
        "{}",
        run.stdout
    );
    user.run(&["task", "cancel", &guided_task])
        .await
        .assert_code(0);

    // Cancelled: `task wait` says so with exit 5.
    let answer = user
        .run(&[
            "deploy",
            "--project",
            "Sleeper",
            "--release",
            "1.0.0",
            "--environment",
            "Development",
            "--output",
            "json",
        ])
        .await;
    answer.assert_code(0);
    let sleeping_task = queued_task_id(&answer.json());
    let run = user.run(&["task", "cancel", &sleeping_task]).await;
    run.assert_code(0);
    assert!(
        run.stdout
            .starts_with(&format!("Asked {sleeping_task} to stop")),
        "{}",
        run.stdout
    );
    let run = user
        .run(&["task", "wait", &sleeping_task, "--timeout", "60"])
        .await;
    run.assert_code(5);
    assert!(run.stdout.contains(": Canceled"), "{}", run.stdout);
}

/// Lines a child process prints, read on a thread.
fn line_reader(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

#[tokio::test]
async fn quickstart_deploys_the_sample_and_stops_on_sigterm() {
    let data = tempfile::tempdir().expect("a data directory");
    let user = User::new();
    let mut quickstart = Command::new(CUTTLE)
        .arg("quickstart")
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0"])
        .env("HOME", user.home.path())
        .env_remove("CUTTLE_BOOTSTRAP_API_KEY")
        .env_remove("CUTTLE_BOOTSTRAP_ADMIN_PASSWORD")
        .env_remove("CUTTLE_AGENT_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(user.home.path().join("quickstart.log")).expect("a log file"),
        ))
        .spawn()
        .expect("start cuttle quickstart");
    let lines = line_reader(quickstart.stdout.take().expect("stdout"));
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !printed
        .iter()
        .any(|line: &String| line.starts_with("Press Ctrl-C"))
    {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => printed.push(line),
            Err(_) => {
                let _ = quickstart.kill();
                let _ = quickstart.wait();
                let log = std::fs::read_to_string(user.home.path().join("quickstart.log"))
                    .unwrap_or_default();
                panic!(
                    "quickstart was not ready within 180 s; stdout:\n{}\nstderr:\n{log}",
                    printed.join("\n"),
                );
            }
        }
    }
    let output = printed.join("\n");
    assert!(
        output
            .contains("Cuttle quickstart is ready: Hello World 0.0.1 was deployed to Development"),
        "{output}"
    );
    assert!(
        output.contains("Hello from quickstart-agent in Development: Hello World 0.0.1"),
        "{output}"
    );
    let field = |prefix: &str| {
        printed
            .iter()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .map(|value| {
                value
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{output}"))
    };
    let api_url = field("API:");
    let server_url = api_url.trim_end_matches("/api").to_owned();
    let api_key = field("API key:");
    assert!(field("Password:").len() >= 12);
    assert!(output.contains("--environment Test --wait"), "{output}");
    let credentials = data.path().join("quickstart.toml");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&credentials)
            .expect("the saved credentials")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The next command it suggests works, on the real agent.
    let run = user
        .run(&[
            "deploy",
            "--server",
            &server_url,
            "--api-key",
            &api_key,
            "--project",
            "Hello World",
            "--release",
            "0.0.1",
            "--environment",
            "Test",
            "--wait",
        ])
        .await;
    run.assert_code(0);
    assert!(
        run.stdout.contains("Hello from quickstart-agent in Test"),
        "{}",
        run.stdout
    );
    let targets = user
        .run(&[
            "target",
            "list",
            "--server",
            &server_url,
            "--api-key",
            &api_key,
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(targets[0]["Name"], json!("quickstart-agent"));

    // SIGTERM stops it, and the server and agent with it.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(quickstart.id().to_string())
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = quickstart.try_wait().expect("wait for quickstart") {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = quickstart.kill();
            panic!("quickstart did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "quickstart exited with {exit}");
    let address = server_url.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "the server still answers after the quickstart stopped"
    );
}
