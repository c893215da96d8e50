//! Service messages written by real scripts, by hand (no helpers), base64 and plain.

use cuttle_exec::service_message::encode_value;
use cuttle_exec::{Artifact, LogLevel, Progress, ScriptSyntax};

use crate::support::{assert_exit, fixture, request, run, texts};

fn b64(text: &str) -> String {
    encode_value(text)
}

#[tokio::test]
async fn level_switches_change_the_level_of_following_lines() {
    let fixture = fixture();
    let body = "\
echo info-1
echo '##octopus[stdout-verbose]'
echo verbose-1
echo '##octopus[stdout-warning]'
echo warning-1
echo '##octopus[stdout-error]'
echo error-1
echo '##octopus[stdout-highlight]'
echo highlight-1
echo '##octopus[stdout-wait]'
echo wait-1
echo '##octopus[stdout-ignore]'
echo ignored-1
echo '##octopus[stdout-default]'
echo info-2
echo stderr-1 >&2
echo '##octopus[stderr-progress]' >&2
echo stderr-progress-1 >&2
echo '##octopus[stderr-ignore]' >&2
echo stderr-ignored >&2
echo '##octopus[stderr-default]' >&2
echo stderr-2 >&2
";
    let status = run(
        &fixture.executor,
        request("levels", ScriptSyntax::Bash, body),
    )
    .await;
    assert_exit(&status, 0);
    let mut seen: Vec<(LogLevel, &str)> = status
        .lines
        .iter()
        .map(|line| (line.level, line.text.as_str()))
        .collect();
    // stdout and stderr are separate pipes, so their relative order is not guaranteed: a
    // switch goes to the stream it governs, and each stream's lines are compared in order.
    let stderr_texts = ["stderr-1", "stderr-progress-1", "stderr-2"];
    let stderr: Vec<(LogLevel, &str)> = seen
        .iter()
        .filter(|(_, text)| stderr_texts.contains(text))
        .copied()
        .collect();
    seen.retain(|(_, text)| !stderr_texts.contains(text));
    assert_eq!(
        seen,
        [
            (LogLevel::Info, "info-1"),
            (LogLevel::Verbose, "verbose-1"),
            (LogLevel::Warning, "warning-1"),
            (LogLevel::Error, "error-1"),
            (LogLevel::Highlight, "highlight-1"),
            (LogLevel::Wait, "wait-1"),
            (LogLevel::Info, "info-2"),
        ]
    );
    assert_eq!(
        stderr,
        [
            (LogLevel::Error, "stderr-1"),
            (LogLevel::Verbose, "stderr-progress-1"),
            (LogLevel::Error, "stderr-2"),
        ]
    );
    assert!(!texts(&status).iter().any(|text| text.contains("##octopus")));
}

#[tokio::test]
async fn each_reporting_message_is_understood() {
    let fixture = fixture();
    let body = format!(
        "\
echo \"##octopus[setVariable name='{name}' value='{value}']\"
echo \"##octopus[setVariable name='Plain' value='plain value' sensitive='False']\"
echo \"##octopus[setVariable name='{name}' value='{replaced}']\"
echo \"##octopus[createArtifact path='{path}' name='{artifact}' length='{length}']\"
echo \"##octopus[createArtifact path='relative/out.log']\"
echo \"##octopus[progress percentage='{percentage}' message='{message}']\"
echo \"##octopus[progress percentage='75' message='plain progress']\"
echo \"##octopus[resultMessage message='{failure}']\"
echo \"text ##octopus[stdout-verbose] verbose tail\"
echo '##octopus[not valid'
echo '##octopus[broken attribute=x]'
echo '##octopus[delete-target machine=\"eA==\"]'
",
        name = b64("Result.Name"),
        value = b64("first value"),
        replaced = b64("second value"),
        path = b64("/tmp/report.html"),
        artifact = b64("Report"),
        length = b64("1234"),
        percentage = b64("40"),
        message = b64("Forty percent"),
        failure = b64("Deliberate failure"),
    );
    let status = run(
        &fixture.executor,
        request("messages", ScriptSyntax::Bash, &body),
    )
    .await;
    assert_exit(&status, 0);

    let outputs: Vec<(&str, &str, bool)> = status
        .output_variables
        .iter()
        .map(|variable| {
            (
                variable.name.as_str(),
                variable.value.as_str(),
                variable.is_sensitive,
            )
        })
        .collect();
    assert_eq!(
        outputs,
        [
            ("Plain", "plain value", false),
            ("Result.Name", "second value", false)
        ]
    );
    let workspace = fixture.executor.workspace("messages").expect("workspace");
    assert_eq!(
        status.artifacts,
        [
            Artifact {
                name: "Report".into(),
                path: "/tmp/report.html".into(),
                length: 1234
            },
            Artifact {
                name: "out.log".into(),
                path: workspace.join("relative/out.log"),
                length: 0
            }
        ]
    );
    assert_eq!(
        status.progress,
        Some(Progress {
            percentage: 75,
            message: "plain progress".into()
        })
    );
    assert_eq!(
        status.failed_step_message.as_deref(),
        Some("Deliberate failure")
    );
    let lines: Vec<(LogLevel, &str)> = status
        .lines
        .iter()
        .map(|line| (line.level, line.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (LogLevel::Info, "text "),
            (LogLevel::Verbose, " verbose tail"),
            (LogLevel::Verbose, "##octopus[not valid"),
            (
                LogLevel::Warning,
                "Could not parse '##octopus[broken attribute=x]'"
            ),
            (
                LogLevel::Verbose,
                "The service message 'delete-target' is not handled by this executor; it was ignored"
            ),
        ]
    );
}

#[tokio::test]
async fn reported_facts_survive_in_state_json() {
    let fixture = fixture();
    let body = format!(
        "echo \"##octopus[setVariable name='{}' value='{}' sensitive='{}']\"\necho \"##octopus[progress percentage='10' message='ten']\"",
        b64("Secret.Out"),
        b64("out-secret-value"),
        b64("True")
    );
    let status = run(
        &fixture.executor,
        request("persisted", ScriptSyntax::Sh, &body),
    )
    .await;
    assert_exit(&status, 0);
    let reopened = cuttle_exec::Executor::open(fixture.root.path()).expect("reopen");
    let again = reopened.status("persisted", 0).await.expect("status");
    assert_eq!(again.output_variables, status.output_variables);
    assert_eq!(again.output_variables[0].value, "out-secret-value");
    assert!(again.output_variables[0].is_sensitive);
    assert_eq!(again.progress, status.progress);
    let state_file = fixture.root.path().join("tickets/persisted/state.json");
    assert!(!crate::support::file_contains(
        &state_file,
        "out-secret-value"
    ));
}
