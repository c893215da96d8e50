//! The Octopus helper functions in bash, sh and Python, as real scripts call them.

use cuttle_exec::{LogLevel, OutputVariable, Progress, ScriptSyntax, ScriptVariable};

use crate::support::{assert_exit, fixture, request, run, texts, texts_at};

fn awkward_variables() -> Vec<ScriptVariable> {
    vec![
        ScriptVariable::new("Octopus.Environment.Name", "Production"),
        ScriptVariable::new(
            "Name With Spaces",
            "it's a \"value\" with $dollars and `ticks`",
        ),
        ScriptVariable::new("Multi.Line", "first line\nsecond line"),
        ScriptVariable::new("Brackets[x]", "bracketed"),
        ScriptVariable::new("Unicode", "héllo wörld ✓"),
        ScriptVariable::new("Empty", ""),
        ScriptVariable::new("Repeated", "old"),
        ScriptVariable::new("Repeated", "new"),
        ScriptVariable::sensitive("Password", "p@ss w0rd!"),
    ]
}

const SHELL_GETS: &str = r#"
echo "env=$(get_octopusvariable "Octopus.Environment.Name")"
echo "spaces=$(get_octopusvariable "Name With Spaces")"
echo "multi=$(get_octopusvariable "Multi.Line" | tr '\n' '|')"
echo "brackets=$(get_octopusvariable "Brackets[x]")"
echo "unicode=$(get_octopusvariable "Unicode")"
echo "empty=[$(get_octopusvariable "Empty")]"
echo "missing=[$(get_octopusvariable "Not.There")]"
echo "repeated=$(get_octopusvariable "Repeated")"
echo "case=[$(get_octopusvariable "octopus.environment.name")]"
"#;

const SHELL_GET_RESULTS: [&str; 9] = [
    "env=Production",
    "spaces=it's a \"value\" with $dollars and `ticks`",
    "multi=first line|second line|",
    "brackets=bracketed",
    "unicode=héllo wörld ✓",
    "empty=[]",
    "missing=[]",
    "repeated=new",
    "case=[]",
];

const SHELL_SETS: &str = r#"
set_octopusvariable "Deployed.Version" "1.2.3"
set_octopusvariable "Api.Token" "tok-abc-123456" -sensitive
echo "read back=$(get_octopusvariable "Deployed.Version")"
echo "token is tok-abc-123456"
mkdir -p reports
printf 'hello artifact' > reports/result.txt
new_octopusartifact "reports/result.txt"
new_octopusartifact "$(pwd)/reports/result.txt" "Renamed.txt"
update_progress 50 "Half way"
write_warning "careful now"
write_highlight "look here"
write_verbose "details"
echo after-levels
"#;

fn check_sets(status: &cuttle_exec::ScriptStatus, workspace: &std::path::Path) {
    assert_eq!(
        status.output_variables,
        [
            OutputVariable {
                name: "Deployed.Version".into(),
                value: "1.2.3".into(),
                is_sensitive: false
            },
            OutputVariable {
                name: "Api.Token".into(),
                value: "tok-abc-123456".into(),
                is_sensitive: true
            }
        ]
    );
    let artifact_path = workspace.join("reports/result.txt");
    assert_eq!(status.artifacts.len(), 2, "{status:#?}");
    assert_eq!(status.artifacts[0].name, "result.txt");
    assert_eq!(
        status.artifacts[0].path.canonicalize().expect("artifact"),
        artifact_path.canonicalize().expect("artifact")
    );
    assert!(status.artifacts[0].path.is_absolute());
    assert_eq!(status.artifacts[0].length, 14);
    assert_eq!(status.artifacts[1].name, "Renamed.txt");
    assert_eq!(
        status.progress,
        Some(Progress {
            percentage: 50,
            message: "Half way".into()
        })
    );
    assert!(texts(status).contains(&"read back=1.2.3"));
    assert!(texts(status).contains(&"token is ********"));
    assert_eq!(texts_at(status, LogLevel::Warning), ["careful now"]);
    assert_eq!(texts_at(status, LogLevel::Highlight), ["look here"]);
    assert!(texts_at(status, LogLevel::Verbose).contains(&"details"));
    assert!(
        texts_at(status, LogLevel::Verbose)
            .iter()
            .any(|text| text.starts_with("Artifact result.txt will be collected from /"))
    );
    assert_eq!(texts(status).last(), Some(&"after-levels"));
    assert_eq!(
        status.lines.last().map(|line| line.level),
        Some(LogLevel::Info)
    );
}

