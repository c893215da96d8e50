//! Sensitive values never reach a log line, and never sit on disk in the clear.

use cuttle_exec::{LogLevel, ScriptSyntax, ScriptVariable};

use crate::support::{
    assert_exit, file_contains, files_under, fixture, request, run, texts, texts_at, wait_for_line,
};

#[tokio::test]
async fn sensitive_values_are_masked_in_every_line() {
    let fixture = fixture();
    let body = r###"
echo "password=$(get_octopusvariable Password)"
echo "twice: $(get_octopusvariable Password)$(get_octopusvariable Password)"
echo "on stderr: $(get_octopusvariable Password)" >&2
echo "short=$(get_octopusvariable Short)"
echo "longest=$(get_octopusvariable Longer)"
echo "plain=$(get_octopusvariable Plain)"
echo "before runtime: runtime-secret-42"
set_octopusvariable "Runtime" "runtime-secret-42" -sensitive
echo "after runtime: runtime-secret-42"
echo "##octopus[mask value='$(encode_servicemessagevalue "masked-by-message")']"
echo "masked-by-message appears"
update_progress 10 "progress mentions $(get_octopusvariable Password)"
fail_step "failed with $(get_octopusvariable Password)"
"###;
    let mut script = request("masking", ScriptSyntax::Bash, body);
    script.variables = vec![
        ScriptVariable::sensitive("Password", "Sup3r-Secret"),
        ScriptVariable::sensitive("Short", "abc"),
        ScriptVariable::sensitive("Longer", "Sup3r-Secret-and-more"),
        ScriptVariable::new("Plain", "Sup3r-plain"),
    ];
    let status = run(&fixture.executor, script).await;
    assert_exit(&status, 1);
    let stdout: Vec<&str> = texts_at(&status, LogLevel::Info);
    assert_eq!(
        stdout,
        [
            "password=********",
            "twice: ****************",
            "short=abc",
            "longest=********",
            "plain=Sup3r-plain",
            // A secret only known once the script declares it cannot be masked before.
            "before runtime: runtime-secret-42",
            "after runtime: ********",
            "******** appears",
        ]
    );
    assert_eq!(texts_at(&status, LogLevel::Error), ["on stderr: ********"]);
    assert_eq!(
        status
            .progress
            .as_ref()
            .map(|progress| progress.message.as_str()),
        Some("progress mentions ********")
    );
    assert_eq!(
        status.failed_step_message.as_deref(),
        Some("failed with ********")
    );
    // The caller still gets the real value of a sensitive output variable.
    assert_eq!(status.output_variables[0].value, "runtime-secret-42");

    let log = fixture.root.path().join("tickets/masking/log.jsonl");
    assert!(!file_contains(&log, "Sup3r-Secret"));
    assert!(file_contains(&log, "Sup3r-plain"));
}

#[tokio::test]
async fn no_file_holds_a_variable_in_the_clear() {
    let fixture = fixture();
    let mut script = request(
        "at-rest",
        ScriptSyntax::Python,
        "import time\nprint('value has %d characters' % len(get_octopusvariable('Secret')))\nprint('ready', flush=True)\ntime.sleep(30)",
    );
    script.variables = vec![
        ScriptVariable::sensitive("Secret", "hunter2-correct-horse"),
        ScriptVariable::new("Plain.Name", "visible-but-not-on-disk"),
    ];
    fixture.executor.start(script).await.expect("start");
    wait_for_line(&fixture.executor, "at-rest", "ready").await;

    let ticket_directory = fixture.root.path().join("tickets/at-rest");
    let variables_file = ticket_directory.join("variables.enc");
    let bytes = std::fs::read(&variables_file).expect("the variables file exists");
    assert!(bytes.len() > 32, "the file holds the encrypted variables");
    for file in files_under(fixture.root.path()) {
        for value in [
            "hunter2-correct-horse",
            "visible-but-not-on-disk",
            "Plain.Name",
        ] {
            assert!(
                !file_contains(&file, value),
                "{} holds {value:?} in the clear",
                file.display()
            );
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&variables_file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the variables file is private");
    }
    fixture.executor.cancel("at-rest").await.expect("cancel");
    fixture.executor.wait("at-rest").await.expect("wait");
    let status = fixture.executor.status("at-rest", 0).await.expect("status");
    assert_eq!(texts(&status)[0], "value has 21 characters");
}