#[tokio::test]
async fn bash_helpers() {
    let fixture = fixture();
    let mut gets = request("bash-get", ScriptSyntax::Bash, SHELL_GETS);
    gets.variables = awkward_variables();
    let status = run(&fixture.executor, gets).await;
    assert_exit(&status, 0);
    assert_eq!(texts(&status), SHELL_GET_RESULTS);

    let mut array = request(
        "bash-array",
        ScriptSyntax::Bash,
        "set -u\necho \"${octopus_parameters[Octopus.Environment.Name]}\"\necho \"${#octopus_parameters[@]}\"",
    );
    array.variables = awkward_variables();
    let status = run(&fixture.executor, array).await;
    assert_eq!(texts(&status), ["Production", "8"]);

    let sets = request("bash-set", ScriptSyntax::Bash, SHELL_SETS);
    let status = run(&fixture.executor, sets).await;
    assert_exit(&status, 0);
    check_sets(
        &status,
        &fixture.executor.workspace("bash-set").expect("workspace"),
    );

    let fail = request(
        "bash-fail",
        ScriptSyntax::Bash,
        "echo before\nfail_step \"Broke on purpose\"\necho never",
    );
    let status = run(&fixture.executor, fail).await;
    assert_exit(&status, 1);
    assert_eq!(texts(&status), ["before"]);
    assert_eq!(
        status.failed_step_message.as_deref(),
        Some("Broke on purpose")
    );

    // The health check helpers of Octopus's bash health scripts.
    let health = request(
        "bash-health",
        ScriptSyntax::Bash,
        "echo_warning 'disk is 91% full'\necho_error 'swap is off'\nfail_healthcheck 'no space left'\necho never",
    );
    let status = run(&fixture.executor, health).await;
    assert_exit(&status, 1);
    assert_eq!(texts_at(&status, LogLevel::Warning), ["disk is 91% full"]);
    assert_eq!(
        texts_at(&status, LogLevel::Error),
        ["swap is off", "no space left"]
    );
    assert!(!texts(&status).contains(&"never"), "{status:#?}");
    assert_eq!(status.failed_step_message.as_deref(), Some("no space left"));

    let missing_artifact = request(
        "bash-missing-artifact",
        ScriptSyntax::Bash,
        "new_octopusartifact nothing-here.txt\necho never",
    );
    let status = run(&fixture.executor, missing_artifact).await;
    assert_exit(&status, 1);
    assert!(status.artifacts.is_empty());
    assert_eq!(
        texts_at(&status, LogLevel::Error),
        ["new_octopusartifact: \"nothing-here.txt\" does not exist"]
    );
}

#[tokio::test]
async fn sh_helpers() {
    let fixture = fixture();
    let mut gets = request("sh-get", ScriptSyntax::Sh, SHELL_GETS);
    gets.variables = awkward_variables();
    let status = run(&fixture.executor, gets).await;
    assert_exit(&status, 0);
    assert_eq!(texts(&status), SHELL_GET_RESULTS);

    let status = run(
        &fixture.executor,
        request("sh-set", ScriptSyntax::Sh, SHELL_SETS),
    )
    .await;
    assert_exit(&status, 0);
    check_sets(
        &status,
        &fixture.executor.workspace("sh-set").expect("workspace"),
    );

    let status = run(
        &fixture.executor,
        request(
            "sh-fail",
            ScriptSyntax::Sh,
            "fail_step 'sh failure'\necho never",
        ),
    )
    .await;
    assert_exit(&status, 1);
    assert!(status.lines.is_empty(), "{status:#?}");
    assert_eq!(status.failed_step_message.as_deref(), Some("sh failure"));
}

#[tokio::test]
async fn python_helpers() {
    let fixture = fixture();
    let body = r#"
print("env=" + get_octopusvariable("Octopus.Environment.Name"))
print("spaces=" + octopusvariables["Name With Spaces"])
print("multi=" + get_octopusvariable("Multi.Line").replace("\n", "|"))
print("unicode=" + get_octopusvariable("Unicode"))
print("repeated=" + get_octopusvariable("Repeated"))
print("count=%d" % len(octopusvariables))
try:
    get_octopusvariable("Not.There")
except KeyError:
    print("missing raises KeyError")
import os
os.makedirs("reports", exist_ok=True)
with open("reports/result.txt", "w") as handle:
    handle.write("hello artifact")
set_octopusvariable("Deployed.Version", "1.2.3")
set_octopusvariable("Api.Token", "tok-abc-123456", True)
print("read back=" + get_octopusvariable("Deployed.Version"))
print("token is tok-abc-123456")
createartifact("reports/result.txt")
new_octopusartifact(os.path.abspath("reports/result.txt"), "Renamed.txt")
updateprogress(50, "Half way")
printwarning("careful now")
printhighlight("look here")
printverbose("details")
print("after-levels")
"#;
    let mut script = request("python-helpers", ScriptSyntax::Python, body);
    script.variables = awkward_variables();
    let status = run(&fixture.executor, script).await;
    assert_exit(&status, 0);
    assert_eq!(
        texts(&status)[..7],
        [
            "env=Production",
            "spaces=it's a \"value\" with $dollars and `ticks`",
            "multi=first line|second line",
            "unicode=héllo wörld ✓",
            "repeated=new",
            "count=8",
            "missing raises KeyError"
        ]
    );
    check_sets(
        &status,
        &fixture
            .executor
            .workspace("python-helpers")
            .expect("workspace"),
    );

    for (ticket, call) in [
        ("python-failstep", "failstep('py failure')"),
        ("python-fail-step", "fail_step('py failure')"),
    ] {
        let status = run(
            &fixture.executor,
            request(
                ticket,
                ScriptSyntax::Python,
                &format!("print('before')\n{call}\nprint('never')"),
            ),
        )
        .await;
        assert_exit(&status, 1);
        assert_eq!(texts(&status), ["before"]);
        assert_eq!(status.failed_step_message.as_deref(), Some("py failure"));
    }
}

#[tokio::test]
async fn scripts_cannot_read_the_variables_from_stdin_or_environment() {
    let fixture = fixture();
    let mut script = request(
        "no-leak",
        ScriptSyntax::Bash,
        "cat\necho \"stdin done\"\nenv | grep -c 'p@ss' || true\ncat /proc/$$/cmdline | tr '\\0' ' ' | grep -c 'p@ss' || true",
    );
    script.variables = awkward_variables();
    let status = run(&fixture.executor, script).await;
    assert_exit(&status, 0);
    assert_eq!(texts(&status), ["stdin done", "0", "0"]);
}

#[tokio::test]
async fn thousands_of_variables_reach_every_syntax() {
    let fixture = fixture();
    let variables: Vec<ScriptVariable> = (0..3000)
        .map(|index| {
            ScriptVariable::new(
                format!("Octopus.Generated.Variable[{index}].Name"),
                format!("value {index} {}", "x".repeat(100)),
            )
        })
        .collect();
    for (ticket, syntax, body) in [
        (
            "many-bash",
            ScriptSyntax::Bash,
            "get_octopusvariable 'Octopus.Generated.Variable[2999].Name' | cut -c1-10",
        ),
        (
            "many-sh",
            ScriptSyntax::Sh,
            "get_octopusvariable 'Octopus.Generated.Variable[2999].Name' | cut -c1-10",
        ),
        (
            "many-python",
            ScriptSyntax::Python,
            "print(get_octopusvariable('Octopus.Generated.Variable[2999].Name')[:10])",
        ),
    ] {
        let mut script = request(ticket, syntax, body);
        script.variables = variables.clone();
        let status = run(&fixture.executor, script).await;
        assert_exit(&status, 0);
        assert_eq!(texts(&status), ["value 2999"], "{ticket}");
    }
}
